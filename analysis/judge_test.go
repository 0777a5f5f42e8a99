package analysis

import (
	"math"
	"strings"
	"testing"
)

func judged(cfg Config, bakeOver bool, ws ...Window) Verdict {
	j := NewJudge(cfg)
	for _, w := range ws {
		j.Add(w)
	}
	return j.Verdict(bakeOver)
}

func TestJudgeTable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		bakeOver bool
		windows  []Window
		want     Result
		reason   string
	}{
		{"no data at all", Config{}, true, nil, Inconclusive, "too little traffic"},
		{"no data yet is not a failure", Config{}, false, nil, Pass, "no regression so far"},
		{"tiny traffic", Config{}, true, []Window{{Weight: 0.1, CanaryN: 5, BaseN: 45, BaseErrors: 1}}, Inconclusive, "ran 5 times"},
		{"healthy with plenty of traffic", Config{}, true, []Window{{Weight: 0.1, CanaryN: 6000, CanaryErrors: 55, BaseN: 54000, BaseErrors: 560}}, Pass, "at most"},
		{"clear regression", Config{}, false, []Window{{Weight: 0.1, CanaryN: 1000, CanaryErrors: 60, BaseN: 9000, BaseErrors: 90}}, Fail, "out of proportion"},
		{"shared incident hits both", Config{}, true, []Window{{Weight: 0.1, CanaryN: 6000, CanaryErrors: 240, BaseN: 54000, BaseErrors: 2170}}, Pass, "no regression"},
		{"catastrophe trips the ceiling", Config{}, false, []Window{{Weight: 0.1, CanaryN: 20, CanaryErrors: 15, BaseN: 180}}, Fail, "above the 50% ceiling"},
		{"throttled canary trips the ceiling", Config{}, false, []Window{{Weight: 0.1, CanaryN: 10, CanaryThrottles: 30, BaseN: 360}}, Fail, "throttled 30 of 40"},
		{"a clean baseline and a few canary errors", Config{}, false, []Window{{Weight: 0.1, CanaryN: 300, CanaryErrors: 6, BaseN: 2700}}, Fail, "out of proportion"},
		{"slow canary, latency judged", Config{Latency: true}, false, []Window{{Weight: 0.1, CanaryN: 1000, CanarySlow: 150, BaseN: 9000, BaseSlow: 450}}, Fail, "slow out of proportion"},
		{"slow canary, latency not judged", Config{}, true, []Window{{Weight: 0.1, CanaryN: 6000, CanarySlow: 900, BaseN: 54000, BaseSlow: 2700, BaseErrors: 540, CanaryErrors: 60}}, Pass, "no regression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judged(tc.cfg, tc.bakeOver, tc.windows...)
			if v.Result != tc.want || !strings.Contains(v.Reason, tc.reason) {
				t.Errorf("%s: %q; want %s containing %q (numbers %v)", v.Result, v.Reason, tc.want, tc.reason, v.Numbers)
			}
			want := math.Log(100)
			if tc.cfg.Latency {
				want = math.Log(200) // two tests share α
			}
			if math.Abs(v.Numbers["threshold"]-want) > 1e-12 {
				t.Errorf("threshold %v, want %v", v.Numbers["threshold"], want)
			}
		})
	}
}

// The evidence is the same whether the outcomes are looked at one by one, in windows, or with a
// window arriving late: looking often costs nothing.
func TestEvidenceIsOrderAndLookFree(t *testing.T) {
	all := NewSplitTest(0.01, 0.1)
	all.Observe(0.1, 12, 90)
	all.Observe(0.5, 30, 40)
	oneByOne := NewSplitTest(0.01, 0.1)
	for range 90 {
		oneByOne.Observe(0.1, 0, 1)
	}
	for range 40 {
		oneByOne.Observe(0.5, 0, 1)
	}
	for range 12 {
		oneByOne.Observe(0.1, 1, 0)
	}
	for range 30 {
		oneByOne.Observe(0.5, 1, 0)
	}
	late := NewSplitTest(0.01, 0.1)
	late.Observe(0.5, 30, 40) // the later step's window first, the earlier one late
	late.Observe(0.1, 12, 90)
	a, b, c := all.LogEvidence(), oneByOne.LogEvidence(), late.LogEvidence()
	if math.Abs(a-b) > 1e-9 || math.Abs(a-c) > 1e-9 {
		t.Errorf("evidence %v, %v, %v: should not depend on how or when it was looked at", a, b, c)
	}
}

// Evidence gathered at one weight carries into a step at another.
func TestEvidenceCarriesAcrossWeights(t *testing.T) {
	// A canary about 2.5× worse: 12 of 60 errors at 10% (where 6 would be fair), then 20 of 27
	// at 50% (where 13 or 14 would be). Neither step alone is enough; together they are.
	first := NewSplitTest(0.01, 0.1)
	first.Observe(0.1, 12, 48)
	second := NewSplitTest(0.01, 0.1)
	second.Observe(0.5, 20, 7)
	both := NewSplitTest(0.01, 0.1)
	both.Observe(0.1, 12, 48)
	both.Observe(0.5, 20, 7)
	if first.Rejected() || second.Rejected() || !both.Rejected() {
		t.Errorf("evidence: first step %.2f, second %.2f, both %.2f (threshold %.2f)", first.LogEvidence(), second.LogEvidence(), both.LogEvidence(), both.Threshold())
	}
}

