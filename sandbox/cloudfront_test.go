package sandbox_test

import (
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/sandbox"
)

// manualClock is a clock a test moves by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func newManualClock() *manualClock { return &manualClock{t: time.Now()} }

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// edgeOptions is a fast sandbox whose CloudFront runs by clock, with an hour of replication.
func edgeOptions(clock *manualClock) sandbox.Options {
	opts := fast
	opts.ReplicationDelay = time.Hour
	opts.CloudFrontClock = clock.now
	return opts
}

func (e *env) cloudfront() *cloudfront.Client {
	return cloudfront.NewFromConfig(e.cfg, func(o *cloudfront.Options) { o.Retryer = aws.NopRetryer{} })
}

// distConfig is a distribution in front of example.com whose default cache behavior runs the
// given Lambda@Edge versions.
func distConfig(ref string, enabled bool, arns ...string) *cftypes.DistributionConfig {
	var assocs []cftypes.LambdaFunctionAssociation
	for i, arn := range arns {
		events := []cftypes.EventType{cftypes.EventTypeViewerRequest, cftypes.EventTypeOriginRequest, cftypes.EventTypeOriginResponse, cftypes.EventTypeViewerResponse}
		assocs = append(assocs, cftypes.LambdaFunctionAssociation{LambdaFunctionARN: aws.String(arn), EventType: events[i%4], IncludeBody: aws.Bool(false)})
	}
	return &cftypes.DistributionConfig{
		CallerReference: aws.String(ref),
		Comment:         aws.String("aviary " + ref),
		Enabled:         aws.Bool(enabled),
		Origins: &cftypes.Origins{Quantity: aws.Int32(1), Items: []cftypes.Origin{{
			Id: aws.String("origin"), DomainName: aws.String("example.com"),
			CustomOriginConfig: &cftypes.CustomOriginConfig{HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly},
		}}},
		DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{
			TargetOriginId: aws.String("origin"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyRedirectToHttps,
			CachePolicyId:              aws.String("658327ea-f89d-4fab-a63d-7e88639e58f6"),
			LambdaFunctionAssociations: &cftypes.LambdaFunctionAssociations{Quantity: aws.Int32(int32(len(assocs))), Items: assocs},
		},
	}
}

// edgeFunction creates a function with versions 1 and 2 and returns its unqualified ARN.
func (e *env) edgeFunction(t *testing.T, name string) string {
	t.Helper()
	out := e.createFunction(t, name, zips.good, func(in *lambda.CreateFunctionInput) { in.Publish = true })
	e.updateCode(t, name, zips.bad)
	if v := e.publish(t, name); v != "2" {
		t.Fatalf("second version = %s, want 2", v)
	}
	return strings.TrimSuffix(aws.ToString(out.FunctionArn), ":1")
}

func replicatedMessage(arn string) string {
	return "Lambda was unable to delete " + arn + " because it is a replicated function. Please see our documentation for Deleting Lambda@Edge Functions and Replicas."
}

// wantReplicated asserts that DeleteFunction failed as AWS fails it for a replicated version.
func wantReplicated(t *testing.T, err error, arn string) {
	t.Helper()
	ipv := wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)
	if got, want := aws.ToString(ipv.Message), replicatedMessage(arn); got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
}

