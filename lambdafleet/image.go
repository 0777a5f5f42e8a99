package lambdafleet

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/internal/textsafe"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// ECRAPI is the part of *ecr.Client image functions use: a plan resolves a tag to its digest
// through the ECR API (ecr:DescribeRepositories, ecr:DescribeImages), so the rights it needs are
// plain IAM actions, and doctor checks that the digests releases need are still there
// (ecr:BatchGetImage) and that no lifecycle policy can expire them (ecr:GetLifecyclePolicy).
type ECRAPI interface {
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	BatchGetImage(context.Context, *ecr.BatchGetImageInput, ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error)
	GetLifecyclePolicy(context.Context, *ecr.GetLifecyclePolicyInput, ...func(*ecr.Options)) (*ecr.GetLifecyclePolicyOutput, error)
}

var _ ECRAPI = (*ecr.Client)(nil)

// ImageNotFoundError is an image a manifest names that ECR does not have, or has in a form Lambda
// cannot run (a multi-platform index): bad input either way.
type ImageNotFoundError struct {
	Image  string
	Reason string
}

func (e *ImageNotFoundError) Error() string { return fmt.Sprintf("%s: %s", e.Image, e.Reason) }

// ResolvedImage is an image pinned to its digest.
type ResolvedImage struct {
	// URI is REPOSITORY_URI@sha256:..., the repository's URI as ECR reports it.
	URI    string
	Digest string // sha256:<hex>
}

// CodeSha256 is what Lambda reports as an image function's CodeSha256: the digest's hex.
func (r ResolvedImage) CodeSha256() string { return strings.TrimPrefix(r.Digest, "sha256:") }

var ecrHostRE = regexp.MustCompile(`^(\d{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$`)

// ResolveImage pins an image to the digest its tag names now (a digest is checked to exist),
// through ECR's API. An image, repository or tag that does not exist is an *ImageNotFoundError.
func (f *Fleet) ResolveImage(ctx context.Context, img manifest.Image) (ResolvedImage, error) {
	if f.ECR == nil {
		return ResolvedImage{}, errors.New("no ECR client")
	}
	var registryID *string
	if m := ecrHostRE.FindStringSubmatch(img.Registry); m != nil {
		registryID = aws.String(m[1])
	}
	repos, err := f.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RegistryId: registryID, RepositoryNames: []string{img.Repository}})
	var rnf *ecrtypes.RepositoryNotFoundException
	if errors.As(err, &rnf) {
		return ResolvedImage{}, &ImageNotFoundError{Image: img.Raw, Reason: fmt.Sprintf("the ECR repository %s does not exist", img.Repository)}
	}
	if err != nil {
		return ResolvedImage{}, fmt.Errorf("read the ECR repository %s: %w", img.Repository, err)
	}
	if len(repos.Repositories) != 1 {
		return ResolvedImage{}, fmt.Errorf("ECR answered %d repositories for %s", len(repos.Repositories), img.Repository)
	}
	uri := aws.ToString(repos.Repositories[0].RepositoryUri)
	if host, _, _ := strings.Cut(uri, "/"); img.Registry != "" && registryID == nil && host != img.Registry {
		return ResolvedImage{}, &ImageNotFoundError{Image: img.Raw, Reason: fmt.Sprintf("Lambda runs images from ECR; %s is not this account's registry (%s)", img.Registry, host)}
	}
	id := ecrtypes.ImageIdentifier{}
	if img.Digest != "" {
		id.ImageDigest = aws.String(img.Digest)
	} else {
		id.ImageTag = aws.String(img.Tag)
	}
	out, err := f.ECR.DescribeImages(ctx, &ecr.DescribeImagesInput{RegistryId: registryID, RepositoryName: aws.String(img.Repository), ImageIds: []ecrtypes.ImageIdentifier{id}})
	var inf *ecrtypes.ImageNotFoundException
	if errors.As(err, &inf) {
		return ResolvedImage{}, &ImageNotFoundError{Image: img.Raw, Reason: fmt.Sprintf("ECR repository %s has no image %s", img.Repository, strings.TrimLeft(img.Ref(), ":@"))}
	}
	if err != nil {
		return ResolvedImage{}, fmt.Errorf("resolve %s: %w", img.Raw, err)
	}
	if len(out.ImageDetails) != 1 {
		return ResolvedImage{}, fmt.Errorf("ECR answered %d images for %s", len(out.ImageDetails), img.Raw)
	}
	d := aws.ToString(out.ImageDetails[0].ImageDigest)
	if mt := aws.ToString(out.ImageDetails[0].ImageManifestMediaType); indexMediaTypes[mt] {
		// Lambda refuses an index at UpdateFunctionCode ("media type ... is not supported"):
		// said here, the release is bad input before anything changes.
		return ResolvedImage{}, &ImageNotFoundError{Image: img.Raw, Reason: fmt.Sprintf("%s is a multi-platform image index (%s), and Lambda runs only single-platform images: "+
			"push the image for the function's architecture alone (docker buildx build --platform linux/amd64 or linux/arm64 --provenance=false), or name that image's digest", d, mt)}
	}
	return ResolvedImage{URI: uri + "@" + d, Digest: d}, nil
}

