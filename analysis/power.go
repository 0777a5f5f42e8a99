package analysis

import "math"

// The power check, shared by the judge (is a finished bake conclusive?) and by `aviary plan`
// (will a bake at this traffic be?). It asks what evidence the split test would expect to have
// gathered had the canary been Detect times worse than a baseline failing at rate p, with p
// floored at MinRate: a baseline with no errors would otherwise demand infinite traffic, and a
// canary that ran without errors could never pass.

// FlooredRate is the baseline error rate the power check assumes: the observed one, or MinRate
// when that is lower; and at most 1/Detect, so that the canary it imagines Detect times worse
// still fails at most every invocation. (Without that cap a baseline failing often, by chance
// or by nature, made the check expect more canary errors than canary invocations, and a
// handful of clean invocations passed.)
func (c Config) FlooredRate(baseRate float64) float64 {
	c.defaults()
	return math.Min(math.Max(baseRate, c.MinRate), 1/c.Detect)
}

// errorAlpha is the level the judge's error test runs at: Alpha, halved when latency is judged too.
func (c Config) errorAlpha() float64 {
	if c.Latency {
		return c.Alpha / 2
	}
	return c.Alpha
}

// Power is what the judge's power check on errors would find for these windows, had the
// baseline failed at baseRate: the log evidence it would expect of a Detect-fold regression, and
// the log evidence it needs (log 1/α). The windows are enough when expected ≥ needed.
func Power(cfg Config, baseRate float64, windows []Window) (expected, needed float64) {
	cfg.defaults()
	t := NewSplitTest(cfg.errorAlpha(), cfg.DesignWeight)
	return t.ExpectedLogEvidence(cfg.Detect, cfg.FlooredRate(baseRate), windows), t.Threshold()
}

// NeededInvocations is how many more canary invocations, at canary weight w (the baseline
// taking the rest of the traffic in proportion), the windows already seen need for the judge's
// power check to pass: for the bake to be able to see a Detect-fold regression of baseRate
// (floored at MinRate). 0: they are enough already. The expected evidence is a maximum of
// affine functions of the count, so it is convex in it and below the threshold at none: the
// counts that are enough are a half-line, found by bisection.
func NeededInvocations(cfg Config, baseRate, w float64, before []Window) int {
	cfg.defaults()
	if w <= 0 || w >= 1 {
		return -1 // with all traffic on one side the split test sees nothing
	}
	t := NewSplitTest(cfg.errorAlpha(), cfg.DesignWeight)
	p := cfg.FlooredRate(baseRate)
	enough := func(n int) bool {
		ws := append(append([]Window(nil), before...), Window{Weight: w, CanaryN: n, BaseN: int(math.Round(float64(n) * (1 - w) / w))})
		return t.ExpectedLogEvidence(cfg.Detect, p, ws) >= t.Threshold()
	}
	if enough(0) {
		return 0
	}
	hi := 1
	for !enough(hi) {
		if hi > 1<<40 {
			return math.MaxInt // never: no traffic this side of forever would do
		}
		hi *= 2
	}
	lo := hi / 2 // not enough (or 0)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if enough(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}
