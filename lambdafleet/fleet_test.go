package lambdafleet_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// noRevision is Lambda as an emulator that reports no RevisionId answers it: GetFunction
// reports code sha, and UpdateFunctionCode records what it was sent.
type noRevision struct {
	lambdafleet.LambdaAPI // nil: a call the test does not expect panics
	sha                   string
	updates               []*lambda.UpdateFunctionCodeInput
}

func (l *noRevision) GetFunction(_ context.Context, in *lambda.GetFunctionInput, _ ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	return &lambda.GetFunctionOutput{Configuration: &lambdatypes.FunctionConfiguration{
		FunctionName: in.FunctionName, CodeSha256: aws.String(l.sha), State: lambdatypes.StateActive, LastUpdateStatus: lambdatypes.LastUpdateStatusSuccessful,
	}}, nil
}

func (l *noRevision) UpdateFunctionCode(_ context.Context, in *lambda.UpdateFunctionCodeInput, _ ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error) {
	l.updates = append(l.updates, in)
	l.sha = "new-sha"
	return &lambda.UpdateFunctionCodeOutput{CodeSha256: aws.String(l.sha), Version: aws.String("7")}, nil
}

// With no RevisionId to be conditional on, the update sends none (an empty one is no
// precondition), says so loudly, and still refuses code someone changed since the plan.
func TestPublishWithoutRevisionId(t *testing.T) {
	fn := release.Function{FunctionName: "shop-api-prod", ArtifactKey: "a/new.zip", CodeSha256: "new-sha", BaseCodeSha256: "old-sha"}
	a := release.Artifacts{Bucket: "artifacts"}

	var log bytes.Buffer
	l := &noRevision{sha: "old-sha"}
	f := &lambdafleet.Fleet{Lambda: l, Log: slog.New(slog.NewTextHandler(&log, nil))}
	v, err := f.Publish(context.Background(), a, fn)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v, "7"; got != want {
		t.Errorf("Publish = %s, want %s", got, want)
	}
	if len(l.updates) != 1 || l.updates[0].RevisionId != nil {
		t.Fatalf("updates %+v, want one with no RevisionId", l.updates)
	}
	if got := log.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "cannot be conditional") || !strings.Contains(got, "function=shop-api-prod") {
		t.Errorf("log %q lacks the warning", got)
	}

	changed := &noRevision{sha: "someone-elses-sha"}
	f = &lambdafleet.Fleet{Lambda: changed, Log: slog.New(slog.NewTextHandler(&log, nil))}
	if _, err := f.Publish(context.Background(), a, fn); err == nil || !strings.Contains(err.Error(), "changed by someone else since the plan") {
		t.Errorf("Publish over someone's code: %v", err)
	}
	if len(changed.updates) != 0 {
		t.Errorf("updated code someone changed: %+v", changed.updates)
	}
}

// recorder passes calls to Lambda and keeps the code updates sent.
type recorder struct {
	*lambda.Client
	updates []lambda.UpdateFunctionCodeInput
}

func (r *recorder) UpdateFunctionCode(ctx context.Context, in *lambda.UpdateFunctionCodeInput, o ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error) {
	r.updates = append(r.updates, *in)
	return r.Client.UpdateFunctionCode(ctx, in, o...)
}

// On the sandbox, which reports RevisionIds as AWS does, the code update is conditional on the
// one the plan read: it goes through with it, and a function changed since is refused.
func TestPublishIsConditional(t *testing.T) {
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
	zip := func(body string) ([]byte, artifact.Digest) {
		b, err := artifact.Zip([]artifact.File{{Name: "bootstrap", Executable: true, Data: []byte("#!/bin/sh\necho " + body + "\n")}})
		if err != nil {
			t.Fatal(err)
		}
		return b, artifact.DigestOf(b)
	}
	v1, _ := zip("one")
	v2, d2 := zip("two")
	v3, _ := zip("three")
	lc := lambda.NewFromConfig(cfg)
	sc := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("artifacts")}); err != nil {
		t.Fatal(err)
	}
	key := artifact.Key("shop", d2)
	if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("artifacts"), Key: aws.String(key), Body: bytes.NewReader(v2)}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"shop-api-prod", "shop-worker-prod"} {
		if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: v1}}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{Client: lc}
	f := &lambdafleet.Fleet{Lambda: rec, S3: sc}
	plan := func(name string) release.Function {
		cur, err := f.Inspect(ctx, name, "live")
		if err != nil {
			t.Fatal(err)
		}
		if cur.LatestRevision == "" {
			t.Fatalf("the sandbox reported no RevisionId for %s", name)
		}
		return release.Function{FunctionName: name, ArtifactKey: key, CodeSha256: d2.CodeSha256, BaseRevision: cur.LatestRevision, BaseCodeSha256: cur.LatestCodeSha256}
	}
	a := release.Artifacts{Bucket: "artifacts"}

	api := plan("shop-api-prod")
	if v, err := f.Publish(ctx, a, api); err != nil || v == "" {
		t.Fatalf("Publish = %q, %v", v, err)
	}
	if len(rec.updates) != 1 || aws.ToString(rec.updates[0].RevisionId) != api.BaseRevision {
		t.Errorf("the update was not conditional on %s: %+v", api.BaseRevision, rec.updates)
	}

	worker := plan("shop-worker-prod")
	if _, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("shop-worker-prod"), ZipFile: v3}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Publish(ctx, a, worker); err == nil || !strings.Contains(err.Error(), "changed by someone else since the plan") {
		t.Errorf("Publish over someone's change: %v", err)
	}
}

// Every field a configuration block can name has its Terraform attribute in
// ConfigurationIgnoreChanges, and nothing else is there.
func TestConfigurationIgnoreChangesNamesEveryField(t *testing.T) {
	all := release.Settings{Environment: map[string]string{}, MemorySize: 128, Timeout: 1, Layers: []string{}, Architectures: []string{"arm64"}}
	var got []string
	for _, f := range all.Fields() {
		a := lambdafleet.ConfigurationAttribute(f)
		if a == "" {
			t.Errorf("the field %s has no Terraform attribute", f)
		}
		got = append(got, a)
	}
	if want := lambdafleet.ConfigurationIgnoreChanges(); !slices.Equal(got, want) {
		t.Errorf("the fields map to %v; ConfigurationIgnoreChanges is %v", got, want)
	}
}
