package release_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/sqlite"
)

// fakeFleet is a hand-written Fleet: aliases and versions in memory, with hooks to fail calls.
type fakeFleet struct {
	mu        sync.Mutex
	aliases   map[string]release.Routing // by function name
	versions  map[string]int
	published map[string]string // function/sha → version: publishing is idempotent, as on Lambda
	calls     []string
	// fail, if set, is asked before every call; an error it returns is the call's.
	fail func(call, fn string) error
}

func newFakeFleet(fns ...string) *fakeFleet {
	f := &fakeFleet{aliases: map[string]release.Routing{}, versions: map[string]int{}, published: map[string]string{}}
	for _, fn := range fns {
		f.aliases[fn] = release.Routing{Primary: "1"}
		f.versions[fn] = 1
	}
	return f
}

func (f *fakeFleet) hook(call, fn string) error {
	f.mu.Lock()
	f.calls = append(f.calls, call+" "+fn)
	hook := f.fail
	f.mu.Unlock()
	if hook != nil {
		return hook(call, fn)
	}
	return nil
}

func (f *fakeFleet) Inspect(ctx context.Context, fn, alias string) (release.Current, error) {
	return release.Current{}, nil
}

func (f *fakeFleet) Upload(ctx context.Context, a release.Artifacts, key string, src release.ArtifactSource) error {
	return f.hook("Upload", key)
}

func (f *fakeFleet) Pin(ctx context.Context, alias string, fn release.Function) (release.Pinned, error) {
	return release.Pinned{}, errors.New("not used")
}

func (f *fakeFleet) Publish(ctx context.Context, a release.Artifacts, fn release.Function) (string, error) {
	if err := f.hook("Publish", fn.FunctionName); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.published[fn.FunctionName+"/"+fn.CodeSha256]; ok {
		return v, nil
	}
	f.versions[fn.FunctionName]++
	v := fmt.Sprint(f.versions[fn.FunctionName])
	f.published[fn.FunctionName+"/"+fn.CodeSha256] = v
	return v, nil
}

func (f *fakeFleet) Route(ctx context.Context, alias string, fn release.Function, to release.Routing) (string, error) {
	if err := f.hook("Route", fn.FunctionName); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aliases[fn.FunctionName] = to
	return fmt.Sprintf("rev-%d", len(f.calls)), nil
}

func (f *fakeFleet) alias(fn string) release.Routing {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.aliases[fn]
}

func (f *fakeFleet) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, call+" ") {
			n++
		}
	}
	return n
}

type fixture struct {
	st    *sqlite.Store
	fleet *fakeFleet
	r     *release.Release
	clock *release.FakeClock
	// awaiting hears (the latest) every time an engine of the fixture waits for a decision.
	awaiting chan release.Release
}

var fns = []string{"shop-api", "shop-orders", "shop-notifier"}

func setup(t *testing.T, steps ...release.Step) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &release.Release{ID: "rel-1", Service: "shop", Environment: "prod", Alias: "live", Phase: release.Planned, Steps: steps, CreatedAt: time.Now(), CreatedBy: "tester"}
	for _, fn := range fns {
		r.Functions = append(r.Functions, release.Function{Name: strings.TrimPrefix(fn, "shop-"), FunctionName: fn, Previous: "1", ArtifactKey: "k/" + fn, CodeSha256: "sha"})
	}
	if err := st.CreateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AcquireLock(context.Background(), store.Lock{Key: release.LockKey("shop", "prod"), Holder: r.ID, Owner: "me", ExpiresAt: time.Now().Add(time.Hour)}, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, fleet: newFakeFleet(fns...), r: r, clock: release.NewFakeClock(), awaiting: make(chan release.Release, 1)}
}

// engine is an engine on the fixture's fake clock: its lease's heartbeat waits beyond the
// clock's horizon, so it renews only as the release's own waits move time on.
func (fx *fixture) engine(observe func(release.Progress)) *release.Engine {
	return &release.Engine{Store: fx.st, Fleet: fx.fleet, Actor: "tester", Owner: "me", Poll: 10 * time.Millisecond, LockTTL: time.Hour, Clock: fx.clock,
		Observe: func(p release.Progress) {
			if p.Kind == release.ProgressAwaiting {
				select {
				case fx.awaiting <- p.Release:
				default:
					select { // keep the latest
					case <-fx.awaiting:
					default:
					}
					select {
					case fx.awaiting <- p.Release:
					default:
					}
				}
			}
			if observe != nil {
				observe(p)
			}
		}}
}

