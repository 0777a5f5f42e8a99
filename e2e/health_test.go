package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// judged is a sandbox whose metrics have 1-second periods, so that checks settle in seconds.
var judged = sandbox.Options{UpdateDelay: 100 * time.Millisecond, ControlRate: -1, MetricResolution: time.Second}

// checks is the production environment's health checks in these tests.
const checks = `
    checks:
      errors: {alpha: 1%, detect: 10}
      metrics: {period: 1s}
      smoke:
        - payload: {action: echo, extra: {smoke: true}}
          expect: {"$.echo.smoke": true}
      max_bake: 90s
`

// appendManifest adds lines to the end of the manifest (the production environment's block).
func (f *fleet) appendManifest(s string) {
	path := filepath.Join(f.dir, "aviary.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, s...), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// replaceInManifest replaces text in the manifest.
func (f *fleet) replaceInManifest(old, new string) {
	path := filepath.Join(f.dir, "aviary.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		f.t.Fatalf("the manifest has no %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// stampBad makes a function's next zip the bad flavour, which fails 30% of business requests.
func (f *fleet) stampBad(name, value string) {
	f.stamp(name, value)
	if err := os.WriteFile(filepath.Join(f.dir, "functions", name, "bootstrap"), built.bad, 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// load invokes every function's alias at rate per second with payload until stopped, as live
// traffic would.
func (f *fleet) load(rate float64, payload string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range f.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer tick.Stop()
			var inflight sync.WaitGroup
			defer inflight.Wait()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					_, _ = f.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(f.fn(n) + ":live"), Payload: []byte(payload)})
				}()
			}
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

const flaky = `{"action":"flaky","rate":0.02}`

// A canary that fails a share of one function's requests is caught from per-version
// data in seconds and every function of the fleet rolls back; the record and the audit trail
// carry the verdict with its numbers. A healthy release with the same traffic is promoted.
func TestHealthJudgesTheFleet(t *testing.T) {
	f := newFleet(t, 3, judged, "      canary:\n        - weight: 20%\n          bake: 3s\n        - weight: 50%\n          bake: 3s")
	f.appendManifest(checks)
	// One function logs in JSON, whose platform records tell failed invocations apart; the
	// others log Text, whose handled errors only the metrics show: both paths are exercised.
	if err := lambda.NewFunctionActiveV2Waiter(f.lambda).Wait(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(f.fn("fn01"))}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := f.lambda.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(f.fn("fn01")), LoggingConfig: &lambdatypes.LoggingConfig{LogFormat: lambdatypes.LogFormatJson},
	}); err != nil {
		t.Fatal(err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(f.lambda).Wait(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(f.fn("fn01"))}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("first release: exit %d\n%s\n%s", code, out, errs)
	}
	first := f.latest()
	if first.Health.PreTraffic == nil || first.Health.PreTraffic.Result != release.Pass || len(first.Health.Steps) != 0 { // a first release bakes no steps
		t.Fatalf("first release's health record: %+v", first.Health)
	}
	stop := f.load(100, flaky)
	defer stop()

	t.Run("a faulty canary in one function rolls all back", func(t *testing.T) {
		f.stampAll("2")
		f.stampBad("fn01", "2")
		began := time.Now()
		code, out, errs := f.aviary("deploy", "-e", "production")
		took := time.Since(began)
		if code != 3 {
			t.Fatalf("exit %d, want 3 (rolled back)\n%s\n%s", code, out, errs)
		}
		r := f.latest()
		if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "step 1 failed its health check: shop-fn01-prod: the canary's errors are out of proportion") {
			t.Fatalf("phase %s: %s", r.Phase, r.Reason)
		}
		v := r.Health.Steps[0].Verdict
		if v == nil || v.Result != release.Fail || v.Function != "shop-fn01-prod" || v.Check != "errors" {
			t.Fatalf("step verdict %+v", v)
		}
		n := v.Numbers()
		if n["canaryErrors"] < 3 || n["canaryInvocations"] == 0 || n["baselineInvocations"] == 0 || n["logEvidence"] < n["threshold"] || len(v.Functions) != 3 {
			t.Fatalf("numbers %v (all %v)", n, v.Functions)
		}
		for _, name := range f.names {
			fn := fnOf(r, name)
			if ver, w := f.alias(name); ver != fn.Previous || w != nil {
				t.Errorf("%s: alias at %s %v, want %s alone", name, ver, w, fn.Previous)
			}
		}
		// Shown as it happened and by status, with the numbers.
		for _, want := range []string{"health: FAIL: shop-fn01-prod", "CANARY err/inv", "shop-fn00-prod", "rolled-back"} {
			if !strings.Contains(out, want) {
				t.Errorf("deploy output lacks %q:\n%s", want, out)
			}
		}
		_, status, _ := f.aviary("status", r.ID)
		for _, want := range []string{"step 1 (20% on the new versions)", "FAIL: shop-fn01-prod", "BASELINE err/inv", "before traffic:", "PASS: smoke invocations"} {
			if !strings.Contains(status, want) {
				t.Errorf("status lacks %q:\n%s", want, status)
			}
		}
		evs, err := f.openStore().Events(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range evs {
			if ev.Kind == release.EventHealth && ev.Step == 1 && ev.Data["function"] == "shop-fn01-prod" && ev.Data["result"] == "fail" {
				found = true
			}
		}
		if !found {
			t.Errorf("no health entry with the verdict in the audit trail: %+v", evs)
		}
		auditChain(t, f.openStore(), r)
		t.Logf("caught and rolled back in %s: %s", took.Round(100*time.Millisecond), r.Reason)
	})

	t.Run("a healthy release promotes", func(t *testing.T) {
		f.stampAll("3")
		code, out, errs := f.aviary("deploy", "-e", "production")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		r := f.latest()
		if r.Phase != release.Promoted || len(r.Health.Steps) != 2 {
			t.Fatalf("phase %s, steps %+v", r.Phase, r.Health.Steps)
		}
		for _, s := range r.Health.Steps {
			if s.Verdict == nil || s.Verdict.Result != release.Pass || len(s.Verdict.Functions) != 3 {
				t.Fatalf("step %d verdict %+v", s.Step+1, s.Verdict)
			}
			for fn, n := range s.Verdict.Functions {
				if n["canaryInvocations"] == 0 || n["baselineInvocations"] == 0 {
					t.Errorf("step %d: %s judged on no traffic: %v", s.Step+1, fn, n)
				}
			}
		}
		if !strings.Contains(r.Health.Steps[1].Verdict.Reason, "at most") {
			t.Errorf("a passing verdict gives the bound on the error ratio: %s", r.Health.Steps[1].Verdict.Reason)
		}
		for _, name := range f.names {
			if _, w := f.alias(name); w != nil || f.served(name) != "3" {
				t.Errorf("%s after promotion: weights %v, serving %q", name, w, f.served(name))
			}
		}
	})

	t.Run("aviary traffic reports by executed version", func(t *testing.T) {
		payload := filepath.Join(t.TempDir(), "event.json")
		// Every invocation fails: how many complete in the two seconds depends on how busy the
		// machine is, and a share that fails at random could fail none or all of a few.
		if err := os.WriteFile(payload, []byte(`{"action":"flaky","rate":1}`), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := f.aviary("traffic", "-e", "production", "--rate", "25", "--duration", "2s", "--payload", payload, "-o", "json")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, errs)
		}
		var doc struct {
			Results []struct {
				Function, Version   string
				Invocations, Errors int
			}
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		rows := doc.Results
		if len(rows) != len(f.names) {
			t.Fatalf("rows %+v", rows)
		}
		for _, r := range rows {
			// At 25/s for 2 s, at most 50 invocations start; those still running at the end are
			// not counted.
			if r.Version != "3" || r.Invocations < 1 || r.Invocations > 50 || r.Errors != r.Invocations {
				t.Errorf("%+v: want version 3, 1 to 50 invocations, every one a function error", r)
			}
		}
		if code, _, errs := f.aviary("traffic", "-e", "production", "--rate", "0"); code != 2 || !strings.Contains(errs, "--rate must be above 0") {
			t.Errorf("--rate 0: exit %d, %s", code, errs)
		}
	})
}

func fnOf(r *release.Release, name string) release.Function {
	for _, fn := range r.Functions {
		if fn.Name == name {
			return fn
		}
	}
	return release.Function{}
}

// A smoke invocation of a new version that fails its expectation stops the release before any
// alias moves.
func TestSmokeFailureStopsBeforeTraffic(t *testing.T) {
	f := newFleet(t, 2, judged, "      canary:\n        - weight: 10%\n          bake: 0s")
	f.appendManifest(strings.Replace(checks, `{"$.echo.smoke": true}`, `{"$.echo.smoke": true, "$.flavor": good}`, 1))
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("first release: exit %d\n%s\n%s", code, out, errs)
	}
	before := writes(f.srv.Requests())
	f.stampAll("2")
	f.stampBad("fn00", "2")
	code, out, errs := f.aviary("deploy", "-e", "production")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s\n%s", code, out, errs)
	}
	r := f.latest()
	pre := r.Health.PreTraffic
	if pre == nil || pre.Result != release.Fail || pre.Check != "smoke" || pre.Function != "shop-fn00-prod" ||
		!strings.Contains(pre.Reason, `$.flavor is "bad", want "good"`) || !strings.Contains(r.Reason, "no traffic moved") {
		t.Fatalf("pre-traffic verdict %+v; reason %s", pre, r.Reason)
	}
	after := writes(f.srv.Requests())
	for _, op := range []string{"UpdateAlias", "CreateAlias", "DeleteAlias"} {
		if after[op] != before[op] {
			t.Errorf("%s was called %d times by a release stopped before traffic", op, after[op]-before[op])
		}
	}
	if len(r.Health.Steps) != 0 {
		t.Errorf("steps recorded: %+v", r.Health.Steps)
	}
	for _, name := range f.names {
		if v, w := f.alias(name); v != fnOf(r, name).Previous || w != nil || f.served(name) != "1" {
			t.Errorf("%s: alias at %s %v", name, v, w)
		}
	}
}

