package release_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// setupGated is setup with an approval gate (and, if checks is set, health checks).
func setupGated(t *testing.T, a release.Approval, checks *release.Checks, steps ...release.Step) *fixture {
	t.Helper()
	fx := setup(t, steps...)
	r, err := fx.st.GetRelease(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	r.Approval, r.Checks = &a, checks
	if err := fx.st.UpdateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return fx
}

// runAsync runs the engine in the background; the channel gets the final release.
func runAsync(t *testing.T, e *release.Engine) <-chan *release.Release {
	done := make(chan *release.Release, 1)
	go func() {
		r, err := e.Run(context.Background(), "rel-1")
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	return done
}

// waitGate waits until the release waits at a gate, and returns it.
func waitGate(t *testing.T, fx *fixture) *release.Release {
	t.Helper()
	for {
		p := <-fx.awaiting
		r, err := fx.st.GetRelease(context.Background(), "rel-1")
		if err != nil {
			t.Fatal(err)
		}
		if r.OpenGate() != nil {
			return r
		}
		if r.Phase.Final() {
			t.Fatalf("the release is %s; it never waited at a gate (last awaiting: %s)", r.Describe(), p.Describe())
		}
	}
}

func decisions(t *testing.T, st store.Store) (applied, late []release.Event) {
	t.Helper()
	evs, err := st.Events(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind != release.EventDecision {
			continue
		}
		if e.Data["tooLate"] == true {
			late = append(late, e)
		} else {
			applied = append(applied, e)
		}
	}
	return applied, late
}

func TestGateWaitsThenApprovalPromotes(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1}, nil, release.Step{Weight: 0.1})
	done := runAsync(t, fx.engine(nil))
	r := waitGate(t, fx)
	g := r.OpenGate()
	if g.Kind != release.GateApproval || g.Step != 1 || !strings.Contains(r.Awaiting, "after the last step (10% on the new versions)") {
		t.Errorf("gate %+v, awaiting %q", g, r.Awaiting)
	}
	for _, fn := range fns {
		if a := fx.fleet.alias(fn); a.Extra == "" || a.Weight != 0.1 {
			t.Errorf("%s at the gate: %+v, want the canary kept at 10%%", fn, a)
		}
	}
	// The engine keeps waiting: nothing is promoted while nobody decides, for ten minutes.
	for opened := g.Opened; fx.clock.Now().Sub(opened) < 10*time.Minute; {
		<-fx.awaiting
	}
	if cur, _ := fx.st.GetRelease(context.Background(), "rel-1"); cur.Phase != release.AwaitingApproval {
		t.Fatalf("moved on without a decision: %s", cur.Describe())
	}
	if _, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.Approve, By: "alice", Via: release.ViaLink, Source: "10.0.0.7", UserAgent: "Mozilla/5.0"}); err != nil {
		t.Fatal(err)
	}
	r = <-done
	if r.Phase != release.Promoted {
		t.Fatalf("ended %s", r.Describe())
	}
	if got := transitions(t, fx.st, "rel-1"); got != "publishing shifting awaiting-approval promoting promoted" {
		t.Errorf("transitions %q", got)
	}
	applied, late := decisions(t, fx.st)
	if len(applied) != 1 || len(late) != 0 {
		t.Fatalf("decisions %v / late %v", applied, late)
	}
	d := applied[0]
	if d.Actor != "alice" || d.Data["source"] != "10.0.0.7" || d.Data["userAgent"] != "Mozilla/5.0" || d.Data["via"] != "link" || !strings.Contains(d.Source, "link from 10.0.0.7") {
		t.Errorf("decision entry %+v", d)
	}
	if dec := r.LastGate().Decision; dec == nil || dec.By != "alice" {
		t.Errorf("the record's decision %+v", dec)
	}
}

func TestGateMidwayContinuesToTheNextStep(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1}, nil, release.Step{Weight: 0.1}, release.Step{Weight: 0.5})
	done := runAsync(t, fx.engine(nil))
	r := waitGate(t, fx)
	if r.Step != 0 || !strings.Contains(r.Awaiting, "after step 1 of 2") {
		t.Errorf("gate at step %d: %q", r.Step, r.Awaiting)
	}
	if _, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.Approve, By: "bob", Via: release.ViaCLI}); err != nil {
		t.Fatal(err)
	}
	r = <-done
	if got := transitions(t, fx.st, "rel-1"); got != "publishing shifting awaiting-approval shifting promoting promoted" {
		t.Errorf("transitions %q", got)
	}
	if len(r.Health.Steps) != 2 {
		t.Errorf("step records %+v", r.Health.Steps)
	}
}

