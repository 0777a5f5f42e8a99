package inventory

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func TestQualifiedARN(t *testing.T) {
	for _, c := range []struct {
		arn, name, q string
		ok           bool
	}{
		{"arn:aws:lambda:us-east-1:123456789012:function:edge:7", "edge", "7", true},
		{"arn:aws:lambda:us-east-1:123456789012:function:api:live", "api", "live", true},
		{"arn:aws:lambda:us-east-1:123456789012:function:api", "api", "", true},
		{"arn:aws-cn:lambda:cn-north-1:123456789012:function:api:3", "api", "3", true},
		{"arn:aws:sqs:us-east-1:123456789012:queue", "", "", false},
		{"api:3", "", "", false},
	} {
		name, q, ok := QualifiedARN(c.arn)
		if name != c.name || q != c.q || ok != c.ok {
			t.Errorf("QualifiedARN(%s) = %q %q %v, want %q %q %v", c.arn, name, q, ok, c.name, c.q, c.ok)
		}
	}
}

// consumers is a hand-written fake of ConsumerAPI: pages of mappings, and per function pages of
// provisioned-concurrency configurations.
type consumers struct {
	esm   [][]lambdatypes.EventSourceMappingConfiguration
	pc    map[string][][]lambdatypes.ProvisionedConcurrencyConfigListItem
	calls int
}

func page(marker *string) int {
	if marker == nil {
		return 0
	}
	n := 0
	for _, c := range *marker {
		n = n*10 + int(c-'0')
	}
	return n
}

func next(i, n int) *string {
	if i+1 >= n {
		return nil
	}
	return aws.String(string(rune('0' + i + 1)))
}

func (c *consumers) ListEventSourceMappings(_ context.Context, in *lambda.ListEventSourceMappingsInput, _ ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error) {
	c.calls++
	if in.FunctionName != nil {
		return nil, errors.New("prune lists every mapping, unfiltered")
	}
	i := page(in.Marker)
	return &lambda.ListEventSourceMappingsOutput{EventSourceMappings: c.esm[i], NextMarker: next(i, len(c.esm))}, nil
}

func (c *consumers) ListProvisionedConcurrencyConfigs(_ context.Context, in *lambda.ListProvisionedConcurrencyConfigsInput, _ ...func(*lambda.Options)) (*lambda.ListProvisionedConcurrencyConfigsOutput, error) {
	pages, ok := c.pc[aws.ToString(in.FunctionName)]
	if !ok {
		return nil, &lambdatypes.ResourceNotFoundException{Message: aws.String("Function not found")}
	}
	i := page(in.Marker)
	return &lambda.ListProvisionedConcurrencyConfigsOutput{ProvisionedConcurrencyConfigs: pages[i], NextMarker: next(i, len(pages))}, nil
}

func esm(uuid, arn string) lambdatypes.EventSourceMappingConfiguration {
	return lambdatypes.EventSourceMappingConfiguration{UUID: aws.String(uuid), FunctionArn: aws.String(arn)}
}

const fnARN = "arn:aws:lambda:eu-west-1:123456789012:function:"

