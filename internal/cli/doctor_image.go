package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/retention"
)

var ecrRegistryRE = regexp.MustCompile(`^(\d{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$`)

// imageRepo is a repository's images and lifecycle policy, read once.
type imageRepo struct {
	images map[string]retention.RepoImage
	all    []retention.RepoImage
	policy string // "" is none
}

// checkImages is doctor's check of image functions: the digest each needed image version runs
// (its ResolvedImageUri) is still in ECR (DescribeImages), and no lifecycle policy of its
// repository can expire it (GetLifecyclePolicy, read as retention.ImageRisks says).
func checkImages(ctx context.Context, fns codeAPI, repos lambdafleet.ECRAPI, needed []retention.NeededImage, now time.Time, add func(finding)) error {
	read := map[string]*imageRepo{}
	for _, n := range needed {
		subject := n.Function + ":" + n.Version
		gf, err := fns.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(n.Function), Qualifier: aws.String(n.Version)})
		if err != nil {
			return fmt.Errorf("read %s: %w", subject, err)
		}
		uri := ""
		if gf.Code != nil {
			uri = aws.ToString(gf.Code.ResolvedImageUri)
		}
		host, rest, _ := strings.Cut(uri, "/")
		repo, digest, ok := strings.Cut(rest, "@")
		if !ok || digest != n.Digest {
			add(finding{Severity: retention.Warning, Check: "image", Subject: subject, Message: fmt.Sprintf("Lambda reports its image as %q, not a digest of %s: not checked", uri, n.Digest)})
			continue
		}
		var registry *string
		if m := ecrRegistryRE.FindStringSubmatch(host); m != nil {
			registry = aws.String(m[1])
		}
		key := host + "/" + repo
		r := read[key]
		if r == nil {
			if r, err = readImageRepo(ctx, repos, registry, repo); err != nil {
				return err
			}
			read[key] = r
		}
		if r == nil {
			add(finding{Severity: retention.Blocking, Check: "image", Subject: subject,
				Message: fmt.Sprintf("its ECR repository %s no longer exists, but %s needs %s: a rollback to it cannot run", repo, needsText(n.Needs), digest),
				Fix:     "push the image again to " + key + " (the same build gives the same digest), or move what needs it to another version"})
			continue
		}
		img, ok := r.images[digest]
		if !ok {
			add(finding{Severity: retention.Blocking, Check: "image", Subject: subject,
				Message: fmt.Sprintf("its image %s@%s is no longer in ECR, but %s needs it: Lambda cannot run that version any more", key, digest, needsText(n.Needs)),
				Fix:     "push the same image again (the same build gives the same digest), or move what needs it to another version"})
			continue
		}
		if r.policy == "" {
			continue
		}
		p, err := retention.ParseImagePolicy(r.policy)
		if err != nil {
			add(finding{Severity: retention.Warning, Check: "image-lifecycle", Subject: key, Message: err.Error()})
			continue
		}
		for _, risk := range retention.ImageRisks(p, r.all, img, now) {
			add(finding{Severity: risk.Severity, Check: "image-lifecycle", Subject: fmt.Sprintf("%s rule %d", key, risk.Rule),
				Message: fmt.Sprintf("%s@%s, which %s needs (%s): %s", key, digest, subject, needsText(n.Needs), risk.Does), Fix: risk.Fix})
		}
	}
	return nil
}

// readImageRepo reads a repository's images and lifecycle policy; nil when it does not exist.
func readImageRepo(ctx context.Context, api lambdafleet.ECRAPI, registry *string, repo string) (*imageRepo, error) {
	r := &imageRepo{images: map[string]retention.RepoImage{}}
	var token *string
	for {
		out, err := api.DescribeImages(ctx, &ecr.DescribeImagesInput{RegistryId: registry, RepositoryName: aws.String(repo), NextToken: token})
		var nf *ecrtypes.RepositoryNotFoundException
		if errors.As(err, &nf) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the images of %s: %w", repo, err)
		}
		for _, d := range out.ImageDetails {
			im := retention.RepoImage{Digest: aws.ToString(d.ImageDigest), Tags: d.ImageTags, PushedAt: aws.ToTime(d.ImagePushedAt)}
			sort.Strings(im.Tags)
			r.images[im.Digest] = im
			r.all = append(r.all, im)
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	lp, err := api.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RegistryId: registry, RepositoryName: aws.String(repo)})
	var none *ecrtypes.LifecyclePolicyNotFoundException
	switch {
	case errors.As(err, &none):
	case err != nil:
		return nil, fmt.Errorf("read the lifecycle policy of %s: %w", repo, err)
	default:
		r.policy = aws.ToString(lp.LifecyclePolicyText)
	}
	return r, nil
}