// onFirst returns an observer that calls do once, at the first progress of the kind.
func onFirst(kind release.ProgressKind, do func(p release.Progress)) func(release.Progress) {
	var once sync.Once
	return func(p release.Progress) {
		if p.Kind == kind {
			once.Do(func() { do(p) })
		}
	}
}

// request writes an operator's request into the stored release, as another process would.
func (fx *fixture) request(t *testing.T, req release.Request) {
	t.Helper()
	ctx := context.Background()
	for {
		r, err := fx.st.GetRelease(ctx, "rel-1")
		if err != nil {
			t.Error(err)
			return
		}
		r.Request = &req
		if err := fx.st.UpdateRelease(ctx, r); err == nil {
			return
		}
	}
}

// transitions lists the phases the audit trail records, in order.
func transitions(t *testing.T, st store.Store, id string) string {
	t.Helper()
	evs, err := st.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Kind == release.EventTransition {
			out = append(out, string(e.Phase))
			// Every move the engine made is a row of the table.
			from, _ := e.Data["from"].(string)
			move, _ := e.Data["move"].(string)
			if to, err := release.Next(release.Phase(from), release.Move(move)); err != nil || to != e.Phase {
				t.Errorf("the engine moved %s → %s on %q, which the table does not list: %v", from, e.Phase, move, err)
			}
		}
	}
	return strings.Join(out, " ")
}

func TestCanaryPromotes(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: 30 * time.Millisecond}, release.Step{Weight: 0.5, Bake: 30 * time.Millisecond})
	var mu sync.Mutex
	seen := map[string]bool{}
	r, err := fx.engine(func(p release.Progress) {
		if p.Kind != release.ProgressBake {
			return
		}
		// While a step bakes, every alias holds the step's weight.
		mu.Lock()
		defer mu.Unlock()
		for _, fn := range fns {
			a := fx.fleet.alias(fn)
			seen[fmt.Sprintf("%s %s+%v@%s", fn, a.Primary, a.Weight, a.Extra)] = true
		}
	}).Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted {
		t.Fatalf("phase %s (%s)", r.Phase, r.Reason)
	}
	for _, fn := range fns {
		for _, want := range []string{fn + " 1+0.1@2", fn + " 1+0.5@2"} {
			if !seen[want] {
				t.Errorf("never saw %q during a bake: %v", want, seen)
			}
		}
		if a := fx.fleet.alias(fn); a.Primary != "2" || a.Extra != "" {
			t.Errorf("%s after promotion: %+v", fn, a)
		}
	}
	if got, want := transitions(t, fx.st, "rel-1"), "publishing shifting shifting promoting promoted"; got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
	// One code update per function, one alias update per step and one to promote.
	if fx.fleet.count("Publish") != 3 || fx.fleet.count("Route") != 9 {
		t.Errorf("calls: %d publish, %d route", fx.fleet.count("Publish"), fx.fleet.count("Route"))
	}
	if l, _ := fx.st.GetLock(context.Background(), "shop/prod"); l != nil {
		t.Errorf("lock still held after the release: %+v", l)
	}
}

func TestPublishFailureRollsBack(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1})
	fx.fleet.fail = func(call, fn string) error {
		if call == "Publish" && fn == "shop-orders" {
			return errors.New("ResourceConflictException: an update is in progress")
		}
		return nil
	}
	r, err := fx.engine(nil).Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "publishing failed: shop-orders: ResourceConflictException") {
		t.Fatalf("phase %s, reason %q", r.Phase, r.Reason)
	}
	// No alias was moved, so none is touched by the rollback.
	if n := fx.fleet.count("Route"); n != 0 {
		t.Errorf("%d alias updates for a release that never shifted", n)
	}
}

func TestRollbackRequestMidBake(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour}, release.Step{Weight: 0.5, Bake: time.Hour})
	ctx := context.Background()
	// Another process asks for a rollback once the first step bakes.
	r, err := fx.engine(onFirst(release.ProgressBake, func(release.Progress) {
		fx.request(t, release.Request{Action: release.RequestRollback, By: "operator", Reason: "errors in the logs", At: fx.clock.Now()})
	})).Run(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "rollback requested by operator: errors in the logs") {
		t.Fatalf("phase %s, reason %q", r.Phase, r.Reason)
	}
	for _, fn := range fns {
		if a := fx.fleet.alias(fn); a.Primary != "1" || a.Extra != "" {
			t.Errorf("%s after rollback: %+v", fn, a)
		}
	}
}

