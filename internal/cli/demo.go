package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/sandbox"
	sandboxs3 "github.com/aviary-deploy/aviary/sandbox/s3"
	"github.com/aviary-deploy/aviary/web"
)

type demoCmd struct {
	Chapter     string `arg:"" optional:"" enum:"release,retention,recover" default:"release" help:"release: a faulty canary caught and the fleet rolled back, a good release promoted (default). retention: an S3 lifecycle rule expires the artifacts a rollback needs; aviary doctor finds it and restores them, and aviary prune deletes only what nothing needs. recover: a CloudFormation stack (with nested stacks) stuck in UPDATE_ROLLBACK_FAILED because its code keys expired; aviary recover-stack restores them and continues the rollback."`
	KeepRunning bool   `name:"keep-running" help:"Keep the sandbox running after the demo, so you can look around with the AWS CLI and aviary status/history."`
	// OldKeep is --keep-running's former name, kept working and hidden: --keep is prune's count
	// of newest versions, and a flag name means one thing in every command.
	OldKeep bool `name:"keep" hidden:"" env:"-" help:"Deprecated: --keep-running."`
}

// rehearsal is a demo's sandbox, store and example fleet, and the way it runs aviary commands.
type rehearsal struct {
	ctx      context.Context
	out      io.Writer
	iout     *indent
	ierr     *indent
	srv      *sandbox.Server
	m        *manifest.Manifest
	env      *manifest.Environment
	cfg      aws.Config
	lambda   *lambda.Client
	root     string
	fleetDir string
	storeURL string
	targets  []string
}

func (r *rehearsal) say(format string, args ...any) {
	fmt.Fprintf(r.out, "\n▸ "+format+"\n", args...)
}

// aviary runs a command as a user would type it (the manifest's builds read FLAVOR, STAMP and the
// like from the environment), showing its output under the prompt.
func (r *rehearsal) aviary(env map[string]string, args ...string) int {
	for k, v := range env {
		os.Setenv(k, v)
		defer os.Unsetenv(k)
	}
	fmt.Fprintf(r.out, "  $ %saviary %s\n", envPrefix(env), quoteArgs(args))
	return Main(r.ctx, append(args, "-f", filepath.Join(r.fleetDir, manifest.DefaultFile)), r.iout, r.ierr)
}

// The demo rehearses what Aviary is for, on a sandbox in this process, through the commands CI
// and people run. Its chapters: release (the default), retention and recover.
func (c *demoCmd) Run(e *env) error {
	cwd, _ := os.Getwd()
	root, cleanup, err := examplefn.Checkout(cwd, e.stdout)
	if err != nil {
		return badInput("demo: %w", err)
	}
	defer cleanup()
	fleetDir := filepath.Join(root, "examples", "fleet")
	m, err := manifest.Load(filepath.Join(fleetDir, manifest.DefaultFile))
	if err != nil {
		return err
	}
	ctx, out := e.ctx, e.stdout
	began := time.Now()

	srv, err := sandbox.Start(ctx, sandbox.Options{MetricResolution: time.Second, UpdateDelay: 300 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("demo: start the sandbox: %w", err)
	}
	defer srv.Close()
	stateDir, err := os.MkdirTemp("", "aviary-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	// This process's AWS clients (and the aviary commands it runs) reach the sandbox through
	// the standard chain, exactly as `aviary sandbox` users do with its exports.
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AVIARY_NEW_VERSION_WEIGHT"} {
		os.Unsetenv(k)
	}
	storeURL := "sqlite://" + filepath.Join(stateDir, "state.db")
	os.Setenv("AVIARY_STORE", storeURL)
	fmt.Fprintf(out, "Aviary demo on a local sandbox at %s (Lambda, S3, CloudWatch metrics and logs; AWS's quota of 15 control-plane calls/s)\n", srv.URL)
	if dash, err := demoDashboard(ctx, storeURL); err != nil {
		fmt.Fprintf(out, "(no dashboard: %v)\n", err)
	} else {
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = dash.Shutdown(sctx) // closes its store too
		}()
		fmt.Fprintf(out, "Dashboard (aviary serve, read-only): %s — open it to follow the releases\n", "http://"+dash.Addr)
	}

	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		return err
	}
	envName := "production"
	if c.Chapter == "retention" {
		envName = "staging" // all at once: six releases in seconds
	}
	env, _ := m.Environment(envName)
	r := &rehearsal{ctx: ctx, out: out, iout: &indent{w: out}, ierr: &indent{w: e.stderr}, srv: srv, m: m, env: env, cfg: cfg, lambda: lambda.NewFromConfig(cfg),
		root: root, fleetDir: fleetDir, storeURL: storeURL}
	if c.Chapter == "recover" {
		// CloudFormation owns the functions in this chapter: only the bucket exists before it.
		if _, err := s3.NewFromConfig(cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(m.Artifacts.Bucket)}); err != nil {
			return err
		}
	} else if err := r.infrastructure(); err != nil {
		return err
	}
	switch c.Chapter {
	case "recover":
		err = r.recover()
	case "retention":
		err = r.retention()
	default:
		err = r.release()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDone in %s. Each step above is a command you can run against AWS or `aviary sandbox` (see README).\n", time.Since(began).Round(time.Second))
	if c.KeepRunning || c.OldKeep {
		fmt.Fprintf(out, "The sandbox stays up at %s, the store at %s, the dashboard too; Ctrl-C ends it.\n", srv.URL, storeURL)
		for _, kv := range srv.Env() {
			fmt.Fprintln(out, "export "+kv)
		}
		fmt.Fprintln(out, "export AVIARY_STORE="+storeURL)
		<-ctx.Done()
	}
	return nil
}

