package e2e

// The health checker against the sandbox, through its public API (the release engine's Health
// seam): what it reads of Lambda's logs, CloudWatch's metrics and alarms, and Lambda's Invoke, as
// the real SDK sees them over HTTP. The health package's unit tests cover the same behaviour with
// fakes; these prove it holds against the AWS-compatible services.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/health"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// The checker reads per-version outcomes from the logs Lambda writes, in both formats: in JSON
// the platform.report status tells a handled error; in Text, aws-lambda-go's own error line inside
// the invocation does. Smoke invocations are not counted as traffic. Hooks are invoked with the
// release's facts and answer for themselves.
func TestHealthLogsOnTheSandbox(t *testing.T) {
	ctx := context.Background()
	_, cfg := healthSandbox(t)
	good, bad := exampleFlavours(t, "1")
	lc := lambda.NewFromConfig(cfg)
	r := &release.Release{ID: "r1", Alias: "live", Steps: []release.Step{{Weight: 0.5}},
		Checks: &release.Checks{Logs: true, Alpha: 0.01, Detect: 5, MaxErrorRate: 0.99, MaxThrottleRate: 0.99,
			Smoke: []release.Smoke{{Payload: `{"action":"echo"}`}}}}
	start := time.Now().Add(-time.Second)
	for _, format := range []lambdatypes.LogFormat{lambdatypes.LogFormatText, lambdatypes.LogFormatJson} {
		name := "logs-" + string(format)
		if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: good},
			LoggingConfig: &lambdatypes.LoggingConfig{LogFormat: format}, Publish: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: bad, Publish: true}); err != nil {
			t.Fatal(err)
		}
		r.Functions = append(r.Functions, release.Function{FunctionName: name, Previous: "1", New: "2", LogGroup: "/aws/lambda/" + name, Timeout: 3})
	}
	c := health.New(cfg)
	// The smoke invocations of both new versions, before traffic: they pass (echo works in
	// either flavour), and they land in the versions' logs.
	if pre, err := c.BeforeTraffic(ctx, r); err != nil || pre.Verdict.Result != release.Pass {
		t.Fatalf("smoke before traffic: %+v, %v", pre.Verdict, err)
	}
	r.Health.Steps = []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: start, Started: start}}
	for _, fn := range r.Functions {
		for range 6 {
			for _, v := range []string{"1", "2"} {
				out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn.FunctionName), Qualifier: aws.String(v), Payload: []byte(`{}`)})
				if err != nil || (v == "2") != (out.FunctionError != nil) {
					t.Fatalf("%s:%s: %v %+v", fn.FunctionName, v, err, out)
				}
			}
		}
	}
	v, err := c.Judge(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Notes) > 0 {
		t.Errorf("notes %q: a source could not be read", v.Notes)
	}
	for _, fn := range r.Functions {
		n := v.Functions[fn.FunctionName]
		if n["baselineInvocations"] != 6 || n["baselineErrors"] != 0 || n["canaryInvocations"] != 6 || n["canaryErrors"] != 6 {
			t.Errorf("%s: %v; want 6 invocations of each version (smoke invocation not counted), all of the canary's failed", fn.FunctionName, n)
		}
	}
	// Hooks: the example function answers hook events, the good flavour with success, the bad
	// with failure; a hook function that does not exist fails.
	for i, h := range []struct {
		fn, want string
		result   release.Result
	}{{"logs-Text:1", "answered success", release.Pass}, {"logs-Text:2", "answered failure: the bad flavour fails its pre-traffic checks", release.Fail}} {
		hooked := *r
		hooked.ID, hooked.Checks = "hook"+string(rune('a'+i)), &release.Checks{PreTraffic: h.fn}
		pre, err := c.BeforeTraffic(ctx, &hooked)
		if err != nil || pre.Verdict.Result != h.result || !strings.Contains(pre.Verdict.Reason, h.want) {
			t.Errorf("hook %s: %+v, %v", h.fn, pre.Verdict, err)
		}
	}
	hooked := *r
	hooked.ID, hooked.Checks = "hook-missing", &release.Checks{PostTraffic: "no-such-function"}
	if v, err := c.AfterTraffic(ctx, &hooked); err != nil || v.Result != release.Fail || !strings.Contains(v.Reason, "post-traffic hook no-such-function could not be invoked") {
		t.Errorf("missing hook: %+v, %v", v, err)
	}
	if err := c.Validate(ctx, &release.Checks{PreTraffic: "no-such-function", Alarms: []string{"no-such-alarm"}}); err == nil ||
		!strings.Contains(err.Error(), "hook function no-such-function does not exist") || !strings.Contains(err.Error(), "alarm no-such-alarm does not exist") {
		t.Errorf("validate: %v", err)
	}
}

