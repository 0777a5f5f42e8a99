package release_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// trail is the audit trail as the story it tells: what, in which phase and step; not when.
func trail(t *testing.T, st store.Store, id string) []string {
	t.Helper()
	evs, err := st.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	group := 0 // where the current run of function entries began: they come in any order
	for i, e := range evs {
		out = append(out, fmt.Sprintf("%s %s step %d by %s: %s", e.Kind, e.Phase, e.Step, e.Actor, e.Message))
		if e.Kind != release.EventFunction {
			group = i + 1
			continue
		}
		sort.Strings(out[group:])
	}
	return out
}

// handOver parks the fixture's lock, as a CLI that handed the release to the controller does.
func (fx *fixture) handOver(t *testing.T) {
	t.Helper()
	if err := fx.st.RenewLock(context.Background(), "shop/prod", "me", fx.clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// tickScenario is one release, driven once by Run and once by ticks.
type tickScenario struct {
	name   string
	steps  []release.Step
	checks *release.Checks
	gate   *release.Approval
	judge  func(r *release.Release, over bool) (release.Verdict, error)
	want   release.Phase
}

func (sc tickScenario) setup(t *testing.T) (*fixture, *release.Engine) {
	fx := setup(t, sc.steps...)
	r, err := fx.st.GetRelease(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	r.Checks, r.Approval = sc.checks, sc.gate
	if err := fx.st.UpdateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	e := fx.engine(nil)
	// One poll a minute, as a controller ticks: every wait is within the fake clock's horizon.
	e.Poll = time.Minute
	e.Health = &scriptedHealth{judge: sc.judge}
	return fx, e
}

func decideApprove(t *testing.T, fx *fixture) {
	t.Helper()
	if _, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.Approve, By: "alice", Via: release.ViaLink, At: fx.clock.Now()}); err != nil {
		t.Fatal(err)
	}
}

// A release ticked to its end moves through the same transitions, with the same audit trail, as
// one Run; between ticks it waits with its lock parked: the environment stays its own, and the
// next tick (or a CLI) takes the lock at once.
func TestTickedToItsEndIsRun(t *testing.T) {
	failSecond := func(r *release.Release, over bool) (release.Verdict, error) {
		if r.Step == 1 {
			return failing(r, over)
		}
		return release.Verdict{Result: release.Pass, Reason: "no regression"}, nil
	}
	for _, sc := range []tickScenario{
		{name: "canary promoted", steps: []release.Step{{Weight: 0.1, Bake: 10 * time.Minute}, {Weight: 0.5, Bake: 5 * time.Minute}}, want: release.Promoted},
		{name: "second step fails", steps: []release.Step{{Weight: 0.1, Bake: 10 * time.Minute}, {Weight: 0.5, Bake: 5 * time.Minute}},
			checks: &release.Checks{MaxBake: 20 * time.Minute}, judge: failSecond, want: release.RolledBack},
		{name: "gate approved", steps: []release.Step{{Weight: 0.1, Bake: 10 * time.Minute}, {Weight: 0.5, Bake: 5 * time.Minute}},
			gate: &release.Approval{AtStep: 1}, want: release.Promoted},
	} {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			// Run, with a person deciding at the gate.
			fxRun, run := sc.setup(t)
			done := make(chan *release.Release, 1)
			go func() {
				r, err := run.Run(ctx, "rel-1")
				if err != nil {
					t.Error(err)
				}
				done <- r
			}()
			if sc.gate != nil {
				waitGate(t, fxRun)
				decideApprove(t, fxRun)
			}
			ran := <-done
			if ran == nil || ran.Phase != sc.want {
				t.Fatalf("Run ended %+v, want %s", ran, sc.want)
			}

			// Ticks, with the same person deciding between two of them.
			fx, tick := sc.setup(t)
			var ticks, waits int
			for ; ticks < 100; ticks++ {
				res, err := tick.Tick(ctx, "rel-1")
				if err != nil {
					t.Fatalf("tick %d: %v", ticks, err)
				}
				if res.Held != nil {
					t.Fatalf("tick %d: held by %+v", ticks, res.Held)
				}
				if res.Release.Phase.Final() {
					if !res.Next.IsZero() || res.Waiting != "" {
						t.Errorf("ended with next %v waiting %q", res.Next, res.Waiting)
					}
					break
				}
				now := fx.clock.Now()
				if !res.Next.After(now) || res.Waiting == "" {
					t.Fatalf("tick %d at %s: next %v waiting %q", ticks, res.Release.Describe(), res.Next, res.Waiting)
				}
				// Parked: this release still holds the environment, with its lease run out.
				l, err := fx.st.GetLock(ctx, "shop/prod")
				if err != nil || l == nil || l.Holder != "rel-1" || l.ExpiresAt.After(now) {
					t.Fatalf("tick %d: lock %+v (%v), want rel-1's, parked", ticks, l, err)
				}
				other := fx.lifecycle("other")
				var held *release.LockHeldError
				if _, err := other.Start(ctx, planned("rel-2")); !errors.As(err, &held) {
					t.Fatalf("tick %d: another release started between ticks: %v", ticks, err)
				}
				if res.Waiting == "gate" {
					decideApprove(t, fx)
				}
				waits++
				fx.clock.Advance(res.Next.Sub(now))
			}
			final, err := fx.st.GetRelease(ctx, "rel-1")
			if err != nil {
				t.Fatal(err)
			}
			if final.Phase != sc.want {
				t.Fatalf("ticked to %s (%s), want %s", final.Phase, final.Reason, sc.want)
			}
			if waits == 0 {
				t.Fatal("the release never waited between ticks")
			}
			if got, want := strings.Join(trail(t, fx.st, "rel-1"), "\n"), strings.Join(trail(t, fxRun.st, "rel-1"), "\n"); got != want {
				t.Errorf("audit trail of ticks:\n%s\nRun's:\n%s", got, want)
			}
			if got, want := transitions(t, fx.st, "rel-1"), transitions(t, fxRun.st, "rel-1"); got != want {
				t.Errorf("transitions %q, Run's %q", got, want)
			}
			if l, _ := fx.st.GetLock(ctx, "shop/prod"); l != nil {
				t.Errorf("lock still held after the release ended: %+v", l)
			}
			t.Logf("%d ticks", ticks+1)
		})
	}
}

