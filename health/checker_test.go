package health

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/analysis"
	"github.com/aviary-deploy/aviary/release"
)

// t0 is a minute boundary, as CloudWatch aligns its periods.
var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// Only settled metrics periods are judged: one that closed longer ago than the function's timeout
// plus the settling delay. Each read recounts every settled period (a late point is counted once,
// when it lands), and metrics are read at most every half period.
func TestMetricsOnlySettledPeriods(t *testing.T) {
	c, clock, _, cw, _ := testChecker(t0)
	r := &release.Release{ID: "r", Alias: "live", Steps: []release.Step{{Weight: 0.1}},
		Functions: []release.Function{{FunctionName: "api", Previous: "1", New: "2", Timeout: 3}},
		Checks: &release.Checks{Metrics: true, MetricsPeriod: time.Minute, MetricsDelay: 30 * time.Second,
			Alpha: 0.01, Detect: 5, MaxErrorRate: 0.5, MaxThrottleRate: 0.5},
		Health: release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.1, Shifted: t0.Add(10 * time.Second), Started: t0.Add(10 * time.Second)}}}}
	minute := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	cw.put("api", "Invocations", "2", minute(0), 10)
	cw.put("api", "Errors", "2", minute(0), 0)
	cw.put("api", "Invocations", "1", minute(0), 90)
	cw.put("api", "Errors", "1", minute(0), 1)
	cw.put("api", "Throttles", "", minute(0), 3)
	cw.put("api", "Invocations", "2", minute(1), 20)
	cw.put("api", "Errors", "2", minute(1), 2)
	cw.put("api", "Invocations", "1", minute(1), 180)
	cw.put("api", "Errors", "1", minute(1), 2)
	cw.put("api", "Invocations", "2", minute(2), 5) // the period under way: partial

	judge := func(at time.Time) map[string]float64 {
		t.Helper()
		clock.set(at)
		v, err := c.Judge(context.Background(), r, false)
		if err != nil {
			t.Fatalf("at %s: %v", at.Format(time.TimeOnly), err)
		}
		return v.Functions["api"]
	}
	type seen struct{ canary, canaryErrors, base, baseErrors, throttles float64 }
	of := func(n map[string]float64) seen {
		return seen{n["canaryInvocations"], n["canaryErrors"], n["baselineInvocations"], n["baselineErrors"], n["aliasThrottles"]}
	}
	for _, step := range []struct {
		at    time.Time
		want  seen
		reads int
		why   string
	}{
		{minute(1).Add(3 * time.Second), seen{}, 1, "minute 0 closed the timeout ago, but the delay is not over"},
		{minute(1).Add(33 * time.Second), seen{10, 0, 90, 1, 3}, 2, "minute 0 settled"},
		{minute(1).Add(62 * time.Second), seen{10, 0, 90, 1, 3}, 2, "less than half a period since the last read: not read again"},
		{minute(2).Add(3 * time.Second), seen{10, 0, 90, 1, 3}, 3, "minute 1 not settled yet"},
		{minute(2).Add(33 * time.Second), seen{30, 2, 270, 3, 3}, 4, "minute 1 settled; minute 2, under way, is not counted"},
	} {
		if got := of(judge(step.at)); got != step.want {
			t.Errorf("at %s (%s): %+v, want %+v", step.at.Format(time.TimeOnly), step.why, got, step.want)
		}
		if reads, _ := cw.calls(); reads != step.reads {
			t.Errorf("at %s: %d reads of the metrics, want %d", step.at.Format(time.TimeOnly), reads, step.reads)
		}
	}
	// A late point of a settled period is counted when it lands, once.
	cw.put("api", "Invocations", "2", minute(0), 11)
	if got, want := of(judge(minute(3).Add(3*time.Second))), (seen{31, 2, 270, 3, 3}); got != want {
		t.Errorf("after a late point: %+v, want %+v", got, want)
	}
	// The reads ask from the period of the first shift to now, in the release's period.
	in := cw.metricCalls[len(cw.metricCalls)-1]
	if !aws.ToTime(in.StartTime).Equal(t0) || !aws.ToTime(in.EndTime).Equal(minute(3).Add(3*time.Second)) || aws.ToInt32(in.MetricDataQueries[0].MetricStat.Period) != 60 {
		t.Errorf("GetMetricData from %s to %s, period %d", aws.ToTime(in.StartTime), aws.ToTime(in.EndTime), aws.ToInt32(in.MetricDataQueries[0].MetricStat.Period))
	}
}

