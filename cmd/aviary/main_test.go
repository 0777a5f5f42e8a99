package main_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/internal/examplefn"
)

// buildAviary compiles the command as a user would install it.
func buildAviary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aviary")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestSandboxCommand runs `aviary sandbox` as a process: it prints the exports a user pastes, an
// SDK client configured only by those exports (the standard chain) deploys and invokes a function,
// and Ctrl-C stops it cleanly, function processes included.
func TestSandboxCommand(t *testing.T) {
	bin := buildAviary(t)
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	zip, err := examplefn.Build(context.Background(), root, "./examples/hello", "good")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "sandbox", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--update-delay", "0s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	exports := map[string]string{}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			exports[k] = v
		}
		if strings.HasPrefix(line, "Ctrl-C stops it.") {
			break
		}
	}
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if exports[k] == "" {
			t.Fatalf("the banner does not export %s: %v", k, exports)
		}
		t.Setenv(k, exports[k])
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lc := lambda.NewFromConfig(cfg)
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("from-cli"), Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: zip}}); err != nil {
		t.Fatal(err)
	}
	out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("from-cli")})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke: %v %v", err, out)
	}
	// This sandbox's function processes run from its own task directory (other tests' sandboxes
	// may run at the same time).
	tasks := taskDirOf(cmd.Process.Pid)
	if runtime.GOOS == "linux" && (tasks == "" || functionProcesses(tasks) == 0) {
		t.Fatal("no function process found while the sandbox runs")
	}

	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("aviary sandbox exited with %v after Ctrl-C", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("aviary sandbox did not stop on Ctrl-C")
	}
	if n := functionProcesses(tasks); tasks != "" && n != 0 {
		t.Errorf("%d function processes outlived the sandbox", n)
	}
}

// functionProcesses counts running processes started from a sandbox's task directory (Linux).
func functionProcesses(tasks string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	n := 0
	for _, p := range procs {
		target, err := os.Readlink(p)
		if err == nil && strings.HasPrefix(target, tasks) {
			n++
		}
	}
	return n
}

// taskDirOf finds where the sandbox process pid runs function processes from: the
// aviary-sandbox-tasks-* directory of one of its children (Linux; "" elsewhere).
func taskDirOf(pid int) string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		target, err := os.Readlink(filepath.Join(filepath.Dir(st), "exe"))
		if i := strings.Index(target, "aviary-sandbox-tasks-"); err == nil && i >= 0 {
			if j := strings.IndexByte(target[i:], '/'); j > 0 {
				return target[:i+j+1]
			}
		}
	}
	return ""
}

// TestDemo runs the README's first command as a newcomer would.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes a while; run without -short")
	}
	bin := buildAviary(t)
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "demo")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aviary demo: %v\n%s", err, out)
	}
	for _, want := range []string{"Release 1", "health: FAIL: shop-orders-prod: the canary's errors are out of proportion",
		"rolled-back: every function is back on its previous version (step 1 failed its health check", "CANARY err/inv",
		"promoted: all traffic on the new versions of 3 functions", "Done in", "Dashboard (aviary serve, read-only): http://127.0.0.1:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemoRetention runs the retention chapter: prune keeps what CloudFront and the retained
// releases need, doctor names an expiring rule and then the expired keys, --restore puts them
// back byte for byte, and a rollback runs.
func TestDemoRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes a while; run without -short")
	}
	bin := buildAviary(t)
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "demo", "retention")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aviary demo retention: %v\n%s", err, out)
	}
	for _, want := range []string{"kept          2 cloudfront ", "Deleted 5 versions; 0 deferred, 13 kept, 0 failed.",
		"error   lifecycle    rule expire-old-builds: expires (deletes) artifacts 30 days after their upload",
		"missing: needed by shop-api-staging:6 (alias live", "was missing; restored from the local cache, verified against its SHA-256",
		"is byte-identical to the SHA-256 its key names", "Ready: every rollback of staging can run.",
		"rolled-back: every function is back on its previous version", "Done in"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
