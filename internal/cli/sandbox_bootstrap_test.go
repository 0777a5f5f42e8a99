package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/manifest"
)

const bootstrapManifest = `service: shop
alias: live
artifacts: {bucket: shop-artifacts}
functions:
  api: {dir: .}
  orders: {dir: .}
environments:
  staging:
    strategy: all-at-once
  production:
    function_name: "{service}-{function}-prod"
    region: us-west-2
    strategy: all-at-once
`

// TestSandboxBootstrap starts `aviary sandbox --bootstrap` and finds the manifest's bucket and
// every environment's functions on it, answering; a second bootstrap creates nothing.
func TestSandboxBootstrap(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "aviary.yaml")
	if err := os.WriteFile(file, []byte(bootstrapManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"sandbox", "--addr", "127.0.0.1:0", "--update-delay", "50ms", "--bootstrap", file}, &out, &errs)
	}()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), "Ctrl-C stops it.") {
		select {
		case code := <-done:
			t.Fatalf("sandbox exited %d; stdout %q, stderr %q", code, out.String(), errs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox never got ready: %q", out.String())
		}
	}
	var url string
	for _, l := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "export AWS_ENDPOINT_URL="); ok {
			url = v
		}
	}
	if url == "" {
		t.Fatalf("no AWS_ENDPOINT_URL in %q", out.String())
	}
	for _, want := range []string{"created bucket shop-artifacts", "created function shop-api-staging (us-east-1, environment staging)", "created function shop-orders-prod (us-west-2, environment production)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output does not say %q:\n%s", want, out.String())
		}
	}

	for _, c := range []struct{ region, fn string }{{"us-east-1", "shop-api-staging"}, {"us-east-1", "shop-orders-staging"}, {"us-west-2", "shop-api-prod"}, {"us-west-2", "shop-orders-prod"}} {
		cfg, err := awsconfig.Sandbox(ctx, url, c.region)
		if err != nil {
			t.Fatal(err)
		}
		res, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(c.fn), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatalf("invoke %s: %v", c.fn, err)
		}
		if res.FunctionError != nil || !bytes.Contains(res.Payload, []byte(`"placeholder":true`)) {
			t.Fatalf("%s answered %s (error %v), want the placeholder's answer", c.fn, res.Payload, aws.ToString(res.FunctionError))
		}
		if c.region == "us-east-1" {
			if _, err := s3.NewFromConfig(cfg).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("shop-artifacts")}); err != nil {
				t.Fatalf("the artifact bucket: %v", err)
			}
		}
	}

	// Again: everything exists, nothing is created.
	m, err := manifest.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := bootstrapSandbox(ctx, &again, url, "us-east-1", "000000000000", m); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(again.String(), "created") || strings.Count(again.String(), "exists") != 5 {
		t.Fatalf("a second bootstrap said:\n%s\nwant 5 things that exist and nothing created", again.String())
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("the sandbox exited %d; stderr %q", code, errs.String())
	}
}