// The logs count on the metrics' grid: each invocation in the period that holds its routing time.
// A period that a step change cuts in two is given wholly to one step, its two sources merged
// first, so nothing is counted twice; a re-read of the logs' overlap counts nothing again.
func TestLogsOnTheMetricsGrid(t *testing.T) {
	const period = 5 * time.Second
	c, clock, _, cw, logs := testChecker(t0)
	const group = "/aws/lambda/m"
	first, shift := t0.Add(-time.Second), t0.Add(period+2500*time.Millisecond)
	r := &release.Release{ID: "r", Alias: "live", Steps: []release.Step{{Weight: 0.1}, {Weight: 0.5}},
		Functions: []release.Function{{FunctionName: "m", Previous: "1", New: "2", Timeout: 1}},
		Checks:    &release.Checks{Logs: true, Metrics: true, MetricsPeriod: period, Alpha: 0.01, Detect: 5, MaxErrorRate: 0.99, MaxThrottleRate: 0.99},
		Health: release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.1, Shifted: first, Started: first},
			{Step: 1, Weight: 0.5, Shifted: shift, Started: shift}}}}
	// Period 0, wholly at step 0: 3 invocations of each version.
	// Period 1: 15 invocations before the shift (5 of the canary), 15 after (8 of the canary).
	// The logs show one of the canary's errors; the metrics both (a runtime that logs only one).
	n := 0
	invoke := func(at time.Time, version string, failed bool) {
		n++
		logs.invocation(group, version, requestID(1, n), at, failed)
	}
	for i := range 3 {
		at := t0.Add(time.Second + time.Duration(i)*100*time.Millisecond)
		invoke(at, "1", false)
		invoke(at.Add(10*time.Millisecond), "2", false)
	}
	for i := range 15 {
		at := t0.Add(period + 100*time.Millisecond + time.Duration(i)*100*time.Millisecond)
		invoke(at, map[bool]string{true: "2", false: "1"}[i < 5], i == 0)
	}
	for i := range 15 {
		at := shift.Add(100*time.Millisecond + time.Duration(i)*100*time.Millisecond)
		invoke(at, map[bool]string{true: "2", false: "1"}[i < 8], false)
	}
	cw.put("m", "Invocations", "1", t0, 3)
	cw.put("m", "Invocations", "2", t0, 3)
	cw.put("m", "Invocations", "1", t0.Add(period), 17)
	cw.put("m", "Invocations", "2", t0.Add(period), 13)
	cw.put("m", "Errors", "2", t0.Add(period), 2)

	windows := func() []analysis.Window {
		w := c.watch(r)
		w.mu.Lock()
		defer w.mu.Unlock()
		wins, _ := w.fns["m"].windows(r, r.Functions[0], grid(r.Checks))
		return wins
	}
	judge := func(at time.Time) release.Verdict {
		t.Helper()
		clock.set(at)
		v, err := c.Judge(context.Background(), r, false)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Period 1 has not settled for the metrics (it closes at 10 s, settles 3 s later): the logs
	// alone count it, and see one error.
	judge(t0.Add(2*period + 500*time.Millisecond))
	want := []analysis.Window{
		{Weight: 0.1, CanaryN: 3, BaseN: 3},
		{Weight: 0.5, CanaryN: 13, CanaryErrors: 1, BaseN: 17},
	}
	if got := windows(); !reflect.DeepEqual(got, want) {
		t.Errorf("before period 1 settled: %+v, want %+v", got, want)
	}
	// Settled: the metrics' second error counts; every invocation is counted once.
	v := judge(t0.Add(2*period + 3*time.Second))
	want[1].CanaryErrors = 2
	if got := windows(); !reflect.DeepEqual(got, want) {
		t.Errorf("after period 1 settled: %+v, want %+v", got, want)
	}
	if got := v.Functions["m"]["canaryInvocations"] + v.Functions["m"]["baselineInvocations"]; got != 36 {
		t.Errorf("counted %v invocations of 36: %+v", got, v)
	}
	if logs.calls != 2 {
		t.Errorf("%d reads of the logs, want 2", logs.calls)
	}
}