func TestCloudFrontEdgeLifecycle(t *testing.T) {
	clock := newManualClock()
	e := start(t, edgeOptions(clock))
	cf := e.cloudfront()
	fn := e.edgeFunction(t, "edge")
	v1 := fn + ":1"

	sent := distConfig("release-1", true, v1)
	created, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: sent})
	if err != nil {
		t.Fatalf("CreateDistribution: %v", err)
	}
	d := created.Distribution
	id := aws.ToString(d.Id)
	if !regexp.MustCompile(`^E[A-Z0-9]{13}$`).MatchString(id) || !regexp.MustCompile(`^d[a-z0-9]{13}\.cloudfront\.net$`).MatchString(aws.ToString(d.DomainName)) ||
		aws.ToString(d.ARN) != "arn:aws:cloudfront::000000000000:distribution/"+id || aws.ToString(d.Status) != "InProgress" ||
		aws.ToString(created.ETag) == "" || aws.ToString(created.Location) != "https://cloudfront.amazonaws.com/2020-05-31/distribution/"+id {
		t.Fatalf("CreateDistribution = id %s, domain %s, ARN %s, status %s, ETag %s, Location %s",
			id, aws.ToString(d.DomainName), aws.ToString(d.ARN), aws.ToString(d.Status), aws.ToString(created.ETag), aws.ToString(created.Location))
	}
	if !reflect.DeepEqual(d.DistributionConfig, sent) {
		t.Errorf("CreateDistribution's config differs from the one sent:\n got %+v\nwant %+v", d.DistributionConfig, sent)
	}

	got, err := cf.GetDistribution(ctx(t), &cloudfront.GetDistributionInput{Id: aws.String(id)})
	if err != nil {
		t.Fatalf("GetDistribution: %v", err)
	}
	if aws.ToString(got.ETag) != aws.ToString(created.ETag) || aws.ToString(got.Distribution.Status) != "Deployed" || !reflect.DeepEqual(got.Distribution.DistributionConfig, sent) {
		t.Errorf("GetDistribution = ETag %s status %s config %+v", aws.ToString(got.ETag), aws.ToString(got.Distribution.Status), got.Distribution.DistributionConfig)
	}
	gotConfig, err := cf.GetDistributionConfig(ctx(t), &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if err != nil {
		t.Fatalf("GetDistributionConfig: %v", err)
	}
	if aws.ToString(gotConfig.ETag) != aws.ToString(created.ETag) || !reflect.DeepEqual(gotConfig.DistributionConfig, sent) {
		t.Errorf("GetDistributionConfig = ETag %s config %+v", aws.ToString(gotConfig.ETag), gotConfig.DistributionConfig)
	}

	// The associated version is replicated: neither it nor the function can be deleted.
	_, err = e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge"), Qualifier: aws.String("1")})
	wantReplicated(t, err, v1)
	_, err = e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(v1)})
	wantReplicated(t, err, v1)
	_, err = e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge")})
	wantReplicated(t, err, v1)
	if _, err := e.lambda.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(v1)}); err != nil {
		t.Fatalf("version 1 is gone after a refused delete: %v", err)
	}

	// If-Match: missing, then stale.
	_, err = cf.UpdateDistribution(ctx(t), &cloudfront.UpdateDistributionInput{Id: aws.String(id), DistributionConfig: distConfig("release-1", true)})
	wantAPIError[*cftypes.InvalidIfMatchVersion](t, err, http.StatusBadRequest)
	_, err = cf.UpdateDistribution(ctx(t), &cloudfront.UpdateDistributionInput{Id: aws.String(id), IfMatch: aws.String("E0STALE0STALE0"), DistributionConfig: distConfig("release-1", true)})
	wantAPIError[*cftypes.PreconditionFailed](t, err, http.StatusPreconditionFailed)

	// Remove the association: the version stays replicated for the replication delay.
	updated, err := cf.UpdateDistribution(ctx(t), &cloudfront.UpdateDistributionInput{Id: aws.String(id), IfMatch: created.ETag, DistributionConfig: distConfig("release-1", true)})
	if err != nil {
		t.Fatalf("UpdateDistribution: %v", err)
	}
	if aws.ToString(updated.ETag) == aws.ToString(created.ETag) || aws.ToString(updated.Distribution.Status) != "InProgress" {
		t.Errorf("UpdateDistribution = ETag %s (was %s), status %s", aws.ToString(updated.ETag), aws.ToString(created.ETag), aws.ToString(updated.Distribution.Status))
	}
	_, err = cf.UpdateDistribution(ctx(t), &cloudfront.UpdateDistributionInput{Id: aws.String(id), IfMatch: created.ETag, DistributionConfig: distConfig("release-1", true)})
	wantAPIError[*cftypes.PreconditionFailed](t, err, http.StatusPreconditionFailed)
	clock.advance(59 * time.Minute)
	_, err = e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge"), Qualifier: aws.String("1")})
	wantReplicated(t, err, v1)

	// An unassociated version is deleted at once.
	if _, err := e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge"), Qualifier: aws.String("2")}); err != nil {
		t.Fatalf("DeleteFunction of unassociated version 2: %v", err)
	}

	clock.advance(2 * time.Minute)
	if _, err := e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge"), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("DeleteFunction of version 1 after the replication delay: %v", err)
	}

	// A distribution is deleted once disabled and deployed.
	_, err = cf.DeleteDistribution(ctx(t), &cloudfront.DeleteDistributionInput{Id: aws.String(id), IfMatch: updated.ETag})
	wantAPIError[*cftypes.DistributionNotDisabled](t, err, http.StatusConflict)
	disabled, err := cf.UpdateDistribution(ctx(t), &cloudfront.UpdateDistributionInput{Id: aws.String(id), IfMatch: updated.ETag, DistributionConfig: distConfig("release-1", false)})
	if err != nil {
		t.Fatalf("disable: %v", err)
	}
	_, err = cf.DeleteDistribution(ctx(t), &cloudfront.DeleteDistributionInput{Id: aws.String(id)})
	wantAPIError[*cftypes.InvalidIfMatchVersion](t, err, http.StatusBadRequest)
	if _, err := cf.DeleteDistribution(ctx(t), &cloudfront.DeleteDistributionInput{Id: aws.String(id), IfMatch: disabled.ETag}); err != nil {
		t.Fatalf("DeleteDistribution: %v", err)
	}
	_, err = cf.GetDistribution(ctx(t), &cloudfront.GetDistributionInput{Id: aws.String(id)})
	wantAPIError[*cftypes.NoSuchDistribution](t, err, http.StatusNotFound)
}

