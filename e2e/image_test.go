package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/internal/lambdaimage"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// registry is the sandbox's ECR as a team's CI uses it: a repository, and images pushed to it
// with the credentials GetAuthorizationToken answers, built from Go functions with no Docker.
type registry struct {
	t    *testing.T
	f    *fleet
	ecr  *ecr.Client
	host string
}

func newRegistry(t *testing.T, f *fleet, repo string) *registry {
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &registry{t: t, f: f, ecr: ecr.NewFromConfig(cfg), host: strings.TrimPrefix(f.srv.URL, "http://")}
	if _, err := r.ecr.CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)}); err != nil {
		t.Fatal(err)
	}
	return r
}

// push builds an image of the example function (its bootstrap, good or bad, and stamp.txt)
// and pushes it to repo:tag; it returns the digest's hex, Lambda's CodeSha256 for it.
func (r *registry) push(repo, tag, stamp string, bootstrap []byte) string {
	r.t.Helper()
	dir := r.t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), bootstrap, 0o755)
	os.WriteFile(filepath.Join(dir, "stamp.txt"), []byte(stamp), 0o644)
	files, err := artifact.Collect(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	zip, err := artifact.Zip(files)
	if err != nil {
		r.t.Fatal(err)
	}
	img, err := lambdaimage.FromZip(zip, lambdaimage.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	tok, err := r.ecr.GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		r.t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	user, pass, _ := strings.Cut(string(raw), ":")
	d, err := lambdaimage.Push(context.Background(), img, r.host+"/"+repo+":"+tag, user, pass)
	if err != nil {
		r.t.Fatal(err)
	}
	return d.Hex
}

// pushIndex pushes, as docker buildx does by default, the example function's image wrapped in a
// multi-platform index to repo:tag.
func (r *registry) pushIndex(repo, tag string, bootstrap []byte) {
	r.t.Helper()
	dir := r.t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), bootstrap, 0o755)
	files, err := artifact.Collect(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	zip, err := artifact.Zip(files)
	if err != nil {
		r.t.Fatal(err)
	}
	img, err := lambdaimage.FromZip(zip, lambdaimage.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	tok, err := r.ecr.GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		r.t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	user, pass, _ := strings.Cut(string(raw), ":")
	if _, err := lambdaimage.PushIndex(context.Background(), lambdaimage.Index(img), r.host+"/"+repo+":"+tag, user, pass); err != nil {
		r.t.Fatal(err)
	}
}

// updates counts the UpdateFunctionCode calls that changed a function, by function.
func updates(reqs []sandbox.Request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		if r.Operation == "UpdateFunctionCode" && r.Status < 300 {
			out[r.Resource]++
		}
	}
	return out
}

