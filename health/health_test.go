package health

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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
	v, notes := alarmVerdict(r, []alarmState{{name: "old", state: "ALARM", updated: t0.Add(-time.Hour)}, {name: "quiet", state: "OK"}, {name: "gone", missing: true}})
	if v != nil || len(notes) != 2 || !strings.Contains(notes[0], "still in ALARM") || !strings.Contains(notes[1], "gone no longer exists") {
		t.Fatalf("verdict %+v, notes %q", v, notes)
	}
	// The same alarm going into ALARM again during the release fails it.
	v, _ = alarmVerdict(r, []alarmState{{name: "old", state: "ALARM", updated: t0.Add(time.Minute), reason: "Threshold Crossed"}})
	if v == nil || v.Result != release.Fail || v.Check != "alarm" || !strings.Contains(v.Reason, "alarm old went into ALARM") {
		t.Fatalf("verdict %+v", v)
	}
	v, _ = alarmVerdict(r, []alarmState{{name: "new", state: "ALARM", updated: t0.Add(-time.Hour)}})
	if v == nil || v.Result != release.Fail {
		t.Fatalf("an alarm not firing before the release: %+v", v)
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
		b := bucket(m, version, 0)
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