func TestPromoteNowSkipsSteps(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour}, release.Step{Weight: 0.5, Bake: time.Hour})
	ctx := context.Background()
	r, err := fx.engine(onFirst(release.ProgressBake, func(release.Progress) {
		fx.request(t, release.Request{Action: release.RequestPromote, By: "operator", Now: true, At: fx.clock.Now()})
	})).Run(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted {
		t.Fatalf("phase %s (%s)", r.Phase, r.Reason)
	}
	if got := transitions(t, fx.st, "rel-1"); got != "publishing shifting promoting promoted" {
		t.Errorf("transitions %q", got)
	}
}

// scriptedHealth answers as its funcs say; nil funcs pass.
type scriptedHealth struct {
	mu     sync.Mutex
	before func(*release.Release) release.PreTraffic
	judge  func(r *release.Release, over bool) (release.Verdict, error)
	after  func(*release.Release) release.Verdict
	calls  []string
}

func (h *scriptedHealth) note(c string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, c)
}

func (h *scriptedHealth) BeforeTraffic(_ context.Context, r *release.Release) (release.PreTraffic, error) {
	h.note("before")
	if h.before != nil {
		return h.before(r), nil
	}
	return release.PreTraffic{Verdict: release.Verdict{Result: release.Pass, Reason: "smoke passed"}}, nil
}

func (h *scriptedHealth) Judge(_ context.Context, r *release.Release, over bool) (release.Verdict, error) {
	h.note("judge")
	if h.judge != nil {
		return h.judge(r, over)
	}
	return release.Verdict{Result: release.Pass, Reason: "no regression"}, nil
}

func (h *scriptedHealth) AfterTraffic(_ context.Context, r *release.Release) (release.Verdict, error) {
	h.note("after")
	if h.after != nil {
		return h.after(r), nil
	}
	return release.Verdict{Result: release.Pass, Reason: "post-traffic hook answered success"}, nil
}

func (h *scriptedHealth) count(c string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, x := range h.calls {
		if x == c {
			n++
		}
	}
	return n
}

func failing(r *release.Release, over bool) (release.Verdict, error) {
	return release.Verdict{Result: release.Fail, Reason: "canary error rate 40% vs baseline 0%", Check: "errors", Function: "shop-orders",
		Functions: map[string]map[string]float64{"shop-orders": {"canaryErrors": 8, "canaryInvocations": 20}}}, nil
}

// setupChecked is setup with health checks on the release.
func setupChecked(t *testing.T, checks release.Checks, steps ...release.Step) *fixture {
	t.Helper()
	fx := setup(t, steps...)
	r, err := fx.st.GetRelease(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	r.Checks = &checks
	if err := fx.st.UpdateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return fx
}

func healthEvents(t *testing.T, st store.Store, id string) []release.Event {
	t.Helper()
	evs, err := st.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []release.Event
	for _, e := range evs {
		if e.Kind == release.EventHealth {
			out = append(out, e)
		}
	}
	return out
}

func TestHealthFailureRollsBack(t *testing.T) {
	fx := setupChecked(t, release.Checks{MaxBake: time.Hour}, release.Step{Weight: 0.1, Bake: time.Hour})
	e := fx.engine(nil)
	e.Health = &scriptedHealth{judge: failing}
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "step 1 failed its health check: canary error rate 40%") {
		t.Fatalf("phase %s, reason %q", r.Phase, r.Reason)
	}
	// The record and the audit trail carry the verdict with its numbers.
	if len(r.Health.Steps) != 1 || r.Health.Steps[0].Verdict == nil || r.Health.Steps[0].Verdict.Numbers()["canaryErrors"] != 8 {
		t.Fatalf("step records %+v", r.Health.Steps)
	}
	if r.Health.PreTraffic == nil || r.Health.PreTraffic.Result != release.Pass {
		t.Fatalf("pre-traffic verdict %+v", r.Health.PreTraffic)
	}
	evs := healthEvents(t, fx.st, "rel-1")
	if len(evs) != 2 || evs[1].Step != 1 || !strings.Contains(evs[1].Message, "step 1: fail") {
		t.Fatalf("health events %+v", evs)
	}
	fns, _ := evs[1].Data["functions"].(map[string]any)
	if orders, _ := fns["shop-orders"].(map[string]any); orders["canaryErrors"] != float64(8) {
		t.Fatalf("audit data %+v", evs[1].Data)
	}
	// Every function rolled back, not only the failing one.
	for _, fn := range fns3() {
		if a := fx.fleet.alias(fn); a.Primary != "1" || a.Extra != "" {
			t.Errorf("%s: %+v", fn, a)
		}
	}
}