func TestCloudFrontDeleteDistributionReleasesReplicas(t *testing.T) {
	clock := newManualClock()
	e := start(t, edgeOptions(clock))
	cf := e.cloudfront()
	fn := e.edgeFunction(t, "edge")

	// Two distributions share version 2; a cache behavior (not the default) of one runs it.
	cfgA := distConfig("a", false)
	cfgA.CacheBehaviors = &cftypes.CacheBehaviors{Quantity: aws.Int32(1), Items: []cftypes.CacheBehavior{{
		PathPattern: aws.String("/api/*"), TargetOriginId: aws.String("origin"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyAllowAll,
		CachePolicyId: aws.String("658327ea-f89d-4fab-a63d-7e88639e58f6"),
		LambdaFunctionAssociations: &cftypes.LambdaFunctionAssociations{Quantity: aws.Int32(1), Items: []cftypes.LambdaFunctionAssociation{
			{LambdaFunctionARN: aws.String(fn + ":2"), EventType: cftypes.EventTypeOriginRequest}}},
	}}}
	a, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: cfgA})
	if err != nil {
		t.Fatalf("CreateDistribution a: %v", err)
	}
	b, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig("b", false, fn+":2")})
	if err != nil {
		t.Fatalf("CreateDistribution b: %v", err)
	}
	for _, d := range []*cloudfront.CreateDistributionOutput{a, b} {
		if _, err := cf.DeleteDistribution(ctx(t), &cloudfront.DeleteDistributionInput{Id: d.Distribution.Id, IfMatch: d.ETag}); err != nil {
			t.Fatalf("DeleteDistribution %s: %v", aws.ToString(d.Distribution.Id), err)
		}
		_, err = e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge")})
		wantReplicated(t, err, fn+":2")
	}
	clock.advance(time.Hour)
	if _, err := e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge")}); err != nil {
		t.Fatalf("DeleteFunction after the replication delay: %v", err)
	}
}