// Where the logs cannot be read, the metrics still judge, and the verdict says what could not be
// read; with the logs as the only source, that is an error. A log group not created yet is no
// error: Lambda creates it with the first invocation's logs.
func TestLogsUnreadable(t *testing.T) {
	c, clock, _, cw, logs := testChecker(t0)
	r := &release.Release{ID: "r", Alias: "live", Steps: []release.Step{{Weight: 0.5}},
		Functions: []release.Function{{FunctionName: "m", Previous: "1", New: "2", Timeout: 1}},
		Checks:    &release.Checks{Logs: true, Metrics: true, MetricsPeriod: time.Second, Alpha: 0.01, Detect: 5, MaxErrorRate: 0.99, MaxThrottleRate: 0.99},
		Health:    release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: t0, Started: t0}}}}
	for i := range 4 {
		at := t0.Add(time.Duration(i) * time.Second)
		cw.put("m", "Invocations", "2", at, 10)
		cw.put("m", "Errors", "2", at, 10)
		cw.put("m", "Invocations", "1", at, 10)
	}
	clock.set(t0.Add(time.Minute))
	// No log group yet.
	v, err := c.Judge(context.Background(), r, false)
	if err != nil || len(v.Notes) != 0 || v.Functions["m"]["canaryInvocations"] != 40 {
		t.Fatalf("no log group yet: %+v, %v", v, err)
	}
	logs.err = sdkError("CloudWatch Logs", "FilterLogEvents", 503, errors.New("service unavailable"))
	c, clock, _, _, _ = testChecker(t0.Add(time.Minute))
	c.CloudWatch, c.Logs = cw, logs
	v, err = c.Judge(context.Background(), r, false)
	if err != nil || v.Result != release.Fail || v.Function != "m" || v.Functions["m"]["canaryErrors"] != 40 ||
		!strings.Contains(strings.Join(v.Notes, " "), "logs: read log group /aws/lambda/m") {
		t.Fatalf("logs unreadable, metrics read: %+v, %v", v, err)
	}
	r.Checks.Metrics = false
	clock.set(t0.Add(2 * time.Minute))
	if v, err := c.Judge(context.Background(), r, false); err == nil || !strings.Contains(err.Error(), "read log group /aws/lambda/m") {
		t.Fatalf("logs the only source, unreadable: %+v, %v", v, err)
	}
}

