package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/internal/dynalite"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/web/lambdaurl/lambdaurltest"
)

// ctl is the controller's function on a fleet's sandbox, over the fleet's team store.
type ctl struct {
	t     testing.TB
	f     *fleet
	st    store.Store
	name  string
	lc    *lambda.Client
	logs  *cloudwatchlogs.Client
	input string
}

// deployController builds cmd/aviary-controller and creates it as a provided.al2023 function in
// the fleet's sandbox, its environment reaching the store on dynalite (the sandbox gives every
// function AWS_ENDPOINT_URL, as Lambda gives it AWS's endpoints).
func deployController(t testing.TB, f *fleet, st store.Store, env ...string) *ctl {
	t.Helper()
	vars := map[string]string{
		"AVIARY_STORE":              os.Getenv("AVIARY_STORE"),
		"AWS_ENDPOINT_URL_DYNAMODB": dynalite.Endpoint(t),
		"AVIARY_LOCK_LEASE":         "3s",
	}
	for i := 0; i+1 < len(env); i += 2 {
		vars[env[i]] = env[i+1]
	}
	fn := lambdaurltest.Deploy(t, "./cmd/aviary-controller", lambdaurltest.Options{Sandbox: f.srv, Name: "aviary-controller", Timeout: 60 * time.Second, Env: vars})
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &ctl{t: t, f: f, st: st, name: fn.Name, lc: f.lambda, logs: cloudwatchlogs.NewFromConfig(cfg), input: `{"service":"shop","environment":"production"}`}
}

// tick invokes the controller as its schedule does, and returns the invocation's request id.
func (c *ctl) tick() string {
	c.t.Helper()
	out, err := c.lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(c.name), Payload: []byte(c.input)})
	if err != nil {
		c.t.Fatalf("invoke the controller: %v", err)
	}
	if out.FunctionError != nil {
		c.t.Fatalf("the controller's tick failed: %s: %s", aws.ToString(out.FunctionError), out.Payload)
	}
	return requestID(out)
}

// requestID is an invocation's request id: the tick's id in the controller's log.
func requestID(out *lambda.InvokeOutput) string {
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	return id
}

// tickUntil ticks, a third of a second apart (the schedule's minute, shortened), until ok says
// the release is where it should be; it returns the release and how many ticks it took.
func (c *ctl) tickUntil(id, what string, ok func(*release.Release) bool) (*release.Release, int) {
	c.t.Helper()
	for n := 1; n <= 300; n++ {
		c.tick()
		r, err := c.st.GetRelease(context.Background(), id)
		if err != nil {
			c.t.Fatal(err)
		}
		if ok(r) {
			return r, n
		}
		if r.Phase.Final() {
			c.t.Fatalf("waiting for %s, the release ended %s: %s", what, r.Phase, r.Reason)
		}
		time.Sleep(300 * time.Millisecond)
	}
	c.t.Fatalf("300 ticks and no %s", what)
	return nil, 0
}

// lines are the controller's log lines with msg, as CloudWatch Logs has them.
func (c *ctl) lines(msg string) []map[string]any {
	c.t.Helper()
	var out []map[string]any
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + c.name)}
	for {
		page, err := c.logs.FilterLogEvents(context.Background(), in)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, e := range page.Events {
			var m map[string]any
			if json.Unmarshal([]byte(aws.ToString(e.Message)), &m) == nil && m["msg"] == msg {
				out = append(out, m)
			}
		}
		if page.NextToken == nil {
			return out
		}
		in.NextToken = page.NextToken
	}
}

// driving reads the environment's lock while a live controller's tick holds it.
func (c *ctl) driving() *release.Lock {
	l, err := c.st.GetLock(context.Background(), release.LockKey("shop", "production"))
	if err == nil && l != nil && strings.HasPrefix(l.Owner, "controller:") && l.ExpiresAt.After(time.Now()) {
		return l
	}
	return nil
}

