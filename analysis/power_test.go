package analysis

import (
	"math"
	"testing"
	"time"
)

// kl is the Kullback–Leibler divergence of Bernoulli(a) from Bernoulli(b).
func kl(a, b float64) float64 { return a*math.Log(a/b) + (1-a)*math.Log((1-a)/(1-b)) }

// The case: a canary at 10% of 20 requests/s for a 1-minute bake ran 132 times, without
// an error, beside a baseline without errors. The floor (0.1%) makes the question finite: could
// the bake have seen the canary fail 5 times as often as 0.1%? It could not at 132 invocations;
// it can at NeededInvocations, and a clean canary that ran that much passes.
func TestCleanBaselineNeedsFiniteTraffic(t *testing.T) {
	cfg := Config{} // α 1%, detect 5, floor 0.1%, design weight 10%
	const w = 0.1
	n := NeededInvocations(cfg, 0, w, nil)

	// The bound the statistics give, not a number copied from the code: per canary invocation
	// (and the 9 baseline ones beside it) a 5-fold regression of 0.1% brings 0.005 + 0.009 bad
	// outcomes, each of which came from the canary with probability θ = 0.005/0.014. No mixture
	// can expect more evidence per outcome than KL(θ‖w), so at least log(1/α)/(0.014·KL) are
	// needed; the mixture pays for its prior over ρ, so it needs more, but not wildly more.
	perInv := 0.005 + 0.009
	lower := math.Log(100) / (perInv * kl(0.005/perInv, w))
	if f := float64(n); f < lower || f > 2*lower {
		t.Fatalf("NeededInvocations = %d, want between %.0f (the KL bound) and twice it", n, lower)
	}
	t.Logf("clean baseline, 10%% canary: %d canary invocations needed (KL bound %.0f): %.1f minutes at 20 requests/s", n, lower, float64(n)/2/60)

	clean := func(n int) Window { return Window{Weight: w, CanaryN: n, BaseN: 9 * n} }
	if v := judged(cfg, true, clean(132)); v.Result != Inconclusive {
		t.Errorf("132 clean invocations: %s (%s); want inconclusive: too few to see a 5× rise of 0.1%%", v.Result, v.Reason)
	}
	if v := judged(cfg, true, clean(n-2)); v.Result != Inconclusive {
		t.Errorf("%d clean invocations (just short): %s; want inconclusive", n-2, v.Result)
	}
	if v := judged(cfg, true, clean(n+1)); v.Result != Pass {
		t.Errorf("%d clean invocations: %s (%s); want pass", n+1, v.Result, v.Reason)
	}
	// A clean canary passes with a few errors on the baseline too: their rate (1 in 5000) is
	// under the floor, so the floor decides, and the verdict is the same.
	if v := judged(cfg, true, Window{Weight: w, CanaryN: n + 1, BaseN: 9 * (n + 1), BaseErrors: 9 * (n + 1) / 5000}); v.Result != Pass {
		t.Errorf("clean canary, baseline under the floor: %s (%s); want pass", v.Result, v.Reason)
	}
}

// The floor is a knob with a price: a higher floor needs proportionally less traffic (the
// evidence is linear in the expected number of bad outcomes), a lower one more; a baseline
// above the floor is judged at its own rate.
func TestNeededInvocationsScales(t *testing.T) {
	base := NeededInvocations(Config{}, 0, 0.1, nil)
	for _, tc := range []struct {
		name  string
		cfg   Config
		rate  float64
		ratio float64 // want ≈ base/ratio
	}{
		{"floor 1%", Config{MinRate: 0.01}, 0, 10},
		{"floor 0.01%", Config{MinRate: 0.0001}, 0, 0.1},
		{"baseline at 1% beats the 0.1% floor", Config{}, 0.01, 10},
		{"baseline under the floor is floored", Config{}, 0.0002, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NeededInvocations(tc.cfg, tc.rate, 0.1, nil)
			want := float64(base) / tc.ratio
			if math.Abs(float64(got)-want) > 0.02*want+2 {
				t.Errorf("NeededInvocations = %d, want about %.0f", got, want)
			}
		})
	}
	// Windows already baked count: half the traffic seen, about half is left.
	half := NeededInvocations(Config{}, 0, 0.1, []Window{{Weight: 0.1, CanaryN: base / 2, BaseN: 9 * base / 2}})
	if math.Abs(float64(half)-float64(base)/2) > 2 {
		t.Errorf("after half the traffic, %d more needed; want about %d", half, base/2)
	}
	if got := NeededInvocations(Config{}, 0, 0.1, []Window{{Weight: 0.1, CanaryN: 2 * base, BaseN: 18 * base}}); got != 0 {
		t.Errorf("after twice the traffic, %d more needed; want 0", got)
	}
}