func TestGateRollbackDecision(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1}, nil, release.Step{Weight: 0.25})
	done := runAsync(t, fx.engine(nil))
	waitGate(t, fx)
	if _, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.DecideRollback, By: "carol", Via: release.ViaDashboard, Reason: "checkout looks slow"}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "rollback decided at the gate by carol via dashboard: checkout looks slow") {
		t.Fatalf("ended %s", r.Describe())
	}
	for _, fn := range fns {
		if a := fx.fleet.alias(fn); a.Primary != "1" || a.Extra != "" {
			t.Errorf("%s: %+v, want back on 1", fn, a)
		}
	}
	// A decision now is too late: recorded, not applied.
	_, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.Approve, By: "dave", Via: release.ViaLink})
	var late *release.TooLateError
	if !errors.As(err, &late) || late.First == nil || late.First.By != "carol" {
		t.Fatalf("a decision after the first: %v", err)
	}
	after, _ := fx.st.GetRelease(context.Background(), "rel-1")
	if after.Revision != r.Revision {
		t.Error("a late decision changed the release")
	}
	if _, l := decisions(t, fx.st); len(l) != 1 || l[0].Actor != "dave" || !strings.Contains(l[0].Message, "already decided: rollback by carol") {
		t.Errorf("late entries %+v", l)
	}
}

// Of many decisions racing, exactly one is applied; the rest are recorded as too late.
func TestFirstDecisionWinsUnderConcurrency(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1}, nil, release.Step{Weight: 0.1})
	e := fx.engine(nil)
	e.Poll = time.Hour // the engine must not act while the deciders race
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _, _ = e.Run(ctx, "rel-1"); close(stopped) }()
	waitGate(t, fx)
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			action := release.Approve
			if i%2 == 1 {
				action = release.DecideRollback
			}
			_, errs[i] = release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: action, By: fmt.Sprintf("user%d", i), Via: release.ViaLink})
		}()
	}
	close(start)
	wg.Wait()
	cancel()
	<-stopped
	won := 0
	for i, err := range errs {
		var late *release.TooLateError
		switch {
		case err == nil:
			won++
		case errors.As(err, &late):
		default:
			t.Errorf("decider %d: %v", i, err)
		}
	}
	applied, late := decisions(t, fx.st)
	r, _ := fx.st.GetRelease(context.Background(), "rel-1")
	if won != 1 || len(applied) != 1 || len(late) != n-1 {
		t.Fatalf("%d applied (%d entries), %d late; want 1 and %d", won, len(applied), len(late), n-1)
	}
	if r.LastGate().Decision.By != applied[0].Actor {
		t.Errorf("the record says %s decided, the trail %s", r.LastGate().Decision.By, applied[0].Actor)
	}
}

func TestPreApprovePassesTheGateThroughTheSamePath(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1, PreApprove: true, PreApprovedBy: "AVIARY_PRE_APPROVE"}, nil, release.Step{Weight: 0.1})
	r, err := fx.engine(nil).Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted {
		t.Fatalf("ended %s", r.Describe())
	}
	if got := transitions(t, fx.st, "rel-1"); got != "publishing shifting awaiting-approval promoting promoted" {
		t.Errorf("transitions %q", got)
	}
	applied, _ := decisions(t, fx.st)
	if len(applied) != 1 || applied[0].Data["via"] != release.ViaPreApprove || !strings.Contains(applied[0].Actor, "pre-approved by AVIARY_PRE_APPROVE") {
		t.Fatalf("decisions %+v", applied)
	}
}

func TestGateTimeout(t *testing.T) {
	for _, tc := range []struct {
		onTimeout string
		want      release.Phase
	}{{"rollback", release.RolledBack}, {"approve", release.Promoted}} {
		t.Run(tc.onTimeout, func(t *testing.T) {
			fx := setupGated(t, release.Approval{AtStep: 1, Timeout: 30 * time.Millisecond, OnTimeout: tc.onTimeout}, nil, release.Step{Weight: 0.1})
			r, err := fx.engine(nil).Run(context.Background(), "rel-1")
			if err != nil {
				t.Fatal(err)
			}
			if r.Phase != tc.want {
				t.Fatalf("ended %s", r.Describe())
			}
			applied, _ := decisions(t, fx.st)
			if len(applied) != 1 || applied[0].Data["via"] != release.ViaTimeout || applied[0].Data["action"] != tc.onTimeout {
				t.Fatalf("decisions %+v", applied)
			}
		})
	}
}

