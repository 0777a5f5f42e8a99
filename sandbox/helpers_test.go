package sandbox_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/dynalite"
	"github.com/aviary-deploy/aviary/sandbox"
)

// zips holds the example function, built once by examples/build.sh as a user would build it.
var zips struct {
	good, bad []byte
	goodPath  string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox", "AWS_SESSION_TOKEN": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
	dir, err := os.MkdirTemp("", "aviary-sandbox-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer dynalite.Stop()
	for _, flavor := range []string{"good", "bad"} {
		out := filepath.Join(dir, flavor+".zip")
		cmd := exec.Command("../examples/build.sh", out, flavor)
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build the example function: %v\n%s", err, b)
			return 1
		}
		b, err := os.ReadFile(out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if flavor == "good" {
			zips.good, zips.goodPath = b, out
		} else {
			zips.bad = b
		}
	}
	return m.Run()
}

// env is a running sandbox and SDK clients pointed at it through the standard config chain.
type env struct {
	srv    *sandbox.Server
	cfg    aws.Config
	lambda *lambda.Client
	s3     *s3.Client
	cw     *cloudwatch.Client
	logs   *cloudwatchlogs.Client
}

// fast is a sandbox tuned for tests: no update delay, no quota, 1-second metrics.
var fast = sandbox.Options{UpdateDelay: -1, ControlRate: -1, MetricResolution: time.Second}

func start(t *testing.T, opts sandbox.Options) *env {
	t.Helper()
	srv, err := startSandbox(opts)
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return connect(t, srv)
}

func startSandbox(opts sandbox.Options) (*sandbox.Server, error) {
	return sandbox.Start(context.Background(), opts)
}

func connect(t *testing.T, srv *sandbox.Server) *env {
	t.Helper()
	e, err := clients(srv)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// clients loads the standard chain, as Aviary does (credentials from the environment TestMain
// set), with the sandbox as the endpoint.
func clients(srv *sandbox.Server) (*env, error) {
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{Endpoint: srv.URL, Region: srv.Region})
	if err != nil {
		return nil, err
	}
	return &env{
		srv: srv, cfg: cfg,
		lambda: lambda.NewFromConfig(cfg),
		s3:     s3.NewFromConfig(cfg),
		cw:     cloudwatch.NewFromConfig(cfg),
		logs:   cloudwatchlogs.NewFromConfig(cfg),
	}, nil
}

// noRetry is a Lambda client that makes exactly one attempt per call.
func (e *env) noRetry() *lambda.Client {
	return lambda.NewFromConfig(e.cfg, func(o *lambda.Options) { o.Retryer = aws.NopRetryer{} })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

const role = "arn:aws:iam::000000000000:role/sandbox-test"

// createFunction creates a function from zip and waits until it is Active.
func (e *env) createFunction(t *testing.T, name string, zip []byte, mod ...func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionOutput {
	t.Helper()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &lambdatypes.FunctionCode{ZipFile: zip},
	}
	for _, m := range mod {
		m(in)
	}
	out, err := e.lambda.CreateFunction(ctx(t), in)
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	if err := lambda.NewFunctionActiveV2Waiter(e.lambda).Wait(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("wait for %s to be active: %v", name, err)
	}
	return out
}

func (e *env) publish(t *testing.T, name string) string {
	t.Helper()
	out, err := e.lambda.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("PublishVersion %s: %v", name, err)
	}
	return aws.ToString(out.Version)
}

// updateCode replaces a function's code and waits for the update to finish.
func (e *env) updateCode(t *testing.T, name string, zip []byte) *lambda.UpdateFunctionCodeOutput {
	t.Helper()
	out, err := e.lambda.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: zip})
	if err != nil {
		t.Fatalf("UpdateFunctionCode %s: %v", name, err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(e.lambda).Wait(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("wait for %s to update: %v", name, err)
	}
	return out
}

func codeSha256(zip []byte) string {
	sum := sha256.Sum256(zip)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// wantAPIError asserts err is the SDK's typed error T, answered with the given HTTP status.
func wantAPIError[T error](t *testing.T, err error, status int) T {
	t.Helper()
	var typed T
	if !errors.As(err, &typed) {
		t.Fatalf("error = %v (%T), want %T", err, err, typed)
	}
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) {
		t.Fatalf("error %v carries no HTTP response", err)
	}
	if got := re.HTTPStatusCode(); got != status {
		t.Fatalf("HTTP status = %d, want %d (%v)", got, status, err)
	}
	return typed
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// retrying is a retryer that keeps trying through throttles, as Aviary's clients do.
func retrying() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 20
		o.MaxBackoff = 2 * time.Second
		o.RateLimiter = ratelimit.None
	})
}