// infrastructure creates what Terraform would own: the bucket and the functions.
func (r *rehearsal) infrastructure() error {
	ctx, m, env := r.ctx, r.m, r.env
	r.say("The infrastructure, as Terraform would own it: bucket %s and functions %s (JSON logs)", m.Artifacts.Bucket, names3(m, env))
	if _, err := s3.NewFromConfig(r.cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(m.Artifacts.Bucket)}); err != nil {
		return err
	}
	placeholder, err := examplefn.Build(ctx, r.root, "./examples/hello", "good")
	if err != nil {
		return err
	}
	for _, fn := range m.Functions {
		name := m.FunctionName(env, fn.Name)
		r.targets = append(r.targets, name+":"+m.Alias)
		if _, err := r.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String("arn:aws:iam::000000000000:role/shop"), Code: &lambdatypes.FunctionCode{ZipFile: placeholder},
			LoggingConfig: &lambdatypes.LoggingConfig{LogFormat: lambdatypes.LogFormatJson},
		}); err != nil {
			return fmt.Errorf("demo: create %s: %w", fn.Name, err)
		}
	}
	return nil
}

// release is the default chapter: the example fleet deployed by its first release; live traffic;
// a release whose canary fails a share of one function's requests, caught by the health checks and
// rolled back fleet-wide; and a good release promoted.
func (r *rehearsal) release() error {
	say, aviary := r.say, r.aviary
	say("Release 1: the first release of the fleet creates the aliases (no previous versions to compare with: smoke tests and ceilings only)")
	if code := aviary(map[string]string{"STAMP": "1"}, "deploy", "-e", "production"); code != ExitOK {
		return fmt.Errorf("demo: the first release exited %d", code)
	}

	const rate, flaky = 100, `{"action":"flaky","rate":0.01}`
	say("Live traffic from here on: %d invocations/s per function, 1%% of which fail in every version (a flaky dependency)", rate)
	fmt.Fprintf(r.out, "  (what `aviary traffic -e production --rate %d --payload flaky.json` sends, with flaky.json holding %s)\n", rate, flaky)
	traffic := startTraffic(r.ctx, r.lambda, r.targets, rate, []byte(flaky))
	defer traffic.stop()

	say("Release 2: orders has a bug that fails 20%% of its business requests; its smoke test still passes. Every function's canary is judged against its baseline as invocations come in")
	code := aviary(map[string]string{"STAMP": "2", "FLAVOR_orders": "bad", "BAD_RATE": "0.2"}, "deploy", "-e", "production")
	if code != ExitRolledBack {
		return fmt.Errorf("demo: release 2 exited %d; want %d (rolled back by its health checks)", code, ExitRolledBack)
	}
	say("What the record keeps of release 2: the verdict and the numbers behind it")
	aviary(nil, "status", "-e", "production", "--events", "8")

	say("Release 3: a good build, judged at 10%% and 50%% of traffic, then promoted")
	if code := aviary(map[string]string{"STAMP": "3"}, "deploy", "-e", "production"); code != ExitOK {
		return fmt.Errorf("demo: release 3 exited %d", code)
	}
	traffic.stop()
	say("The traffic, by the version that answered")
	traffic.table(r.iout)

	say("The record: every release and every transition, with who and why")
	aviary(nil, "history", "-e", "production")
	return nil
}

// ageBucket runs the bucket's lifecycle rules as S3 would days from now, and says how many
// objects they expired. (The sandbox is imported only here and in sandbox.go.)
func (r *rehearsal) ageBucket(bucket string, days int) (int, error) {
	rep, err := r.srv.S3.ApplyLifecycle(sandboxs3.LifecycleOptions{Bucket: bucket, Days: &days})
	if err != nil {
		return 0, err
	}
	return len(rep.Expired), nil
}

func names3(m *manifest.Manifest, env *manifest.Environment) string {
	var n []string
	for _, f := range m.Functions {
		n = append(n, m.FunctionName(env, f.Name))
	}
	return strings.Join(n, ", ")
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if strings.ContainsAny(a, " '\"") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func envPrefix(env map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&b, "%s=%s ", k, env[k])
	}
	return b.String()
}

// indent writes a command's output indented under its prompt. Writes may end mid-line: only what
// starts a line is indented.
type indent struct {
	w   io.Writer
	mu  sync.Mutex
	mid bool // the last write ended mid-line
}

func (i *indent) Write(p []byte) (int, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	var b bytes.Buffer
	for _, l := range bytes.SplitAfter(p, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if !i.mid {
			b.WriteString("    ")
		}
		b.Write(l)
		i.mid = l[len(l)-1] != '\n'
	}
	if _, err := i.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// demoDashboard serves the dashboard over the demo's store on a free local port, read-only (no
// admin token; links signed with a throwaway secret).
func demoDashboard(ctx context.Context, storeURL string) (*http.Server, error) {
	st, err := storeFlags{Store: storeURL}.open(ctx, nil)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	signer, err := links.NewSigner(secret)
	if err != nil {
		return nil, err
	}
	h, err := web.New(web.Config{Store: st, Signer: signer, Refresh: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, Addr: ln.Addr().String(), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(func() { st.Close() })
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
