// Package analysis judges a canary against its baseline. It is pure: given what was observed it
// returns Pass, Fail or Inconclusive with the numbers behind the verdict.
//
// The rule it keeps: no fixed per-minute thresholds. The judge asks only how bad outcomes split
// between the canary and the baseline, so traffic swings and incidents that hit both versions do
// not fool it; its test is anytime-valid, so it may be looked at after every event and still
// rolls back a healthy canary with probability at most α, however long the bake.
package analysis

import (
	"math"
)

// The split test. Each bad outcome (an error, or a slow invocation) came from the canary with
// probability θ = wρ/(wρ + 1 − w), where w is the canary's share of traffic when the request was
// routed and ρ the ratio of the canary's bad-outcome rate to the baseline's. Under H0 (ρ ≤ 1) the
// likelihood ratio against any fixed ρ > 1 is a nonnegative supermartingale with mean at most 1;
// so is a mixture of such ratios over a prior on ρ. By Ville's inequality the mixture reaches 1/α
// with probability at most α: that is the rejection rule. The mixture is over ρ (not θ), so
// evidence carries across steps whose weights differ.

// SplitTest is the sequential test on one kind of bad outcome.
type SplitTest struct {
	alpha    float64
	rho      []float64 // the mixture's grid of alternatives
	logPrior []float64
	logL     []float64 // log likelihood ratio of each alternative against ρ = 1, so far

	canaryBad, baseBad float64
	weightedBad        float64 // Σ w over bad outcomes, for the pooled weight

	// The log ratios of the last weight seen, per alternative: weights change once per step.
	cachedW                float64
	logCanary, logBaseline []float64
}

// PriorK is the concentration of the mixture's prior (see NewSplitTest).
const PriorK = 4

// NewSplitTest makes a test at level alpha. Its prior on ρ is what a Beta(k·w₀, k·(1−w₀)) prior on
// θ, truncated to θ > w₀, becomes at the design weight w₀ (k = PriorK): mass on modest regressions,
// where power is scarce, and a tail out to 100× for catastrophes — placed on a fine logarithmic
// grid so that any weight the steps use is served.
func NewSplitTest(alpha, w0 float64) *SplitTest {
	const points = 96
	lo, hi := math.Log(1.05), math.Log(100.0)
	t := &SplitTest{alpha: alpha}
	a, b := PriorK*w0, PriorK*(1-w0)
	var total float64
	var weights []float64
	for i := range points {
		lr := lo + (hi-lo)*(float64(i)+0.5)/points
		rho := math.Exp(lr)
		theta := w0 * rho / (w0*rho + 1 - w0)
		// Beta density in θ, times dθ/d(log ρ) = θ(1−θ): the prior mass of this grid cell.
		d := math.Exp((a-1)*math.Log(theta)+(b-1)*math.Log(1-theta)) * theta * (1 - theta)
		t.rho = append(t.rho, rho)
		weights = append(weights, d)
		total += d
	}
	for _, w := range weights {
		t.logPrior = append(t.logPrior, math.Log(w/total))
	}
	t.logL = make([]float64, points)
	return t
}

func theta(rho, w float64) float64 { return w * rho / (w*rho + 1 - w) }

// Observe adds bad outcomes seen while the canary had weight w: canary ones from the canary,
// base ones from the baseline. Good outcomes carry no information for this test.
func (t *SplitTest) Observe(w float64, canary, base float64) {
	if w <= 0 || w >= 1 || canary+base == 0 {
		return // with all traffic on one side, an outcome says nothing about the split
	}
	if w != t.cachedW || t.logCanary == nil {
		t.cachedW = w
		t.logCanary, t.logBaseline = make([]float64, len(t.rho)), make([]float64, len(t.rho))
		for i, rho := range t.rho {
			th := theta(rho, w)
			t.logCanary[i], t.logBaseline[i] = math.Log(th/w), math.Log((1-th)/(1-w))
		}
	}
	for i := range t.rho {
		t.logL[i] += canary*t.logCanary[i] + base*t.logBaseline[i]
	}
	t.canaryBad += canary
	t.baseBad += base
	t.weightedBad += w * (canary + base)
}

// LogEvidence is the log of the mixture likelihood ratio: how strongly the outcomes so far say
// the canary is worse.
func (t *SplitTest) LogEvidence() float64 { return logSumExp(t.logPrior, t.logL) }

// Threshold is the log evidence at which the test rejects: log(1/α).
func (t *SplitTest) Threshold() float64 { return math.Log(1 / t.alpha) }

// Rejected reports whether the evidence reached the threshold: the canary is worse.
func (t *SplitTest) Rejected() bool { return t.LogEvidence() >= t.Threshold() }

// Counts returns the bad outcomes seen on each side.
func (t *SplitTest) Counts() (canary, base float64) { return t.canaryBad, t.baseBad }

// RhoEstimate is the ratio the split so far suggests (at the pooled weight), or NaN without data.
func (t *SplitTest) RhoEstimate() float64 {
	n := t.canaryBad + t.baseBad
	if n == 0 {
		return math.NaN()
	}
	w := t.weightedBad / n
	return rhoOf(t.canaryBad/n, w)
}

// RhoUpper is an upper confidence bound on ρ at level 1−α: the Clopper–Pearson bound on the
// canary's share of bad outcomes, at the pooled weight, turned into a ratio. +Inf when the data
// cannot bound it.
func (t *SplitTest) RhoUpper() float64 {
	n := t.canaryBad + t.baseBad
	if n == 0 {
		return math.Inf(1)
	}
	w := t.weightedBad / n
	x := t.canaryBad
	var thU float64
	if x >= n {
		thU = 1
	} else {
		thU = betaQuantile(1-t.alpha, x+1, n-x)
	}
	return rhoOf(thU, w)
}

func rhoOf(th, w float64) float64 {
	if th >= 1 {
		return math.Inf(1)
	}
	return th * (1 - w) / (w * (1 - th))
}

// ExpectedLogEvidence is how much evidence the test would expect to have gathered had the
// canary's rate been ρ times the baseline's: for windows with the given weights and canary and
// baseline invocation counts, and a baseline bad-outcome rate p. It is the test's power check.
func (t *SplitTest) ExpectedLogEvidence(rho, p float64, windows []Window) float64 {
	best := math.Inf(-1)
	for i, r := range t.rho {
		var sum float64
		for _, win := range windows {
			if win.Weight <= 0 || win.Weight >= 1 {
				continue
			}
			th := theta(r, win.Weight)
			canary := float64(win.CanaryN) * p * rho
			base := float64(win.BaseN) * p
			sum += canary*math.Log(th/win.Weight) + base*math.Log((1-th)/(1-win.Weight))
		}
		if v := t.logPrior[i] + sum; v > best {
			best = v
		}
	}
	return best
}

func logSumExp(a, b []float64) float64 {
	m := math.Inf(-1)
	for i := range a {
		if v := a[i] + b[i]; v > m {
			m = v
		}
	}
	var s float64
	for i := range a {
		s += math.Exp(a[i] + b[i] - m)
	}
	return m + math.Log(s)
}
