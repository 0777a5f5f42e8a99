package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// BenchmarkFleet100 ships a 100-function fleet through the sandbox at AWS's control-plane quota
// (15 requests/s) and measures a canary release (10% → 50% → promote, bakes 0) and a rollback
// from mid-step, each against its bound: the control-plane calls it made ÷ 15 per second. It
// prints a table.
//
//	go test ./e2e -run '^$' -bench Fleet100 -benchtime 1x
func BenchmarkFleet100(b *testing.B) {
	const n, quota = 100, 15.0
	f := newFleet(b, n, sandbox.Options{ControlRate: -1},
		"      canary:\n        - weight: 10%\n          bake: 0s\n        - weight: 50%\n          bake: 0s")
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
	// The deploy's time on AWS runs from its first control-plane call (after building and
	// packaging locally, which the quota does not bound) to its end.
	var firstCall time.Time
	for _, r := range deployReqs {
		if r.ControlPlane && (firstCall.IsZero() || r.Time.Before(firstCall)) {
			firstCall = r.Time
		}
	}
	buildTime := firstCall.Sub(start)
	deployTime -= buildTime

	// The rollback: a release baking its first step, rolled back by a person while its deploy runs.
	f.setBake("1h")
	f.stampAll("3")
	done := make(chan int)
	go func() { code, _, _ := f.aviary("deploy", "-e", "production"); done <- code }()
	r := f.waitFor("the first step to bake", func(r *release.Release) bool { return r.Phase == release.Shifting && !r.StepStarted.IsZero() })
	time.Sleep(time.Second)
	f.srv.ResetRequests()
	start = time.Now()
	if code, out, errs := f.aviary("rollback", r.ID, "--reason", "benchmark"); code != 0 {
		b.Fatalf("rollback: %d\n%s\n%s", code, out, errs)
	}
	rollbackTime := time.Since(start)
	rollbackReqs := f.srv.Requests()
	<-done
	b.StopTimer()

	dCalls, dThrottled, dOps := controlPlane(deployReqs)
	rCalls, rThrottled, _ := controlPlane(rollbackReqs)
	dBound := time.Duration(float64(dCalls) / quota * float64(time.Second))
	rBound := time.Duration(float64(rCalls) / quota * float64(time.Second))
	b.ReportMetric(deployTime.Seconds()/dBound.Seconds(), "deploy/bound")
	b.ReportMetric(rollbackTime.Seconds()/rBound.Seconds(), "rollback/bound")
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n%d functions, sandbox control-plane quota %.0f requests/s, canary 10%% → 50%% → 100%% with bakes 0\n", n, quota)
	fmt.Fprintf(&tbl, "%-10s %14s %10s %14s %10s %7s\n", "", "control calls", "throttled", "bound (÷15/s)", "measured", "ratio")
	fmt.Fprintf(&tbl, "%-10s %14d %10d %14s %10s %7.2f\n", "deploy", dCalls, dThrottled, dBound.Round(10*time.Millisecond), deployTime.Round(10*time.Millisecond), deployTime.Seconds()/dBound.Seconds())
	fmt.Fprintf(&tbl, "%-10s %14d %10d %14s %10s %7.2f\n", "rollback", rCalls, rThrottled, rBound.Round(10*time.Millisecond), rollbackTime.Round(10*time.Millisecond), rollbackTime.Seconds()/rBound.Seconds())
	fmt.Fprintf(&tbl, "(the deploy also spent %s building and packaging 100 zips locally, before its first call)\n", buildTime.Round(10*time.Millisecond))
	fmt.Fprintf(&tbl, "writes per changed function in the release:")
	for _, op := range []string{"UpdateFunctionCode", "PublishVersion", "UpdateAlias", "CreateAlias"} {
		fmt.Fprintf(&tbl, " %s %.2f", op, float64(dOps[op])/n)
	}
	fmt.Fprintf(&tbl, "\nreads in the release: GetAlias %.2f per function (GetFunction, which has its own quota, %.2f)\n", float64(dOps["GetAlias"])/n, float64(dOps["GetFunction"])/n)
	fmt.Fprint(os.Stdout, tbl.String())
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