// A tick on a release another live process drives does nothing and names the driver.
func TestTickOnAHeldLockActsOnNothing(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour})
	ctx := context.Background()
	if err := fx.st.RenewLock(ctx, "shop/prod", "me", fx.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	before, _ := fx.st.GetRelease(ctx, "rel-1")
	ctl := fx.lifecycle("controller")
	res, err := ctl.Tick(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Held == nil || res.Held.Owner != "me" {
		t.Fatalf("Held = %+v, want the driver named", res.Held)
	}
	after, _ := fx.st.GetRelease(ctx, "rel-1")
	if after.Revision != before.Revision || len(fx.fleet.calls) != 0 {
		t.Fatalf("a tick on a held lock acted: revision %d → %d, calls %v", before.Revision, after.Revision, fx.fleet.calls)
	}
	if l, _ := fx.st.GetLock(ctx, "shop/prod"); l == nil || l.Owner != "me" {
		t.Fatalf("lock %+v, want the driver's untouched", l)
	}
}

// A CLI takes a ticked release over at once, between ticks, and drives it to its end; the next
// tick finds it ended and frees nothing of anyone else's.
func TestCLITakesOverBetweenTicks(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: 10 * time.Minute})
	ctx := context.Background()
	fx.handOver(t)
	ctl := fx.lifecycle("controller")
	ctl.Poll = time.Minute
	res, err := ctl.Tick(ctx, "rel-1")
	if err != nil || res.Waiting != "bake" {
		t.Fatalf("tick: %+v, %v", res, err)
	}
	cli := fx.lifecycle("cli")
	cli.Poll = time.Minute
	d, err := cli.Drive(ctx, "rel-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The tick let go of the lock: the CLI picks the release up; it took over from nobody gone.
	if !d.Drove || d.TookOver != nil || d.Release.Phase != release.Promoted {
		t.Fatalf("Drive: drove %v, took over %+v, release %s", d.Drove, d.TookOver, d.Release.Describe())
	}
	res, err = ctl.Tick(ctx, "rel-1")
	if err != nil || res.Release.Phase != release.Promoted || res.Held != nil {
		t.Fatalf("tick after the end: %+v, %v", res, err)
	}
}

// A tick that ran out of time (its context ended mid-way) leaves the release for the next tick,
// its lock parked; the next tick converges.
func TestTickCutShortConverges(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: 10 * time.Minute})
	ctx := context.Background()
	cut, cancel := context.WithCancel(ctx)
	fx.fleet.fail = func(call, fn string) error {
		if call == "Route" {
			cancel() // the budget ends while the aliases move
		}
		return nil
	}
	fx.handOver(t)
	ctl := fx.lifecycle("controller")
	ctl.Poll = time.Minute
	if _, err := ctl.Tick(cut, "rel-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cut tick: %v, want context.Canceled", err)
	}
	if l, _ := fx.st.GetLock(ctx, "shop/prod"); l == nil || l.Holder != "rel-1" || l.ExpiresAt.After(fx.clock.Now()) {
		t.Fatalf("lock after a cut tick %+v, want parked", l)
	}
	fx.fleet.fail = nil
	next := fx.lifecycle("controller-2")
	next.Poll = time.Minute
	for range 20 {
		res, err := next.Tick(ctx, "rel-1")
		if err != nil {
			t.Fatal(err)
		}
		if res.Release.Phase.Final() {
			break
		}
		fx.clock.Advance(res.Next.Sub(fx.clock.Now()))
	}
	r, _ := fx.st.GetRelease(ctx, "rel-1")
	if r.Phase != release.Promoted {
		t.Fatalf("phase %s (%s)", r.Phase, r.Reason)
	}
	for _, fn := range fns {
		if a := fx.fleet.alias(fn); a.Primary != "2" || a.Extra != "" {
			t.Errorf("%s: %+v", fn, a)
		}
	}
}