// A fleet of one zip function and one container-image function moves as one release: the image
// is resolved at plan time and pinned to its digest, canaried, promoted, or rolled back; an
// unchanged digest is no write, a moved tag is a change, and a bad image changes nothing.
func TestImageFunctionReleases(t *testing.T) {
	f := newFleet(t, 1, judged, "      canary:\n        - weight: 10%\n          bake: 1s")
	reg := newRegistry(t, f, "shop/img")
	ctx := context.Background()

	// Given an Image function the infrastructure created from tag v1, and the manifest naming it.
	first := reg.push("shop/img", "v1", "1", built.bootstrap)
	if _, err := f.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("shop-img-prod"), PackageType: lambdatypes.PackageTypeImage,
		Role: aws.String("arn:aws:iam::000000000000:role/shop"), Code: &lambdatypes.FunctionCode{ImageUri: aws.String(reg.host + "/shop/img:v1")},
	}); err != nil {
		t.Fatal(err)
	}
	f.replaceInManifest("functions:\n", "functions:\n  img:\n    image: shop/img:v1\n")
	f.names = append(f.names, "img")

	// The first release creates both aliases.
	f.stamp("fn00", "1")
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("first deploy: exit %d\n%s\n%s", code, out, errs)
	}
	for _, n := range f.names {
		if got := f.served(n); got != "1" {
			t.Errorf("%s serves %q after the first release, want 1", n, got)
		}
	}

	// When the tag moves to a new image and the zip changes, one canary release ships both,
	// the image pinned to the digest the tag named at plan time.
	f.stamp("fn00", "2")
	second := reg.push("shop/img", "v1", "2", built.bootstrap)
	if second == first {
		t.Fatal("the second image has the first's digest")
	}
	code, out, errs := f.aviary("plan", "-e", "production")
	if code != 0 || strings.Count(out, "changes") != 2 {
		t.Fatalf("plan: exit %d, want both functions changed\n%s\n%s", code, out, errs)
	}
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("second deploy: exit %d\n%s\n%s", code, out, errs)
	}
	r := f.latest()
	img := fnOf(r, "img")
	if r.Phase != release.Promoted || len(r.Functions) != 2 || img.CodeSha256 != second || img.ImageUri != reg.host+"/shop/img@sha256:"+second || img.ArtifactKey != "" {
		t.Fatalf("release %s: %+v", r.Phase, r.Functions)
	}
	if len(r.Steps) != 1 || r.Steps[0].Weight != 0.1 {
		t.Errorf("steps %+v, want the 10%% canary", r.Steps)
	}
	for _, n := range f.names {
		if got := f.served(n); got != "2" {
			t.Errorf("%s serves %q after promotion, want 2", n, got)
		}
	}
	auditChain(t, f.openStore(), r)

	// The same tag on the same digest is no change: only the zip function is written.
	f.stamp("fn00", "3")
	f.srv.ResetRequests()
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("third deploy: exit %d\n%s\n%s", code, out, errs)
	}
	if u := updates(f.srv.Requests()); u["shop-img-prod"] != 0 || u["shop-fn00-prod"] != 1 {
		t.Errorf("UpdateFunctionCode calls %v: want one for shop-fn00-prod and none for the unchanged image", u)
	}
	if r := f.latest(); len(r.Functions) != 1 || r.Functions[0].Name != "fn00" {
		t.Errorf("the third release ships %+v, want fn00 only", r.Functions)
	}

	// A faulty image fails its smoke test: the whole release (the zip too) is rolled back
	// before any traffic moves.
	f.appendManifest(strings.Replace(checks, `{"$.echo.smoke": true}`, `{"$.echo.smoke": true, "$.flavor": good}`, 1))
	f.stamp("fn00", "4")
	reg.push("shop/img", "v1", "4", built.bad)
	code, out, errs = f.aviary("deploy", "-e", "production")
	if code != 3 {
		t.Fatalf("faulty image: exit %d, want 3\n%s\n%s", code, out, errs)
	}
	r = f.latest()
	if pre := r.Health.PreTraffic; r.Phase != release.RolledBack || pre == nil || pre.Function != "shop-img-prod" || len(r.Functions) != 2 {
		t.Fatalf("faulty release %s, pre-traffic %+v, functions %+v", r.Phase, r.Health.PreTraffic, r.Functions)
	}
	if got := f.served("img"); got != "2" {
		t.Errorf("img serves %q after the rollback, want 2", got)
	}
	if got := f.served("fn00"); got != "3" {
		t.Errorf("fn00 serves %q after the rollback, want 3", got)
	}

	// Doctor: the digests the alias and the retained releases need are in ECR, until a lifecycle
	// policy could expire them (tagStatus any ignores tags) or one is deleted.
	if code, out, errs := f.aviary("doctor", "-e", "production"); code != 0 || strings.Contains(out, "image") {
		t.Fatalf("doctor before any policy: exit %d\n%s\n%s", code, out, errs)
	}
	policy := `{"rules":[{"rulePriority":1,"description":"keep one","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	if _, err := reg.ecr.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("shop/img"), LifecyclePolicyText: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = f.aviary("doctor", "-e", "production")
	want := "image-lifecycle " + reg.host + "/shop/img rule 1: " + reg.host + "/shop/img@sha256:" + second + ", which shop-img-prod:"
	if code != cli.ExitNotReady || !strings.Contains(out, want) || !strings.Contains(out, "imageCountMoreThan 1) expires it") || !strings.Contains(out, "Fix: keep the digests") {
		t.Fatalf("doctor with a count policy: exit %d, want %d and %q\n%s\n%s", code, cli.ExitNotReady, want, out, errs)
	}
	if _, err := reg.ecr.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: aws.String("shop/img")}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.ecr.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("shop/img"),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String("sha256:" + first)}}}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = f.aviary("doctor", "-e", "production")
	if code != cli.ExitNotReady || !strings.Contains(out, "shop/img@sha256:"+first+" is no longer in ECR") {
		t.Fatalf("doctor with a needed digest deleted: exit %d\n%s\n%s", code, out, errs)
	}
	// gc manages the artifact bucket: image versions neither stop it nor are touched by it.
	if code, out, errs := f.aviary("gc", "-e", "production", "--grace", "0s"); code != 0 {
		t.Fatalf("gc: exit %d\n%s\n%s", code, out, errs)
	}

	// iam-policy allows every ECR call Aviary made in this run.
	code, out, errs = f.aviary("iam-policy", "-e", "production")
	if code != 0 {
		t.Fatalf("iam-policy: %s", errs)
	}
	var p iampolicy.Policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, req := range f.srv.Requests() {
		if req.Service != "ecr" || !strings.Contains(req.UserAgent, "app/aviary") {
			continue
		}
		action := iampolicy.Action(req.Service, req.Operation)
		seen[action] = true
		if resource := "arn:aws:ecr:us-east-1:000000000000:repository/" + req.Resource; !p.Allows(action, resource) {
			t.Errorf("the policy does not allow %s on %s", action, resource)
		}
	}
	for _, a := range []string{"ecr:DescribeImages", "ecr:GetLifecyclePolicy"} {
		if !seen[a] {
			t.Errorf("the run never called %s (saw %v)", a, seen)
		}
	}

	// Bad input changes nothing and names the function and field: a tag that does not exist,
	// a repository that does not exist, an image for a Zip function.
	reg.pushIndex("shop/img", "multi", built.bootstrap)
	good, _ := os.ReadFile(filepath.Join(f.dir, "aviary.yaml"))
	for _, tc := range []struct{ name, from, to, want string }{
		{"missing tag", "image: shop/img:v1", "image: shop/img:v9", "functions.img.image: shop/img:v9: ECR repository shop/img has no image v9"},
		{"missing repository", "image: shop/img:v1", "image: shop/nope:v1", "functions.img.image: shop/nope:v1: the ECR repository shop/nope does not exist"},
		{"a multi-platform index", "image: shop/img:v1", "image: shop/img:multi", "is a multi-platform image index (application/vnd.oci.image.index.v1+json), and Lambda runs only single-platform images"},
		{"image for a zip function", "dir: functions/fn00", "image: shop/img:v1", "functions.fn00.image: function shop-fn00-prod is a Zip function"},
		{"zip for an image function", "image: shop/img:v1", "dir: functions/fn00", "functions.img: function shop-img-prod is an Image function"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(f.dir, "aviary.yaml"), []byte(strings.Replace(string(good), tc.from, tc.to, 1)), 0o644)
			defer os.WriteFile(filepath.Join(f.dir, "aviary.yaml"), good, 0o644)
			f.srv.ResetRequests()
			code, _, errs := f.aviary("deploy", "-e", "production")
			if code != cli.ExitBadInput || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "nothing was changed") {
				t.Errorf("exit %d, want %d with %q; stderr:\n%s", code, cli.ExitBadInput, tc.want, errs)
			}
			if w := writes(f.srv.Requests()); len(w) != 0 {
				t.Errorf("writes for bad input: %v", w)
			}
		})
	}
}