// An alarm already firing before the release is reported, not blocking (the release may be its
// fix) unless block_on_firing_alarms is set; an alarm that goes into ALARM during the release
// fails it, and so does the old one firing again. Alarms are read every AlarmsEvery.
func TestAlarms(t *testing.T) {
	ctx := context.Background()
	c, clock, _, cw, _ := testChecker(t0)
	cw.setAlarm("old", cwtypes.StateValueAlarm, t0.Add(-time.Hour), "Threshold Crossed")
	cw.setAlarm("quiet", cwtypes.StateValueOk, t0.Add(-time.Hour), "")
	newRelease := func(id string) *release.Release {
		return &release.Release{ID: id, Alias: "live", Steps: []release.Step{{Weight: 0.5}},
			Functions: []release.Function{{FunctionName: "m", Previous: "1", New: "2", Timeout: 1}},
			Checks:    &release.Checks{Alpha: 0.01, Detect: 5, MaxErrorRate: 1, MaxThrottleRate: 1, Alarms: []string{"old", "quiet", "gone"}}}
	}
	r := newRelease("r")
	pre, err := c.BeforeTraffic(ctx, r)
	notes := strings.Join(pre.Verdict.Notes, "\n")
	if err != nil || pre.Verdict.Result != release.Pass || !slices.Equal(pre.PreexistingAlarms, []string{"old"}) ||
		!strings.Contains(notes, "alarm old was already in ALARM before the release (Threshold Crossed); it is reported, not blocking") ||
		!strings.Contains(notes, "alarm gone does not exist") {
		t.Fatalf("before traffic: %+v, %v", pre, err)
	}
	blocking := newRelease("blocking")
	blocking.Checks.BlockPreexisting = true
	if pre, err := c.BeforeTraffic(ctx, blocking); err != nil || pre.Verdict.Result != release.Fail || pre.Verdict.Check != "alarm" ||
		!strings.Contains(pre.Verdict.Reason, "block_on_firing_alarms") {
		t.Fatalf("before traffic, blocking on firing alarms: %+v, %v", pre, err)
	}

	// The engine records the verdict before traffic and shifts.
	v := pre.Verdict
	v.At = t0.Add(time.Second)
	r.Health.PreTraffic, r.Health.PreexistingAlarms = &v, pre.PreexistingAlarms
	r.Health.Steps = []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: v.At, Started: v.At}}
	judge := func(at time.Time) (release.Verdict, error) {
		clock.set(at)
		return c.Judge(ctx, r, false)
	}
	_, readsBefore := cw.calls()
	if v, err := judge(t0.Add(5 * time.Second)); err != nil || v.Result == release.Fail || !strings.Contains(strings.Join(v.Notes, " "), "alarm old is still in ALARM, as it was before the release") {
		t.Fatalf("the alarm as it was: %+v, %v", v, err)
	}
	cw.setAlarm("quiet", cwtypes.StateValueAlarm, t0.Add(6*time.Second), "Threshold Crossed: 5 datapoints")
	if v, err := judge(t0.Add(6 * time.Second)); err != nil || v.Result == release.Fail {
		t.Fatalf("alarms read again within AlarmsEvery: %+v, %v", v, err)
	}
	if _, reads := cw.calls(); reads != readsBefore+1 {
		t.Errorf("%d reads of the alarms since before traffic, want 1", reads-readsBefore)
	}
	if v, err := judge(t0.Add(7 * time.Second)); err != nil || v.Result != release.Fail || v.Check != "alarm" || !strings.Contains(v.Reason, "alarm quiet went into ALARM") {
		t.Fatalf("an alarm going into ALARM during the release: %+v, %v", v, err)
	}
	// The old alarm recovers and fires again.
	cw.setAlarm("quiet", cwtypes.StateValueOk, t0.Add(8*time.Second), "")
	cw.setAlarm("old", cwtypes.StateValueAlarm, t0.Add(8*time.Second), "Threshold Crossed again")
	if v, err := judge(t0.Add(10 * time.Second)); err != nil || v.Result != release.Fail || v.Check != "alarm" || !strings.Contains(v.Reason, "alarm old went into ALARM") {
		t.Fatalf("the old alarm firing again: %+v, %v", v, err)
	}
}

