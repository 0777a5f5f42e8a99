package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/analysis"
)

// The low-traffic table. The release: one canary step of 10% baking 1 minute (max_bake
// 3 minutes, the default), α 1%, a 5-fold rise in errors to see, a 0.1% floor, at 1, 5, 20 and
// 200 requests/s with baselines failing 0%, 0.1% and 1% of requests.
//
// On the sandbox the same table runs ten times faster: bakes of 6 s (max_bake 18 s) at the same
// request rates, so each step sees a tenth of the invocations. The split test sees only bad
// outcomes, and the evidence it expects is linear in their expected number (n × p), so the error
// rates (and the floor) are scaled up twenty-fold: 0%, 2%, 20% and a 2% floor. That leaves each
// case twice the evidence per second of bake it has on AWS: the margin for the seconds the
// sandbox's data takes to settle (metrics and log lines), which eat into a 6-second bake what
// they eat of a minute's on AWS. α is 0.1% on the sandbox, so that twelve healthy canaries are
// not rolled back by chance once in a hundred runs; it costs each case a little power.
// TestLowTrafficTableScales checks that every case lands where the numbers land.
var (
	lowRates     = []float64{1, 5, 20, 200}
	lowBaselines = []float64{0, 0.001, 0.01} // the issue's
)

const (
	errScale     = 20
	lowBake      = 6 * time.Second
	lowMaxBake   = 18 * time.Second
	settleMargin = 3 * time.Second // what the sandbox's data settling takes from a bake
)

var (
	realCfg    = analysis.Config{Alpha: 0.01, Detect: 5, MinRate: 0.001, DesignWeight: 0.1}
	sandboxCfg = analysis.Config{Alpha: 0.001, Detect: 5, MinRate: 0.001 * errScale, DesignWeight: 0.1}
)

func class(sp analysis.StepPower) string {
	switch {
	case sp.Judged:
		return "judged"
	case sp.Extended:
		return "extended"
	}
	return "inconclusive"
}

func realOutcome(rate, p float64) analysis.StepPower {
	return analysis.PlanPower(realCfg, rate, p, []analysis.PlannedStep{{Weight: 0.1, Bake: time.Minute}}, 3*time.Minute)[0]
}

func sandboxOutcome(rate, p float64, bake, maxBake time.Duration) analysis.StepPower {
	return analysis.PlanPower(sandboxCfg, rate, p, []analysis.PlannedStep{{Weight: 0.1, Bake: bake}}, maxBake)[0]
}

// The scaled table means what the does: every case is judged in its bake, judged once
// extended, or inconclusive, on the sandbox as on AWS.
func TestLowTrafficTableScales(t *testing.T) {
	for _, r := range lowRates {
		for _, p := range lowBaselines {
			real, sb := realOutcome(r, p), sandboxOutcome(r, errScale*p, lowBake, lowMaxBake)
			if class(real) != class(sb) {
				t.Errorf("%g/s at %g%%: %s on AWS (needs %s), %s on the sandbox (needs %s)", r, 100*p, class(real), real.NeededBake, class(sb), sb.NeededBake)
			}
		}
	}
}

// firm is the outcome the statistics guarantee with margin: the same at 60% and 150% of the
// rate and of the baseline's error rate, and with the settling margin taken off the bakes.
func firm(rate, p float64) (string, bool) {
	want := class(sandboxOutcome(rate, p, lowBake, lowMaxBake))
	for _, kr := range []float64{0.6, 1, 1.5} {
		for _, kp := range []float64{0.6, 1, 1.5} {
			for _, settle := range []time.Duration{0, settleMargin} {
				c := class(sandboxOutcome(rate*kr, p*kp, lowBake-settle, lowMaxBake-settle))
				// Judged in the bake or once extended: the same for a deploy (it passes).
				if (c == "inconclusive") != (want == "inconclusive") {
					return want, false
				}
			}
		}
	}
	return want, true
}

type planDoc struct {
	Traffic []struct {
		Window      string  `json:"window"`
		Invocations float64 `json:"invocations"`
		Rate        float64 `json:"rate"`
		ErrorRate   float64 `json:"errorRate"`
		Steps       []struct {
			Outcome    string `json:"outcome"`
			Then       string `json:"then"`
			NeededBake string `json:"neededBake"`
		} `json:"steps"`
	} `json:"traffic"`
}

type resultDoc struct {
	Outcome  string `json:"outcome"`
	Phase    string `json:"phase"`
	Reason   string `json:"reason"`
	Unjudged string `json:"unjudged"`
}