// detach records a release as a CI job would that was cancelled after it started: `aviary deploy`
// runs until the release waits at its gate, is killed, and the release is handed to the
// controller.
func detach(t testing.TB, f *fleet, st store.Store, stamp string) *release.Release {
	t.Helper()
	f.stampAll(stamp)
	cmd := exec.Command(built.aviary, "deploy", "-e", "production", "--api-rate", "200")
	cmd.Dir, cmd.Env = f.dir, append(os.Environ(), "AVIARY_LOCK_LEASE=2s", "AVIARY_HOST=ci-runner")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var r *release.Release
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "production", Limit: 1})
		if err == nil && len(rs) == 1 && rs[0].OpenGate() != nil {
			r = rs[0]
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if r == nil {
		t.Fatalf("the deploy never reached its gate:\n%s", out.String())
	}
	h, err := (&release.Engine{Store: st, Actor: "e2e-test", Source: "the CI job"}).HandOff(context.Background(), r.ID, "the CI job was cancelled")
	if err != nil || !h.Controller {
		t.Fatalf("hand off: %+v %v", h, err)
	}
	return h
}

// killController kills the controller's execution environments (their processes) in the sandbox
// at endpoint, as a crash of Lambda's host would. Both marks are needed: another test (or another
// `go test` on this machine) may run a function of the same name in its own sandbox.
func killController(t testing.TB, name, endpoint string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	n := 0
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !hasVar(env, "AWS_LAMBDA_FUNCTION_NAME", name) || !hasVar(env, "AWS_ENDPOINT_URL", endpoint) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(d))
		if err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			// kill returns before the kernel has ended the process: a crashed host is one that
			// is down before the next tick, so wait for it (a zombie, or reaped).
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				b, err := os.ReadFile(filepath.Join(d, "stat"))
				if i := bytes.LastIndexByte(b, ')'); err != nil || i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
					break
				}
			}
			n++
		}
	}
	return n
}

// hasVar reports whether a process environment (/proc/PID/environ) sets name to value.
func hasVar(environ []byte, name, value string) bool {
	v := []byte(name + "=" + value + "\x00")
	return bytes.HasPrefix(environ, v) || bytes.Contains(environ, append([]byte{0}, v...))
}

func approve(t testing.TB, st store.Store, id string) {
	t.Helper()
	if _, err := release.Decide(context.Background(), st, id, release.Decision{Action: release.Approve, By: "alice", Via: release.ViaLink, Source: "10.0.0.7"}); err != nil {
		t.Fatal(err)
	}
}

