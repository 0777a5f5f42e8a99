package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/analysis"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/release"
)

// BenchmarkHealthOnSandbox runs releases through the whole pipeline — the sandbox executing the
// function and writing its logs and metrics, the checker reading them, the engine rolling back —
// and sets each scenario's detection time against the simulation's at the same traffic (the
// statistical bound: what the judge would need on perfect, instant data); the difference is what
// reading logs and metrics and acting on the verdict add. Traffic is 200 requests/s, ten times the
// simulation's 20, so that minutes become seconds; the canary takes 10% and both versions fail 1%
// of requests (a flaky dependency). It prints a table.
//
//	go test ./e2e -run '^$' -bench HealthOnSandbox -benchtime 1x
func BenchmarkHealthOnSandbox(b *testing.B) {
	const rate, healthyBake = 200.0, 30 * time.Second
	f := newFleet(b, 1, judged, "      canary:\n        - weight: 10%\n          bake: 10m")
	f.appendManifest("\n    checks:\n      errors: {alpha: 1%, detect: 5}\n      metrics: {period: 1s}\n      max_bake: 10m\n")
	ctx := context.Background()
	fn := f.fn(f.names[0])
	if err := lambda.NewFunctionActiveV2Waiter(f.lambda).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)}, 30*time.Second); err != nil {
		b.Fatal(err)
	}
	if _, err := f.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(fn), LoggingConfig: &lambdatypes.LoggingConfig{LogFormat: lambdatypes.LogFormatJson},
	}); err != nil {
		b.Fatal(err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(f.lambda).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)}, 30*time.Second); err != nil {
		b.Fatal(err)
	}
	f.stampAll("1")
	f.setBake("0s")
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		b.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	root, err := examplefn.Root(".")
	if err != nil {
		b.Fatal(err)
	}
	stop := f.load(rate, `{"action":"flaky","rate":0.01}`)
	defer stop()
	time.Sleep(3 * time.Second) // warm environments for both versions' traffic

	type row struct {
		name          string
		canaryP       float64
		rolledBack    int
		times         []float64
		simMedian     float64
		simRolledBack float64
		wall          time.Duration
		runs          int
	}
	var rows []row
	stamp := 1
	for _, sc := range []struct {
		name    string
		canaryP float64
		runs    int
	}{{"20× regression (1% → 20%)", 0.20, 16}, {"5× regression (1% → 5%)", 0.05, 16}, {"healthy (1% both)", 0.01, 8}} {
		r := row{name: sc.name, canaryP: sc.canaryP, runs: sc.runs}
		rowStart := time.Now()
		healthy := sc.canaryP <= 0.01
		var bootstrap []byte
		if !healthy {
			// The bad flavour fails badRate of requests besides the flaky 1%.
			bad := (sc.canaryP - 0.01) / 0.99
			zip, err := examplefn.BuildWith(ctx, root, "./examples/hello", map[string]string{"flavor": "bad", "badRate": fmt.Sprint(bad)})
			if err != nil {
				b.Fatal(err)
			}
			if bootstrap, err = unzipBootstrap(zip); err != nil {
				b.Fatal(err)
			}
			f.setBake("10m")
		} else {
			f.setBake(healthyBake.String())
		}
		for range sc.runs {
			stamp++
			f.stamp(f.names[0], fmt.Sprint(stamp))
			if bootstrap != nil {
				if err := os.WriteFile(filepath.Join(f.dir, "functions", f.names[0], "bootstrap"), bootstrap, 0o755); err != nil {
					b.Fatal(err)
				}
			}
			code, out, errs := f.aviary("deploy", "-e", "production")
			rel := f.latest()
			switch {
			case code == 3 && len(rel.Health.Steps) > 0 && rel.Health.Steps[0].Verdict != nil && rel.Health.Steps[0].Verdict.Result == release.Fail:
				st := rel.Health.Steps[0]
				r.rolledBack++
				r.times = append(r.times, st.Ended.Sub(st.Started).Seconds())
			case code == 0:
				r.times = append(r.times, math.Inf(1))
				if healthy {
					// Back to a fresh baseline for the next run.
					continue
				}
			default:
				b.Fatalf("%s: exit %d\n%s\n%s", sc.name, code, out, errs)
			}
		}
		r.wall = time.Since(rowStart)
		// The simulation, at the same traffic and for as long as the runs could bake.
		dur := 600.0
		if healthy {
			dur = healthyBake.Seconds()
		}
		rng := rand.New(rand.NewPCG(7, uint64(100*sc.canaryP)))
		var sim []float64
		rolled := 0
		for range 2000 {
			t := analysis.SimulatePerInvocation(analysis.Scenario{Rate: rate, Weight: 0.1, BaseP: 0.01, CanaryP: sc.canaryP, Alpha: 0.01, Duration: dur}, rng)
			sim = append(sim, t)
			if !math.IsInf(t, 1) {
				rolled++
			}
		}
		r.simMedian, r.simRolledBack = median(sim), float64(rolled)/2000
		rows = append(rows, r)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nReleases on the sandbox: canary 10%% of %.0f requests/s, 1%% errors in both versions, α 1%%\n", rate)
	fmt.Fprintf(&out, "%-28s %12s %14s %16s %8s %16s %10s\n", "scenario", "rolled back", "median caught", "simulated median", "ratio", "pipeline adds", "row took")
	for _, r := range rows {
		m := median(r.times)
		ratio, adds := "-", "-"
		if !math.IsInf(m, 1) && !math.IsInf(r.simMedian, 1) {
			ratio = fmt.Sprintf("%.2f", m/r.simMedian)
			adds = fmt.Sprintf("%+.1fs", m-r.simMedian)
		}
		fmt.Fprintf(&out, "%-28s %5d of %-4d %14s %16s %8s %16s %10s\n", r.name, r.rolledBack, r.runs, secs(m), secs(r.simMedian), ratio, adds, r.wall.Round(time.Second))
		if r.canaryP <= 0.01 {
			fmt.Fprintf(&out, "%-28s %12s (simulated: %.1f%% of releases baking %s)\n", "", "", 100*r.simRolledBack, healthyBake)
		}
	}
	fmt.Fprint(os.Stdout, out.String())
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.Inf(1)
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func secs(s float64) string {
	if math.IsInf(s, 1) {
		return "never"
	}
	return fmt.Sprintf("%.1fs", s)
}