// Where logs cannot be read, the metrics path still judges, and the verdict says what it could not
// read.
func TestHealthMetricsWithoutLogs(t *testing.T) {
	ctx := context.Background()
	srv, cfg := healthSandbox(t)
	twoVersions(t, cfg, "m", "1", 0.5)
	lc := lambda.NewFromConfig(cfg)
	start := time.Now().Add(-2 * time.Second)
	r := &release.Release{ID: "r1", Alias: "live", Steps: []release.Step{{Weight: 0.5}},
		Functions: []release.Function{{FunctionName: "m", Previous: "1", New: "2", Timeout: 1}},
		Checks:    &release.Checks{Logs: true, Metrics: true, MetricsPeriod: time.Second, Alpha: 0.01, Detect: 5, MaxErrorRate: 0.99, MaxThrottleRate: 0.99},
		Health:    release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: start, Started: start}}}}
	for range 40 {
		if _, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("m:live"), Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.SetFaults(sandbox.Faults{Rate: 1, Kinds: []string{"5xx"}, Services: []string{"logs"}}); err != nil {
		t.Fatal(err)
	}
	c := health.New(cfg)
	// Periods settle once they closed longer ago than the timeout (3 s at least) and the delay (0
	// here): the sandbox's metrics are stamped with the wall clock, so the test waits for it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := c.Judge(ctx, r, false)
		if err != nil {
			t.Fatal(err)
		}
		n := v.Functions["m"]
		if v.Result == release.Fail {
			if v.Function != "m" || n["canaryErrors"] == 0 || n["canaryErrors"] != n["canaryInvocations"] || n["baselineErrors"] != 0 ||
				!strings.Contains(strings.Join(v.Notes, " "), "logs: read log group /aws/lambda/m") {
				t.Fatalf("verdict %+v", v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metrics never showed the canary's errors: %+v", v)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// The two sources count the same invocations once, also in a metrics period that a step change
// cuts in two: the logs see each invocation's routing time, the metrics only its period, and the
// merge must not count one part of the period in both steps.
func TestHealthStepChangeInsideAPeriod(t *testing.T) {
	ctx := context.Background()
	_, cfg := healthSandbox(t)
	twoVersions(t, cfg, "m", "0", 0.5)
	lc := lambda.NewFromConfig(cfg)
	invoke := func(n int) {
		for range n {
			if _, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("m:live"), Payload: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	const period = 5 * time.Second
	first := time.Now().Add(-time.Second)
	// Warm both versions up, inside one period: the sandbox times an invocation's metrics by its
	// end, the logs by its start, so one that straddled two periods would be counted in each.
	// The sandbox stamps metrics and logs with the wall clock: the test lines its invocations up
	// with the periods it makes.
	time.Sleep(time.Until(time.Now().Truncate(period).Add(period + 100*time.Millisecond)))
	invoke(6)
	// Half the invocations at the first step's weight, half after the next step's shift, all in
	// one period.
	boundary := time.Now().Truncate(period).Add(period)
	time.Sleep(time.Until(boundary.Add(100 * time.Millisecond)))
	invoke(15)
	shift := time.Now()
	invoke(15)
	if time.Now().After(boundary.Add(period - 100*time.Millisecond)) {
		t.Skip("the invocations did not fit in one period")
	}
	r := &release.Release{ID: "r1", Alias: "live", Steps: []release.Step{{Weight: 0.1}, {Weight: 0.5}},
		Functions: []release.Function{{FunctionName: "m", Previous: "1", New: "2", Timeout: 1}},
		Checks:    &release.Checks{Logs: true, Metrics: true, MetricsPeriod: period, Alpha: 0.01, Detect: 5, MaxErrorRate: 0.99, MaxThrottleRate: 0.99},
		Health: release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.1, Shifted: first, Started: first},
			{Step: 1, Weight: 0.5, Shifted: shift, Started: shift}}}}
	// Settled: the period closed longer ago than the timeout (at least 3 s) and the delay (0).
	time.Sleep(time.Until(boundary.Add(period + 3*time.Second + 500*time.Millisecond)))
	c := health.New(cfg)
	v, err := c.Judge(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	n := v.Functions["m"]
	if got := n["canaryInvocations"] + n["baselineInvocations"]; got != 36 {
		t.Fatalf("counted %v invocations of 36 (canary %v, baseline %v): %+v", got, n["canaryInvocations"], n["baselineInvocations"], v)
	}
}

// An alarm read that fails does not hide a canary the split test has already rejected: the
// verdict is judged first, and the read error is reported only when the verdict is not a Fail.
func TestHealthAlarmReadErrorAfterVerdict(t *testing.T) {
	ctx := context.Background()
	srv, cfg := healthSandbox(t)
	twoVersions(t, cfg, "m", "1", 0.5)
	start := time.Now().Add(-time.Second)
	lc := lambda.NewFromConfig(cfg)
	for range 40 {
		if _, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("m:live"), Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.SetFaults(sandbox.Faults{Rate: 1, Kinds: []string{"5xx"}, Services: []string{"monitoring"}, Operations: []string{"DescribeAlarms"}}); err != nil {
		t.Fatal(err)
	}
	release1 := func(id, version string) *release.Release {
		return &release.Release{ID: id, Alias: "live", Steps: []release.Step{{Weight: 0.5}},
			Functions: []release.Function{{FunctionName: "m", Previous: "1", New: version, Timeout: 1}},
			Checks:    &release.Checks{Logs: true, Alpha: 0.01, Detect: 5, MaxErrorRate: 1, MaxThrottleRate: 1, Alarms: []string{"m-errors"}},
			Health:    release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: start, Started: start}}}}
	}
	c := health.New(cfg)
	v, err := c.Judge(ctx, release1("bad", "2"), false)
	if err != nil || v.Result != release.Fail || v.Check != "errors" || v.Function != "m" || !strings.Contains(strings.Join(v.Notes, " "), "DescribeAlarms") {
		t.Fatalf("a rejected canary with alarms unreadable: %+v, %v", v, err)
	}
	// Judged as a release of version 1 against itself: no regression, so the read error stands.
	if v, err := c.Judge(ctx, release1("same", "1"), false); err == nil || !strings.Contains(err.Error(), "DescribeAlarms") {
		t.Fatalf("a healthy canary with alarms unreadable: %+v, %v", v, err)
	}
}

// A smoke invocation that Lambda's API could not make says nothing of the new version: it is an
// error, not a Fail, and it is not remembered for the step (the next look tries again). Only a
// function error or a failed expectation fails. The end of the context is an error, for smoke
// invocations and hooks alike.
func TestHealthSmokeAPIErrors(t *testing.T) {
	ctx := context.Background()
	srv, cfg := healthSandbox(t)
	twoVersions(t, cfg, "m", "1", 0.5)
	start := time.Now()
	r := &release.Release{ID: "r1", Alias: "live", Steps: []release.Step{{Weight: 0.5}}, StepStarted: start,
		Functions: []release.Function{{FunctionName: "m", Previous: "1", New: "1", Timeout: 1}},
		Checks: &release.Checks{Logs: true, Alpha: 0.01, Detect: 5, MaxErrorRate: 1, MaxThrottleRate: 1, PostTraffic: "m:1",
			Smoke: []release.Smoke{{Payload: `{"action":"echo"}`}}},
		Health: release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: start, Started: start}}}}
	c := health.New(cfg)
	c.InvokeBackoff = 10 * time.Millisecond
	if err := srv.SetFaults(sandbox.Faults{Rate: 1, Kinds: []string{"5xx"}, Services: []string{"lambda"}, Operations: []string{"Invoke"}}); err != nil {
		t.Fatal(err)
	}
	srv.ResetRequests()
	if pre, err := c.BeforeTraffic(ctx, r); err == nil || pre.Verdict.Result == release.Fail {
		t.Errorf("before traffic, Invoke failing: %+v, %v", pre.Verdict, err)
	}
	invokes := 0
	for _, req := range srv.Requests() {
		if req.Operation == "Invoke" {
			invokes++
		}
	}
	// The checker tries a transient failure three times (AWS_MAX_ATTEMPTS=1: the SDK once each).
	if invokes != 3 {
		t.Errorf("the smoke invocation was tried %d times, want 3", invokes)
	}
	if v, err := c.Judge(ctx, r, false); err == nil || v.Result == release.Fail {
		t.Errorf("at a step, Invoke failing: %+v, %v", v, err)
	}
	hooked := *r
	hooked.ID = "r2" // AfterTraffic forgets the release it is given
	if v, err := c.AfterTraffic(ctx, &hooked); err == nil || v.Result == release.Fail {
		t.Errorf("post-traffic hook, Invoke failing: %+v, %v", v, err)
	}
	if err := srv.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	// The same step, Lambda answering again: the smoke invocations run again, and pass.
	if v, err := c.Judge(ctx, r, false); err != nil || v.Result == release.Fail {
		t.Errorf("at the same step, Invoke answering: %+v, %v", v, err)
	}
	// A failed expectation fails, and so does a function error.
	r.Checks.Smoke[0].Expect = map[string]any{"$.flavor": "bad"}
	r.StepStarted = start.Add(time.Second)
	if v, err := c.Judge(ctx, r, false); err != nil || v.Result != release.Fail || v.Check != "smoke" || !strings.Contains(v.Reason, `$.flavor is "good", want "bad"`) {
		t.Errorf("an expectation not met: %+v, %v", v, err)
	}
	r.Functions[0].New, r.StepStarted, r.Checks.Smoke = "2", start.Add(2*time.Second), []release.Smoke{{Payload: `{}`}}
	if v, err := c.Judge(ctx, r, false); err != nil || v.Result != release.Fail || v.Check != "smoke" || !strings.Contains(v.Reason, "function error") {
		t.Errorf("a failing new version: %+v, %v", v, err)
	}
	// A context that ended.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if pre, err := c.BeforeTraffic(done, r); !errors.Is(err, context.Canceled) || pre.Verdict.Result == release.Fail {
		t.Errorf("before traffic, context ended: %+v, %v", pre.Verdict, err)
	}
	if v, err := c.AfterTraffic(done, &hooked); !errors.Is(err, context.Canceled) || v.Result == release.Fail {
		t.Errorf("post-traffic hook, context ended: %+v, %v", v, err)
	}
}