func TestCloudFrontInvalidConfigs(t *testing.T) {
	e := start(t, edgeOptions(newManualClock()))
	cf := e.cloudfront()
	fn := e.edgeFunction(t, "edge")
	if _, err := e.lambda.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("edge"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	mustBeVersion := "The function ARN must reference a specific function version. (The ARN must end with the version number.) ARN: "
	for _, tc := range []struct{ name, arn, message string }{
		{"$LATEST", fn + ":$LATEST", mustBeVersion + fn + ":$LATEST"},
		{"alias", fn + ":live", mustBeVersion + fn + ":live"},
		{"unqualified", fn, mustBeVersion + fn},
		{"unknown version", fn + ":99", ""},
		{"unknown function", strings.Replace(fn, ":edge", ":nope", 1) + ":1", ""},
		{"other region", strings.Replace(fn, "us-east-1", "eu-west-1", 1) + ":1", "The function must be in region 'us-east-1'. ARN: " + strings.Replace(fn, "us-east-1", "eu-west-1", 1) + ":1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The valid version 1 comes first: a refused config must not leave it replicated.
			_, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig("bad-"+tc.name, true, fn+":1", tc.arn)})
			inv := wantAPIError[*cftypes.InvalidLambdaFunctionAssociation](t, err, http.StatusBadRequest)
			if tc.message != "" && aws.ToString(inv.Message) != tc.message {
				t.Errorf("message = %q, want %q", aws.ToString(inv.Message), tc.message)
			}
		})
	}

	inconsistent := distConfig("inconsistent", true, fn+":1")
	inconsistent.DefaultCacheBehavior.LambdaFunctionAssociations.Quantity = aws.Int32(2)
	_, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: inconsistent})
	wantAPIError[*cftypes.InconsistentQuantities](t, err, http.StatusBadRequest)

	if _, err := e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge"), Qualifier: aws.String("2")}); err != nil {
		t.Fatalf("version 2 is replicated after refused configs: %v", err)
	}

	// CallerReference: the same request again answers the same distribution; another config is refused.
	first, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig("once", true)})
	if err != nil {
		t.Fatal(err)
	}
	again, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig("once", true)})
	if err != nil || aws.ToString(again.Distribution.Id) != aws.ToString(first.Distribution.Id) {
		t.Fatalf("repeated CreateDistribution = %v, %v; want distribution %s", again, err, aws.ToString(first.Distribution.Id))
	}
	_, err = cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig("once", false)})
	wantAPIError[*cftypes.DistributionAlreadyExists](t, err, http.StatusConflict)
	_, err = cf.UpdateDistribution(ctx(t), &cloudfront.UpdateDistributionInput{Id: first.Distribution.Id, IfMatch: first.ETag, DistributionConfig: distConfig("twice", true)})
	wantAPIError[*cftypes.IllegalUpdate](t, err, http.StatusBadRequest)
	_, err = cf.GetDistributionConfig(ctx(t), &cloudfront.GetDistributionConfigInput{Id: aws.String("E0000000000000")})
	wantAPIError[*cftypes.NoSuchDistribution](t, err, http.StatusNotFound)
}