// An alarm read that fails does not hide a canary the split test has already rejected: the
// verdict is judged first, and the read error is reported only when the verdict is not a Fail.
func TestAlarmReadErrorAfterVerdict(t *testing.T) {
	c, _, _, cw, _ := testChecker(t0.Add(time.Minute))
	for i := range 4 {
		at := t0.Add(time.Duration(i) * time.Second)
		cw.put("m", "Invocations", "2", at, 10)
		cw.put("m", "Errors", "2", at, 5)
		cw.put("m", "Invocations", "1", at, 10)
	}
	cw.alarmsErr = sdkError("CloudWatch", "DescribeAlarms", 500, errors.New("internal failure"))
	newRelease := func(id, version string) *release.Release {
		return &release.Release{ID: id, Alias: "live", Steps: []release.Step{{Weight: 0.5}},
			Functions: []release.Function{{FunctionName: "m", Previous: "1", New: version, Timeout: 1}},
			Checks: &release.Checks{Metrics: true, MetricsPeriod: time.Second, Alpha: 0.01, Detect: 5, MaxErrorRate: 1, MaxThrottleRate: 1,
				Alarms: []string{"m-errors"}},
			Health: release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: t0, Started: t0}}}}
	}
	v, err := c.Judge(context.Background(), newRelease("bad", "2"), false)
	if err != nil || v.Result != release.Fail || v.Check != "errors" || v.Function != "m" || !strings.Contains(strings.Join(v.Notes, " "), "DescribeAlarms") {
		t.Fatalf("a rejected canary with alarms unreadable: %+v, %v", v, err)
	}
	// Version 1 against itself: no regression, so the read error stands.
	if v, err := c.Judge(context.Background(), newRelease("same", "1"), false); err == nil || !strings.Contains(err.Error(), "DescribeAlarms") {
		t.Fatalf("a healthy canary with alarms unreadable: %+v, %v", v, err)
	}
}