// An alarm already in ALARM when the alarms were read before traffic does not block the release;
// but one that changed state after that read, while the smoke invocations and hooks ran and
// before the verdict before traffic was recorded, did so during the release: it fails.
func TestHealthPreexistingAlarmCutoff(t *testing.T) {
	ctx := context.Background()
	_, cfg := healthSandbox(t)
	twoVersions(t, cfg, "m", "0", 0.5)
	cw := cloudwatch.NewFromConfig(cfg)
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("old"), Namespace: aws.String("Shop"), MetricName: aws.String("Failures"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("ignore"),
	}); err != nil {
		t.Fatal(err)
	}
	setAlarm := func(state cwtypes.StateValue) {
		if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("old"), StateValue: state, StateReason: aws.String("set by the test")}); err != nil {
			t.Fatal(err)
		}
		// The sandbox stamps alarm changes with the wall clock, to the second: the next change
		// must be stamped later.
		time.Sleep(1100 * time.Millisecond)
	}
	setAlarm(cwtypes.StateValueAlarm)
	start := time.Now()
	r := &release.Release{ID: "r1", Alias: "live", Steps: []release.Step{{Weight: 0.5}}, StepStarted: start,
		Functions: []release.Function{{FunctionName: "m", Previous: "1", New: "2", Timeout: 1}},
		Checks:    &release.Checks{Logs: true, Alpha: 0.01, Detect: 5, MaxErrorRate: 1, MaxThrottleRate: 1, Alarms: []string{"old"}}}
	c := health.New(cfg)
	c.AlarmsEvery = time.Millisecond
	pre, err := c.BeforeTraffic(ctx, r)
	if err != nil || pre.Verdict.Result != release.Pass || len(pre.PreexistingAlarms) != 1 {
		t.Fatalf("before traffic: %+v, %v", pre, err)
	}
	record := func() {
		v := pre.Verdict
		v.At = time.Now() // as the engine stamps it, once the checks before traffic are over
		r.Health.PreTraffic, r.Health.PreexistingAlarms = &v, pre.PreexistingAlarms
		r.Health.Steps = []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: v.At, Started: v.At}}
	}
	record()
	if v, err := c.Judge(ctx, r, false); err != nil || v.Result == release.Fail || !strings.Contains(strings.Join(v.Notes, " "), "still in ALARM") {
		t.Fatalf("the alarm as it was before the release: %+v, %v", v, err)
	}
	// The alarm recovers and fires again after it was read, before the verdict is stamped.
	setAlarm(cwtypes.StateValueOk)
	setAlarm(cwtypes.StateValueAlarm)
	record()
	if v, err := c.Judge(ctx, r, false); err != nil || v.Result != release.Fail || v.Check != "alarm" {
		t.Fatalf("the alarm firing again since it was read: %+v, %v", v, err)
	}
}