func TestHealthFailureWhileWaitingRollsBack(t *testing.T) {
	var mu sync.Mutex
	bad := false
	h := &scriptedHealth{judge: func(r *release.Release, over bool) (release.Verdict, error) {
		mu.Lock()
		defer mu.Unlock()
		if bad {
			return failing(r, over)
		}
		return release.Verdict{Result: release.Pass, Reason: "no regression"}, nil
	}}
	fx := setupGated(t, release.Approval{AtStep: 1}, &release.Checks{MaxBake: time.Millisecond, OnInconclusive: "rollback"}, release.Step{Weight: 0.1})
	e := fx.engine(nil)
	e.Health = h
	done := runAsync(t, e)
	waitGate(t, fx)
	mu.Lock()
	bad = true
	mu.Unlock()
	r := <-done
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "while waiting at the gate") {
		t.Fatalf("ended %s", r.Describe())
	}
	if _, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.Approve, By: "erin", Via: release.ViaLink}); err == nil || !strings.Contains(err.Error(), "too late") {
		t.Errorf("approving a rolled-back release: %v", err)
	}
}

func TestGateBeforeTrafficMovesNothing(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 0}, nil) // all at once
	done := runAsync(t, fx.engine(nil))
	r := waitGate(t, fx)
	if !strings.Contains(r.Awaiting, "before any traffic moves") || fx.fleet.count("Route") != 0 {
		t.Fatalf("awaiting %q with %d alias writes", r.Awaiting, fx.fleet.count("Route"))
	}
	if _, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.Approve, By: "frank", Via: release.ViaCLI}); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Phase != release.Promoted {
		t.Fatalf("ended %s", r.Describe())
	}
}

func TestDecisionBeforeTheGateChangesNothing(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1}, nil, release.Step{Weight: 0.1})
	before, _ := fx.st.GetRelease(context.Background(), "rel-1")
	_, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.Approve, By: "gina", Via: release.ViaCLI})
	if !errors.Is(err, release.ErrNotWaiting) {
		t.Fatalf("got %v, want ErrNotWaiting", err)
	}
	after, _ := fx.st.GetRelease(context.Background(), "rel-1")
	if after.Revision != before.Revision {
		t.Error("an early decision changed the release")
	}
}

// A decision meant for a gate that has closed is too late at the next one: an old link or a page
// left open cannot decide a gate its decider never saw.
func TestDecisionForAnEarlierGateIsTooLate(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1}, release.Step{Weight: 0.5})
	ctx := context.Background()
	r, _ := fx.st.GetRelease(ctx, "rel-1")
	r.Phase, r.Step = release.AwaitingApproval, 1
	r.Gates = []release.Gate{
		{Step: 1, Kind: release.GateInconclusive, Opened: time.Now(), Decision: &release.Decision{Action: release.Approve, By: "ann", Via: release.ViaLink, At: time.Now()}},
		{Step: 2, Kind: release.GateApproval, Opened: time.Now()},
	}
	if err := fx.st.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	_, err := release.Decide(ctx, fx.st, "rel-1", release.Decision{Action: release.Approve, By: "ann", Via: release.ViaLink, Gate: 1})
	var late *release.TooLateError
	if !errors.As(err, &late) || late.First == nil || late.First.By != "ann" {
		t.Fatalf("a decision for gate 1 at gate 2: %v", err)
	}
	if cur, _ := fx.st.GetRelease(ctx, "rel-1"); cur.Revision != r.Revision || cur.Gates[1].Decision != nil {
		t.Fatal("a decision for an earlier gate changed the release")
	}
	if _, l := decisions(t, fx.st); len(l) != 1 || !strings.Contains(l[0].Message, "gate 1 was already decided") {
		t.Errorf("late entries %+v", l)
	}
	if _, err := release.Decide(ctx, fx.st, "rel-1", release.Decision{Action: release.Approve, By: "bo", Via: release.ViaLink, Gate: 2}); err != nil {
		t.Fatalf("a decision for the open gate: %v", err)
	}
}

// A promotion requested at an open gate closes that gate as an approval, so the record never
// shows a promoted release whose gate still waits.
func TestPromoteRequestAtAGateIsItsApproval(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1}, nil, release.Step{Weight: 0.1}, release.Step{Weight: 0.5})
	done := runAsync(t, fx.engine(nil))
	for {
		r := waitGate(t, fx)
		r.Request = &release.Request{Action: release.RequestPromote, By: "alice", Reason: "hotfix", At: time.Now()}
		if err := fx.st.UpdateRelease(context.Background(), r); err == nil {
			break
		}
	}
	r := <-done
	if r.Phase != release.Promoted {
		t.Fatalf("ended %s", r.Describe())
	}
	d := r.Gates[0].Decision
	if d == nil || d.Action != release.Approve || d.By != "alice" || !strings.Contains(d.Reason, "promotion requested: hotfix") {
		t.Fatalf("the gate's decision %+v", d)
	}
	if got := transitions(t, fx.st, "rel-1"); got != "publishing shifting awaiting-approval promoting promoted" {
		t.Errorf("transitions %q (the promotion skips step 2)", got)
	}
}