// A canary as good as its baseline, looked at after every outcome for a very long bake, is
// rejected at most α of the time (Ville's inequality; here on the exact null with fixed seeds).
func TestRepeatedLooksKeepAlpha(t *testing.T) {
	o := run(scenario{"null", 0.01, 0.01}, 500, 7, perInvocation)
	if got := o.within(simDuration); got > 0.02 {
		t.Errorf("rejected %.1f%% of healthy canaries looked at after every error", 100*got)
	}
}

func TestRhoUpperBound(t *testing.T) {
	s := NewSplitTest(0.01, 0.1)
	if !math.IsInf(s.RhoUpper(), 1) {
		t.Error("an upper bound without data")
	}
	s.Observe(0.1, 50, 450) // exactly the null split, plenty of data
	if up := s.RhoUpper(); up < 1 || up > 1.6 {
		t.Errorf("upper bound %v for a canary matching its baseline", up)
	}
	if est := s.RhoEstimate(); math.Abs(est-1) > 1e-9 {
		t.Errorf("estimate %v, want 1", est)
	}
	if q := betaQuantile(0.5, 2, 2); math.Abs(q-0.5) > 1e-9 {
		t.Errorf("median of Beta(2,2) = %v", q)
	}
	if v := regIncBeta(0.3, 1, 1); math.Abs(v-0.3) > 1e-9 {
		t.Errorf("I_0.3(1,1) = %v", v)
	}
}

// With latency judged, a function runs two tests; they share its α, so that a canary no worse on
// either is rolled back with probability at most α, not 2α.
func TestTwoTestsShareAlpha(t *testing.T) {
	const alpha = 0.01
	// Errors whose evidence lies between 1/α and 2/α: enough for one test at α, not for one of
	// two sharing it.
	win := Window{Weight: 0.1, CanaryN: 1000, CanaryErrors: 7, BaseN: 9000, BaseErrors: 9, BaseSlow: 450, CanarySlow: 50}
	alone := judged(Config{Alpha: alpha}, false, win)
	if alone.Result != Fail || alone.Numbers["logEvidence"] >= math.Log(2/alpha) {
		t.Fatalf("the test window: %v, %q, evidence %v (want between %v and %v)", alone.Result, alone.Reason, alone.Numbers["logEvidence"], math.Log(1/alpha), math.Log(2/alpha))
	}
	both := judged(Config{Alpha: alpha, Latency: true}, false, win)
	if both.Result != Pass {
		t.Errorf("with latency judged too: %v, %q", both.Result, both.Reason)
	}
	if both.Numbers["threshold"] != math.Log(2/alpha) || both.Numbers["latencyThreshold"] != math.Log(2/alpha) || both.Numbers["alpha"] != alpha {
		t.Errorf("numbers %v", both.Numbers)
	}
}

// The latency test has a power check too, at latency.detect: a bake whose canary ran too few
// times for its slow count to show a Detect-fold rise is Inconclusive, though the errors test
// alone would have had the traffic.
func TestLatencyPower(t *testing.T) {
	// A clean baseline: the errors test's power check assumes the 0.1% floor. 2500 canary
	// invocations are plenty to see a 50-fold rise of it; slow invocations at 5% are far
	// more common, but a 1.05-fold rise of them needs far more traffic than that.
	win := Window{Weight: 0.1, CanaryN: 2500, CanarySlow: 125, BaseN: 22500, BaseSlow: 1125}
	cfg := Config{Detect: 50, Latency: true, LatencyDetect: 1.05}
	v := judged(cfg, true, win)
	if v.Result != Inconclusive || !strings.Contains(v.Reason, "slow") {
		t.Errorf("a 1.05× latency rise at 2500 invocations: %v, %q (numbers %v)", v.Result, v.Reason, v.Numbers)
	}
	cfg.LatencyDetect = 3
	if v := judged(cfg, true, win); v.Result != Pass {
		t.Errorf("a 3× latency rise at 2500 invocations: %v, %q (numbers %v)", v.Result, v.Reason, v.Numbers)
	}
	cfg.Latency = false
	cfg.LatencyDetect = 1.05
	if v := judged(cfg, true, win); v.Result != Pass {
		t.Errorf("latency not judged: %v, %q", v.Result, v.Reason)
	}
}

func TestResultNames(t *testing.T) {
	for _, r := range []Result{Pass, Fail, Inconclusive} {
		b, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Result
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%v: round trip gave %v, %v", r, back, err)
		}
	}
	if got, want := Result(7).String(), "result(7)"; got != want {
		t.Errorf("an unknown result: %q, want %q", got, want)
	}
	var r Result
	if err := r.UnmarshalText([]byte("maybe")); err == nil {
		t.Error("read an unknown result's name")
	}
}