// A process that hands a release over while holding its lock parks the lock: the release keeps
// its environment, and the controller's first tick takes it at once.
func TestHandOffParksTheLock(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: 10 * time.Minute})
	ctx := context.Background()
	if err := fx.st.RenewLock(ctx, "shop/prod", "me", fx.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.engine(nil).HandOff(ctx, "rel-1", "deploy --detach"); err != nil {
		t.Fatal(err)
	}
	l, _ := fx.st.GetLock(ctx, "shop/prod")
	if l == nil || l.Holder != "rel-1" || l.ExpiresAt.After(fx.clock.Now()) {
		t.Fatalf("lock after the hand-off %+v, want rel-1's, parked", l)
	}
	ctl := fx.lifecycle("controller")
	ctl.Poll = time.Minute
	res, err := ctl.Tick(ctx, "rel-1")
	if err != nil || res.Held != nil || res.Waiting != "bake" {
		t.Fatalf("first tick after the hand-off: %+v, %v", res, err)
	}
}

// A gate's deadline is honoured by ticks: the tick before it says to come back at the
// deadline, and the first tick at or after it decides as on_timeout says.
func TestTickHonoursAGateDeadline(t *testing.T) {
	sc := tickScenario{steps: []release.Step{{Weight: 0.1, Bake: 10 * time.Minute}},
		gate: &release.Approval{AtStep: 1, Timeout: 150 * time.Second, OnTimeout: "rollback"}}
	fx, tick := sc.setup(t)
	ctx := context.Background()
	var deadline time.Time
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("no end after 50 ticks")
		}
		res, err := tick.Tick(ctx, "rel-1")
		if err != nil {
			t.Fatal(err)
		}
		if res.Release.Phase.Final() {
			if res.Release.Phase != release.RolledBack {
				t.Fatalf("ended %s, want rolled back at the gate's timeout", res.Release.Describe())
			}
			g := res.Release.Gates[0]
			if g.Decision == nil || g.Decision.Via != release.ViaTimeout || !g.Decision.At.Equal(deadline) {
				t.Fatalf("gate %+v, want decided by its timeout at %s", g, deadline)
			}
			return
		}
		if g := res.Release.OpenGate(); g != nil {
			deadline = g.Deadline
			if res.Next.After(deadline) {
				t.Fatalf("at the gate, next tick %s is after its deadline %s", res.Next, deadline)
			}
		}
		fx.clock.Advance(res.Next.Sub(fx.clock.Now()))
	}
}

// A tick says it took the release over only from a process that is gone (a tick killed mid-way,
// its lease run out), not at every tick from the one before, which let go of the lock.
func TestTickTookOverOnlyFromAProcessGone(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: 10 * time.Minute})
	ctx := context.Background()
	fx.handOver(t)
	tick := func(owner string) *release.Ticked {
		t.Helper()
		e := fx.lifecycle(owner)
		e.Poll = time.Minute
		res, err := e.Tick(ctx, "rel-1")
		if err != nil || res.Held != nil {
			t.Fatalf("tick by %s: %+v, %v", owner, res, err)
		}
		return res
	}
	if res := tick("tick-1"); res.TookOver != nil {
		t.Fatalf("the first tick took over from %+v, which handed the release over", res.TookOver)
	}
	fx.clock.Advance(time.Minute)
	if res := tick("tick-2"); res.TookOver != nil {
		t.Fatalf("the second tick took over from %+v, which let go of the lock", res.TookOver)
	}
	// A tick killed mid-way: its lock stays with its lease, until it runs out.
	now := fx.clock.Now()
	if _, err := fx.st.AcquireLock(ctx, release.Lock{Key: "shop/prod", Holder: "rel-1", Owner: "killed", ExpiresAt: now.Add(30 * time.Second)}, now, ""); err != nil {
		t.Fatal(err)
	}
	fx.clock.Advance(time.Minute)
	if res := tick("tick-3"); res.TookOver == nil || res.TookOver.Owner != "killed" {
		t.Fatalf("the tick after a killed one took over from %+v, want the killed tick", res.TookOver)
	}
}