// indexMediaTypes are the media types of multi-platform image indexes, which Lambda does not run.
var indexMediaTypes = map[string]bool{
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
}

// publishImage is Publish for an image function: UpdateFunctionCode{ImageUri} pinned to the
// release's digest, conditional on the RevisionId the plan saw, and published in the same call.
// The rules are Publish's: code already there (CodeSha256 is the digest's hex) is published
// without a write; a failed precondition is told apart from this very call's lost answer.
func (f *Fleet) publishImage(ctx context.Context, fn release.Function) (string, error) {
	gf, err := f.settled(ctx, fn.FunctionName)
	if err != nil {
		return "", err
	}
	if pt := gf.Configuration.PackageType; pt != "" && pt != lambdatypes.PackageTypeImage {
		return "", fmt.Errorf("%s is a %s function: Lambda cannot change a function's package type, so an image cannot be deployed to it", fn.FunctionName, pt)
	}
	if aws.ToString(gf.Configuration.CodeSha256) == fn.CodeSha256 {
		return f.publishLatest(ctx, fn)
	}
	in := &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn.FunctionName), ImageUri: aws.String(fn.ImageUri), Publish: true}
	if fn.BaseRevision != "" {
		in.RevisionId = aws.String(fn.BaseRevision)
	} else {
		if got := aws.ToString(gf.Configuration.CodeSha256); got != fn.BaseCodeSha256 {
			return "", fmt.Errorf("%s was changed by someone else since the plan (its code is no longer %s): plan and deploy again", fn.FunctionName, fn.BaseCodeSha256)
		}
		f.log().Warn("Lambda reported no RevisionId for this function, so its code update cannot be conditional: updating it unconditionally, its code checked unchanged since the plan just before",
			"function", textsafe.Clean(fn.FunctionName), "code_sha256", fn.BaseCodeSha256)
	}
	up, err := f.Lambda.UpdateFunctionCode(ctx, in)
	if err != nil {
		var pf *lambdatypes.PreconditionFailedException
		if !errors.As(err, &pf) {
			return "", fmt.Errorf("update code to %s: %w", fn.ImageUri, err)
		}
		gf, gerr := f.settled(ctx, fn.FunctionName)
		if gerr == nil && aws.ToString(gf.Configuration.CodeSha256) == fn.CodeSha256 {
			return f.publishLatest(ctx, fn)
		}
		return "", fmt.Errorf("%s was changed by someone else since the plan (its RevisionId is no longer %s): plan and deploy again", fn.FunctionName, fn.BaseRevision)
	}
	if got := aws.ToString(up.CodeSha256); got != fn.CodeSha256 {
		return "", fmt.Errorf("Lambda reports CodeSha256 %s for %s, want %s", got, fn.ImageUri, fn.CodeSha256)
	}
	if _, err := f.settled(ctx, fn.FunctionName); err != nil {
		return "", err
	}
	if v := aws.ToString(up.Version); v != "" && v != "$LATEST" {
		return v, nil
	}
	return f.publishLatest(ctx, fn)
}
