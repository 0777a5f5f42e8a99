package analysis

import (
	"math"
	"math/rand/v2"
)

// Scenario is a simulated canary: requests arrive at Rate per second, Weight of them to the canary;
// each fails with probability BaseP on the baseline and CanaryP on the canary; the release bakes
// for Duration seconds, judged at false-rollback bound Alpha.
type Scenario struct {
	Rate, Weight, BaseP, CanaryP, Alpha, Duration float64
}

// SimulatePerInvocation judges the scenario on per-invocation data (each outcome as it happens, as
// from the logs) and returns when it rolled back, in seconds (+Inf: it did not). The merged stream
// of errors is Poisson; each error came from the canary with probability λc/(λc+λb), and the test
// can only change its mind at an error.
func SimulatePerInvocation(s Scenario, rng *rand.Rand) float64 {
	lc := s.Rate * s.Weight * s.CanaryP
	lb := s.Rate * (1 - s.Weight) * s.BaseP
	if lc+lb == 0 {
		return math.Inf(1)
	}
	t := NewSplitTest(s.Alpha, s.Weight)
	for now := 0.0; ; {
		now += rng.ExpFloat64() / (lc + lb)
		if now > s.Duration {
			return math.Inf(1)
		}
		if rng.Float64() < lc/(lc+lb) {
			t.Observe(s.Weight, 1, 0)
		} else {
			t.Observe(s.Weight, 0, 1)
		}
		if t.Rejected() {
			return now
		}
	}
}

// SimulatePerPeriod judges the scenario on counts per period (as from CloudWatch metrics), each
// period when it closes.
func SimulatePerPeriod(s Scenario, period float64, rng *rand.Rand) float64 {
	t := NewSplitTest(s.Alpha, s.Weight)
	for m := 1; float64(m)*period <= s.Duration; m++ {
		_, ec, _, eb := periodCounts(s, period, rng)
		t.Observe(s.Weight, float64(ec), float64(eb))
		if t.Rejected() {
			return float64(m) * period
		}
	}
	return math.Inf(1)
}

// SimulateAlarm is a CodeDeploy-style alarm instead: the canary's error rate above threshold in a
// period.
func SimulateAlarm(s Scenario, period, threshold float64, rng *rand.Rand) float64 {
	for m := 1; float64(m)*period <= s.Duration; m++ {
		nc, ec, _, _ := periodCounts(s, period, rng)
		if nc > 0 && float64(ec)/float64(nc) > threshold {
			return float64(m) * period
		}
	}
	return math.Inf(1)
}

func periodCounts(s Scenario, period float64, rng *rand.Rand) (nc, ec, nb, eb int) {
	nc = poisson(rng, s.Rate*s.Weight*period)
	nb = poisson(rng, s.Rate*(1-s.Weight)*period)
	return nc, poisson(rng, float64(nc)*s.CanaryP), nb, poisson(rng, float64(nb)*s.BaseP)
}

func poisson(rng *rand.Rand, lambda float64) int {
	if lambda > 50 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