// Smoke invocations call each new version itself (not the alias) with each payload meant for it;
// a function error or an expectation not met fails, naming what.
func TestSmoke(t *testing.T) {
	ctx := context.Background()
	c, _, lc, _, _ := testChecker(t0)
	r := &release.Release{ID: "r", Alias: "live", Steps: []release.Step{{Weight: 0.5}},
		Functions: []release.Function{{Name: "api", FunctionName: "shop-api", Previous: "1", New: "2"}, {Name: "orders", FunctionName: "shop-orders", Previous: "4", New: "5"}},
		Checks: &release.Checks{Smoke: []release.Smoke{{Payload: `{"action":"echo"}`, Expect: map[string]any{"$.ok": true}},
			{Function: "orders", Payload: `{"action":"order"}`}}}}
	healthy := func(_ context.Context, in *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		return answer(requestID(2, 1), `{"ok":true}`, ""), nil
	}
	lc.setInvoke(healthy)
	pre, err := c.BeforeTraffic(ctx, r)
	if err != nil || pre.Verdict.Result != release.Pass || !strings.Contains(pre.Verdict.Reason, "smoke invocations of the 2 new versions passed") {
		t.Fatalf("healthy: %+v, %v", pre.Verdict, err)
	}
	if got, want := lc.invoked(), []string{`shop-api:2 {"action":"echo"}`, `shop-orders:5 {"action":"echo"}`, `shop-orders:5 {"action":"order"}`}; !slices.Equal(got, want) {
		t.Errorf("invoked %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name   string
		answer func(in *lambda.InvokeInput) *lambda.InvokeOutput
		want   string
	}{
		{"a function error", func(in *lambda.InvokeInput) *lambda.InvokeOutput {
			if aws.ToString(in.FunctionName) == "shop-orders" {
				return answer(requestID(2, 2), `{"errorMessage":"boom"}`, "Unhandled")
			}
			return answer(requestID(2, 3), `{"ok":true}`, "")
		}, `shop-orders version 5 with {"action":"echo"}: function error Unhandled: {"errorMessage":"boom"}`},
		{"an expectation not met", func(in *lambda.InvokeInput) *lambda.InvokeOutput {
			return answer(requestID(2, 4), `{"ok":false}`, "")
		}, `shop-api version 2 with {"action":"echo"}: $.ok is false, want true`},
		{"an answer that is not JSON", func(in *lambda.InvokeInput) *lambda.InvokeOutput {
			return answer(requestID(2, 5), `ok`, "")
		}, `the answer is not JSON (ok), so $.ok cannot be checked`},
	} {
		lc.setInvoke(func(_ context.Context, in *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
			return tc.answer(in), nil
		})
		r.ID = tc.name
		pre, err := c.BeforeTraffic(ctx, r)
		if err != nil || pre.Verdict.Result != release.Fail || pre.Verdict.Check != "smoke" || !strings.Contains(pre.Verdict.Reason, tc.want) {
			t.Errorf("%s: %+v, %v", tc.name, pre.Verdict, err)
		}
	}
}

// An invocation Lambda's API could not make says nothing of the new version: it is an error, not
// a failed smoke. A transient one is tried again after the backoff, by the clock; the step's
// smoke invocations are not remembered as done, so the next look tries them again. The end of the
// context is an error too.
func TestSmokeAPIErrorIsNotAFailure(t *testing.T) {
	ctx := context.Background()
	r := &release.Release{ID: "r", Alias: "live", Steps: []release.Step{{Weight: 0.5}}, StepStarted: t0,
		Functions: []release.Function{{Name: "m", FunctionName: "m", Previous: "1", New: "2"}},
		Checks:    &release.Checks{Alpha: 0.01, Detect: 5, MaxErrorRate: 1, MaxThrottleRate: 1, Smoke: []release.Smoke{{Payload: `{}`}}},
		Health:    release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: t0, Started: t0}}}}
	for _, tc := range []struct {
		name    string
		err     error
		backoff time.Duration
		waits   []time.Duration
	}{
		{"a service error", lambdaServiceError(), 0, []time.Duration{500 * time.Millisecond, time.Second}},
		{"throttling", lambdaThrottled(), 100 * time.Millisecond, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}},
		{"access denied", lambdaAccessDenied(), 0, nil},
	} {
		c, clock, lc, _, _ := testChecker(t0)
		c.InvokeBackoff = tc.backoff
		lc.setInvoke(func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) { return nil, tc.err })
		pre, err := c.BeforeTraffic(ctx, r)
		if err == nil || pre.Verdict.Result == release.Fail || !errors.Is(err, tc.err) || !strings.Contains(err.Error(), "smoke invocation before traffic: m version 2") {
			t.Errorf("%s: %+v, %v", tc.name, pre.Verdict, err)
		}
		if got, want := len(lc.invoked()), len(tc.waits)+1; got != want {
			t.Errorf("%s: tried %d times, want %d", tc.name, got, want)
		}
		if got := clock.waited(); !slices.Equal(got, tc.waits) {
			t.Errorf("%s: waited %v, want %v", tc.name, got, tc.waits)
		}
	}

	c, clock, lc, _, _ := testChecker(t0)
	lc.setInvoke(func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		return nil, lambdaServiceError()
	})
	if v, err := c.Judge(ctx, r, false); err == nil || v.Result == release.Fail {
		t.Errorf("at a step, Invoke failing: %+v, %v", v, err)
	}
	// The same step, Lambda answering again: the smoke invocation runs again and passes, once.
	lc.setInvoke(func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		return answer(requestID(3, 1), `{}`, ""), nil
	})
	for range 2 {
		clock.set(clock.Now().Add(time.Second))
		if v, err := c.Judge(ctx, r, false); err != nil || v.Result == release.Fail {
			t.Errorf("at the same step, Invoke answering: %+v, %v", v, err)
		}
	}
	if got := len(lc.invoked()); got != 1 {
		t.Errorf("invoked %d times at one step, want 1", got)
	}
	// At the next step it runs again; a failure is remembered for the step.
	lc.setInvoke(func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		return answer(requestID(3, 2), `{"errorMessage":"boom"}`, "Unhandled"), nil
	})
	r.StepStarted = t0.Add(time.Minute)
	for range 2 {
		if v, err := c.Judge(ctx, r, false); err != nil || v.Result != release.Fail || v.Check != "smoke" {
			t.Errorf("at the next step, a function error: %+v, %v", v, err)
		}
	}
	if got := len(lc.invoked()); got != 1 {
		t.Errorf("invoked %d times at the next step, want 1", got)
	}
	// A context that ended.
	done, cancel := context.WithCancel(ctx)
	cancel()
	r.ID = "ended"
	if pre, err := c.BeforeTraffic(done, r); !errors.Is(err, context.Canceled) || pre.Verdict.Result == release.Fail {
		t.Errorf("before traffic, context ended: %+v, %v", pre.Verdict, err)
	}
}

