package main_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/internal/examplefn"
)

// TestFirstRunWithoutClone is a newcomer's first hour, from a directory holding nothing but the
// installed binary: `aviary demo`, then their own manifest on `aviary sandbox --bootstrap`,
// deployed with `aviary deploy` — each one command.
func TestFirstRunWithoutClone(t *testing.T) {
	built := buildAviary(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "aviary")
	b, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}

	t.Run("demo", func(t *testing.T) {
		cmd := exec.Command(bin, "demo")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aviary demo: %v\n%s", err, out)
		}
		for _, want := range []string{"No Aviary clone here", "Go is needed", "Release 1",
			"rolled-back: every function is back on its previous version", "promoted: all traffic on the new versions of 3 functions", "Done in"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("demo output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("bootstrap and deploy", func(t *testing.T) {
		// The newcomer's function: a bootstrap built for this machine, as the sandbox runs it.
		root, err := examplefn.Root(".")
		if err != nil {
			t.Fatal(err)
		}
		fn := filepath.Join(dir, "fn")
		build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(fn, "bootstrap"), "./examples/hello")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		manifest := "service: tiny\nartifacts: {bucket: tiny-artifacts}\nfunctions:\n  hello: {dir: fn}\nenvironments:\n  dev:\n    strategy: all-at-once\n"
		if err := os.WriteFile(filepath.Join(dir, "aviary.yaml"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}

		sb := exec.Command(bin, "sandbox", "--addr", "127.0.0.1:0", "--update-delay", "0s", "--bootstrap", "aviary.yaml")
		sb.Dir = dir
		stdout, err := sb.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		sb.Stderr = os.Stderr
		if err := sb.Start(); err != nil {
			t.Fatal(err)
		}
		defer sb.Process.Kill()
		exports := map[string]string{}
		var banner strings.Builder
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			line := lines.Text()
			banner.WriteString(line + "\n")
			if kv, ok := strings.CutPrefix(line, "export "); ok {
				k, v, _ := strings.Cut(kv, "=")
				exports[k] = v
			}
			if strings.HasPrefix(line, "Ctrl-C stops it.") {
				break
			}
		}
		for _, want := range []string{"created bucket tiny-artifacts", "created function tiny-hello-dev"} {
			if !strings.Contains(banner.String(), want) {
				t.Fatalf("the sandbox does not say %q:\n%s", want, banner.String())
			}
		}
		if exports["AWS_ENDPOINT_URL"] == "" {
			t.Fatalf("no AWS_ENDPOINT_URL exported:\n%s", banner.String())
		}
		for k, v := range exports {
			t.Setenv(k, v)
		}
		t.Setenv("AWS_PROFILE", "")
		t.Setenv("AWS_CONFIG_FILE", os.DevNull)
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
		t.Setenv("AVIARY_STORE", "")

		deploy := exec.Command(bin, "deploy", "-e", "dev")
		deploy.Dir = dir
		out, err := deploy.CombinedOutput()
		if err != nil {
			t.Fatalf("aviary deploy: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "promoted") {
			t.Errorf("the deploy does not say it promoted:\n%s", out)
		}

		// The alias now runs the newcomer's code, not the placeholder.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("tiny-hello-dev:live"), Payload: []byte(`{}`)})
		if err != nil || res.FunctionError != nil {
			t.Fatalf("invoke: %v %v", err, res)
		}
		if bytes.Contains(res.Payload, []byte("placeholder")) || !bytes.Contains(res.Payload, []byte(`"hello from the good flavour"`)) {
			t.Fatalf("tiny-hello-dev:live answered %s, want the hello function's answer", res.Payload)
		}

		sb.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- sb.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("aviary sandbox exited with %v after Ctrl-C", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("aviary sandbox did not stop on Ctrl-C")
		}
	})
}
