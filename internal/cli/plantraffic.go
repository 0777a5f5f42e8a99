package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/aviary-deploy/aviary/analysis"
	"github.com/aviary-deploy/aviary/health"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// Plan's traffic check: can each step's bake see a detect-fold regression at the traffic the
// aliases served lately? A release judged on too little traffic is Inconclusive, and what
// on_inconclusive does then should be no surprise: plan says so before the deploy.

// fnTraffic is what one function's alias served over each window plan read.
type fnTraffic struct {
	name, functionName string
	windows            []health.Traffic
}

// planTrafficOutput is one function's traffic over one window, and what each step could judge at it.
type planTrafficOutput struct {
	Function     string  `json:"function"`
	FunctionName string  `json:"functionName"`
	Window       string  `json:"window"` // a Go duration: 1h0m0s is the last hour
	Invocations  float64 `json:"invocations"`
	Errors       float64 `json:"errors"`
	Rate         float64 `json:"rate"`      // invocations per second through the alias
	ErrorRate    float64 `json:"errorRate"` // 0..1
	// JudgedRate is the baseline error rate the judge would assume: ErrorRate, floored at
	// checks.errors.min_rate.
	JudgedRate float64           `json:"judgedRate"`
	Steps      []stepPowerOutput `json:"steps"`
}

// stepPowerOutput is whether one step's bake can judge at that traffic.
type stepPowerOutput struct {
	Step              int     `json:"step"` // from 1
	Weight            float64 `json:"weight"`
	Bake              string  `json:"bake"`
	CanaryInvocations float64 `json:"canaryInvocations"` // expected in the bake
	// NeededInvocations are the canary invocations the step needs (after the earlier steps'),
	// absent when no traffic would do; NeededBake the bake they take at this rate, or "never".
	NeededInvocations *int   `json:"neededInvocations,omitempty"`
	NeededBake        string `json:"neededBake"`
	// Outcome: judged (within the bake), extended (within max_bake), or inconclusive; Then,
	// when inconclusive, what on_inconclusive does: rollback, gate or promote-unjudged.
	Outcome string `json:"outcome"`
	Then    string `json:"then,omitempty"`
}

// trafficOf predicts, for every function and window read, what each step's bake can judge.
func trafficOf(p *prepared) []planTrafficOutput {
	if p.checks == nil || len(p.traffic) == 0 {
		return nil
	}
	judged := 0
	for _, r := range p.rows {
		if r.Change && r.Current.AliasExists {
			judged++
		}
	}
	var rsteps []release.Step
	var steps []analysis.PlannedStep
	for _, s := range p.env.Strategy.Steps {
		rsteps = append(rsteps, release.Step{Weight: s.Weight, Bake: s.Bake})
		steps = append(steps, analysis.PlannedStep{Weight: s.Weight, Bake: s.Bake})
	}
	cfg := health.JudgeConfig(p.checks, rsteps, judged)
	then := p.inconclusivePolicy()
	var out []planTrafficOutput
	for _, ft := range p.traffic {
		for _, t := range ft.windows {
			o := planTrafficOutput{Function: ft.name, FunctionName: ft.functionName, Window: t.Window.String(), Invocations: t.Invocations, Errors: t.Errors,
				Rate: t.Rate(), ErrorRate: t.ErrorRate(), JudgedRate: cfg.FlooredRate(t.ErrorRate()), Steps: []stepPowerOutput{}}
			for i, sp := range analysis.PlanPower(cfg, t.Rate(), t.ErrorRate(), steps, p.checks.MaxBake) {
				s := stepPowerOutput{Step: i + 1, Weight: sp.Weight, Bake: sp.Bake.String(), CanaryInvocations: sp.CanaryInvocations, NeededBake: "never"}
				if sp.NeededBake != analysis.NoBake {
					n := sp.Needed
					s.NeededInvocations, s.NeededBake = &n, sp.NeededBake.String()
				}
				switch {
				case sp.Judged:
					s.Outcome = "judged"
				case sp.Extended:
					s.Outcome = "extended"
				default:
					s.Outcome, s.Then = "inconclusive", then
				}
				o.Steps = append(o.Steps, s)
			}
			out = append(out, o)
		}
	}
	return out
}

