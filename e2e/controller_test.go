package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	"github.com/aviary-deploy/aviary/internal/dynalite"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/web/lambdaurl/lambdaurltest"
)

// ctl is the controller's function on a fleet's sandbox, over the fleet's team store.
type ctl struct {
	t     *testing.T
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
func deployController(t *testing.T, f *fleet, st store.Store) *ctl {
	t.Helper()
	fn := lambdaurltest.Deploy(t, "./cmd/aviary-controller", lambdaurltest.Options{Sandbox: f.srv, Name: "aviary-controller", Timeout: 60 * time.Second,
		Env: map[string]string{
			"AVIARY_STORE":              os.Getenv("AVIARY_STORE"),
			"AWS_ENDPOINT_URL_DYNAMODB": dynalite.Endpoint(t),
			"AVIARY_LOCK_LEASE":         "3s",
		}})
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
func detach(t *testing.T, f *fleet, st store.Store, stamp string) *release.Release {
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

// killController kills the controller's execution environments (their processes), as a crash
// of Lambda's host would.
func killController(t *testing.T, name string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	n := 0
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !bytes.Contains(env, []byte("\x00AWS_LAMBDA_FUNCTION_NAME="+name+"\x00")) && !bytes.HasPrefix(env, []byte("AWS_LAMBDA_FUNCTION_NAME="+name+"\x00")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(d))
		if err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

func approve(t *testing.T, st store.Store, id string) {
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
	if n := killController(t, c.name); n == 0 {
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
