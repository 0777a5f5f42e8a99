package analysis

import (
	"fmt"
	"math"
)

// Result is a verdict: the one result type of Aviary's health judgements (the release engine's
// too). It is written as its name, in JSON and in text.
type Result int

// Results.
const (
	Pass Result = iota
	Fail
	Inconclusive
)

func (r Result) String() string {
	switch r {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case Inconclusive:
		return "inconclusive"
	}
	return fmt.Sprintf("result(%d)", int(r))
}

// MarshalText writes a result as its name.
func (r Result) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a result's name.
func (r *Result) UnmarshalText(b []byte) error {
	switch string(b) {
	case "pass":
		*r = Pass
	case "fail":
		*r = Fail
	case "inconclusive":
		*r = Inconclusive
	default:
		return fmt.Errorf("unknown health result %q", b)
	}
	return nil
}

// Window is what was observed of one function's canary and baseline over an interval in which the
// canary's weight was constant. Slow counts invocations slower than the baseline's reference
// latency; they are only meaningful when a latency check is configured.
type Window struct {
	Weight          float64
	CanaryN         int
	CanaryErrors    int
	CanarySlow      int
	CanaryThrottles int
	BaseN           int
	BaseErrors      int
	BaseSlow        int
}

// Config tunes the judge.
type Config struct {
	// Alpha bounds the chance of rolling back a canary that is no worse (default 1%): on errors
	// and, when latency is judged too, on either (each test gets half).
	Alpha float64
	// DesignWeight is the canary weight the test's prior is shaped for (default 10%).
	DesignWeight float64
	// Detect is the regression (ratio of error rates) a bake must be able to see: a step whose
	// canary ran too little to see it is Inconclusive (default 5).
	Detect float64
	// MinRate floors the baseline's bad-outcome rate in that power check, so that a clean
	// baseline does not demand infinite traffic (default 0.1%): a canary with no errors passes
	// once it ran enough to have shown a Detect-fold rise of MinRate (see [NeededInvocations]).
	MinRate float64
	// Latency turns on the split test on slow invocations.
	Latency bool
	// LatencyDetect is the ratio of slow-invocation rates the latency test must be able to see:
	// a step whose canary ran too little to see it is Inconclusive (default 3).
	LatencyDetect float64
	// MaxErrorRate and MaxThrottleRate are catastrophic-failure breakers on the canary alone,
	// once it has CeilingMinN invocations (defaults 50%, 50%, 20).
	MaxErrorRate    float64
	MaxThrottleRate float64
	CeilingMinN     int
}

func (c *Config) defaults() {
	if c.Alpha <= 0 || c.Alpha >= 1 {
		c.Alpha = 0.01
	}
	if c.DesignWeight <= 0 || c.DesignWeight >= 1 {
		c.DesignWeight = 0.1
	}
	if c.Detect <= 1 {
		c.Detect = 5
	}
	if c.LatencyDetect <= 1 {
		c.LatencyDetect = 3
	}
	if c.MinRate <= 0 {
		c.MinRate = 0.001
	}
	if c.MaxErrorRate <= 0 {
		c.MaxErrorRate = 0.5
	}
	if c.MaxThrottleRate <= 0 {
		c.MaxThrottleRate = 0.5
	}
	if c.CeilingMinN <= 0 {
		c.CeilingMinN = 20
	}
}

// Judge accumulates one function's windows across a release and judges them.
type Judge struct {
	cfg     Config
	errors  *SplitTest
	slow    *SplitTest
	windows []Window
	total   Window
}

// NewJudge starts a judge. Its tests share Alpha equally (Bonferroni), so that a canary no worse
// than its baseline is rolled back by any of them with probability at most Alpha.
func NewJudge(cfg Config) *Judge {
	cfg.defaults()
	alpha := cfg.Alpha
	if cfg.Latency {
		alpha /= 2
	}
	return &Judge{cfg: cfg, errors: NewSplitTest(alpha, cfg.DesignWeight), slow: NewSplitTest(alpha, cfg.DesignWeight)}
}

// Add takes a window of observations.
func (j *Judge) Add(w Window) {
	j.windows = append(j.windows, w)
	j.errors.Observe(w.Weight, float64(w.CanaryErrors), float64(w.BaseErrors))
	if j.cfg.Latency {
		j.slow.Observe(w.Weight, float64(w.CanarySlow), float64(w.BaseSlow))
	}
	t := &j.total
	t.CanaryN += w.CanaryN
	t.CanaryErrors += w.CanaryErrors
	t.CanarySlow += w.CanarySlow
	t.CanaryThrottles += w.CanaryThrottles
	t.BaseN += w.BaseN
	t.BaseErrors += w.BaseErrors
	t.BaseSlow += w.BaseSlow
}

// Verdict is a judgement and the numbers behind it.
type Verdict struct {
	Result  Result
	Reason  string
	Numbers map[string]float64
}

func rate(bad, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(bad) / float64(n)
}

