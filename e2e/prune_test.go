package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// pruneDoc is what `aviary prune -o json` prints, as a script reads it.
type pruneDoc struct {
	Schema    string `json:"schema"`
	DryRun    bool   `json:"dryRun"`
	Retained  []string
	Functions []struct {
		FunctionName string
		Error        string
		Deleted      []string
		Deferred     []struct{ Version, Reason string }
		Kept         []struct {
			Version string
			Reasons []struct{ Kind, By string }
		}
		Failed []struct{ Version, Error string }
	}
	Totals struct{ Deleted, Deferred, Kept, Failed int }
}

// fate is what became of each version of a function in a prune: "deleted", "deferred", or the
// kinds of its reasons to be kept, joined by ",".
func (d pruneDoc) fate(fn string) map[string]string {
	out := map[string]string{}
	for _, f := range d.Functions {
		if f.FunctionName != fn {
			continue
		}
		for _, v := range f.Deleted {
			out[v] = "deleted"
		}
		for _, v := range f.Deferred {
			out[v.Version] = "deferred"
		}
		for _, k := range f.Kept {
			var kinds []string
			for _, r := range k.Reasons {
				if !slices.Contains(kinds, r.Kind) {
					kinds = append(kinds, r.Kind)
				}
			}
			out[k.Version] = strings.Join(kinds, ",")
		}
		for _, x := range f.Failed {
			out[x.Version] = "failed: " + x.Error
		}
	}
	return out
}

func (f *fleet) prune(args ...string) (int, pruneDoc, string) {
	f.t.Helper()
	code, out, errs := f.aviary(append([]string{"prune", "-e", "production", "-o", "json"}, args...)...)
	var doc pruneDoc
	if out != "" {
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			f.t.Fatalf("prune -o json: %v\n%s\n%s", err, out, errs)
		}
	}
	return code, doc, errs
}

// publish puts new code on a function's $LATEST and publishes it: a version no release made.
func (f *fleet) publish(name, stamp string) string {
	f.t.Helper()
	ctx := context.Background()
	f.stamp(name, stamp)
	if _, err := f.lambda.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(f.fn(name)), ZipFile: f.zip(name)}); err != nil {
		f.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := f.lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(f.fn(name))})
		if err == nil {
			return aws.ToString(out.Version)
		}
		var busy *lambdatypes.ResourceConflictException
		if !asErr(err, &busy) || time.Now().After(deadline) {
			f.t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the update is still in progress
	}
}

// versions lists a function's published versions.
func (f *fleet) versions(name string) []string {
	f.t.Helper()
	var out []string
	p := lambda.NewListVersionsByFunctionPaginator(f.lambda, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(f.fn(name))})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		for _, v := range page.Versions {
			if v := aws.ToString(v.Version); v != "$LATEST" {
				out = append(out, v)
			}
		}
	}
	return out
}

func (f *fleet) cloudfront() *cloudfront.Client {
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	return cloudfront.NewFromConfig(cfg)
}

