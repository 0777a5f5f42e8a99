package analysis

import (
	"math"
	"time"
)

// PlannedStep is a canary step as planned: Weight on the canary for Bake.
type PlannedStep struct {
	Weight float64
	Bake   time.Duration
}

// StepPower is what a step's bake can judge at a steady traffic rate.
type StepPower struct {
	PlannedStep
	// CanaryInvocations is how many times the canary would run in the step's bake.
	CanaryInvocations float64
	// Needed is how many canary invocations the step needs, after the earlier steps' traffic,
	// for the judge to be able to see a Detect-fold regression (0: the earlier steps gave
	// enough); NeededBake the bake that takes at this rate (+Inf: no bake will, as with no
	// traffic).
	Needed     int
	NeededBake time.Duration
	// Judged: the bake sees a Detect-fold regression in time. Otherwise the step is extended up
	// to maxBake (Extended: that is enough), or stays Inconclusive and on_inconclusive decides.
	Judged   bool
	Extended bool
}

// NoBake stands for a bake no traffic would make long enough.
const NoBake = time.Duration(math.MaxInt64)

// PlanPower says, step by step, whether a release at rate requests per second through the alias
// (baseRate of them failing) can be judged: the judge's own power check, applied to the traffic
// each step would see. Evidence carries across steps, as the judge's does; a step extended for
// want of traffic is assumed to bake what it needs, up to maxBake.
func PlanPower(cfg Config, rate, baseRate float64, steps []PlannedStep, maxBake time.Duration) []StepPower {
	cfg.defaults()
	var out []StepPower
	var seen []Window
	for _, st := range steps {
		sp := StepPower{PlannedStep: st, CanaryInvocations: rate * st.Weight * st.Bake.Seconds()}
		sp.Needed = NeededInvocations(cfg, baseRate, st.Weight, seen)
		perSec := rate * st.Weight
		switch {
		case sp.Needed == 0:
			sp.NeededBake = 0
		case perSec <= 0 || sp.Needed == math.MaxInt || sp.Needed < 0:
			sp.NeededBake = NoBake
		default:
			secs := float64(sp.Needed) / perSec
			if secs >= NoBake.Seconds() {
				sp.NeededBake = NoBake
			} else {
				sp.NeededBake = time.Duration(math.Ceil(secs)) * time.Second
			}
		}
		sp.Judged = sp.NeededBake <= st.Bake
		sp.Extended = !sp.Judged && sp.NeededBake <= max(maxBake, st.Bake)
		baked := st.Bake
		if sp.Extended {
			baked = sp.NeededBake
		} else if !sp.Judged {
			baked = max(maxBake, st.Bake)
		}
		seen = append(seen, Window{Weight: st.Weight,
			CanaryN: int(math.Round(perSec * baked.Seconds())), BaseN: int(math.Round(rate * (1 - st.Weight) * baked.Seconds()))})
		out = append(out, sp)
	}
	return out
}