// Power agrees with the judge: enough by Power is exactly when the judge's verdict on a clean
// canary is Pass at the end of the bake.
func TestPowerAgreesWithJudge(t *testing.T) {
	for _, cfg := range []Config{{}, {Latency: false, Alpha: 0.05, Detect: 3}, {MinRate: 0.005}} {
		for _, n := range []int{50, 300, 1000, 3000, 10000} {
			ws := []Window{{Weight: 0.2, CanaryN: n, BaseN: 4 * n, BaseErrors: n / 500}}
			exp, need := Power(cfg, rate(n/500, 4*n), ws)
			v := judged(cfg, true, ws...)
			if (exp >= need) != (v.Result == Pass) {
				t.Errorf("cfg %+v, n %d: power %v/%v but the judge says %s (%s)", cfg, n, exp, need, v.Result, v.Reason)
			}
		}
	}
}

// PlanPower, for the release (one step: 10% for 1 minute, max_bake 3 minutes, a clean
// baseline): at 20 requests/s the bake cannot judge and even max_bake is too short; at 200 it
// can once extended; at 2000 within the bake. Each prediction is the judge's verdict on the
// traffic it predicts.
func TestPlanPower(t *testing.T) {
	steps := []PlannedStep{{Weight: 0.1, Bake: time.Minute}}
	n := NeededInvocations(Config{}, 0, 0.1, nil)
	for _, tc := range []struct {
		rate             float64
		judged, extended bool
	}{{0, false, false}, {1, false, false}, {20, false, false}, {200, false, true}, {2000, true, false}} {
		sp := PlanPower(Config{}, tc.rate, 0, steps, 3*time.Minute)[0]
		if sp.Judged != tc.judged || sp.Extended != tc.extended {
			t.Errorf("%g/s: judged %v extended %v (needs %s), want %v %v", tc.rate, sp.Judged, sp.Extended, sp.NeededBake, tc.judged, tc.extended)
		}
		if tc.rate == 0 {
			if sp.NeededBake != NoBake {
				t.Errorf("no traffic: needs %s, want never", sp.NeededBake)
			}
			continue
		}
		if want := time.Duration(math.Ceil(float64(n)/(tc.rate*0.1))) * time.Second; sp.NeededBake != want {
			t.Errorf("%g/s: needs %s, want %s", tc.rate, sp.NeededBake, want)
		}
		// The judge agrees: a clean canary that ran the bake it needs passes, a little less is
		// inconclusive.
		at := func(d time.Duration) Result {
			c := int(tc.rate * 0.1 * d.Seconds())
			return judged(Config{}, true, Window{Weight: 0.1, CanaryN: c, BaseN: 9 * c}).Result
		}
		if at(sp.NeededBake) != Pass || at(sp.NeededBake*9/10) != Inconclusive {
			t.Errorf("%g/s: the judge says %s at the needed bake, %s at 90%% of it", tc.rate, at(sp.NeededBake), at(sp.NeededBake*9/10))
		}
	}
	// Two steps: the second has the first's evidence too.
	two := PlanPower(Config{}, 200, 0, []PlannedStep{{0.1, time.Minute}, {0.5, time.Minute}}, 3*time.Minute)
	if two[1].Needed >= n || !two[1].Judged {
		t.Errorf("second step %+v: the first step's traffic should count", two[1])
	}
}

// A canary can fail no more than every time: a baseline failing 40% of the time cannot get
// five times worse, and five clean canary invocations beside it are not enough to pass.
func TestPowerNeverExpectsMoreErrorsThanInvocations(t *testing.T) {
	cfg := Config{Alpha: 0.001, MinRate: 0.02}
	if got, want := cfg.FlooredRate(0.4), 0.2; got != want {
		t.Errorf("FlooredRate(40%%) = %v, want %v (1/detect)", got, want)
	}
	if v := judged(cfg, true, Window{Weight: 0.1, CanaryN: 5, BaseN: 10, BaseErrors: 4}); v.Result != Inconclusive {
		t.Errorf("5 clean canary invocations beside a baseline failing 4 of 10: %s (%s); want inconclusive", v.Result, v.Reason)
	}
	// Each canary invocation then carries at most one expected error: the count needed is at
	// least log(1/α) / log(1/w) (every error on the canary, each worth at most 1/w).
	if n := NeededInvocations(cfg, 0.4, 0.1, nil); float64(n) < math.Log(1000)/math.Log(10) {
		t.Errorf("NeededInvocations at 40%% = %d: fewer than the bound", n)
	}
}
