package health

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/analysis"
	"github.com/aviary-deploy/aviary/release"
)

func TestParseLine(t *testing.T) {
	id := "8f5e3c2a-1b2c-4d5e-8f90-123456789abc"
	for _, tc := range []struct {
		name, line string
		ok         bool
		want       outcome
	}{
		{"text report", "REPORT RequestId: " + id + "\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t\n", true, outcome{requestID: id, report: true, millis: 12.34}},
		{"text report, cold", "REPORT RequestId: " + id + "\tDuration: 2.00 ms\tBilled Duration: 60 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\tInit Duration: 57.10 ms\t", true, outcome{requestID: id, report: true, millis: 2}},
		{"text timeout report", "REPORT RequestId: " + id + "\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\tStatus: timeout", true, outcome{requestID: id, report: true, failed: true, millis: 3000}},
		{"text crash report", "REPORT RequestId: " + id + "\tDuration: 5.00 ms\tBilled Duration: 5 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\tStatus: error\tError Type: Runtime.ExitError", true, outcome{requestID: id, report: true, failed: true, millis: 5}},
		{"timeout line", "2026-11-23T10:00:03.123Z " + id + " Task timed out after 3.00 seconds", true, outcome{requestID: id, failed: true}},
		{"node error line", "2026-11-23T10:00:03.123Z\t" + id + "\tERROR\tInvoke Error \t{\"errorType\":\"Error\"}", true, outcome{requestID: id, failed: true}},
		{"json report, success", `{"time":"2026-11-23T10:00:00.000Z","type":"platform.report","record":{"requestId":"` + id + `","metrics":{"durationMs":7.5,"billedDurationMs":8},"status":"success"}}`, true, outcome{requestID: id, report: true, millis: 7.5}},
		{"json report, error", `{"time":"2026-11-23T10:00:00.000Z","type":"platform.report","record":{"requestId":"` + id + `","metrics":{"durationMs":7.5},"status":"error","errorType":"Runtime.Unknown"}}`, true, outcome{requestID: id, report: true, failed: true, millis: 7.5}},
		{"json report, timeout", `{"time":"x","type":"platform.report","record":{"requestId":"` + id + `","metrics":{"durationMs":3000},"status":"timeout"}}`, true, outcome{requestID: id, report: true, failed: true, millis: 3000}},
		{"function output", "REPORT of the day: all good", false, outcome{}},
		{"start line", "START RequestId: " + id + " Version: 3", true, outcome{requestID: id, start: true}},
		{"json start", `{"time":"x","type":"platform.start","record":{"requestId":"` + id + `","version":"3"}}`, true, outcome{requestID: id, start: true}},
		{"aws-lambda-go error line", `2026/11/23 16:06:39 {"errorMessage":"bad flavour: failing on purpose","errorType":"errorString"}`, true, outcome{failed: true}},
		{"json init", `{"time":"x","type":"platform.initStart","record":{"initializationType":"on-demand"}}`, false, outcome{}},
	} {
		got, ok := parseLine(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: %+v %v; want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestVersionFromStream(t *testing.T) {
	for stream, want := range map[string]string{"2026/11/23/[7]0123abcd": "7", "2026/11/23/[$LATEST]ff": "$LATEST", "other": ""} {
		m := versionRE.FindStringSubmatch(stream)
		got := ""
		if m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("%s: %q, want %q", stream, got, want)
		}
	}
}

func TestJSONPath(t *testing.T) {
	var doc any
	json.Unmarshal([]byte(`{"status":"ok","n":1,"items":[{"id":"a"},{"id":"b"}],"odd key":true,"nested":{"deep":{"x":null}}}`), &doc)
	for path, want := range map[string]any{"$.status": "ok", "$.n": 1.0, "$.items[1].id": "b", `$["odd key"]`: true, "$.nested.deep.x": nil} {
		got, ok := JSONPath(doc, path)
		if !ok || got != want {
			t.Errorf("%s: %v %v; want %v", path, got, ok, want)
		}
	}
	for _, path := range []string{"$.missing", "$.items[5]", "$.status.x", "status", "$.items.id"} {
		if got, ok := JSONPath(doc, path); ok {
			t.Errorf("%s: found %v", path, got)
		}
	}
}

func TestStepAt(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	steps := []release.StepRecord{{Step: 0, Shifted: t0}, {Step: 1, Shifted: t0.Add(time.Minute)}}
	for d, want := range map[time.Duration]int{-time.Second: -1, 0: 0, 59 * time.Second: 0, time.Minute: 1, time.Hour: 1} {
		if got := stepAt(steps, t0.Add(d)); got != want {
			t.Errorf("%s: step %d, want %d", d, got, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i)
	}
	if p := percentile(xs, "p95"); p != 95 {
		t.Errorf("p95 = %v", p)
	}
	if p := percentile([]float64{3}, "p99"); p != 3 {
		t.Errorf("p99 of one = %v", p)
	}
}

func TestAlarmVerdict(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r := &release.Release{Health: release.HealthRecord{PreTraffic: &release.Verdict{At: t0}, PreexistingAlarms: []string{"old"}}}
	v, notes := alarmVerdict(r, []alarmState{{name: "old", state: "ALARM", updated: t0.Add(-time.Hour)}, {name: "quiet", state: "OK"}, {name: "gone", missing: true}}, nil)
	if v != nil || len(notes) != 2 || !strings.Contains(notes[0], "still in ALARM") || !strings.Contains(notes[1], "gone no longer exists") {
		t.Fatalf("verdict %+v, notes %q", v, notes)
	}
	// The same alarm going into ALARM again during the release fails it.
	v, _ = alarmVerdict(r, []alarmState{{name: "old", state: "ALARM", updated: t0.Add(time.Minute), reason: "Threshold Crossed"}}, nil)
	if v == nil || v.Result != release.Fail || v.Check != "alarm" || !strings.Contains(v.Reason, "alarm old went into ALARM") {
		t.Fatalf("verdict %+v", v)
	}
	v, _ = alarmVerdict(r, []alarmState{{name: "new", state: "ALARM", updated: t0.Add(-time.Hour)}}, nil)
	if v == nil || v.Result != release.Fail {
		t.Fatalf("an alarm not firing before the release: %+v", v)
	}
	// What the read before traffic saw decides, not when its verdict was recorded: an alarm that
	// changed state since that read (during the smoke invocations, say) fails.
	before := map[string]time.Time{"old": t0.Add(-time.Hour)}
	if v, _ = alarmVerdict(r, []alarmState{{name: "old", state: "ALARM", updated: t0.Add(-time.Minute)}}, before); v == nil || v.Result != release.Fail {
		t.Fatalf("an alarm firing again since the read: %+v", v)
	}
	if v, _ = alarmVerdict(r, []alarmState{{name: "old", state: "ALARM", updated: t0.Add(-time.Hour)}}, before); v != nil {
		t.Fatalf("an alarm as the read saw it: %+v", v)
	}
}

// The fleet's verdict from counts: one failing function fails it, the numbers of every function
// are kept, a first release is judged by the ceilings only, and no data at all is reported.
func TestFleetVerdict(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r := &release.Release{
		Alias: "live", Steps: []release.Step{{Weight: 0.1, Bake: time.Minute}},
		Checks: &release.Checks{Alpha: 0.01, Detect: 5, MaxErrorRate: 0.5, MaxThrottleRate: 0.5, Metrics: true, Logs: true},
		Functions: []release.Function{
			{FunctionName: "api", Previous: "1", New: "2"},
			{FunctionName: "orders", Previous: "4", New: "5"},
			{FunctionName: "fresh", New: "1"},
		},
		Health: release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.1, Shifted: t0}}},
	}
	c := &Checker{}
	w := c.watch(r)
	set := func(fn, version string, n, errs float64, fromLogs bool) {
		m := w.fns[fn].fromMetrics
		if fromLogs {
			m = w.fns[fn].fromLogs
		}
		b := bucket(m, version, periodOf(t0, time.Minute))
		b.n, b.errors = n, errs
	}
	set("api", "2", 1000, 10, true)
	set("api", "1", 9000, 90, true)
	set("orders", "5", 1000, 12, true)
	set("orders", "4", 9000, 85, true)
	set("fresh", "1", 300, 0, true)
	v := c.verdict(r, w, true, nil)
	if v.Result != release.Pass || len(v.Functions) != 3 || v.Functions["orders"]["canaryErrors"] != 12 {
		t.Fatalf("healthy fleet: %+v", v)
	}
	// Metrics that settle later show errors the logs missed (a runtime that does not log them):
	// the more complete source counts.
	set("orders", "5", 1000, 80, false)
	set("orders", "4", 9000, 90, false)
	v = c.verdict(r, w, false, nil)
	if v.Result != release.Fail || v.Function != "orders" || v.Check != "errors" || v.Numbers()["canaryErrors"] != 80 || v.Numbers()["baselineErrors"] != 90 {
		t.Fatalf("regressed orders: %+v", v)
	}
	// α is shared by the two functions that have a baseline.
	if a := v.Numbers()["alpha"]; a != 0.005 {
		t.Errorf("alpha per function %v, want 0.005", a)
	}
	// With latency judged, a function with a baseline reference runs two tests: they share its
	// α. One without a reference runs the errors test alone.
	r.Checks.Latency, r.Checks.LatencyDetect = "p95", 3
	r.Health.Reference = map[string]release.Reference{"api": {Percentile: "p95", Millis: 100, Samples: 500}}
	v = c.verdict(r, w, false, nil)
	if got := v.Functions["api"]; math.Abs(got["threshold"]-math.Log(400)) > 1e-9 || math.Abs(got["latencyThreshold"]-math.Log(400)) > 1e-9 {
		t.Errorf("api, judged on errors and latency: thresholds %v and %v, want log(400)", got["threshold"], got["latencyThreshold"])
	}
	if got := v.Functions["orders"]; math.Abs(got["threshold"]-math.Log(200)) > 1e-9 || got["latencyThreshold"] != 0 {
		t.Errorf("orders, no reference: thresholds %v and %v, want log(200) and none", got["threshold"], got["latencyThreshold"])
	}
	// The latency test's power check is at latency.detect: the slow counts of a bake too short to
	// see a rise of that size leave the step Inconclusive.
	set("orders", "5", 1000, 10, false)
	set("orders", "4", 9000, 90, false)
	p := periodOf(t0, time.Minute)
	w.fns["api"].fromLogs["2"][p].slow, w.fns["api"].fromLogs["1"][p].slow = 50, 450
	if v = c.verdict(r, w, true, nil); v.Result != release.Pass {
		t.Errorf("latency judged at 3×: %+v", v)
	}
	r.Checks.LatencyDetect = 1.05
	if v = c.verdict(r, w, true, nil); v.Result != release.Inconclusive || v.Check != "latency" || v.Function != "api" {
		t.Errorf("latency judged at 1.05×: %+v", v)
	}
	// Slow invocations are counted from the logs: without them latency is not judged.
	r.Checks.Logs = false
	if v = c.verdict(r, w, true, nil); v.Result != release.Pass || v.Functions["api"]["latencyThreshold"] != 0 {
		t.Errorf("latency without logs: %+v", v)
	}
	r.Checks.Logs = true
	r.Checks.Latency, r.Health.Reference = "", nil
	// No data at all is reported as such.
	c2 := &Checker{}
	v = c2.verdict(r, c2.watch(r), true, nil)
	if v.Result != release.Inconclusive || v.Check != "data" || !strings.Contains(v.Reason, "no invocations of either version") {
		t.Fatalf("no data: %+v", v)
	}
	// A first release with a catastrophic error rate fails on the ceiling.
	c3 := &Checker{}
	w3 := c3.watch(r)
	w = w3
	set("fresh", "1", 100, 90, true)
	set("api", "2", 1000, 10, true)
	set("api", "1", 9000, 90, true)
	set("orders", "5", 1000, 10, true)
	set("orders", "4", 9000, 90, true)
	v = c3.verdict(r, w3, false, nil)
	if v.Result != release.Fail || v.Function != "fresh" || v.Check != "ceiling" {
		t.Fatalf("catastrophic first release: %+v", v)
	}
}