// Smoke invocations are not traffic: the logs' lines of their requests are not counted.
func TestSmokeNotCounted(t *testing.T) {
	ctx := context.Background()
	c, clock, lc, _, logs := testChecker(t0)
	const group = "/aws/lambda/m"
	smokeID := requestID(4, 1)
	lc.setInvoke(func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		return answer(smokeID, `{}`, ""), nil
	})
	r := &release.Release{ID: "r", Alias: "live", Steps: []release.Step{{Weight: 0.5}},
		Functions: []release.Function{{Name: "m", FunctionName: "m", Previous: "1", New: "2"}},
		Checks:    &release.Checks{Logs: true, Alpha: 0.01, Detect: 5, MaxErrorRate: 1, MaxThrottleRate: 1, Smoke: []release.Smoke{{Payload: `{}`}}}}
	if pre, err := c.BeforeTraffic(ctx, r); err != nil || pre.Verdict.Result != release.Pass {
		t.Fatalf("before traffic: %+v, %v", pre.Verdict, err)
	}
	r.Health.Steps = []release.StepRecord{{Step: 0, Weight: 0.5, Shifted: t0, Started: t0}}
	logs.invocation(group, "2", smokeID, t0.Add(100*time.Millisecond), false)
	logs.invocation(group, "2", requestID(4, 2), t0.Add(200*time.Millisecond), true)
	logs.invocation(group, "1", requestID(4, 3), t0.Add(300*time.Millisecond), false)
	clock.set(t0.Add(time.Second))
	v, err := c.Judge(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := v.Functions["m"]; n["canaryInvocations"] != 1 || n["canaryErrors"] != 1 || n["baselineInvocations"] != 1 || n["baselineErrors"] != 0 {
		t.Errorf("counted %v; want one invocation of each version, the canary's failed, the smoke invocation not counted", n)
	}
}

