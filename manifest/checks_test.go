package manifest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/manifest"
)

const checked = good + `  canaried:
    strategy:
      canary:
        - weight: 10%
          bake: 2m
    checks:
      errors: {alpha: 0.5%, detect: 4x, min_rate: 0.2%}
      latency: {percentile: p99}
      ceilings: {error_rate: 30%}
      metrics: {period: 10s}
      alarms: ["{service}-{env}-5xx", "{service}-{function}-errors"]
      smoke:
        - payload: {action: echo, extra: {n: 1}}
          expect: {"$.echo.n": 1, "$.flavor": good}
        - function: api
          payload: '{"ping": true}'
      hooks:
        pre_traffic: "{service}-check-{env}"
        post_traffic: arn:aws:lambda:eu-west-1:123456789012:function:shop-after
        timeout: 30s
      max_bake: 10m
      on_inconclusive: gate
  defaults:
    strategy: Canary10Percent5Minutes
    checks: {}
`

func TestChecks(t *testing.T) {
	m, err := manifest.Load(write(t, checked))
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := m.Environment("production")
	if prod.Checks != nil {
		t.Errorf("an environment without checks has %+v", prod.Checks)
	}
	d, _ := m.Environment("defaults")
	want := manifest.Checks{Alpha: 0.01, Detect: 5, MaxErrorRate: 0.5, MaxThrottleRate: 0.5, Metrics: true, MetricsPeriod: time.Minute,
		MetricsDelay: time.Minute, Logs: true, HookTimeout: time.Minute, MaxBake: 15 * time.Minute, OnInconclusive: "auto", MinRate: 0.001}
	if d.Checks == nil || d.Checks.Alpha != want.Alpha || d.Checks.Detect != want.Detect || d.Checks.MaxErrorRate != want.MaxErrorRate ||
		!d.Checks.Metrics || d.Checks.MetricsPeriod != want.MetricsPeriod || d.Checks.MetricsDelay != want.MetricsDelay || !d.Checks.Logs ||
		d.Checks.MaxBake != want.MaxBake || d.Checks.OnInconclusive != want.OnInconclusive || d.Checks.MinRate != want.MinRate || d.Checks.Latency != "" {
		t.Errorf("defaults: %+v", d.Checks)
	}
	c, _ := m.Environment("canaried")
	k := c.Checks
	if k.Alpha != 0.005 || k.Detect != 4 || k.MinRate != 0.002 || k.Latency != "p99" || k.LatencyDetect != 3 || k.MaxErrorRate != 0.3 || k.MaxThrottleRate != 0.5 {
		t.Errorf("numbers: %+v", k)
	}
	if k.MetricsPeriod != 10*time.Second || k.MetricsDelay != 20*time.Second || k.MaxBake != 10*time.Minute || k.OnInconclusive != "gate" {
		t.Errorf("times: %+v", k)
	}
	if got := strings.Join(k.Alarms, ","); got != "shop-canaried-5xx,shop-api-errors,shop-static-errors,shop-worker-errors" {
		t.Errorf("alarms %s", got)
	}
	if len(k.Smoke) != 2 || k.Smoke[0].Payload != `{"action":"echo","extra":{"n":1}}` || k.Smoke[0].Expect["$.echo.n"] != float64(1) ||
		k.Smoke[0].Expect["$.flavor"] != "good" || k.Smoke[1].Function != "api" || k.Smoke[1].Payload != `{"ping": true}` {
		t.Errorf("smoke %+v", k.Smoke)
	}
	if k.PreTraffic != "shop-check-canaried" || !strings.HasSuffix(k.PostTraffic, ":function:shop-after") || k.HookTimeout != 30*time.Second {
		t.Errorf("hooks %+v", k)
	}
}

func TestBadChecks(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"alpha", "alpha: 0.5%", "alpha: 50%", []string{"canaried.checks.errors.alpha: 50% is outside (0, 20%]"}},
		{"detect", "detect: 4x", "detect: 1", []string{"canaried.checks.errors.detect: \"1\": write the regression to detect as a ratio"}},
		{"percentile", "percentile: p99", "percentile: p50", []string{"latency.percentile: \"p50\": use p90, p95 or p99"}},
		{"latency detect", "percentile: p99", "percentile: p99, detect: 1", []string{"latency.detect: \"1\": write the regression to detect as a ratio"}},
		{"latency detect too large", "percentile: p99", "percentile: p95, detect: 25", []string{"latency.detect: 25: about 5% of the baseline's invocations are slower than its p95", "use at most 20"}},
		{"period", "period: 10s", "period: 90s", []string{"metrics.period: 1m30s is not a CloudWatch period"}},
		{"smoke function", "function: api", "function: apii", []string{"smoke[1].function: \"apii\" is not one of the manifest's functions"}},
		{"smoke payload", `payload: '{"ping": true}'`, `payload: '{ping}'`, []string{"smoke[1].payload: is not JSON"}},
		{"expect path", `"$.flavor": good`, `"flavor": good`, []string{"smoke[0].expect: \"flavor\" is not a JSON path"}},
		{"hook", `pre_traffic: "{service}-check-{env}"`, `pre_traffic: "not a function!"`, []string{"hooks.pre_traffic: \"not a function!\" is not a Lambda function name"}},
		{"max bake", "max_bake: 10m", "max_bake: 1m", []string{"max_bake: 1m0s is shorter than the longest step's bake (2m0s)"}},
		{"policy", "on_inconclusive: gate", "on_inconclusive: shrug", []string{"on_inconclusive: \"shrug\": use auto (gate where the environment has an approval gate, else promote, recorded as unjudged), rollback, gate"}},
		{"min rate", "min_rate: 0.2%", "min_rate: 20%", []string{"canaried.checks.errors.min_rate: 20% is outside (0, 10%]"}},
		{"typo", "max_bake: 10m", "max_bak: 10m", []string{`unknown field "max_bak" (did you mean "max_bake"?)`}},
		{"both off", "metrics: {period: 10s}", "metrics: off\n      logs: off", []string{"turns off both metrics and logs"}},
		{"alarm placeholder", "{service}-{env}-5xx", "{svc}-5xx", []string{"alarms[0]: unknown placeholder {svc}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(checked, tc.from, tc.to, 1)
			if body == checked {
				t.Fatalf("%q not in the manifest", tc.from)
			}
			_, err := manifest.Load(write(t, body))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems lack %q:\n%v", w, err)
				}
			}
		})
	}
}

// latency.detect is the rise in slow invocations the latency test must have had the traffic to
// see (its power check), as errors.detect is for errors.
func TestLatencyDetect(t *testing.T) {
	m, err := manifest.Load(write(t, strings.Replace(checked, "percentile: p99", "percentile: p90, detect: 2.5x", 1)))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := m.Environment("canaried")
	if c.Checks.Latency != "p90" || c.Checks.LatencyDetect != 2.5 {
		t.Errorf("latency %q, detect %v", c.Checks.Latency, c.Checks.LatencyDetect)
	}
}