func fns3() []string { return []string{"shop-api", "shop-orders", "shop-notifier"} }

// A release without checks never asks the health seam anything.
func TestNoChecksOnlyBakes(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: 10 * time.Millisecond})
	e := fx.engine(nil)
	h := &scriptedHealth{judge: failing}
	e.Health = h
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted || len(h.calls) != 0 {
		t.Fatalf("phase %s, health calls %v", r.Phase, h.calls)
	}
}

// A failure before traffic rolls back with no alias moved.
func TestFailureBeforeTrafficMovesNothing(t *testing.T) {
	fx := setupChecked(t, release.Checks{}, release.Step{Weight: 0.1, Bake: time.Hour})
	e := fx.engine(nil)
	h := &scriptedHealth{before: func(*release.Release) release.PreTraffic {
		return release.PreTraffic{Verdict: release.Verdict{Result: release.Fail, Check: "smoke", Function: "shop-api", Reason: "smoke invocation of shop-api version 2 failed: Unhandled"}}
	}}
	e.Health = h
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "no traffic moved: smoke invocation of shop-api") {
		t.Fatalf("phase %s, reason %q", r.Phase, r.Reason)
	}
	if n := fx.fleet.count("Route"); n != 0 {
		t.Fatalf("%d Route calls; want none", n)
	}
	if h.count("judge") != 0 || r.Health.PreTraffic == nil || r.Health.PreTraffic.Check != "smoke" {
		t.Fatalf("calls %v, pre-traffic %+v", h.calls, r.Health.PreTraffic)
	}
}

func inconclusive(r *release.Release, over bool) (release.Verdict, error) {
	return release.Verdict{Result: release.Inconclusive, Reason: "too little traffic to judge"}, nil
}

func TestInconclusiveExtendsThenFollowsThePolicy(t *testing.T) {
	for _, c := range []struct {
		policy string
		want   release.Phase
	}{{release.OnInconclusiveRollback, release.RolledBack}, {release.OnInconclusivePromote, release.Promoted}} {
		t.Run(c.policy, func(t *testing.T) {
			fx := setupChecked(t, release.Checks{MaxBake: 150 * time.Millisecond, OnInconclusive: c.policy}, release.Step{Weight: 0.1, Bake: 30 * time.Millisecond})
			e := fx.engine(nil)
			var overJudged int
			e.Health = &scriptedHealth{judge: func(r *release.Release, over bool) (release.Verdict, error) {
				if over {
					overJudged++
				}
				return inconclusive(r, over)
			}}
			r, err := e.Run(context.Background(), "rel-1")
			if err != nil {
				t.Fatal(err)
			}
			if r.Phase != c.want {
				t.Fatalf("phase %s (%s)", r.Phase, r.Reason)
			}
			rec := r.Health.Steps[0]
			if !rec.Extended || rec.Verdict.Result != release.Inconclusive || rec.Ended.Sub(rec.Started) < 150*time.Millisecond {
				t.Fatalf("step record %+v", rec)
			}
			if overJudged < 2 {
				t.Fatalf("judged %d times after the bake: the step was not extended", overJudged)
			}
		})
	}
}