// Hooks are invoked with the release's facts and pass when they answer success; any other answer,
// a function error, or a hook that cannot be invoked for what it is fails; what Lambda's API could
// not invoke for now is an error.
func TestHooks(t *testing.T) {
	ctx := context.Background()
	r := &release.Release{ID: "r", Service: "shop", Environment: "prod", Region: "eu-west-1", Alias: "live", Steps: []release.Step{{Weight: 0.5}},
		Functions: []release.Function{{Name: "api", FunctionName: "shop-api", Previous: "1", New: "2"}, {Name: "fresh", FunctionName: "shop-fresh", New: "1"}},
		Checks:    &release.Checks{PreTraffic: "gate", PostTraffic: "after"}}
	c, _, lc, _, _ := testChecker(t0)
	var got HookEvent
	lc.setInvoke(func(_ context.Context, in *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		if err := json.Unmarshal(in.Payload, &got); err != nil {
			t.Errorf("hook payload %s: %v", in.Payload, err)
		}
		return answer(requestID(5, 1), `{"status": "success"}`, ""), nil
	})
	pre, err := c.BeforeTraffic(ctx, r)
	if err != nil || pre.Verdict.Result != release.Pass || !strings.Contains(pre.Verdict.Reason, "pre-traffic hook gate answered success") {
		t.Fatalf("pre-traffic hook: %+v, %v", pre.Verdict, err)
	}
	want := HookEvent{Hook: "pre-traffic", Service: "shop", Environment: "prod", Release: "r", Alias: "live", Region: "eu-west-1",
		Functions: []HookFunction{{Name: "api", FunctionName: "shop-api", PreviousVersion: "1", NewVersion: "2"}, {Name: "fresh", FunctionName: "shop-fresh", NewVersion: "1"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hook event %+v, want %+v", got, want)
	}
	if v, err := c.AfterTraffic(ctx, r); err != nil || v.Result != release.Pass || got.Hook != "post-traffic" || !strings.Contains(v.Reason, "post-traffic hook after answered success") {
		t.Errorf("post-traffic hook: %+v, %v", v, err)
	}
	noHook := *r
	noHook.Checks = &release.Checks{}
	if v, err := c.AfterTraffic(ctx, &noHook); err != nil || v.Result != release.Pass {
		t.Errorf("no post-traffic hook: %+v, %v", v, err)
	}

	answers := func(out *lambda.InvokeOutput, err error) func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		return func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) { return out, err }
	}
	for _, tc := range []struct {
		name   string
		invoke func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error)
		result release.Result
		want   string
		tries  int
	}{
		{"failure", answers(answer(requestID(5, 2), `{"status":"failure","reason":"orders table not migrated"}`, ""), nil), release.Fail,
			"post-traffic hook after answered failure: orders table not migrated", 1},
		{"function error", answers(answer(requestID(5, 3), `{"errorMessage":"boom"}`, "Unhandled"), nil), release.Fail,
			`post-traffic hook after failed (Unhandled): {"errorMessage":"boom"}`, 1},
		{"no status", answers(answer(requestID(5, 4), `"done"`, ""), nil), release.Fail, `post-traffic hook after answered "done"; a hook answers`, 1},
		{"no such function", answers(nil, lambdaNotFound("after")), release.Fail, "post-traffic hook after could not be invoked", 1},
		{"throttled", answers(nil, lambdaThrottled()), release.Pass, "post-traffic hook after could not be invoked", 3},
		{"service error", answers(nil, lambdaServiceError()), release.Pass, "post-traffic hook after could not be invoked", 3},
		{"too slow", func(ctx context.Context, in *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
			<-ctx.Done() // the hook's deadline: the SDK reports it as a canceled request
			return nil, lambdaCanceled(ctx.Err())
		}, release.Fail, "post-traffic hook after did not answer within 1ms", 1},
	} {
		c, _, lc, _, _ := testChecker(t0)
		lc.setInvoke(tc.invoke)
		hooked := *r
		hooked.Checks = &release.Checks{PostTraffic: "after", HookTimeout: time.Minute}
		if tc.name == "too slow" {
			hooked.Checks.HookTimeout = time.Millisecond
		}
		v, err := c.AfterTraffic(ctx, &hooked)
		switch {
		case tc.result == release.Fail && (err != nil || v.Result != release.Fail || v.Check != "hook" || !strings.Contains(v.Reason, tc.want)):
			t.Errorf("%s: %+v, %v; want a Fail: %s", tc.name, v, err, tc.want)
		case tc.result != release.Fail && (err == nil || v.Result == release.Fail || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %+v, %v; want the error: %s", tc.name, v, err, tc.want)
		}
		if got := len(lc.invoked()); got != tc.tries {
			t.Errorf("%s: tried %d times, want %d", tc.name, got, tc.tries)
		}
	}
	// The end of the context is an error, not a failed hook.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if v, err := c.AfterTraffic(done, r); !errors.Is(err, context.Canceled) || v.Result == release.Fail {
		t.Errorf("post-traffic hook, context ended: %+v, %v", v, err)
	}
}

// Validate finds, before a release, the alarms and hook functions the checks name that do not
// exist.
func TestValidate(t *testing.T) {
	c, _, lc, cw, _ := testChecker(t0)
	lc.exists = map[string]bool{"gate": true}
	cw.setAlarm("errors", cwtypes.StateValueOk, t0, "")
	if err := c.Validate(context.Background(), &release.Checks{PreTraffic: "gate", Alarms: []string{"errors"}}); err != nil {
		t.Errorf("what exists: %v", err)
	}
	err := c.Validate(context.Background(), &release.Checks{PreTraffic: "gate", PostTraffic: "no-such-function", Alarms: []string{"errors", "no-such-alarm"}})
	if err == nil || !strings.Contains(err.Error(), "hook function no-such-function does not exist (checks.hooks.post_traffic)") ||
		!strings.Contains(err.Error(), "alarm no-such-alarm does not exist") || strings.Contains(err.Error(), "gate") {
		t.Errorf("what does not exist: %v", err)
	}
	if err := c.Validate(context.Background(), nil); !errors.Is(err, errNoChecks) {
		t.Errorf("no checks: %v", err)
	}
}