// No healthy release is rolled back for lack of traffic. For each case, plan reads the alias's
// traffic and predicts whether the canary step can be judged; deploy then promotes every one of
// them: judged where plan said the bake (or max_bake) suffices, and recorded as unjudged where
// it said it does not.
func TestLowTrafficTable(t *testing.T) {
	f := newFleet(t, 1, judged, "      canary:\n        - weight: 10%\n          bake: 6s")
	type lowCase struct {
		env       string
		rate, p   float64 // the sandbox's (p scaled)
		realP     float64
		want      string
		firm      bool
		plan      planDoc
		result    resultDoc
		planErr   string
		deployErr string
	}
	var cases []*lowCase
	var envs strings.Builder
	for _, p := range lowBaselines {
		for _, r := range lowRates {
			c := &lowCase{env: fmt.Sprintf("r%gp%g", r, 1000*p), rate: r, p: errScale * p, realP: p}
			c.want, c.firm = firm(c.rate, c.p)
			cases = append(cases, c)
			fmt.Fprintf(&envs, `  %s:
    function_name: "{service}-{function}-%s"
    strategy:
      canary:
        - weight: 10%%
          bake: %s
    checks:
      errors: {alpha: %g%%, detect: 5, min_rate: %g%%}
      metrics: {period: 1s}
      max_bake: %s
`, c.env, c.env, lowBake, 100*sandboxCfg.Alpha, 100*sandboxCfg.MinRate, lowMaxBake)
		}
	}
	f.appendManifest(envs.String())
	ctx := context.Background()
	for _, c := range cases {
		if _, err := f.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("shop-fn00-" + c.env), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String("arn:aws:iam::000000000000:role/shop"), Code: &lambdatypes.FunctionCode{ZipFile: f.zip("fn00")},
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The first release of each environment creates its alias: nothing to compare yet.
	f.stampAll("1")
	for _, c := range cases {
		if code, out, errs := f.aviary("deploy", "-e", c.env); code != 0 {
			t.Fatalf("first release of %s: exit %d\n%s\n%s", c.env, code, out, errs)
		}
	}
	f.stampAll("2")

	// One baseline at a time, its four rates together: live traffic, then plan, then deploy.
	for _, p := range lowBaselines {
		var round []*lowCase
		for _, c := range cases {
			if c.realP == p {
				round = append(round, c)
			}
		}
		payload := fmt.Sprintf(`{"action":"flaky","rate":%g}`, errScale*p)
		var stops []func()
		for _, c := range round {
			stops = append(stops, f.loadAlias("shop-fn00-"+c.env+":live", c.rate, payload))
		}
		time.Sleep(11 * time.Second) // traffic for plan's 10-second window (not a timing assertion)
		var wg sync.WaitGroup
		for _, c := range round {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, out, errs := f.aviary("plan", "-e", c.env, "-o", "json", "--traffic-window", "10s")
				if code != 0 && code != 2 {
					c.planErr = fmt.Sprintf("exit %d: %s", code, errs)
					return
				}
				if err := json.Unmarshal([]byte(out), &c.plan); err != nil {
					c.planErr = err.Error() + ": " + out
					return
				}
				code, out, errs = f.aviary("deploy", "-e", c.env, "-o", "json")
				if err := json.Unmarshal([]byte(out), &c.result); err != nil {
					c.deployErr = fmt.Sprintf("exit %d: %v: %s %s", code, err, out, errs)
				}
			}()
		}
		wg.Wait()
		for _, stop := range stops {
			stop()
		}
	}

	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			if c.planErr != "" || c.deployErr != "" {
				t.Fatalf("plan: %s; deploy: %s", c.planErr, c.deployErr)
			}
			if len(c.plan.Traffic) != 1 || len(c.plan.Traffic[0].Steps) != 1 {
				t.Fatalf("plan's traffic: %+v", c.plan.Traffic)
			}
			tr := c.plan.Traffic[0]
			st := tr.Steps[0]
			t.Logf("%g requests/s, baseline %g%% (the issue's %g%%): plan measured %.1f/s, %.2f%% errors: %s (needs %s); deploy %s %s",
				c.rate, 100*c.p, 100*c.realP, tr.Rate, 100*tr.ErrorRate, st.Outcome, st.NeededBake, c.result.Outcome, c.result.Unjudged)
			// The point of it all: no healthy release is rolled back for lack of traffic.
			if c.result.Outcome != "promoted" {
				t.Fatalf("deploy %s: %s", c.result.Outcome, c.result.Reason)
			}
			if st.Outcome == "inconclusive" && st.Then != "promote-unjudged" {
				t.Errorf("plan says an inconclusive step would %q; want promote-unjudged (on_inconclusive: auto, no gate)", st.Then)
			}
			// A busy machine may not drive the sandbox at the table's rate (invocations are
			// counted as they end, and end late): the table's outcome is held to only when
			// plan saw the traffic that was meant to flow.
			if tr.Rate < 0.6*c.rate || tr.Rate > 1.5*c.rate || !c.firm {
				t.Logf("plan measured %.2f requests/s of the %g meant (firm: %v): outcomes not held to the table", tr.Rate, c.rate, c.firm)
				return
			}
			// Plan predicts what the statistics say.
			if (st.Outcome == "inconclusive") != (c.want == "inconclusive") {
				t.Errorf("plan predicts %s (needs %s); the table says %s", st.Outcome, st.NeededBake, c.want)
			}
			// What deploy then did, judged or promoted as unjudged, is logged, not held to the
			// table: the bake a deploy actually gets (its extensions, the sandbox settling under
			// load) gives it more evidence than the table plans for, and a release judged sooner
			// than predicted is no fault. That an inconclusive step is promoted and recorded as
			// unjudged is proved on the fake clock (release's engine tests).
			t.Logf("deploy: unjudged=%v (%q); the table says %s", c.result.Unjudged != "", c.result.Unjudged, c.want)
		})
	}
}

// loadAlias invokes a qualified function at rate per second with payload until stopped.
func (f *fleet) loadAlias(qualified string, rate float64, payload string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Paced by the clock, not by ticks: a busy machine that misses ticks catches up.
		start := time.Now()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for sent := 0; ; sent++ {
			next := start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				_, _ = f.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(qualified), Payload: []byte(payload)})
			}()
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