func TestCloudFrontListDistributionsPagination(t *testing.T) {
	e := start(t, fast)
	cf := e.cloudfront()
	created := map[string]bool{}
	for i := range 5 {
		out, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig(fmt.Sprint("list-", i), true)})
		if err != nil {
			t.Fatal(err)
		}
		created[aws.ToString(out.Distribution.Id)] = true
	}
	var sizes []int
	seen := map[string]bool{}
	p := cloudfront.NewListDistributionsPaginator(cf, &cloudfront.ListDistributionsInput{MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		l := page.DistributionList
		if int(aws.ToInt32(l.Quantity)) != len(l.Items) || aws.ToInt32(l.MaxItems) != 2 || aws.ToBool(l.IsTruncated) != (l.NextMarker != nil) {
			t.Errorf("page: Quantity %d, %d items, MaxItems %d, IsTruncated %v, NextMarker %v", aws.ToInt32(l.Quantity), len(l.Items), aws.ToInt32(l.MaxItems), aws.ToBool(l.IsTruncated), l.NextMarker)
		}
		sizes = append(sizes, len(l.Items))
		for _, s := range l.Items {
			id := aws.ToString(s.Id)
			if seen[id] || !created[id] || !strings.HasPrefix(aws.ToString(s.Comment), "aviary list-") || aws.ToString(s.ETag) == "" ||
				aws.ToString(s.Status) != "Deployed" || aws.ToInt32(s.Origins.Quantity) != 1 || s.Enabled == nil || !*s.Enabled {
				t.Errorf("summary %+v (seen before: %v)", s, seen[id])
			}
			seen[id] = true
		}
	}
	if got, want := fmt.Sprint(sizes), "[2 2 1]"; got != want || len(seen) != 5 {
		t.Errorf("page sizes = %s, want %s; %d distributions listed", got, want, len(seen))
	}

	// CloudFront is global: a client configured for another Region sees the same distributions.
	other := cloudfront.NewFromConfig(e.cfg, func(o *cloudfront.Options) { o.Region = "eu-west-1" })
	all, err := other.ListDistributions(ctx(t), &cloudfront.ListDistributionsInput{})
	if err != nil || len(all.DistributionList.Items) != 5 {
		t.Fatalf("ListDistributions from eu-west-1 = %v, %v", all, err)
	}
}

func TestCloudFrontStateSurvivesRestart(t *testing.T) {
	clock := newManualClock()
	opts := edgeOptions(clock)
	opts.DataDir = t.TempDir()
	srv, err := startSandbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	e := connect(t, srv)
	fn := e.edgeFunction(t, "edge")
	cf := e.cloudfront()
	kept, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig("kept", true, fn+":2")})
	if err != nil {
		t.Fatal(err)
	}
	moved, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig("moved", true, fn+":1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cf.UpdateDistribution(ctx(t), &cloudfront.UpdateDistributionInput{Id: moved.Distribution.Id, IfMatch: moved.ETag, DistributionConfig: distConfig("moved", true)}); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	srv, err = startSandbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e = connect(t, srv)
	got, err := e.cloudfront().GetDistributionConfig(ctx(t), &cloudfront.GetDistributionConfigInput{Id: kept.Distribution.Id})
	if err != nil || !reflect.DeepEqual(got.DistributionConfig, distConfig("kept", true, fn+":2")) || aws.ToString(got.ETag) != aws.ToString(kept.ETag) {
		t.Fatalf("GetDistributionConfig after restart = %+v, %v", got, err)
	}
	for _, v := range []string{"1", "2"} { // 1 awaits its release, 2 is associated
		_, err = e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge"), Qualifier: aws.String(v)})
		wantReplicated(t, err, fn+":"+v)
	}
	clock.advance(time.Hour)
	if _, err := e.lambda.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("edge"), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("DeleteFunction of version 1 after the delay: %v", err)
	}
}

