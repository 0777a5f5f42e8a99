package inventory

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// ConsumerAPI is the part of *lambda.Client that finds what else invokes a function's versions.
type ConsumerAPI interface {
	ListEventSourceMappings(context.Context, *lambda.ListEventSourceMappingsInput, ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error)
	ListProvisionedConcurrencyConfigs(context.Context, *lambda.ListProvisionedConcurrencyConfigsInput, ...func(*lambda.Options)) (*lambda.ListProvisionedConcurrencyConfigsOutput, error)
}

// CloudFrontAPI is the part of *cloudfront.Client that finds Lambda@Edge associations.
type CloudFrontAPI interface {
	ListDistributions(context.Context, *cloudfront.ListDistributionsInput, ...func(*cloudfront.Options)) (*cloudfront.ListDistributionsOutput, error)
	GetDistributionConfig(context.Context, *cloudfront.GetDistributionConfigInput, ...func(*cloudfront.Options)) (*cloudfront.GetDistributionConfigOutput, error)
}

var (
	_ ConsumerAPI   = (*lambda.Client)(nil)
	_ CloudFrontAPI = (*cloudfront.Client)(nil)
)

// Kind is what needs a version (retention names the rest of the kinds).
type Kind string

// What else, besides aliases and releases, uses a version: CloudFront (Lambda@Edge), an event
// source mapping, a provisioned-concurrency configuration.
const (
	ByCloudFront  Kind = "cloudfront"
	ByEventSource Kind = "event-source-mapping"
	ByProvisioned Kind = "provisioned-concurrency"
)

// Need is one reason to keep a version or an artifact: what needs it, and which one (an alias's
// name, a release's id and role, a distribution's id, a mapping's UUID).
type Need struct {
	Kind Kind   `json:"kind"`
	By   string `json:"by"`
}

func (n Need) String() string {
	if n.By == "" {
		return string(n.Kind)
	}
	return string(n.Kind) + " " + n.By
}

// Needs is, per function name, the versions something names and why.
type Needs map[string]map[string][]Need

func (n Needs) add(fn, version string, need Need) {
	if n[fn] == nil {
		n[fn] = map[string][]Need{}
	}
	n[fn][version] = append(n[fn][version], need)
}

// QualifiedARN splits a Lambda function ARN (arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER])
// into the function's name and its qualifier ("" when unqualified). ok is false for anything else.
func QualifiedARN(arn string) (name, qualifier string, ok bool) {
	parts := strings.Split(arn, ":")
	if len(parts) < 7 || len(parts) > 8 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" {
		return "", "", false
	}
	if len(parts) == 8 {
		qualifier = parts[7]
	}
	return parts[6], qualifier, true
}

// isVersion says whether a qualifier is a published version (digits), not an alias or $LATEST.
func isVersion(q string) bool {
	if q == "" {
		return false
	}
	for _, c := range q {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ReadEventSourceMappings reads every event source mapping of the account and region, every page,
// once, and returns the versions they name among the functions wanted. It lists without the
// FunctionName filter: AWS documents that a version's or an alias's ARN lists that qualifier's
// mappings, not whether a plain name lists its versions' too, and reading them all is right
// whichever way it does. A mapping on an alias protects the alias, whose versions are kept as
// aliased already; one on the unqualified function invokes $LATEST.
func ReadEventSourceMappings(ctx context.Context, c ConsumerAPI, functions []string) (Needs, error) {
	wanted := map[string]bool{}
	for _, f := range functions {
		wanted[f] = true
	}
	out := Needs{}
	p := lambda.NewListEventSourceMappingsPaginator(c, &lambda.ListEventSourceMappingsInput{MaxItems: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the event source mappings: %w", err)
		}
		for _, m := range page.EventSourceMappings {
			name, q, ok := QualifiedARN(aws.ToString(m.FunctionArn))
			if ok && wanted[name] && isVersion(q) {
				out.add(name, q, Need{Kind: ByEventSource, By: aws.ToString(m.UUID)})
			}
		}
	}
	return out, nil
}

// ReadProvisioned reads a function's provisioned-concurrency configurations, every page, and
// returns the versions they name (an alias's configuration protects the alias). A function
// that does not exist has none.
func ReadProvisioned(ctx context.Context, c ConsumerAPI, function string) (map[string][]Need, error) {
	out := map[string][]Need{}
	p := lambda.NewListProvisionedConcurrencyConfigsPaginator(c, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String(function), MaxItems: aws.Int32(50)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			var nf *lambdatypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				return out, nil
			}
			return nil, fmt.Errorf("list the provisioned concurrency of %s: %w", function, err)
		}
		for _, pc := range page.ProvisionedConcurrencyConfigs {
			if _, q, ok := QualifiedARN(aws.ToString(pc.FunctionArn)); ok && isVersion(q) {
				out[q] = append(out[q], Need{Kind: ByProvisioned, By: fmt.Sprintf("%d requested", aws.ToInt32(pc.RequestedProvisionedConcurrentExecutions))})
			}
		}
	}
	return out, nil
}

// ReadCloudFront reads every distribution of the account (every page) and the configuration of
// each, once a run, and returns the function versions their Lambda@Edge associations name, in
// the default cache behavior and every other. Associations name a version by its qualified ARN
// (Lambda@Edge allows no alias nor $LATEST). Functions are matched by name: a function of the
// same name in another region is kept too, which is safe.
func ReadCloudFront(ctx context.Context, c CloudFrontAPI) (Needs, error) {
	out := Needs{}
	var ids []string
	p := cloudfront.NewListDistributionsPaginator(c, &cloudfront.ListDistributionsInput{MaxItems: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the CloudFront distributions: %w", err)
		}
		if page.DistributionList == nil {
			continue
		}
		for _, d := range page.DistributionList.Items {
			ids = append(ids, aws.ToString(d.Id))
		}
	}
	for _, id := range ids {
		cfg, err := c.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
		if err != nil {
			var gone *cftypes.NoSuchDistribution
			if errors.As(err, &gone) {
				continue // deleted since the list: it names nothing any more
			}
			return nil, fmt.Errorf("read the CloudFront distribution %s: %w", id, err)
		}
		for _, assoc := range associations(cfg.DistributionConfig) {
			if name, q, ok := QualifiedARN(aws.ToString(assoc.LambdaFunctionARN)); ok && isVersion(q) {
				out.add(name, q, Need{Kind: ByCloudFront, By: id + " " + string(assoc.EventType)})
			}
		}
	}
	return out, nil
}

// associations are the Lambda@Edge associations of every cache behavior of a distribution.
func associations(d *cftypes.DistributionConfig) []cftypes.LambdaFunctionAssociation {
	if d == nil {
		return nil
	}
	var out []cftypes.LambdaFunctionAssociation
	if b := d.DefaultCacheBehavior; b != nil && b.LambdaFunctionAssociations != nil {
		out = append(out, b.LambdaFunctionAssociations.Items...)
	}
	if d.CacheBehaviors != nil {
		for _, b := range d.CacheBehaviors.Items {
			if b.LambdaFunctionAssociations != nil {
				out = append(out, b.LambdaFunctionAssociations.Items...)
			}
		}
	}
	return out
}
