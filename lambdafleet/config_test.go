package lambdafleet_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// writes passes calls to Lambda and counts the writes, with the inputs of the updates.
type writes struct {
	*lambda.Client
	configs []lambda.UpdateFunctionConfigurationInput
	codes   []lambda.UpdateFunctionCodeInput
}

func (w *writes) UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, o ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	w.configs = append(w.configs, *in)
	return w.Client.UpdateFunctionConfiguration(ctx, in, o...)
}

func (w *writes) UpdateFunctionCode(ctx context.Context, in *lambda.UpdateFunctionCodeInput, o ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error) {
	w.codes = append(w.codes, *in)
	return w.Client.UpdateFunctionCode(ctx, in, o...)
}

// Publishing a configuration: the configuration update, then the code (with the architecture),
// each conditional on the RevisionId before it; published again after a crash it only
// publishes; SSM values are read at the version plan read; a ${VAR} that changed since the plan,
// or is missing where the release is published, or a function someone reconfigured, is refused.
func TestPublishConfiguration(t *testing.T) {
	ctx := context.Background()
	srv, err := sandbox.Start(ctx, sandbox.Options{UpdateDelay: 50 * time.Millisecond, ControlRate: -1, MetricResolution: time.Second})
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
	v1, d1 := zip("one")
	v2, d2 := zip("two")
	lc := lambda.NewFromConfig(cfg)
	sc := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	pc := ssm.NewFromConfig(cfg)
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("artifacts")}); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{v1, v2} {
		if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("artifacts"), Key: aws.String(artifact.Key("shop", artifact.DigestOf(b))), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(value string) {
		if _, err := pc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/shop/pw"), Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	put("pw-1")
	names := []string{"api", "worker", "drift", "missing"}
	for _, n := range names {
		if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(n), Runtime: lambdatypes.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: v1}}); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"GREETING": "hello"}
	w := &writes{Client: lc}
	f := &lambdafleet.Fleet{Lambda: w, S3: sc, SSM: pc, UpdatePoll: 10 * time.Millisecond,
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	template := release.Settings{Environment: map[string]string{"GREETING": "${GREETING}", "PW": "{{ssm:/shop/pw}}", "PLAIN": "x"},
		MemorySize: 256, Architectures: []string{"arm64"}}
	plan := func(name string, d artifact.Digest) (release.Function, *release.Settings) {
		cur, err := f.Inspect(ctx, name, "live")
		if err != nil {
			t.Fatal(err)
		}
		c, s, err := f.PrepareConfiguration(ctx, template)
		if err != nil {
			t.Fatal(err)
		}
		return release.Function{Name: name, FunctionName: name, ArtifactKey: artifact.Key("shop", d), CodeSha256: d.CodeSha256,
			BaseRevision: cur.LatestRevision, BaseCodeSha256: cur.LatestCodeSha256, Configuration: c}, s
	}
	a := release.Artifacts{Bucket: "artifacts"}
	version := func(name, v string) *lambda.GetFunctionConfigurationOutput {
		out, err := lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name), Qualifier: aws.String(v)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	api, resolved := plan("api", d2)
	if resolved.Environment["PW"] != "pw-1" || !resolved.Secret["PW"] || !resolved.Secret["GREETING"] || resolved.Secret["PLAIN"] {
		t.Errorf("plan resolved %v (secret %v)", resolved.Environment, resolved.Secret)
	}
	if strings.Contains(api.Configuration.Digest+api.Configuration.Salt, "pw-1") || api.Configuration.SSMVersions["/shop/pw"] != "1" {
		t.Errorf("the record: %+v", api.Configuration)
	}
	got, err := f.Publish(ctx, a, api)
	if err != nil {
		t.Fatal(err)
	}
	c := version("api", got)
	if c.Environment.Variables["GREETING"] != "hello" || c.Environment.Variables["PW"] != "pw-1" || aws.ToInt32(c.MemorySize) != 256 ||
		aws.ToString(c.CodeSha256) != d2.CodeSha256 || len(c.Architectures) != 1 || c.Architectures[0] != lambdatypes.ArchitectureArm64 {
		t.Errorf("version %s: env %v, memory %d, code %s, architectures %v", got, c.Environment.Variables, aws.ToInt32(c.MemorySize), aws.ToString(c.CodeSha256), c.Architectures)
	}
	if len(w.configs) != 1 || aws.ToString(w.configs[0].RevisionId) != api.BaseRevision {
		t.Errorf("configuration updates %d, the first conditional on %q, want on %s", len(w.configs), aws.ToString(w.configs[0].RevisionId), api.BaseRevision)
	}
	if len(w.codes) != 1 || w.codes[0].RevisionId == nil || aws.ToString(w.codes[0].RevisionId) == api.BaseRevision {
		t.Errorf("code updates %+v: want one, conditional on the RevisionId the configuration update left", w.codes)
	}
	// Again, as after a crash before the version was recorded: nothing more is written.
	again, err := f.Publish(ctx, a, api)
	if err != nil || again != got || len(w.configs) != 1 || len(w.codes) != 1 {
		t.Errorf("published again: %s, %v; %d configuration and %d code updates", again, err, len(w.configs), len(w.codes))
	}

	// The parameter rotated after the plan: the release ships the value it planned.
	worker, _ := plan("worker", d1)
	put("pw-2")
	if v, err := f.Publish(ctx, a, worker); err != nil || version("worker", v).Environment.Variables["PW"] != "pw-1" {
		t.Errorf("published %s, %v; want PW as planned (pw-1)", v, err)
	}

	drift, _ := plan("drift", d1)
	vars["GREETING"] = "changed"
	if _, err := f.Publish(ctx, a, drift); err == nil || !strings.Contains(err.Error(), "resolves to other values than when the release was planned") {
		t.Errorf("a ${VAR} changed since the plan: %v", err)
	}
	delete(vars, "GREETING")
	if _, err := f.Publish(ctx, a, drift); err == nil || !strings.Contains(err.Error(), "can be published only where the variable is set") {
		t.Errorf("a ${VAR} missing at publish: %v", err)
	}
	vars["GREETING"] = "hello"
	missing, _ := plan("missing", d1)
	if _, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("missing"), Timeout: aws.Int32(9)}); err != nil {
		t.Fatal(err)
	}
	n := len(w.configs)
	if _, err := f.Publish(ctx, a, missing); err == nil || !strings.Contains(err.Error(), "changed by someone else since the plan") {
		t.Errorf("a function reconfigured since the plan: %v", err)
	}
	if len(w.configs) != n {
		t.Error("a function reconfigured since the plan was updated")
	}
}