// healthSandbox starts a sandbox with 1-second metric periods for one test and returns it with a
// client configuration for it.
func healthSandbox(t *testing.T) (*sandbox.Server, aws.Config) {
	t.Helper()
	ctx := context.Background()
	srv, err := sandbox.Start(ctx, sandbox.Options{UpdateDelay: -1, ControlRate: -1, MetricResolution: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, cfg
}

// exampleFlavours builds the example function's good flavour and its bad flavour failing the
// given share of requests ("0": none).
func exampleFlavours(t *testing.T, badRate string) (good, bad []byte) {
	t.Helper()
	ctx := context.Background()
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	if good, err = examplefn.Build(ctx, root, "./examples/hello", "good"); err != nil {
		t.Fatal(err)
	}
	if bad, err = examplefn.BuildWith(ctx, root, "./examples/hello", map[string]string{"flavor": "bad", "badRate": badRate}); err != nil {
		t.Fatal(err)
	}
	return good, bad
}

// twoVersions creates function name with the example's good flavour as version 1 and, as version
// 2, the bad flavour failing the given share of requests, and alias live on version 1 with weight
// on version 2.
func twoVersions(t *testing.T, cfg aws.Config, name, badRate string, weight float64) {
	t.Helper()
	ctx := context.Background()
	good, bad := exampleFlavours(t, badRate)
	lc := lambda.NewFromConfig(cfg)
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: good}, Publish: true, Timeout: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: bad, Publish: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": weight}}}); err != nil {
		t.Fatal(err)
	}
}
