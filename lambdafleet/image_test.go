package lambdafleet_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// fakeECR knows one repository and its tags.
type fakeECR struct {
	lambdafleet.ECRAPI
	repo string
	tags map[string]string // tag → digest
}

func (e *fakeECR) DescribeRepositories(_ context.Context, in *ecr.DescribeRepositoriesInput, _ ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error) {
	if in.RepositoryNames[0] != e.repo {
		return nil, &ecrtypes.RepositoryNotFoundException{Message: aws.String("no")}
	}
	return &ecr.DescribeRepositoriesOutput{Repositories: []ecrtypes.Repository{{RepositoryUri: aws.String("123456789012.dkr.ecr.eu-west-1.amazonaws.com/" + e.repo)}}}, nil
}

func (e *fakeECR) DescribeImages(_ context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	d, ok := e.tags[aws.ToString(in.ImageIds[0].ImageTag)]
	if !ok {
		return nil, &ecrtypes.ImageNotFoundException{Message: aws.String("no")}
	}
	return &ecr.DescribeImagesOutput{ImageDetails: []ecrtypes.ImageDetail{{ImageDigest: aws.String(d)}}}, nil
}

func TestResolveImage(t *testing.T) {
	digest := "sha256:" + strings.Repeat("c", 64)
	f := &lambdafleet.Fleet{ECR: &fakeECR{repo: "shop/web", tags: map[string]string{"v1": digest}}}
	img, _ := manifest.ParseImage("shop/web:v1")
	r, err := f.ResolveImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.URI, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web@"+digest; got != want {
		t.Errorf("URI = %s, want %s", got, want)
	}
	if got, want := r.CodeSha256(), strings.Repeat("c", 64); got != want {
		t.Errorf("CodeSha256 = %s, want %s", got, want)
	}
	for ref, want := range map[string]string{"shop/web:v9": "has no image v9", "shop/nope:v1": "repository shop/nope does not exist"} {
		img, _ := manifest.ParseImage(ref)
		_, err := f.ResolveImage(context.Background(), img)
		var nf *lambdafleet.ImageNotFoundError
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), want) {
			t.Errorf("ResolveImage(%s) = %v, want an ImageNotFoundError saying %q", ref, err, want)
		}
	}
}

// imageLambda is an Image function whose $LATEST runs digest sha.
type imageLambda struct {
	lambdafleet.LambdaAPI
	sha       string
	updates   []*lambda.UpdateFunctionCodeInput
	published int
}

func (l *imageLambda) GetFunction(_ context.Context, in *lambda.GetFunctionInput, _ ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	return &lambda.GetFunctionOutput{Configuration: &lambdatypes.FunctionConfiguration{FunctionName: in.FunctionName, CodeSha256: aws.String(l.sha),
		PackageType: lambdatypes.PackageTypeImage, RevisionId: aws.String("rev-" + l.sha), State: lambdatypes.StateActive, LastUpdateStatus: lambdatypes.LastUpdateStatusSuccessful}}, nil
}

func (l *imageLambda) UpdateFunctionCode(_ context.Context, in *lambda.UpdateFunctionCodeInput, _ ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error) {
	l.updates = append(l.updates, in)
	if aws.ToString(in.RevisionId) != "rev-"+l.sha {
		return nil, &lambdatypes.PreconditionFailedException{Message: aws.String("stale")}
	}
	_, d, _ := strings.Cut(aws.ToString(in.ImageUri), "@sha256:")
	l.sha = d
	return &lambda.UpdateFunctionCodeOutput{CodeSha256: aws.String(d), Version: aws.String("8")}, nil
}

func (l *imageLambda) PublishVersion(context.Context, *lambda.PublishVersionInput, ...func(*lambda.Options)) (*lambda.PublishVersionOutput, error) {
	l.published++
	return &lambda.PublishVersionOutput{Version: aws.String("5")}, nil
}

// An image release sends UpdateFunctionCode{ImageUri} conditional on the planned RevisionId; a
// function already running the digest is published with no write; a function someone changed is
// refused.
func TestPublishImage(t *testing.T) {
	oldSha, newSha := strings.Repeat("a", 64), strings.Repeat("b", 64)
	fn := release.Function{FunctionName: "shop-web-prod", ImageUri: "r/shop/web@sha256:" + newSha, CodeSha256: newSha, BaseRevision: "rev-" + oldSha, BaseCodeSha256: oldSha}

	l := &imageLambda{sha: oldSha}
	v, err := (&lambdafleet.Fleet{Lambda: l}).Publish(context.Background(), release.Artifacts{}, fn)
	if err != nil || v != "8" {
		t.Fatalf("Publish = %s, %v", v, err)
	}
	if len(l.updates) != 1 || aws.ToString(l.updates[0].ImageUri) != fn.ImageUri || l.updates[0].S3Key != nil || !l.updates[0].Publish {
		t.Fatalf("updates %+v", l.updates)
	}

	same := &imageLambda{sha: newSha}
	if v, err := (&lambdafleet.Fleet{Lambda: same}).Publish(context.Background(), release.Artifacts{}, fn); err != nil || v != "5" || len(same.updates) != 0 || same.published != 1 {
		t.Errorf("an unchanged digest: Publish = %s, %v; %d updates, %d publishes", v, err, len(same.updates), same.published)
	}

	moved := &imageLambda{sha: strings.Repeat("d", 64)}
	if _, err := (&lambdafleet.Fleet{Lambda: moved}).Publish(context.Background(), release.Artifacts{}, fn); err == nil || !strings.Contains(err.Error(), "changed by someone else") {
		t.Errorf("a function changed since the plan: %v", err)
	}
}