// inconclusivePolicy is what a step still inconclusive after max_bake would do in this
// environment: rollback, gate or promote-unjudged.
func (p *prepared) inconclusivePolicy() string {
	a, _ := approvalOf(p.env)
	r := release.Release{Checks: p.checks, Approval: a}
	if pol := r.InconclusivePolicy(); pol != release.OnInconclusivePromote {
		return pol
	}
	return "promote-unjudged"
}

// windowName says a window in words.
func windowName(w string) string {
	switch w {
	case "1h0m0s":
		return "last hour"
	case "24h0m0s":
		return "last day"
	}
	return "last " + w
}

// printTraffic writes plan's traffic check.
func printTraffic(w io.Writer, p *prepared, ts []planTrafficOutput) {
	if p.checks == nil {
		return
	}
	if len(ts) == 0 {
		fmt.Fprintln(w, "Traffic: no function has an alias serving traffic yet (a first release has no canary to judge).")
		return
	}
	fmt.Fprintf(w, "Traffic through alias %s: can each step's bake see a %g× rise in errors (α %s)?\n", safe(p.m.Alias), p.checks.Detect, manifest.Percent(p.checks.Alpha))
	for _, t := range ts {
		fmt.Fprintf(w, "  %s, %s: %.2f requests/s, %.0f errors in %.0f (%s; judged as %s)\n", safe(t.Function), windowName(t.Window),
			t.Rate, t.Errors, t.Invocations, manifest.Percent(t.ErrorRate), manifest.Percent(t.JudgedRate))
		for _, s := range t.Steps {
			head := fmt.Sprintf("    step %d (%s for %s): ", s.Step, manifest.Percent(s.Weight), s.Bake)
			need := "no bake would do at this traffic"
			if s.NeededInvocations != nil {
				need = fmt.Sprintf("%d needed, a %s bake", *s.NeededInvocations, s.NeededBake)
			}
			switch s.Outcome {
			case "judged":
				fmt.Fprintf(w, "%syes: %.0f canary invocations, %s\n", head, s.CanaryInvocations, need)
			case "extended":
				fmt.Fprintf(w, "%syes, once extended: %.0f canary invocations, %s (within max_bake %s)\n", head, s.CanaryInvocations, need, p.checks.MaxBake)
			default:
				then := s.Then
				if then == "promote-unjudged" {
					then = "promote, recorded as UNJUDGED"
				}
				fmt.Fprintf(w, "%sNO: %.0f canary invocations, %s; inconclusive after max_bake %s, then %s\n", head, s.CanaryInvocations, need, p.checks.MaxBake, then)
			}
		}
	}
}

// readTraffic reads each function's recent traffic through the alias, over each window.
func readTraffic(e *env, p *prepared, windows []time.Duration) error {
	if p.checks == nil || len(windows) == 0 {
		return nil
	}
	var names []string
	byName := map[string]string{}
	for _, r := range p.rows {
		if r.Current.AliasExists {
			names = append(names, r.FunctionName)
			byName[r.FunctionName] = r.Name
		}
	}
	if len(names) == 0 {
		return nil
	}
	now := time.Now()
	got := make([]map[string]health.Traffic, len(windows))
	for i, w := range windows {
		t, err := p.health.Traffic(e.ctx, p.m.Alias, names, w, now)
		if err != nil {
			return err
		}
		got[i] = t
	}
	for _, n := range names {
		ft := fnTraffic{name: byName[n], functionName: n}
		for i := range windows {
			ft.windows = append(ft.windows, got[i][n])
		}
		p.traffic = append(p.traffic, ft)
	}
	return nil
}