// on_inconclusive: gate waits for a person; a promotion request moves it on.
func TestInconclusiveGateWaitsForAPerson(t *testing.T) {
	fx := setupChecked(t, release.Checks{MaxBake: 20 * time.Millisecond, OnInconclusive: release.OnInconclusiveGate}, release.Step{Weight: 0.1, Bake: 10 * time.Millisecond})
	e := fx.engine(onFirst(release.ProgressAwaiting, func(p release.Progress) {
		if !strings.Contains(p.Release.Awaiting, "step 1 was inconclusive") {
			t.Errorf("awaiting %q", p.Release.Awaiting)
		}
		fx.request(t, release.Request{Action: release.RequestPromote, By: "alice", At: fx.clock.Now()})
	}))
	e.Health = &scriptedHealth{judge: inconclusive}
	done := make(chan *release.Release)
	go func() {
		r, err := e.Run(context.Background(), "rel-1")
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	r := <-done
	if r.Phase != release.Promoted || r.Awaiting != "" {
		t.Fatalf("phase %s, awaiting %q", r.Phase, r.Awaiting)
	}
	if got := transitions(t, fx.st, "rel-1"); got != "publishing shifting awaiting-approval promoting promoted" {
		t.Errorf("transitions %q", got)
	}
}

// A health source that cannot be read neither fails nor passes a step.
func TestJudgeErrorsAreInconclusive(t *testing.T) {
	fx := setupChecked(t, release.Checks{MaxBake: 40 * time.Millisecond, OnInconclusive: release.OnInconclusiveRollback}, release.Step{Weight: 0.1, Bake: 20 * time.Millisecond})
	e := fx.engine(nil)
	e.Health = &scriptedHealth{judge: func(*release.Release, bool) (release.Verdict, error) {
		return release.Verdict{}, errors.New("GetMetricData: ThrottlingException")
	}}
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "could not judge health: GetMetricData: ThrottlingException") {
		t.Fatalf("phase %s, reason %q", r.Phase, r.Reason)
	}
}

// The post-traffic check runs once all traffic is on the new versions; its failure rolls back.
func TestAfterTrafficFailureRollsBack(t *testing.T) {
	fx := setupChecked(t, release.Checks{MaxBake: time.Second}, release.Step{Weight: 0.1, Bake: 10 * time.Millisecond})
	e := fx.engine(nil)
	var weightsAtHook []float64
	e.Health = &scriptedHealth{after: func(r *release.Release) release.Verdict {
		for _, fn := range r.Functions {
			if !fn.Promoted {
				t.Errorf("%s not promoted when the post-traffic hook ran", fn.FunctionName)
			}
			weightsAtHook = append(weightsAtHook, fn.Weight)
		}
		return release.Verdict{Result: release.Fail, Check: "hook", Reason: "post-traffic hook shop-check answered failure"}
	}}
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "after traffic failed: post-traffic hook") || r.Health.PostTraffic == nil {
		t.Fatalf("phase %s, reason %q", r.Phase, r.Reason)
	}
	for _, fn := range fns3() {
		if a := fx.fleet.alias(fn); a.Primary != "1" || a.Extra != "" {
			t.Errorf("%s: %+v", fn, a)
		}
	}
	if got := transitions(t, fx.st, "rel-1"); got != "publishing shifting promoting rolling-back rolled-back" {
		t.Errorf("transitions %q", got)
	}
}

// Every step is recorded with its weight, times and verdict; evidence is judged with the step's
// record in hand.
func TestStepRecords(t *testing.T) {
	fx := setupChecked(t, release.Checks{MaxBake: time.Second}, release.Step{Weight: 0.1, Bake: 10 * time.Millisecond}, release.Step{Weight: 0.5, Bake: 10 * time.Millisecond})
	e := fx.engine(nil)
	e.Health = &scriptedHealth{judge: func(r *release.Release, over bool) (release.Verdict, error) {
		rec := r.Health.Steps[len(r.Health.Steps)-1]
		if rec.Step != r.Step || rec.Started.IsZero() || rec.Shifted.After(rec.Started) {
			t.Errorf("judged step %d with record %+v", r.Step, rec)
		}
		return release.Verdict{Result: release.Pass, Reason: "no regression"}, nil
	}}
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted || len(r.Health.Steps) != 2 || r.Health.PostTraffic == nil {
		t.Fatalf("phase %s, steps %+v", r.Phase, r.Health.Steps)
	}
	for i, rec := range r.Health.Steps {
		if rec.Step != i || rec.Weight != r.Steps[i].Weight || rec.Verdict == nil || rec.Verdict.Result != release.Pass || rec.Ended.Before(rec.Started) {
			t.Errorf("step %d: %+v", i, rec)
		}
	}
}