// distribution creates a distribution whose default cache behavior associates defaultARN and
// whose /edge/* behavior associates behaviorARN (either may be ""); it returns the id.
func distribution(t *testing.T, cf *cloudfront.Client, ref, defaultARN, behaviorARN string) string {
	t.Helper()
	assoc := func(arn string) *cftypes.LambdaFunctionAssociations {
		if arn == "" {
			return &cftypes.LambdaFunctionAssociations{Quantity: aws.Int32(0)}
		}
		return &cftypes.LambdaFunctionAssociations{Quantity: aws.Int32(1), Items: []cftypes.LambdaFunctionAssociation{
			{EventType: cftypes.EventTypeViewerRequest, LambdaFunctionARN: aws.String(arn)}}}
	}
	out, err := cf.CreateDistribution(context.Background(), &cloudfront.CreateDistributionInput{DistributionConfig: &cftypes.DistributionConfig{
		CallerReference: aws.String(ref), Comment: aws.String(ref), Enabled: aws.Bool(true),
		Origins: &cftypes.Origins{Quantity: aws.Int32(1), Items: []cftypes.Origin{{Id: aws.String("site"), DomainName: aws.String("example.com"),
			CustomOriginConfig: &cftypes.CustomOriginConfig{HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly}}}},
		DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{TargetOriginId: aws.String("site"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyAllowAll,
			LambdaFunctionAssociations: assoc(defaultARN)},
		CacheBehaviors: &cftypes.CacheBehaviors{Quantity: aws.Int32(1), Items: []cftypes.CacheBehavior{{PathPattern: aws.String("/edge/*"),
			TargetOriginId: aws.String("site"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyAllowAll, LambdaFunctionAssociations: assoc(behaviorARN)}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Distribution.Id)
}

// disassociate removes every Lambda@Edge association of a distribution's default behavior.
func disassociate(t *testing.T, cf *cloudfront.Client, id string) {
	t.Helper()
	ctx := context.Background()
	got, err := cf.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := got.DistributionConfig
	cfg.DefaultCacheBehavior.LambdaFunctionAssociations = &cftypes.LambdaFunctionAssociations{Quantity: aws.Int32(0)}
	if _, err := cf.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: aws.String(id), IfMatch: got.ETag, DistributionConfig: cfg}); err != nil {
		t.Fatal(err)
	}
}

func versionARN(fn, v string) string {
	return "arn:aws:lambda:us-east-1:000000000000:function:" + fn + ":" + v
}

// deletes are the DeleteFunction calls in the sandbox's log, as FUNCTION:VERSION.
func deletes(reqs []sandbox.Request) []string {
	var out []string
	for _, r := range reqs {
		if r.Operation == "DeleteFunction" {
			q, _ := url.ParseQuery(r.Query)
			out = append(out, r.Resource+":"+q.Get("Qualifier"))
		}
	}
	return out
}

// TestPruneKeepsWhatAnythingNeeds is prune's story on one fleet: four promoted releases (two
// retained), versions that an alias, an extra weight, an event source mapping, provisioned
// concurrency and CloudFront need, one CloudFront let go of (still replicated), plain ones, and
// a release live while prune runs. Each protected version survives; every other one is deleted,
// the replicated one on a later run; a dry run and bad input delete nothing.
func TestPruneKeepsWhatAnythingNeeds(t *testing.T) {
	// CloudFront's replicas are released by a clock the test moves past the delay, so the first
	// prune meets a replicated version however slow this machine is.
	const delay = time.Hour
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	f := newFleet(t, 2, sandbox.Options{UpdateDelay: -1, ControlRate: -1, ReplicationDelay: delay, CloudFrontClock: clock}, "      canary:\n        - weight: 10%\n          bake: 0s")
	f.appendManifest("    retain:\n      releases: 2\n")
	ctx := context.Background()
	a, b := f.names[0], f.names[1]
	fnA := f.fn(a)

	// Four promoted releases: versions 1 to 4 of both functions. Retained: the last two (3 and 4
	// new, 2 and 3 previous); version 1 only the first two named.
	for i := 1; i <= 4; i++ {
		f.stampAll(fmt.Sprint(i))
		if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
			t.Fatalf("release %d: %d\n%s\n%s", i, code, out, errs)
		}
	}
	cf := f.cloudfront()
	var other string
	var replicatedDist string
	// Versions no release made, each needed (or not) by one thing.
	cases := []struct {
		name  string
		setup func(v string)
		want  string
	}{
		{"an alias the manifest does not name", func(v string) {
			other = v
			if _, err := f.lambda.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fnA), Name: aws.String("other"), FunctionVersion: aws.String(v)}); err != nil {
				t.Fatal(err)
			}
		}, "alias"},
		{"another alias's extra weight", func(v string) {
			if _, err := f.lambda.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(fnA), Name: aws.String("other"), FunctionVersion: aws.String(other),
				RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{v: 0.2}}}); err != nil {
				t.Fatal(err)
			}
		}, "alias"},
		{"an event source mapping", func(v string) {
			if _, err := f.lambda.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String(fnA + ":" + v),
				EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:orders")}); err != nil {
				t.Fatal(err)
			}
		}, "event-source-mapping"},
		{"provisioned concurrency", func(v string) {
			if _, err := f.lambda.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String(fnA), Qualifier: aws.String(v),
				ProvisionedConcurrentExecutions: aws.Int32(1)}); err != nil {
				t.Fatal(err)
			}
		}, "provisioned-concurrency"},
		{"a CloudFront cache behavior's Lambda@Edge association", func(v string) {
			distribution(t, cf, "assets", "", versionARN(fnA, v))
		}, "cloudfront"},
		{"let go by CloudFront, still replicated", func(v string) {
			replicatedDist = distribution(t, cf, "old-site", versionARN(fnA, v), "")
		}, "deferred"},
		{"nothing", nil, "deleted"},
		{"nothing either", nil, "deleted"},
		{"nothing, still", nil, "deleted"},
		{"the newest but one", nil, "newest"},
	}
	want := map[string]string{
		"1": "deleted",       // named only by releases no longer retained
		"2": "release",       // previous of a retained release
		"3": "release",       // new of one, previous of the other
		"4": "alias,release", // the live alias; new of the last promoted, previous of the live one
	}
	named := []struct{ name, v string }{{"an old release's version", "1"}, {"a retained release's previous", "2"},
		{"retained releases' version", "3"}, {"the live alias's version", "4"}}
	for i, c := range cases {
		v := f.publish(a, fmt.Sprintf("x%d", i))
		if c.setup != nil {
			c.setup(v)
		}
		want[v] = c.want
		named = append(named, struct{ name, v string }{c.name, v})
	}
	// A release live while prune runs: its new version (the newest) and its previous one stay.
	f.setBake("1h")
	f.stampAll("5")
	done := make(chan int, 1)
	go func() { code, _, _ := f.aviary("deploy", "-e", "production"); done <- code }()
	live := f.waitFor("the live release to bake", func(r *release.Release) bool { return r.Phase == release.Shifting && !r.StepStarted.IsZero() })
	newA := live.Functions[0].New
	want[newA] = "alias,release,newest"
	named = append(named, struct{ name, v string }{"the live release's new version", newA})
	disassociate(t, cf, replicatedDist)

	// A dry run calls no DeleteFunction, and says what would go.
	f.srv.ResetRequests()
	code, dry, errs := f.prune("--keep", "2", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: %d %s", code, errs)
	}
	if d := deletes(f.srv.Requests()); len(d) != 0 || !dry.DryRun {
		t.Errorf("the dry run deleted %v", d)
	}
	code, text, errs := f.aviary("prune", "-e", "production", "--keep", "2", "--dry-run")
	t.Logf("aviary prune --dry-run:\n%s", text)
	if code != 0 || !strings.Contains(text, "would delete") || !strings.Contains(text, "Nothing was deleted") {
		t.Errorf("the text dry run: %d\n%s\n%s", code, text, errs)
	}
	// Bad input: exit 2, nothing deleted.
	for _, args := range [][]string{{"prune", "-e", "production", "--keep", "0"}, {"prune", "-e", "production", "--keep", "-3"}, {"prune", "-e", "staging"}, {"prune", "-e", "production", "--store", "sqlite://no-such/state.db"}} {
		f.srv.ResetRequests()
		code, _, errs := f.aviary(args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errs)
		}
		if d := deletes(f.srv.Requests()); len(d) != 0 {
			t.Errorf("%v deleted %v", args, d)
		}
	}
	if _, _, errs := f.aviary("prune", "-e", "production", "--keep", "0"); !strings.Contains(errs, "--keep must be at least 1") {
		t.Errorf("--keep 0 says: %s", errs)
	}

	code, doc, errs := f.prune("--keep", "2")
	if code != 0 {
		t.Fatalf("prune: exit %d\n%s", code, errs)
	}
	if doc.Schema != "aviary/v1" {
		t.Errorf("schema %q", doc.Schema)
	}
	got := doc.fate(fnA)
	wantDry := map[string]string{}
	for v, w := range want {
		if w == "deferred" {
			w = "deleted" // a dry run cannot know Lambda will refuse
		}
		wantDry[v] = w
	}
	if d := dry.fate(fnA); !mapsEqual(d, wantDry) {
		t.Errorf("the dry run said\n  %v\nwant\n  %v", d, wantDry)
	}
	for _, c := range named {
		w := want[c.v]
		if got[c.v] != w {
			t.Errorf("%s (version %s): %s, want %s", c.name, c.v, got[c.v], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("prune reported %v, want %v", got, want)
	}
	// The other function: only the first version goes.
	if g := doc.fate(f.fn(b)); g["1"] != "deleted" || len(doc.Functions[1].Deleted) != 1 {
		t.Errorf("%s: %v", f.fn(b), g)
	}
	exist := f.versions(a)
	for v, w := range want {
		if gone := !slices.Contains(exist, v); gone != (w == "deleted") && w != "deferred" {
			t.Errorf("version %s (%s): exists %v after prune", v, w, !gone)
		}
	}

	// The replicated version goes on a later run, once CloudFront has let go of it.
	var deferred string
	for v, w := range want {
		if w == "deferred" {
			deferred = v
		}
	}
	code, doc, errs = f.prune("--keep", "2")
	if code != 0 {
		t.Fatalf("second prune: %d %s", code, errs)
	}
	if g := doc.fate(fnA)[deferred]; g != "deferred" {
		t.Errorf("a second prune within the replication delay: version %s %s, want deferred", deferred, g)
	}
	skew.Store(int64(delay + time.Minute))
	code, doc, errs = f.prune("--keep", "2")
	if code != 0 {
		t.Fatalf("prune after the replication delay: %d %s", code, errs)
	}
	if g := doc.fate(fnA)[deferred]; g != "deleted" || slices.Contains(f.versions(a), deferred) {
		t.Errorf("after the replication delay: version %s %s, still listed: %v", deferred, g, slices.Contains(f.versions(a), deferred))
	}

	// The live release still rolls back: its previous versions are there.
	if code, _, errs := f.aviary("rollback", live.ID); code != 0 {
		t.Fatalf("rollback after prune: %s", errs)
	}
	<-done
	if v, _ := f.alias(a); v != "4" {
		t.Errorf("after the rollback the alias serves %s, want 4", v)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPruneZeroDowntime: steady traffic through every alias (the manifest's and another) during
// a deploy, its promotion and a prune run at once: no invocation fails, and no version an alias
// routes to or a distribution serves is deleted.
func TestPruneZeroDowntime(t *testing.T) {
	f := newFleet(t, 2, sandbox.Options{UpdateDelay: -1, ControlRate: -1}, "      canary:\n        - weight: 10%\n          bake: 0s")
	f.appendManifest("    retain:\n      releases: 1\n")
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		f.stampAll(fmt.Sprint(i))
		if code, _, errs := f.aviary("deploy", "-e", "production"); code != 0 {
			t.Fatalf("release %d: %s", i, errs)
		}
	}
	for _, n := range f.names {
		if _, err := f.lambda.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(f.fn(n)), Name: aws.String("blue"), FunctionVersion: aws.String("1")}); err != nil {
			t.Fatal(err)
		}
	}
	// CloudFront serves the first function's version 2, which nothing else needs.
	distribution(t, f.cloudfront(), "edge", versionARN(f.fn(f.names[0]), "2"), "")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, failed atomic.Int64
	var firstErr atomic.Value
	for _, n := range f.names {
		for _, alias := range []string{"live", "blue"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					out, err := f.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(f.fn(n) + ":" + alias)})
					calls.Add(1)
					if err == nil && out.FunctionError != nil {
						err = fmt.Errorf("function error %s: %s", aws.ToString(out.FunctionError), out.Payload)
					}
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s:%s: %v", f.fn(n), alias, err))
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
	}
	f.setBake("1h")
	f.stampAll("4")
	done := make(chan int, 1)
	go func() { code, _, _ := f.aviary("deploy", "-e", "production"); done <- code }()
	r := f.waitFor("the canary", func(r *release.Release) bool { return r.Phase == release.Shifting && !r.StepStarted.IsZero() })
	// Promote and prune at once, then prune again right after the promotion.
	pruned := make(chan int, 1)
	go func() { code, _, _ := f.aviary("prune", "-e", "production", "--keep", "1", "-q"); pruned <- code }()
	if code, _, errs := f.aviary("promote", r.ID, "--now"); code != 0 {
		t.Fatalf("promote: %s", errs)
	}
	if code := <-done; code != 0 {
		t.Fatalf("deploy: exit %d", code)
	}
	if code := <-pruned; code != 0 {
		t.Fatalf("prune during the promotion: exit %d", code)
	}
	if code, _, errs := f.aviary("prune", "-e", "production", "--keep", "1"); code != 0 {
		t.Fatalf("prune after the promotion: %s", errs)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d invocations failed; the first: %v", n, calls.Load(), firstErr.Load())
	}
	if calls.Load() < 20 {
		t.Errorf("only %d invocations: no steady traffic", calls.Load())
	}
	for _, n := range f.names {
		exist := f.versions(n)
		for _, alias := range []string{"live", "blue"} {
			out, err := f.lambda.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(f.fn(n)), Name: aws.String(alias)})
			if err != nil {
				t.Fatal(err)
			}
			if v := aws.ToString(out.FunctionVersion); !slices.Contains(exist, v) {
				t.Errorf("%s:%s routes to version %s, deleted", f.fn(n), alias, v)
			}
		}
		// Version 2 (between blue's and the retained release's) was pruned, unless CloudFront
		// serves it.
		if served := n == f.names[0]; slices.Contains(exist, "2") != served {
			t.Errorf("%s: versions %v after prune; CloudFront serves version 2: %v", f.fn(n), exist, served)
		}
	}
}
