package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/sandbox"
)

// BenchmarkPrune prunes a fleet of 100 functions with 60 versions each (an alias on the one
// before the newest) at AWS's control-plane quota (15 requests/s), and measures the run against
// its bound: the Lambda control-plane calls it made ÷ 15 per second. AVIARY_BENCH_PRUNE_FUNCTIONS
// and AVIARY_BENCH_PRUNE_VERSIONS shrink it for a quick look.
//
//	go test ./e2e -run '^$' -bench Prune -benchtime 1x
//	AVIARY_BENCH_PRUNE_FUNCTIONS=5 AVIARY_BENCH_PRUNE_VERSIONS=10 go test ./e2e -run '^$' -bench Prune -benchtime 1x
func BenchmarkPrune(b *testing.B) {
	n, versions := envInt(b, "AVIARY_BENCH_PRUNE_FUNCTIONS", 100), envInt(b, "AVIARY_BENCH_PRUNE_VERSIONS", 60)
	const quota, keep = 15.0, 5
	f := newFleet(b, n, sandbox.Options{ControlRate: -1, UpdateDelay: -1}, "      canary:\n        - weight: 10%\n          bake: 0s")
	// The versions, as fast as the sandbox takes them: tiny zips (the code never runs), the
	// quota off.
	ctx := context.Background()
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for _, name := range f.names {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- publishMany(ctx, f.lambda, f.fn(name), versions)
		}()
	}
	for range f.names {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	// The store, as any team that deploys has one (prune refuses to run without it).
	if code, _, errs := f.aviary("store", "init"); code != 0 {
		b.Fatalf("store init: %s", errs)
	}
	f.srv.SetControlRate(quota, 0)
	time.Sleep(time.Second) // a full bucket, as an idle account has

	b.ResetTimer()
	f.srv.ResetRequests()
	start := time.Now()
	code, out, stderr := f.aviary("prune", "-e", "production", "--keep", strconv.Itoa(keep), "-o", "json", "-q")
	elapsed := time.Since(start)
	b.StopTimer()
	if code != 0 {
		b.Fatalf("prune: %d\n%s", code, stderr)
	}
	var doc pruneDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		b.Fatal(err)
	}
	// Each function keeps its newest keep versions and the aliased one (among them).
	if want := n * (versions - keep); doc.Totals.Deleted != want || doc.Totals.Failed != 0 {
		b.Fatalf("deleted %d (failed %d), want %d", doc.Totals.Deleted, doc.Totals.Failed, want)
	}
	reqs := f.srv.Requests()
	calls, throttled, ops := controlPlane(reqs)
	cloudfrontCalls := 0
	for _, r := range reqs {
		if r.Service == "cloudfront" {
			cloudfrontCalls++
		}
	}
	bound := time.Duration(float64(calls) / quota * float64(time.Second))
	ratio := elapsed.Seconds() / bound.Seconds()
	b.ReportMetric(ratio, "prune/bound")
	b.ReportMetric(float64(calls), "calls")
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\nprune of %d functions × %d versions (keep %d), sandbox control-plane quota %.0f requests/s\n", n, versions, keep, quota)
	fmt.Fprintf(&tbl, "%14s %10s %14s %10s %7s\n", "control calls", "throttled", "bound (÷15/s)", "measured", "ratio")
	fmt.Fprintf(&tbl, "%14d %10d %14s %10s %7.2f\n", calls, throttled, bound.Round(10*time.Millisecond), elapsed.Round(10*time.Millisecond), ratio)
	fmt.Fprintf(&tbl, "calls: DeleteFunction %d, ListVersionsByFunction %d, ListAliases %d, ListProvisionedConcurrencyConfigs %d, ListEventSourceMappings %d; CloudFront %d (not under Lambda's quota)\n",
		ops["DeleteFunction"], ops["ListVersionsByFunction"], ops["ListAliases"], ops["ListProvisionedConcurrencyConfigs"], ops["ListEventSourceMappings"], cloudfrontCalls)
	fmt.Fprint(os.Stdout, tbl.String())
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		b.Fatalf("%s=%q: want a whole number above 0", name, s)
	}
	return v
}

// publishMany publishes count versions of a function, each with its own tiny code, and points
// an alias "live" at the one before the newest.
func publishMany(ctx context.Context, c *lambda.Client, fn string, count int) error {
	for i := range count {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("stamp.txt")
		fmt.Fprintf(w, "%s %d", fn, i)
		zw.Close()
		if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: buf.Bytes()}); err != nil {
			return err
		}
		for {
			_, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn)})
			if err == nil {
				break
			}
			var busy *lambdatypes.ResourceConflictException
			if !asErr(err, &busy) {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if count < 2 {
		return nil
	}
	_, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String(strconv.Itoa(count - 1))})
	return err
}