// The story of issue 15: releases no process watches. A 5-function fleet with two canary steps
// and a gate before traffic; each release's CI job is killed at the gate and the release handed
// to the controller — the real bootstrap, a function in the sandbox, invoked as its schedule
// would. It waits at the gate, picks up the approval (as the link records it) at its next tick,
// and advances every step to promotion; two ticks at once act once; a tick killed mid-shift is
// converged on by the next ones; a faulty canary is rolled back.
func TestControllerDrivesDetachedReleases(t *testing.T) {
	f := newFleet(t, 5, quick, "      canary:\n        - weight: 10%\n          bake: 2s\n        - weight: 50%\n          bake: 2s")
	f.appendManifest("    approval:\n      at_step: 0\n")
	st := f.teamStore(t)
	ctx := context.Background()
	t.Setenv("AVIARY_PRE_APPROVE", "true") // the first release: nothing to compare with
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	t.Setenv("AVIARY_PRE_APPROVE", "")
	c := deployController(t, f, st)

	// Handed over at the gate: the controller waits with it, moving nothing.
	r := detach(t, f, st, "2")
	r, _ = c.tickUntil(r.ID, "the controller at the gate", func(*release.Release) bool {
		l, _ := st.GetLock(ctx, release.LockKey("shop", "production"))
		return l != nil && strings.HasPrefix(l.Owner, "controller:")
	})
	if r.Phase != release.AwaitingApproval {
		t.Fatalf("at the gate the controller moved the release to %s", r.Describe())
	}
	for _, name := range f.names {
		if v, w := f.alias(name); v != "1" || w != nil {
			t.Fatalf("%s moved while the release waited at its gate: %s %v", name, v, w)
		}
	}

	// Approved by link; two ticks at once (the shift is slowed so that they overlap): one
	// shifts, the other finds the lock held and names who holds it.
	approve(t, st, r.ID)
	if err := f.srv.SetFaults(sandbox.Faults{Latency: sandbox.Duration(2 * time.Second), Services: []string{"lambda"}, Operations: []string{"UpdateAlias"}}); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() { first <- c.tickNoFail() }()
	for c.driving() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	second := c.tick()
	firstID := <-first
	f.srv.SetFaults(sandbox.Faults{})
	r, _ = st.GetRelease(ctx, r.ID)
	if r.Phase != release.Shifting || r.Step != 0 || !r.Baking() {
		t.Fatalf("after the tick that followed the approval: %s", r.Describe())
	}
	for _, name := range f.names {
		if _, w := f.alias(name); len(w) != 1 {
			t.Errorf("%s at step 1: weights %v, want 10%% on the new version", name, w)
		}
	}
	actions := map[string]map[string]any{}
	for _, l := range c.lines("release") {
		if l["release"] == r.ID {
			actions[fmt.Sprint(l["tick"])] = l
		}
	}
	if a := actions[firstID]; a["action"] != "drove" || a["from"] != "awaiting-approval" || a["phase"] != "shifting" {
		t.Errorf("the first tick: %v", a)
	}
	if a := actions[second]; a["action"] != "held" || !strings.HasPrefix(fmt.Sprint(a["heldBy"]), "controller:aviary-controller/") {
		t.Errorf("the second tick, at once: %v, want held, naming the first", a)
	}

	// A tick killed while it shifts to step 2: the next ticks find its lease, wait it out, take
	// over and converge.
	for {
		if r, _ = st.GetRelease(ctx, r.ID); time.Since(r.StepStarted) > 2500*time.Millisecond {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := f.srv.SetFaults(sandbox.Faults{Latency: sandbox.Duration(30 * time.Second), Services: []string{"lambda"}, Operations: []string{"UpdateAlias"}}); err != nil {
		t.Fatal(err)
	}
	killed := make(chan string, 1)
	go func() { killed <- c.tickResult() }()
	for {
		if l := c.driving(); l != nil {
			if cur, _ := st.GetRelease(ctx, r.ID); cur.Step == 1 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := killController(t, c.name, c.f.srv.URL); n == 0 {
		t.Fatal("no controller process to kill")
	}
	if res := <-killed; !strings.Contains(res, "Runtime.ExitError") && !strings.Contains(res, "Unhandled") {
		t.Logf("the killed tick answered: %s", res)
	}
	f.srv.SetFaults(sandbox.Faults{})
	r, ticks := c.tickUntil(r.ID, "promotion", func(r *release.Release) bool { return r.Phase == release.Promoted })
	t.Logf("promoted %d ticks after the killed one", ticks)
	for _, name := range f.names {
		if v, w := f.alias(name); v != fnOf(r, name).New || w != nil || f.served(name) != "2" {
			t.Errorf("%s after promotion: %s %v, serving %s", name, v, w, f.served(name))
		}
	}
	auditChain(t, st, r)
	var tookOver bool
	for _, l := range c.lines("release") {
		tookOver = tookOver || l["release"] == r.ID && strings.HasPrefix(fmt.Sprint(l["tookOver"]), "controller:")
	}
	if !tookOver {
		t.Error("no tick says it took over from the killed one")
	}
	if l, _ := st.GetLock(ctx, release.LockKey("shop", "production")); l != nil {
		t.Errorf("the lock is still held after promotion: %+v", l)
	}

	// A faulty canary: its alarm fires mid-step, and the next tick rolls it back.
	f.appendManifest("    checks:\n      metrics: off\n      alarms: [\"{service}-errors\"]\n      max_bake: 1h\n")
	f.replaceInManifest("bake: 2s\n        - weight: 50%", "bake: 1h\n        - weight: 50%")
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cw := cloudwatch.NewFromConfig(cfg)
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("shop-errors"), Namespace: aws.String("Shop"), MetricName: aws.String("Failures"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("ignore"),
	}); err != nil {
		t.Fatal(err)
	}
	bad := detach(t, f, st, "3")
	approve(t, st, bad.ID)
	bad, _ = c.tickUntil(bad.ID, "the canary", func(r *release.Release) bool { return r.Phase == release.Shifting && r.Baking() })
	time.Sleep(1100 * time.Millisecond) // alarm times have a second's precision
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("shop-errors"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("the canary fails")}); err != nil {
		t.Fatal(err)
	}
	bad, ticks = c.tickUntil(bad.ID, "the rollback", func(r *release.Release) bool { return r.Phase.Final() })
	if bad.Phase != release.RolledBack || !strings.Contains(bad.Reason, "shop-errors") {
		t.Fatalf("the faulty canary ended %s: %s", bad.Phase, bad.Reason)
	}
	for _, name := range f.names {
		if v, w := f.alias(name); w != nil || f.served(name) != "2" {
			t.Errorf("%s after the rollback: %s %v, serving %s", name, v, w, f.served(name))
		}
	}
	auditChain(t, st, bad)
	t.Logf("rolled back %d ticks after the alarm", ticks)
}

// tickNoFail is tick from a goroutine: failures are reported, not fatal.
func (c *ctl) tickNoFail() string {
	out, err := c.lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(c.name), Payload: []byte(c.input)})
	if err != nil || out.FunctionError != nil {
		c.t.Errorf("tick: %v %s", err, out.Payload)
		return ""
	}
	return requestID(out)
}

