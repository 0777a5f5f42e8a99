package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// uploadFleet records the keys a hand-off uploads; an empty key is what S3 refuses.
type uploadFleet struct {
	release.Fleet
	keys []string
}

func (f *uploadFleet) Upload(_ context.Context, _ release.Artifacts, key string, _ release.ArtifactSource) error {
	if key == "" {
		return errors.New("input member Key must not be empty")
	}
	f.keys = append(f.keys, key)
	return nil
}

// TestUploadAllSkipsImages: a release handed to the controller (deploy --detach, a cancelled
// deploy) uploads the zips its functions ship; an image function's code is in ECR, so it has no
// artifact to upload, and a fleet mixing both hands over.
func TestUploadAllSkipsImages(t *testing.T) {
	fl := &uploadFleet{}
	fns := []release.Function{
		{Name: "api", ArtifactKey: "releases/shop/a.zip", CodeSha256: "a"},
		{Name: "img", ImageUri: "000000000000.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:" + "ab", CodeSha256: "ab"},
		{Name: "worker", ArtifactKey: "releases/shop/a.zip", CodeSha256: "a"},
	}
	if err := uploadAll(context.Background(), fl, release.Artifacts{Bucket: "b"}, fns, nil); err != nil {
		t.Fatalf("uploadAll: %v", err)
	}
	if got, want := len(fl.keys), 1; got != want || fl.keys[0] != "releases/shop/a.zip" {
		t.Errorf("uploaded %q, want the one zip", fl.keys)
	}
}

// TestOutputsNameTheImage: plan -o json, the Markdown plan and status/history -o json say which
// image (pinned to its digest) an image function ships, not only the digest's hex.
func TestOutputsNameTheImage(t *testing.T) {
	const uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/img@sha256:d1e2"
	p := samplePlan()
	p.rows = append(p.rows, release.PlanRow{
		Target:  release.Target{Name: "img", FunctionName: "shop-img-prod", CodeSha256: "d1e2", ImageUri: uri},
		Current: release.Current{Exists: true, AliasExists: true, AliasVersion: "4", AliasCodeSha256: "c3b4", PackageType: "Image"}, Change: true,
	})
	var b bytes.Buffer
	if err := writeJSON(&b, planOf(p)); err != nil {
		t.Fatal(err)
	}
	var plan struct {
		Functions []map[string]any `json:"functions"`
	}
	if err := json.Unmarshal(b.Bytes(), &plan); err != nil {
		t.Fatal(err)
	}
	if got := plan.Functions[2]["image"]; got != uri {
		t.Errorf("plan -o json: the image function's image is %v, want %s\n%s", got, uri, b.String())
	}
	if _, ok := plan.Functions[0]["image"]; ok {
		t.Errorf("plan -o json: a zip function has an image:\n%s", b.String())
	}
	b.Reset()
	markdownPlan(&b, p)
	if !strings.Contains(b.String(), uri) {
		t.Errorf("the Markdown plan does not name the image:\n%s", b.String())
	}
	r := sample()
	r.Functions = append(r.Functions, release.Function{Name: "img", FunctionName: "shop-img-prod", CodeSha256: "d1e2", ImageUri: uri})
	b.Reset()
	if err := writeJSON(&b, statusOf(r, nil, nil, t0)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"image": "`+uri+`"`) {
		t.Errorf("status -o json does not name the image:\n%s", b.String())
	}
}

// TestShippingRights: the rights to publish an environment's image and configured functions,
// which the controller's role needs as CI's does.
func TestShippingRights(t *testing.T) {
	img, _ := manifest.ParseImage("shop/img:v1")
	env := &manifest.Environment{Name: "production"}
	m := &manifest.Manifest{Service: "shop", Functions: []manifest.Function{
		{Name: "img", Image: &img},
		{Name: "api", Configuration: &manifest.Configuration{Environment: map[string]string{"DB": "{{ssm:/shop/db}}"}}},
		{Name: "worker"},
	}}
	repos, cfg := shippingRights(m, env)
	if len(repos) != 1 || repos[0] != "shop/img" || cfg == nil || len(cfg.Functions) != 1 || len(cfg.Parameters) != 1 || cfg.Parameters[0] != "/shop/db" {
		t.Errorf("shippingRights = %v, %+v", repos, cfg)
	}
}
