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
	"github.com/aviary-deploy/aviary/sandbox"
)

// onSandbox starts a sandbox for one test and returns it with a client configuration for it.
func onSandbox(t *testing.T) (*sandbox.Server, aws.Config) {
	t.Helper()
	ctx := context.Background()
	srv, err := sandbox.Start(ctx, sandbox.Options{UpdateDelay: -1, ControlRate: -1, MetricResolution: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, cfg
}

// twoVersions creates function name with the example's good flavour as version 1 and, as version
// 2, the bad flavour failing the given share of requests ("0": none), and alias live on version 1
// with weight on version 2.
func twoVersions(t *testing.T, cfg aws.Config, name, badRate string, weight float64) {
	t.Helper()
	ctx := context.Background()
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	good, err := examplefn.Build(ctx, root, "./examples/hello", "good")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := examplefn.BuildWith(ctx, root, "./examples/hello", map[string]string{"flavor": "bad", "badRate": badRate})
	if err != nil {
		t.Fatal(err)
	}
	lc := lambda.NewFromConfig(cfg)
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: good}, Publish: true, Timeout: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: bad, Publish: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": weight}}}); err != nil {
		t.Fatal(err)
	}
}

// total sums one version's counts over its periods.
func total(byPeriod map[int64]*counts) counts {
	var t counts
	for _, c := range byPeriod {
		t.n += c.n
		t.errors += c.errors
		t.slow += c.slow
	}
	return t
}
