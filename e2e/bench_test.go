package e2e

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/sqlite"
)

const benchCanary = "      canary:\n        - weight: 10%\n          bake: 0s\n        - weight: 50%\n          bake: 0s"

// BenchmarkFleet100 ships a 100-function fleet through the sandbox at AWS's control-plane quota
// (15 requests/s) and measures a canary release (10% → 50% → promote, bakes 0) and a rollback
// from mid-step, each against its bound: the control-plane calls it made ÷ 15 per second. It
// prints a table.
//
//	go test ./e2e -run '^$' -bench Fleet100 -benchtime 1x
func BenchmarkFleet100(b *testing.B) { benchFleet(b, 100, benchCanary, true) }

// BenchmarkFleet1000 is BenchmarkFleet100 with 1,000 functions: a release record of about a
// megabyte, rewritten as every function moves. It takes about ten minutes;
// AVIARY_BENCH_FUNCTIONS sets another size, AVIARY_BENCH_STORE=dynamodb keeps the releases in
// a DynamoDB table on dynalite instead of the SQLite file, and AVIARY_BENCH_SMALL_ZIPS=1 gives
// every function a zip of a few hundred bytes instead of the example's 2.7 MB, so that a busy
// machine spends its time on the release rather than on compressing 3,000 zips.
//
//	go test ./e2e -run '^$' -bench Fleet1000 -benchtime 1x -timeout 60m
func BenchmarkFleet1000(b *testing.B) {
	n := 1000
	if s := os.Getenv("AVIARY_BENCH_FUNCTIONS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("AVIARY_BENCH_FUNCTIONS=%q: want a number of functions", s)
		}
	}
	benchFleet(b, n, benchCanary, true)
}

// BenchmarkFleetAllAtOnce100 is a 100-function release with no canary: every function's code
// updated, its version published and its alias moved, once.
//
//	go test ./e2e -run '^$' -bench FleetAllAtOnce -benchtime 1x
func BenchmarkFleetAllAtOnce100(b *testing.B) {
	benchFleet(b, 100, "      all-at-once", false)
}