// Verdict judges what was seen. Before the bake is over only a failure counts; after it, a canary
// that ran too little for the test to have seen a Detect-fold regression is Inconclusive.
func (j *Judge) Verdict(bakeOver bool) Verdict {
	t := j.total
	n := map[string]float64{
		"canaryInvocations": float64(t.CanaryN), "canaryErrors": float64(t.CanaryErrors), "canaryErrorRate": rate(t.CanaryErrors, t.CanaryN),
		"baselineInvocations": float64(t.BaseN), "baselineErrors": float64(t.BaseErrors), "baselineErrorRate": rate(t.BaseErrors, t.BaseN),
		"canaryThrottles": float64(t.CanaryThrottles),
		"logEvidence":     j.errors.LogEvidence(), "threshold": j.errors.Threshold(), "alpha": j.cfg.Alpha,
	}
	if up := j.errors.RhoUpper(); !math.IsInf(up, 1) {
		n["rhoUpper"] = up
	}
	if j.cfg.Latency {
		n["canarySlow"], n["baselineSlow"] = float64(t.CanarySlow), float64(t.BaseSlow)
		n["latencyLogEvidence"], n["latencyThreshold"] = j.slow.LogEvidence(), j.slow.Threshold()
	}
	if t.CanaryN >= j.cfg.CeilingMinN && rate(t.CanaryErrors, t.CanaryN) > j.cfg.MaxErrorRate {
		return Verdict{Fail, fmt.Sprintf("the canary failed %d of %d invocations (%.1f%%), above the %.0f%% ceiling",
			t.CanaryErrors, t.CanaryN, 100*rate(t.CanaryErrors, t.CanaryN), 100*j.cfg.MaxErrorRate), n}
	}
	if attempts := t.CanaryN + t.CanaryThrottles; attempts >= j.cfg.CeilingMinN && rate(t.CanaryThrottles, attempts) > j.cfg.MaxThrottleRate {
		return Verdict{Fail, fmt.Sprintf("the canary was throttled %d of %d times, above the %.0f%% ceiling",
			t.CanaryThrottles, attempts, 100*j.cfg.MaxThrottleRate), n}
	}
	if j.errors.Rejected() {
		return Verdict{Fail, fmt.Sprintf("the canary's errors are out of proportion: %d errors in %d invocations (%.2f%%) against the baseline's %d in %d (%.2f%%); likelihood ratio %s ≥ %s (1/α)",
			t.CanaryErrors, t.CanaryN, 100*rate(t.CanaryErrors, t.CanaryN), t.BaseErrors, t.BaseN, 100*rate(t.BaseErrors, t.BaseN),
			Ratio(j.errors.LogEvidence()), Ratio(j.errors.Threshold())), n}
	}
	if j.cfg.Latency && j.slow.Rejected() {
		return Verdict{Fail, fmt.Sprintf("the canary is slow out of proportion: %d of %d invocations slower than the baseline's reference against the baseline's %d of %d; likelihood ratio %s ≥ %s (1/α)",
			t.CanarySlow, t.CanaryN, t.BaseSlow, t.BaseN, Ratio(j.slow.LogEvidence()), Ratio(j.slow.Threshold())), n}
	}
	if !bakeOver {
		return Verdict{Pass, "no regression so far", n}
	}
	p := j.cfg.FlooredRate(rate(t.BaseErrors, t.BaseN))
	expected := j.errors.ExpectedLogEvidence(j.cfg.Detect, p, j.windows)
	n["powerLogEvidence"] = expected
	if expected < j.errors.Threshold() {
		return Verdict{Inconclusive, fmt.Sprintf("too little traffic to judge: the canary ran %d times, too few to see a %g× regression of a %.2f%% error rate (it would expect a likelihood ratio of %s; %s is needed)",
			t.CanaryN, j.cfg.Detect, 100*p, Ratio(expected), Ratio(j.errors.Threshold())), n}
	}
	if j.cfg.Latency {
		// The same check for the latency test, at LatencyDetect: the baseline's share of slow
		// invocations (floored, and capped so that the canary's stays a share).
		q := math.Min(math.Max(rate(t.BaseSlow, t.BaseN), j.cfg.MinRate), 1/j.cfg.LatencyDetect)
		expected := j.slow.ExpectedLogEvidence(j.cfg.LatencyDetect, q, j.windows)
		n["latencyPowerLogEvidence"] = expected
		if expected < j.slow.Threshold() {
			return Verdict{Inconclusive, fmt.Sprintf("too little traffic to judge latency: the canary ran %d times, too few to see a %g× rise in invocations slower than the baseline's reference (%.2f%% of the baseline's; it would expect a likelihood ratio of %s; %s is needed)",
				t.CanaryN, j.cfg.LatencyDetect, 100*q, Ratio(expected), Ratio(j.slow.Threshold())), n}
		}
	}
	reason := fmt.Sprintf("no regression: canary %d errors in %d (%.2f%%), baseline %d in %d (%.2f%%)",
		t.CanaryErrors, t.CanaryN, 100*rate(t.CanaryErrors, t.CanaryN), t.BaseErrors, t.BaseN, 100*rate(t.BaseErrors, t.BaseN))
	if up, ok := n["rhoUpper"]; ok {
		reason += fmt.Sprintf("; the canary's error rate is at most %.1f× the baseline's (%g%% confidence)", up, 100*(1-j.errors.alpha))
	}
	return Verdict{Pass, reason, n}
}

// Ratio writes a log likelihood ratio as the ratio, the way evidence is reported.
func Ratio(logRatio float64) string {
	r := math.Exp(logRatio)
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1e", r)
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	default:
		return fmt.Sprintf("%.2g", r)
	}
}