// Both sources count on the metrics' grid, and a period is given wholly to one step (the one of
// highest weight in force during it) after its two counts are merged: no part of it is counted
// in two steps.
func TestPeriodsToSteps(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	steps := []release.StepRecord{{Step: 0, Weight: 0.1, Shifted: t0.Add(10 * time.Second)}, {Step: 1, Weight: 0.5, Shifted: t0.Add(90 * time.Second)},
		{Step: 2, Weight: 0.2, Shifted: t0.Add(150 * time.Second)}}
	minute := func(n int) int64 { return periodOf(t0.Add(time.Duration(n)*time.Minute), time.Minute) }
	for p, want := range map[int64]int{minute(-1): -1, minute(0): 0, minute(1): 1, minute(2): 1, minute(3): 2} {
		if got := stepOfPeriod(steps, p, time.Minute); got != want {
			t.Errorf("period %s: step %d, want %d", time.UnixMilli(p).UTC().Format(time.TimeOnly), got, want)
		}
	}
	if p := periodOf(t0.Add(59999*time.Millisecond), time.Minute); p != t0.UnixMilli() {
		t.Errorf("periodOf: %d, want %d", p, t0.UnixMilli())
	}
	r := &release.Release{Health: release.HealthRecord{Steps: steps}}
	fn := release.Function{FunctionName: "f", Previous: "1", New: "2"}
	fw := &fnWatch{fromLogs: map[string]map[int64]*counts{}, fromMetrics: map[string]map[int64]*counts{}, throttles: map[int64]float64{}}
	set := func(m map[string]map[int64]*counts, version string, p int64, n, errs float64) {
		b := bucket(m, version, p)
		b.n, b.errors = n, errs
	}
	// Minute 0, settled: the logs missed an error the metrics saw.
	set(fw.fromLogs, "2", minute(0), 10, 1)
	set(fw.fromMetrics, "2", minute(0), 10, 2)
	set(fw.fromLogs, "1", minute(0), 90, 1)
	set(fw.fromMetrics, "1", minute(0), 90, 1)
	// Minute 1, cut by the shift to step 1 and settled: counted once, in step 1.
	set(fw.fromLogs, "2", minute(1), 30, 3)
	set(fw.fromMetrics, "2", minute(1), 31, 3)
	set(fw.fromLogs, "1", minute(1), 70, 0)
	set(fw.fromMetrics, "1", minute(1), 70, 0)
	fw.throttles[minute(1)] = 4
	// Minute 2, not settled yet: the logs alone.
	set(fw.fromLogs, "2", minute(2), 50, 5)
	set(fw.fromLogs, "1", minute(2), 50, 0)
	// Before the release: not counted.
	set(fw.fromMetrics, "1", minute(-1), 100, 100)
	wins, throttles := fw.windows(r, fn, time.Minute)
	want := []analysis.Window{
		{Weight: 0.1, CanaryN: 10, CanaryErrors: 2, BaseN: 90, BaseErrors: 1},
		{Weight: 0.5, CanaryN: 81, CanaryErrors: 8, BaseN: 120},
		{Weight: 0.2},
	}
	if !reflect.DeepEqual(wins, want) || throttles != 4 {
		t.Errorf("windows %+v, throttles %v; want %+v, 4", wins, throttles, want)
	}
}