// benchFleet deploys a release of every function of an n-function fleet at the 15/s quota,
// then (withRollback) rolls back a release baking its first step, and prints a table.
func benchFleet(b *testing.B, n int, strategy string, withRollback bool) {
	const quota = 15.0
	zips := "the example's 2.7 MB zips"
	if os.Getenv("AVIARY_BENCH_SMALL_ZIPS") == "1" {
		// Benchmarks run one at a time: no test reads the bootstrap meanwhile.
		was := built.bootstrap
		built.bootstrap = []byte("#!/bin/sh\n# a benchmark's function: deployed, never invoked\n")
		b.Cleanup(func() { built.bootstrap = was })
		zips = "zips of a few hundred bytes"
	}
	f := newFleet(b, n, sandbox.Options{ControlRate: -1}, strategy)
	open := func() (store.Store, error) { return sqlite.Open(context.Background(), f.store) }
	storeName := "SQLite"
	if os.Getenv("AVIARY_BENCH_STORE") == "dynamodb" {
		st := f.teamStore(b)
		open = func() (store.Store, error) { return st, nil }
		storeName = "DynamoDB (dynalite)"
	}
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "1000"); code != 0 {
		b.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	f.srv.SetControlRate(quota, 0)
	time.Sleep(time.Second) // a full bucket, as an idle account has

	b.ResetTimer()
	// The release: every function changed.
	f.stampAll("2")
	f.srv.ResetRequests()
	start := time.Now()
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		b.Fatalf("release: %d\n%s\n%s", code, out, errs)
	}
	deployTime := time.Since(start)
	deployReqs := f.srv.Requests()
	// The quota bounds the deploy from its first control-plane call; building and packaging
	// locally comes before it (or, overlapped, beside it). Both are measured.
	var firstCall time.Time
	for _, r := range deployReqs {
		if r.ControlPlane && (firstCall.IsZero() || r.Time.Before(firstCall)) {
			firstCall = r.Time
		}
	}
	buildTime := firstCall.Sub(start)
	fromFirst := deployTime - buildTime
	before := map[string]int{} // what the deploy asked of AWS before its first control-plane call
	for _, r := range deployReqs {
		if r.Time.Before(firstCall) {
			before[r.Service+":"+r.Operation]++
		}
	}

	var rollbackTime time.Duration
	var rollbackReqs []sandbox.Request
	if withRollback {
		// The rollback: a release baking its first step, rolled back by a person while its deploy runs.
		f.setBake("1h")
		f.stampAll("3")
		done := make(chan int)
		go func() { code, _, _ := f.aviary("deploy", "-e", "production"); done <- code }()
		r := benchWait(b, open, n, "the first step to bake", func(r *release.Release) bool { return r.Phase == release.Shifting && !r.StepStarted.IsZero() })
		time.Sleep(time.Second)
		f.srv.ResetRequests()
		start = time.Now()
		if code, out, errs := f.aviary("rollback", r.ID, "--reason", "benchmark"); code != 0 {
			b.Fatalf("rollback: %d\n%s\n%s", code, out, errs)
		}
		rollbackTime = time.Since(start)
		rollbackReqs = f.srv.Requests()
		<-done
	}
	b.StopTimer()

	dCalls, dThrottled, dOps := controlPlane(deployReqs)
	rCalls, rThrottled, _ := controlPlane(rollbackReqs)
	bound := func(calls int) time.Duration { return time.Duration(float64(calls) / quota * float64(time.Second)) }
	dBound, rBound := bound(dCalls), bound(rCalls)
	b.ReportMetric(deployTime.Seconds()/dBound.Seconds(), "deploy/bound")
	b.ReportMetric(fromFirst.Seconds()/dBound.Seconds(), "deploy-from-first-call/bound")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var tbl strings.Builder
	what := "canary 10% → 50% → 100% with bakes 0"
	if !withRollback {
		what = "all at once"
	}
	fmt.Fprintf(&tbl, "\n%d functions (%s), sandbox control-plane quota %.0f requests/s, %s, store %s\n", n, zips, quota, what, storeName)
	fmt.Fprintf(&tbl, "%-26s %14s %10s %14s %10s %7s\n", "", "control calls", "throttled", "bound (÷15/s)", "measured", "ratio")
	row := func(name string, calls, throttled int, bound, took time.Duration) {
		fmt.Fprintf(&tbl, "%-26s %14d %10d %14s %10s %7.2f\n", name, calls, throttled, bound.Round(10*time.Millisecond), took.Round(10*time.Millisecond), took.Seconds()/bound.Seconds())
	}
	row("deploy (with build)", dCalls, dThrottled, dBound, deployTime)
	row("deploy (from first call)", dCalls, dThrottled, dBound, fromFirst)
	if withRollback {
		row("rollback from mid-step", rCalls, rThrottled, rBound, rollbackTime)
	}
	fmt.Fprintf(&tbl, "(the deploy spent %s building and packaging %d zips before its first control-plane call)\n", buildTime.Round(10*time.Millisecond), n)
	fmt.Fprintf(&tbl, "calls before the first control-plane call: %v\n", before)
	fmt.Fprintf(&tbl, "writes per changed function in the release:")
	for _, op := range []string{"UpdateFunctionCode", "PublishVersion", "UpdateAlias", "CreateAlias"} {
		fmt.Fprintf(&tbl, " %s %.2f", op, float64(dOps[op])/float64(n))
	}
	fmt.Fprintf(&tbl, "\nreads in the release: GetAlias %.2f per function (GetFunction, which has its own quota, %.2f; GetFunctionConfiguration %.2f)\n",
		float64(dOps["GetAlias"])/float64(n), float64(dOps["GetFunction"])/float64(n), float64(dOps["GetFunctionConfiguration"])/float64(n))
	fmt.Fprintf(&tbl, "Lambda calls of the deploy by operation: %v\n", dOps)
	fmt.Fprintf(&tbl, "test process heap in use at the end %d MB, total allocated %d MB\n", ms.HeapInuse>>20, ms.TotalAlloc>>20)
	fmt.Fprint(os.Stdout, tbl.String())
}

// benchWait polls the newest release until ok says so, allowing the time n functions take at
// the quota.
func benchWait(b *testing.B, open func() (store.Store, error), n int, what string, ok func(*release.Release) bool) *release.Release {
	b.Helper()
	deadline := time.Now().Add(60*time.Second + time.Duration(n)*time.Second)
	for time.Now().Before(deadline) {
		st, err := open()
		if err == nil {
			rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "production", Limit: 1})
			if _, isSQLite := st.(*sqlite.Store); isSQLite {
				st.Close()
			}
			if err == nil && len(rs) > 0 && ok(rs[0]) {
				return rs[0]
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("timed out waiting for %s", what)
	return nil
}

// controlPlane counts the answered control-plane calls (by operation) and the throttled ones.
func controlPlane(reqs []sandbox.Request) (calls, throttled int, ops map[string]int) {
	ops = map[string]int{}
	for _, r := range reqs {
		if r.Service != "lambda" {
			continue
		}
		if r.Status == 429 {
			throttled++
			continue
		}
		ops[r.Operation]++
		if r.ControlPlane {
			calls++
		}
	}
	return calls, throttled, ops
}