// An alarm going into ALARM mid-step rolls the release back; one already firing before the
// release is reported and does not block it (the release may be the fix).
func TestAlarmMidStepRollsBack(t *testing.T) {
	f := newFleet(t, 2, judged, "      canary:\n        - weight: 10%\n          bake: 0s")
	f.appendManifest(checks + "      alarms: [\"{service}-errors\", \"{service}-old\"]\n")
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cw := cloudwatch.NewFromConfig(cfg)
	ctx := context.Background()
	for _, name := range []string{"shop-errors", "shop-old"} {
		if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(name), Namespace: aws.String("Shop"), MetricName: aws.String("Failures"),
			Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
			ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("ignore"),
		}); err != nil {
			t.Fatal(err)
		}
	}
	setAlarm := func(name string, state cwtypes.StateValue) {
		if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(name), StateValue: state, StateReason: aws.String("set by the test")}); err != nil {
			t.Fatal(err)
		}
	}
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("first release: exit %d\n%s\n%s", code, out, errs)
	}
	setAlarm("shop-old", cwtypes.StateValueAlarm)
	time.Sleep(1100 * time.Millisecond) // alarm times have a second's precision
	f.setBake("80s")                    // within max_bake
	f.stampAll("2")
	done := make(chan int)
	var out, errs string
	go func() {
		var code int
		code, out, errs = f.aviary("deploy", "-e", "production")
		done <- code
	}()
	r := f.waitFor("the canary to bake", func(r *release.Release) bool {
		return r.Phase == release.Shifting && !r.StepStarted.IsZero() && fnOf(r, "fn00").New != "" && fnOf(r, "fn00").Previous != ""
	})
	time.Sleep(3 * time.Second) // judged a while with the old alarm firing
	if cur := f.latest(); cur.Phase != release.Shifting {
		t.Fatalf("an alarm firing since before the release stopped it: %s", cur.Describe())
	}
	setAlarm("shop-errors", cwtypes.StateValueAlarm)
	select {
	case code := <-done:
		if code != 3 {
			t.Fatalf("exit %d, want 3\n%s\n%s", code, out, errs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the release did not react to the alarm")
	}
	r = f.latest()
	v := r.Health.Steps[0].Verdict
	if r.Phase != release.RolledBack || v == nil || v.Check != "alarm" || !strings.Contains(v.Reason, "alarm shop-errors went into ALARM") {
		t.Fatalf("phase %s, verdict %+v", r.Phase, v)
	}
	if len(r.Health.PreexistingAlarms) != 1 || r.Health.PreexistingAlarms[0] != "shop-old" || !strings.Contains(strings.Join(r.Health.PreTraffic.Notes, " "), "alarm shop-old was already in ALARM") {
		t.Errorf("the alarm firing before the release is not reported: %+v", r.Health)
	}
	for _, name := range f.names {
		if ver, w := f.alias(name); ver != fnOf(r, name).Previous || w != nil {
			t.Errorf("%s: alias at %s %v", name, ver, w)
		}
	}
}
