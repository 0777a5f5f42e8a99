package lambdafleet_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
)

// typedECR answers each tag's image with a manifest media type.
type typedECR struct {
	fakeECR
	mediaTypes map[string]string // tag → media type
}

func (e *typedECR) DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, o ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	out, err := e.fakeECR.DescribeImages(ctx, in, o...)
	if err == nil {
		out.ImageDetails[0].ImageManifestMediaType = aws.String(e.mediaTypes[aws.ToString(in.ImageIds[0].ImageTag)])
	}
	return out, err
}

// TestResolveImageRefusesIndexes: Lambda runs single-platform images only, so a tag naming a
// multi-platform index (docker buildx's default push) is bad input at plan time, saying why and
// what to push instead, rather than a release that fails at UpdateFunctionCode.
func TestResolveImageRefusesIndexes(t *testing.T) {
	d := "sha256:" + strings.Repeat("d", 64)
	f := &lambdafleet.Fleet{ECR: &typedECR{fakeECR: fakeECR{repo: "shop/web", tags: map[string]string{"oci": d, "docker": d, "single": d}},
		mediaTypes: map[string]string{
			"oci":    "application/vnd.oci.image.index.v1+json",
			"docker": "application/vnd.docker.distribution.manifest.list.v2+json",
			"single": "application/vnd.oci.image.manifest.v1+json",
		}}}
	for _, tag := range []string{"oci", "docker"} {
		img, _ := manifest.ParseImage("shop/web:" + tag)
		_, err := f.ResolveImage(context.Background(), img)
		var nf *lambdafleet.ImageNotFoundError
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), "multi-platform image index") || !strings.Contains(err.Error(), "--provenance=false") {
			t.Errorf("%s: %v, want an *ImageNotFoundError saying it is an index", tag, err)
		}
	}
	img, _ := manifest.ParseImage("shop/web:single")
	if _, err := f.ResolveImage(context.Background(), img); err != nil {
		t.Errorf("a single-platform image: %v", err)
	}
}