// An unsigned request reaches CloudFront by its path, and members the sandbox does not know
// survive a round trip.
func TestCloudFrontUnsignedRoundTrip(t *testing.T) {
	e := start(t, fast)
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<DistributionConfig xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><CallerReference>raw</CallerReference>` +
		`<Origins><Quantity>1</Quantity><Items><Origin><Id>o</Id><DomainName>example.com</DomainName><FutureMember>kept</FutureMember></Origin></Items></Origins>` +
		`<DefaultCacheBehavior><TargetOriginId>o</TargetOriginId><ViewerProtocolPolicy>allow-all</ViewerProtocolPolicy></DefaultCacheBehavior>` +
		`<Comment>raw &amp; unsigned</Comment><Enabled>true</Enabled><SomethingNew><Quantity>0</Quantity></SomethingNew></DistributionConfig>`
	resp, err := http.Post(e.srv.URL+"/2020-05-31/distribution", "application/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("unsigned CreateDistribution: %d %s", resp.StatusCode, b)
	}
	id := regexp.MustCompile(`<Id>(E[A-Z0-9]{13})</Id>`).FindSubmatch(b)
	if id == nil {
		t.Fatalf("no distribution id in %s", b)
	}
	resp, err = http.Get(e.srv.URL + "/2020-05-31/distribution/" + string(id[1]) + "/config")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"<FutureMember>kept</FutureMember>", "<SomethingNew><Quantity>0</Quantity></SomethingNew>", "<Comment>raw &amp; unsigned</Comment>", `<DistributionConfig xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("GetDistributionConfig lost %s:\n%s", want, b)
		}
	}
	if got := resp.Header.Get("ETag"); resp.StatusCode != http.StatusOK || got == "" {
		t.Errorf("GetDistributionConfig: %d, ETag %q", resp.StatusCode, got)
	}
}

func TestAWSCLICloudFront(t *testing.T) {
	e := start(t, fast)
	c := newCLI(t, e.srv)
	// The CLI pages through DistributionList.Items and prints only what it gathered.
	if out := c.ok("cloudfront", "list-distributions"); len(out) != 0 {
		t.Fatalf("list-distributions on an empty sandbox = %v", out)
	}
	created, err := e.cloudfront().CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig("cli", true)})
	if err != nil {
		t.Fatal(err)
	}
	out := c.ok("cloudfront", "list-distributions")
	l, _ := out["DistributionList"].(map[string]any)
	items, _ := l["Items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["Id"] != aws.ToString(created.Distribution.Id) {
		t.Fatalf("list-distributions = %v", out)
	}
	_, stderr, code := c.run("cloudfront", "get-distribution", "--id", "E0000000000000")
	if code == 0 || !strings.Contains(stderr, "NoSuchDistribution") {
		t.Errorf("get-distribution of a missing id: exit %d, %s", code, stderr)
	}
}

// A disabled distribution can be deleted only once deployed.
func TestCloudFrontDeleteWaitsForDeployment(t *testing.T) {
	clock := newManualClock()
	opts := edgeOptions(clock)
	opts.UpdateDelay = time.Hour // CloudFront deploys by the test's clock; no Lambda here
	e := start(t, opts)
	cf := e.cloudfront()
	d, err := cf.CreateDistribution(ctx(t), &cloudfront.CreateDistributionInput{DistributionConfig: distConfig("slow", false)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cf.DeleteDistribution(ctx(t), &cloudfront.DeleteDistributionInput{Id: d.Distribution.Id, IfMatch: d.ETag})
	wantAPIError[*cftypes.DistributionNotDisabled](t, err, http.StatusConflict)
	if got, err := cf.GetDistribution(ctx(t), &cloudfront.GetDistributionInput{Id: d.Distribution.Id}); err != nil || aws.ToString(got.Distribution.Status) != "InProgress" {
		t.Fatalf("GetDistribution within the deploy delay = %v, %v", got, err)
	}
	clock.advance(time.Hour)
	if got, err := cf.GetDistribution(ctx(t), &cloudfront.GetDistributionInput{Id: d.Distribution.Id}); err != nil || aws.ToString(got.Distribution.Status) != "Deployed" {
		t.Fatalf("GetDistribution after the deploy delay = %v, %v", got, err)
	}
	if _, err := cf.DeleteDistribution(ctx(t), &cloudfront.DeleteDistributionInput{Id: d.Distribution.Id, IfMatch: d.ETag}); err != nil {
		t.Fatalf("DeleteDistribution once deployed: %v", err)
	}
}