// tickResult is a tick's answer, whatever it is, as text.
func (c *ctl) tickResult() string {
	out, err := c.lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(c.name), Payload: []byte(c.input)})
	if err != nil {
		return err.Error()
	}
	return aws.ToString(out.FunctionError) + ": " + string(out.Payload)
}

// `aviary controller install` on the sandbox: the bootstrap built from source, the function and
// the schedule created (and left alone when run again); `aviary deploy --detach` exits at once,
// the sandbox's EventBridge Scheduler ticks the controller as its clock is moved on, the gate's
// approval is picked up, the release promoted, and `aviary status --watch` exits 0; `aviary
// controller status` shows the schedule, the ticks and what it drives; every call the controller
// made is one `aviary iam-policy --controller` allows.
func TestControllerInstalledAndScheduled(t *testing.T) {
	f := newFleet(t, 3, quick, "      canary:\n        - weight: 10%\n          bake: 1s\n        - weight: 50%\n          bake: 1s")
	f.appendManifest("    approval:\n      at_step: 0\n    controller: true\n")
	st := f.teamStore(t)
	ctx := context.Background()
	t.Setenv("AVIARY_PRE_APPROVE", "true")
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	t.Setenv("AVIARY_PRE_APPROVE", "")
	arch := "x86_64" // the sandbox runs the bootstrap on this machine
	if runtime.GOARCH == "arm64" {
		arch = "arm64"
	}
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	install := []string{"controller", "install", "-e", "production", "--arch", arch, "--source", root, "--role", "arn:aws:iam::000000000000:role/aviary-controller",
		"--function-env", "AWS_ENDPOINT_URL_DYNAMODB=" + dynalite.Endpoint(t), "--function-env", "AVIARY_LOCK_LEASE=3s"}

	code, out, errs := f.aviary(append(install, "--dry-run")...)
	if code != 0 || !strings.Contains(out, "function  aviary-controller: would be created") || !strings.Contains(out, "schedule  aviary-shop-production: would be created") {
		t.Fatalf("install --dry-run: %d\n%s\n%s", code, out, errs)
	}
	if _, err := f.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("aviary-controller")}); err == nil {
		t.Fatal("a dry run created the function")
	}
	if code, out, errs = f.aviary(install...); code != 0 || !strings.Contains(out, "function  aviary-controller: created") || !strings.Contains(out, "schedule  aviary-shop-production: created") {
		t.Fatalf("install: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = f.aviary(append(install, "-o", "json")...)
	var doc struct {
		Schema string `json:"schema"`
		Steps  []struct{ Resource, Action string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc.Schema != "aviary/v1" || len(doc.Steps) != 3 {
		t.Fatalf("install again: %d\n%s\n%s", code, out, errs)
	}
	for _, s := range doc.Steps[1:] {
		if s.Action != "unchanged" {
			t.Errorf("installed again, the %s was %s", s.Resource, s.Action)
		}
	}

	// `deploy --detach` records the release, hands it to the controller and exits; `status
	// --watch` follows it; approved by link, the schedule's ticks, as its clock moves on, drive it.
	f.stampAll("2")
	if code, out, errs = f.aviary("deploy", "-e", "production", "--detach", "--api-rate", "200"); code != 0 {
		t.Fatalf("deploy --detach: %d\n%s\n%s", code, out, errs)
	}
	rs, err := st.ListReleases(ctx, release.Filter{Service: "shop", Environment: "production", Limit: 1})
	if err != nil || len(rs) != 1 || !rs[0].Controller || rs[0].Phase.Final() {
		t.Fatalf("the detached release: %+v %v", rs, err)
	}
	r := rs[0]
	watch := exec.Command(built.aviary, "status", r.ID, "--watch", "--timeout", "5m")
	var watched bytes.Buffer
	watch.Dir, watch.Env, watch.Stdout, watch.Stderr = f.dir, os.Environ(), &watched, &watched
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	for r.OpenGate() == nil { // the tick --detach asked for reaches the gate
		rep, err := f.srv.Scheduler.Advance(ctx, time.Minute)
		if err != nil || len(rep.Invoked) != 1 {
			t.Fatalf("the schedule's tick: %+v %v", rep, err)
		}
		time.Sleep(300 * time.Millisecond)
		if r, err = st.GetRelease(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	approve(t, st, r.ID)
	f.srv.ResetRequests()
	ticks := 0
	for ; ticks < 200; ticks++ {
		rep, err := f.srv.Scheduler.Advance(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Invoked) != 1 || !rep.Invoked[0].Delivered {
			t.Fatalf("the schedule's tick: %+v", rep.Invoked)
		}
		time.Sleep(500 * time.Millisecond) // the invocation is asynchronous
		if r, _ = st.GetRelease(ctx, r.ID); r.Phase.Final() {
			break
		}
	}
	if r.Phase != release.Promoted {
		t.Fatalf("after %d scheduled ticks the release is %s: %s", ticks, r.Describe(), r.Reason)
	}
	t.Logf("promoted after %d scheduled ticks", ticks+1)
	werr := watch.Wait()
	if werr != nil || !strings.Contains(watched.String(), "promoted") {
		t.Errorf("status --watch: %v\n%s", werr, watched.String())
	}
	for _, name := range f.names {
		if f.served(name) != "2" {
			t.Errorf("%s serves %s", name, f.served(name))
		}
	}
	auditChain(t, st, r)

	var status struct {
		Schema, State, Expression string
		Ticks                     []struct{ Listed, Drove, Held, Errors int }
		Driving                   []any
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, out, errs = f.aviary("controller", "status", "-e", "production", "-o", "json")
		if code != 0 || json.Unmarshal([]byte(out), &status) != nil {
			t.Fatalf("status: %d\n%s\n%s", code, out, errs)
		}
		if len(status.Ticks) > 0 || time.Now().After(deadline) {
			break
		}
	}
	drove := 0
	for _, tk := range status.Ticks {
		drove += tk.Drove
	}
	if status.Schema != "aviary/v1" || status.State != "ENABLED" || status.Expression != "rate(1 minute)" || len(status.Ticks) == 0 || drove == 0 || len(status.Driving) != 0 {
		t.Errorf("status: %s", out)
	}
	if code, out, _ = f.aviary("controller", "status", "-e", "production"); code != 0 || !strings.Contains(out, "schedule  aviary-shop-production: ENABLED, rate(1 minute)") ||
		!strings.Contains(out, "drove") || !strings.Contains(out, "driving   no live release") {
		t.Errorf("status:\n%s", out)
	}

	// Every call the controller made is allowed by its policy.
	code, out, errs = f.aviary("iam-policy", "--controller", "-e", "production", "--account", "000000000000", "--region", "us-east-1")
	if code != 0 {
		t.Fatalf("iam-policy --controller: %s", errs)
	}
	var p iampolicy.Policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, req := range f.srv.Requests() {
		if !strings.Contains(req.UserAgent, "app/aviary-controller") {
			continue
		}
		calls++
		action := iampolicy.Action(req.Service, req.Operation)
		resource := "*"
		switch req.Service {
		case "lambda":
			resource = "arn:aws:lambda:us-east-1:000000000000:function:" + req.Resource
			if q, _ := url.ParseQuery(req.Query); q.Get("Qualifier") != "" {
				resource += ":" + q.Get("Qualifier")
			}
		case "s3":
			resource = "arn:aws:s3:::" + strings.TrimPrefix(req.Path, "/")
		}
		if !p.Allows(action, resource) {
			t.Errorf("the controller's policy does not allow %s on %s (%s %s)", action, resource, req.Method, req.Path)
		}
	}
	if calls == 0 {
		t.Error("the sandbox saw no call from the controller")
	}
	if !p.Allows("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:000000000000:function:aviary-controller") ||
		!p.Allows("logs:PutLogEvents", "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/aviary-controller:log-stream:x") ||
		!p.Allows("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:000000000000:table/"+strings.TrimPrefix(os.Getenv("AVIARY_STORE"), "dynamodb://")) {
		t.Errorf("the controller's policy lacks its own rights: %s", out)
	}
	if p.Allows("lambda:DeleteFunction", "arn:aws:lambda:us-east-1:000000000000:function:shop-fn00-prod:3") {
		t.Error("the controller's policy grants prune's rights")
	}
}

// throttler is a proxy in front of dynalite that answers every third request as DynamoDB does
// when a table's throughput is exceeded: HTTP 400, ProvisionedThroughputExceededException.
type throttler struct {
	next      http.Handler
	n         atomic.Int64
	throttled atomic.Int64
}

func (p *throttler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.n.Add(1)%3 == 0 {
		p.throttled.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("x-amzn-RequestId", fmt.Sprintf("THROTTLED%d", p.n.Load()))
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}`)
		return
	}
	p.next.ServeHTTP(w, r)
}

// A store that throttles the controller (a third of its calls refused): the SDK's retryer
// retries them with backoff, every tick succeeds, and the release is driven to its end with
// every transition in its audit trail once.
func TestControllerRetriesAThrottledStore(t *testing.T) {
	f := newFleet(t, 3, quick, "      canary:\n        - weight: 10%\n          bake: 1s\n        - weight: 50%\n          bake: 1s")
	f.appendManifest("    approval:\n      at_step: 0\n")
	st := f.teamStore(t)
	ctx := context.Background()
	t.Setenv("AVIARY_PRE_APPROVE", "true")
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	t.Setenv("AVIARY_PRE_APPROVE", "")
	target, err := url.Parse(dynalite.Endpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := &throttler{next: httputil.NewSingleHostReverseProxy(target)}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	c := deployController(t, f, st, "AWS_ENDPOINT_URL_DYNAMODB", srv.URL)

	r := detach(t, f, st, "2")
	approve(t, st, r.ID)
	r, ticks := c.tickUntil(r.ID, "promotion", func(r *release.Release) bool { return r.Phase == release.Promoted })
	if proxy.throttled.Load() == 0 {
		t.Fatal("the store never throttled the controller")
	}
	t.Logf("promoted in %d ticks; %d of %d store calls throttled", ticks, proxy.throttled.Load(), proxy.n.Load())
	for _, l := range c.lines("release") {
		if l["error"] != nil {
			t.Errorf("a tick failed on the throttled store: %v", l)
		}
	}
	auditChain(t, st, r)
	evs, err := st.Events(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.Key] {
			t.Errorf("audit entry %s twice", e.Key)
		}
		seen[e.Key] = true
	}
	for _, name := range f.names {
		if f.served(name) != "2" {
			t.Errorf("%s serves %s", name, f.served(name))
		}
	}
}
