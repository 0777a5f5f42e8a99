package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
)

// The simulation (simulate.go): a canary at weight 0.1 under 20 requests/s for 60 minutes, with
// given error rates for baseline and canary, judged three ways — the judge on per-invocation data,
// the judge on 1-minute data, and a CodeDeploy-style alarm (the canary's error rate above 5% in a
// 60-second period). Each run reports when it rolled back, if it did.

type scenario struct {
	name           string
	baseP, canaryP float64
}

const (
	simRate     = 20.0 // requests per second, both versions
	simWeight   = 0.1
	simDuration = 3600.0 // seconds
	simAlpha    = 0.01
)

func (s scenario) sim() Scenario {
	return Scenario{Rate: simRate, Weight: simWeight, BaseP: s.baseP, CanaryP: s.canaryP, Alpha: simAlpha, Duration: simDuration}
}

func perInvocation(s scenario, rng *rand.Rand) float64 { return SimulatePerInvocation(s.sim(), rng) }

func perMinute(s scenario, rng *rand.Rand, alarm bool) float64 {
	if alarm {
		return SimulateAlarm(s.sim(), 60, 0.05, rng)
	}
	return SimulatePerPeriod(s.sim(), 60, rng)
}

type outcome struct{ times []float64 }

func (o outcome) within(sec float64) float64 {
	n := 0
	for _, t := range o.times {
		if t <= sec {
			n++
		}
	}
	return float64(n) / float64(len(o.times))
}

func (o outcome) median() float64 {
	s := append([]float64(nil), o.times...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func run(s scenario, runs int, seed uint64, judge func(scenario, *rand.Rand) float64) outcome {
	rng := rand.New(rand.NewPCG(seed, seed*7919+1))
	o := outcome{}
	for range runs {
		o.times = append(o.times, judge(s, rng))
	}
	return o
}

var methods = []struct {
	name  string
	judge func(scenario, *rand.Rand) float64
}{
	{"judge, per invocation", perInvocation},
	{"judge, 1-minute data", func(s scenario, r *rand.Rand) float64 { return perMinute(s, r, false) }},
	{"alarm >5% per minute", func(s scenario, r *rand.Rand) float64 { return perMinute(s, r, true) }},
}

func dur(sec float64) string {
	if math.IsInf(sec, 1) {
		return "never"
	}
	if sec < 120 {
		return fmt.Sprintf("%.0fs", sec)
	}
	return fmt.Sprintf("%.1fm", sec/60)
}

// BenchmarkJudge prints how the judge compares with a CodeDeploy-style alarm (not a timed
// benchmark: it runs the simulation once and prints the table).
//
//	go test ./analysis -run '^$' -bench Judge -benchtime 1x
func BenchmarkJudge(b *testing.B) {
	const runs = 2000
	var out strings.Builder
	fmt.Fprintf(&out, "\nCanary weight %.0f%%, %.0f requests/s, α %.0f%%, %d simulated releases per row\n", 100*simWeight, simRate, 100*simAlpha, runs)
	fmt.Fprintf(&out, "%-36s %-24s %12s %10s %10s %10s\n", "scenario", "judged by", "rolled back", "median", "≤5 min", "≤10 min")
	for i, s := range []scenario{
		{"healthy (1% both), 60 min", 0.01, 0.01},
		{"shared incident (4% both), 60 min", 0.04, 0.04},
		{"5× regression (1% → 5%)", 0.01, 0.05},
		{"20× regression (1% → 20%)", 0.01, 0.20},
		{"2× regression (1% → 2%)", 0.01, 0.02},
		{"5× from 0.2% (0.2% → 1%)", 0.002, 0.01},
	} {
		for j, m := range methods {
			o := run(s, runs, uint64(100*i+j+1), m.judge)
			fmt.Fprintf(&out, "%-36s %-24s %11.1f%% %10s %9.1f%% %9.1f%%\n", s.name, m.name, 100*o.within(simDuration), dur(o.median()), 100*o.within(300), 100*o.within(600))
		}
	}
	fmt.Fprint(os.Stdout, out.String())
}

// The simulation's goals, checked with fixed seeds (so the test is repeatable): healthy and
// shared-incident canaries are rolled back at most α of the time; regressions are caught as fast
// as the issue asks.
func TestJudgeOnSimulatedReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates thousands of releases")
	}
	const runs = 1000
	for _, tc := range []struct {
		s      scenario
		check  func(o outcome) bool
		wanted string
	}{
		{scenario{"healthy", 0.01, 0.01}, func(o outcome) bool { return o.within(simDuration) <= 0.015 }, "≤1% false rollbacks (1.5% sampling slack)"},
		{scenario{"shared incident", 0.04, 0.04}, func(o outcome) bool { return o.within(simDuration) <= 0.015 }, "≤1% false rollbacks"},
		{scenario{"5×", 0.01, 0.05}, func(o outcome) bool { return o.median() <= 90 && o.within(300) >= 0.99 }, "median ≤90s, ≥99% within 5 min"},
		{scenario{"20×", 0.01, 0.20}, func(o outcome) bool { return o.median() <= 15 }, "median ≤15s"},
		{scenario{"2×", 0.01, 0.02}, func(o outcome) bool { return o.within(600) >= 0.35 }, "≥35% within 10 min"},
		{scenario{"5× from 0.2%", 0.002, 0.01}, func(o outcome) bool { return o.within(600) >= 0.70 }, "≥70% within 10 min"},
	} {
		o := run(tc.s, runs, 42, perInvocation)
		if !tc.check(o) {
			t.Errorf("%s: rolled back %.1f%%, median %s, ≤5m %.1f%%, ≤10m %.1f%%; want %s",
				tc.s.name, 100*o.within(simDuration), dur(o.median()), 100*o.within(300), 100*o.within(600), tc.wanted)
		}
	}
}