func TestRollbackThatCannotFinishFails(t *testing.T) {
	fx := setupChecked(t, release.Checks{MaxBake: time.Hour}, release.Step{Weight: 0.1, Bake: time.Hour})
	e := fx.engine(nil)
	e.Health = &scriptedHealth{judge: failing}
	fx.fleet.fail = func(call, fn string) error {
		if call == "Route" && fn == "shop-api" && fx.fleet.count("Route") > 3 { // after the step: during the rollback
			return errors.New("AccessDeniedException: not allowed")
		}
		return nil
	}
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Failed || !strings.Contains(r.Reason, "rollback could not finish: shop-api: AccessDeniedException") {
		t.Fatalf("phase %s, reason %q", r.Phase, r.Reason)
	}
	// The other functions were rolled back all the same.
	for _, fn := range []string{"shop-orders", "shop-notifier"} {
		if a := fx.fleet.alias(fn); a.Primary != "1" || a.Extra != "" {
			t.Errorf("%s: %+v", fn, a)
		}
	}
}

// A process dying at any point leaves a record another engine finishes from, with every
// transition in the audit trail once.
func TestResumeAfterCrashAtEveryCall(t *testing.T) {
	for crashAt := 1; crashAt <= 12; crashAt++ {
		t.Run(fmt.Sprint("call ", crashAt), func(t *testing.T) {
			fx := setup(t, release.Step{Weight: 0.1, Bake: 20 * time.Millisecond}, release.Step{Weight: 0.5, Bake: 20 * time.Millisecond})
			ctx, crash := context.WithCancel(context.Background())
			calls := 0
			var mu sync.Mutex
			fx.fleet.fail = func(call, fn string) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == crashAt {
					crash() // the process dies mid-call: the call may or may not have taken effect
				}
				return nil
			}
			_, err := fx.engine(nil).Run(ctx, "rel-1")
			if err == nil {
				t.Skip("finished before the crash point")
			}
			fx.fleet.fail = nil
			r, err := fx.engine(nil).Run(context.Background(), "rel-1")
			if err != nil {
				t.Fatal(err)
			}
			if r.Phase != release.Promoted {
				t.Fatalf("after resume: %s (%s)", r.Phase, r.Reason)
			}
			for _, fn := range fns {
				if a := fx.fleet.alias(fn); a.Primary != "2" || a.Extra != "" {
					t.Errorf("%s: %+v", fn, a)
				}
			}
			if got := transitions(t, fx.st, "rel-1"); got != "publishing shifting shifting promoting promoted" {
				t.Errorf("transitions %q", got)
			}
		})
	}
}

func TestLostLockStopsTheEngine(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour})
	e := fx.engine(nil)
	e.LockTTL = 60 * time.Millisecond
	// Another process has taken the lock over (as after our lease ran out): the engine's next
	// renewal finds out, and it stops in the middle of its hour-long bake.
	if _, err := fx.st.AcquireLock(context.Background(), store.Lock{Key: "shop/prod", Holder: "rel-1", Owner: "other", ExpiresAt: time.Now().Add(time.Hour)}, time.Now(), "me"); err != nil {
		t.Fatal(err)
	}
	_, err := e.Run(context.Background(), "rel-1")
	if !errors.Is(err, release.ErrLockLost) {
		t.Fatalf("Run = %v, want ErrLockLost", err)
	}
}

// A rollback requested after the last alias was promoted, just before the release records itself
// promoted, is not lost: the engine decides again and rolls back.
func TestRequestJustBeforeTheFinalTransition(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	e := fx.engine(nil)
	e.Store = &requestBefore{Store: fx.st, phase: release.Promoted}
	r, err := e.Run(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "second thoughts") {
		t.Fatalf("phase %s (%s): the request was lost", r.Phase, r.Reason)
	}
	for _, fn := range fns {
		if a := fx.fleet.alias(fn); a.Primary != "1" || a.Extra != "" {
			t.Errorf("%s: %+v", fn, a)
		}
	}
}

// requestBefore is a store on which an operator's rollback request lands just before the engine
// writes the given phase.
type requestBefore struct {
	*sqlite.Store
	phase release.Phase
	done  bool
}

func (s *requestBefore) UpdateRelease(ctx context.Context, r *release.Release) error {
	if r.Phase == s.phase && !s.done {
		s.done = true
		cur, err := s.Store.GetRelease(ctx, r.ID)
		if err != nil {
			return err
		}
		cur.Request = &release.Request{Action: release.RequestRollback, By: "operator", Reason: "second thoughts", At: time.Now()}
		if err := s.Store.UpdateRelease(ctx, cur); err != nil {
			return err
		}
	}
	return s.Store.UpdateRelease(ctx, r)
}