func TestReadEventSourceMappingsEveryPageOnce(t *testing.T) {
	c := &consumers{esm: [][]lambdatypes.EventSourceMappingConfiguration{
		{esm("a", fnARN+"api:3"), esm("b", fnARN+"api:live"), esm("c", fnARN+"api")},
		{esm("d", fnARN+"orders:9"), esm("e", fnARN+"someone-else:3")},
	}}
	got, err := ReadEventSourceMappings(t.Context(), c, []string{"api", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if c.calls != 2 {
		t.Errorf("%d calls, want 2 (one a page)", c.calls)
	}
	if n := got["api"]["3"]; len(n) != 1 || n[0].By != "a" {
		t.Errorf("api:3 needs %v", n)
	}
	if n := got["orders"]["9"]; len(n) != 1 || n[0].By != "d" {
		t.Errorf("orders:9 (second page) needs %v", n)
	}
	if len(got["api"]) != 1 || got["someone-else"] != nil {
		t.Errorf("needs %v: an alias's or the unqualified function's mapping names no version, another function's is not ours", got)
	}
}

func TestReadProvisioned(t *testing.T) {
	item := func(arn string) lambdatypes.ProvisionedConcurrencyConfigListItem {
		return lambdatypes.ProvisionedConcurrencyConfigListItem{FunctionArn: aws.String(arn), RequestedProvisionedConcurrentExecutions: aws.Int32(5)}
	}
	c := &consumers{pc: map[string][][]lambdatypes.ProvisionedConcurrencyConfigListItem{
		"api": {{item(fnARN + "api:4"), item(fnARN + "api:live")}, {item(fnARN + "api:12")}},
	}}
	got, err := ReadProvisioned(t.Context(), c, "api")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["4"] == nil || got["12"] == nil {
		t.Errorf("needs %v, want versions 4 and 12 (the second page)", got)
	}
	if got, err := ReadProvisioned(t.Context(), c, "missing"); err != nil || len(got) != 0 {
		t.Errorf("a missing function: %v, %v", got, err)
	}
}

// distributions is a hand-written fake of CloudFrontAPI.
type distributions struct {
	pages   [][]string // ids, a page each
	configs map[string]*cftypes.DistributionConfig
	gets    int
}

func (d *distributions) ListDistributions(_ context.Context, in *cloudfront.ListDistributionsInput, _ ...func(*cloudfront.Options)) (*cloudfront.ListDistributionsOutput, error) {
	i := page(in.Marker)
	var items []cftypes.DistributionSummary
	for _, id := range d.pages[i] {
		items = append(items, cftypes.DistributionSummary{Id: aws.String(id)})
	}
	n := next(i, len(d.pages))
	return &cloudfront.ListDistributionsOutput{DistributionList: &cftypes.DistributionList{Items: items, IsTruncated: aws.Bool(n != nil), NextMarker: n}}, nil
}

func (d *distributions) GetDistributionConfig(_ context.Context, in *cloudfront.GetDistributionConfigInput, _ ...func(*cloudfront.Options)) (*cloudfront.GetDistributionConfigOutput, error) {
	d.gets++
	cfg, ok := d.configs[aws.ToString(in.Id)]
	if !ok {
		return nil, &cftypes.NoSuchDistribution{Message: aws.String("The specified distribution does not exist.")}
	}
	return &cloudfront.GetDistributionConfigOutput{DistributionConfig: cfg}, nil
}

func assocs(arns ...string) *cftypes.LambdaFunctionAssociations {
	out := &cftypes.LambdaFunctionAssociations{Quantity: aws.Int32(int32(len(arns)))}
	for _, a := range arns {
		out.Items = append(out.Items, cftypes.LambdaFunctionAssociation{LambdaFunctionARN: aws.String(a), EventType: cftypes.EventTypeOriginRequest})
	}
	return out
}

// TestReadCloudFrontEveryBehaviorEveryPage: associations in the default cache behavior and in
// every other one, of distributions on every page, are found; a distribution deleted between
// the list and its read names nothing.
func TestReadCloudFrontEveryBehaviorEveryPage(t *testing.T) {
	edge := "arn:aws:lambda:us-east-1:123456789012:function:edge:"
	d := &distributions{
		pages: [][]string{{"E1", "EGONE"}, {"E2"}},
		configs: map[string]*cftypes.DistributionConfig{
			"E1": {DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{LambdaFunctionAssociations: assocs(edge + "3")}},
			"E2": {DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{},
				CacheBehaviors: &cftypes.CacheBehaviors{Items: []cftypes.CacheBehavior{
					{LambdaFunctionAssociations: assocs()},
					{LambdaFunctionAssociations: assocs(edge+"5", edge+"3")},
				}}},
		},
	}
	got, err := ReadCloudFront(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	if n := got["edge"]["3"]; len(n) != 2 || n[0].By != "E1 origin-request" || n[1].By != "E2 origin-request" {
		t.Errorf("edge:3 needs %v", n)
	}
	if n := got["edge"]["5"]; len(n) != 1 {
		t.Errorf("edge:5 (a cache behavior of the second page) needs %v", n)
	}
	if d.gets != 3 {
		t.Errorf("%d configurations read, want 3 (one per distribution)", d.gets)
	}
}
