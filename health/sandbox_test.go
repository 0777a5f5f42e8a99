package health

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// The checker reads per-version outcomes from the logs Lambda writes, in both formats: in JSON
// the platform.report status tells a handled error; in Text, aws-lambda-go's own error line inside
// the invocation does. Smoke invocations are not counted as traffic.
func TestLogsOnTheSandbox(t *testing.T) {
	ctx := context.Background()
	srv, err := sandbox.Start(ctx, sandbox.Options{UpdateDelay: -1, ControlRate: -1, MetricResolution: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	good, err := examplefn.Build(ctx, root, "./examples/hello", "good")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := examplefn.BuildWith(ctx, root, "./examples/hello", map[string]string{"flavor": "bad", "badRate": "1"})
	if err != nil {
		t.Fatal(err)
	}
	lc := lambda.NewFromConfig(cfg)
	r := &release.Release{ID: "r1", Alias: "live", Steps: []release.Step{{Weight: 0.5}},
		Checks: &release.Checks{Logs: true, Alpha: 0.01, Detect: 5, MaxErrorRate: 0.99, MaxThrottleRate: 0.99,
			Smoke: []release.Smoke{{Payload: `{"action":"echo"}`}}}}
	start := time.Now().Add(-time.Second)
	for _, format := range []lambdatypes.LogFormat{lambdatypes.LogFormatText, lambdatypes.LogFormatJson} {
		name := "logs-" + string(format)
		if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: good},
			LoggingConfig: &lambdatypes.LoggingConfig{LogFormat: format}, Publish: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: bad, Publish: true}); err != nil {
			t.Fatal(err)
		}
		r.Functions = append(r.Functions, release.Function{FunctionName: name, Previous: "1", New: "2", LogGroup: "/aws/lambda/" + name, Timeout: 3})
	}
	r.Health.Steps = []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: start, Started: start}}
	c := New(cfg)
	w := c.watch(r)
	if v := c.smoke(ctx, r, w, "before traffic"); v != nil {
		t.Fatalf("smoke: %+v", v)
	}
	for _, fn := range r.Functions {
		for range 6 {
			for _, v := range []string{"1", "2"} {
				out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn.FunctionName), Qualifier: aws.String(v), Payload: []byte(`{}`)})
				if err != nil || (v == "2") != (out.FunctionError != nil) {
					t.Fatalf("%s:%s: %v %+v", fn.FunctionName, v, err, out)
				}
			}
		}
	}
	if err := c.readLogs(ctx, r, w, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, fn := range r.Functions {
		fw := w.fns[fn.FunctionName]
		if fw.logsErr != nil {
			t.Fatalf("%s: %v", fn.FunctionName, fw.logsErr)
		}
		base, canary := fw.fromLogs["1"][0], fw.fromLogs["2"][0]
		if base == nil || canary == nil || base.n != 6 || base.errors != 0 || canary.n != 6 || canary.errors != 6 {
			t.Errorf("%s: baseline %+v, canary %+v; want 6 invocations each (smoke invocation not counted), all of the canary's failed", fn.FunctionName, base, canary)
		}
	}
}
