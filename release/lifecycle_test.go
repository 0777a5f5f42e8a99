package release_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// firstRelease makes the fixture's release a first one: no function has a previous version.
func (fx *fixture) firstRelease(t *testing.T, a *release.Approval) {
	t.Helper()
	r, err := fx.st.GetRelease(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Functions {
		r.Functions[i].Previous, r.Functions[i].AliasMissing = "", true
	}
	r.Approval = a
	if err := fx.st.UpdateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// A first release has nothing to compare a canary with: it goes straight to promotion, with one
// alias write per function, its transitions and audit entries recorded as any release's.
func TestFirstReleaseGoesStraightToPromotion(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour}, release.Step{Weight: 0.5, Bake: time.Hour})
	fx.firstRelease(t, nil)
	r, err := fx.engine(nil).Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted || len(r.Health.Steps) != 0 {
		t.Fatalf("ended %s with steps %+v", r.Describe(), r.Health.Steps)
	}
	if got, want := transitions(t, fx.st, "rel-1"), "publishing promoting promoted"; got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
	if got, want := fx.fleet.count("Route"), len(fns); got != want {
		t.Errorf("%d alias writes, want %d (one per function)", got, want)
	}
	for _, fn := range fns {
		if a := fx.fleet.alias(fn); a.Primary != "2" || a.Extra != "" {
			t.Errorf("%s: %+v", fn, a)
		}
	}
	evs, _ := fx.st.Events(context.Background(), "rel-1")
	if n := len(evs); n < 3+2*len(fns) { // transitions, one entry per publish and per alias
		t.Errorf("%d audit entries: %+v", n, evs)
	}
}

// A first release still waits at the environment's approval gate, before any traffic moves.
func TestFirstReleaseStillWaitsAtTheGate(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour})
	fx.firstRelease(t, &release.Approval{AtStep: 1})
	done := runAsync(t, fx.engine(nil))
	r := waitGate(t, fx)
	if n := fx.fleet.count("Route"); n != 0 || !strings.Contains(r.Awaiting, "first release") {
		t.Fatalf("at the gate: %d alias writes, awaiting %q", n, r.Awaiting)
	}
	if _, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.Approve, By: "ann", Via: release.ViaCLI}); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Phase != release.Promoted || fx.fleet.count("Route") != len(fns) {
		t.Fatalf("ended %s with %d alias writes", r.Describe(), fx.fleet.count("Route"))
	}
	if got, want := transitions(t, fx.st, "rel-1"), "publishing awaiting-approval promoting promoted"; got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
}

// lifecycle is an engine of another process (owner) on the fixture's store and clock.
func (fx *fixture) lifecycle(owner string) *release.Engine {
	e := fx.engine(nil)
	e.Owner, e.Actor = owner, owner
	return e
}

func planned(id string) *release.Release {
	return &release.Release{ID: id, Service: "shop", Environment: "prod", Alias: "live", Steps: []release.Step{{Weight: 0.1, Bake: time.Minute}},
		Functions: []release.Function{{Name: "api", FunctionName: "shop-api", Previous: "1", ArtifactKey: "k", CodeSha256: "sha2"}}}
}

// Start records the release with its first audit entry and the lock; a second release of the
// environment is refused, naming the holder, whatever phase the holder is in.
func TestStartTakesTheLockAndALockedEnvironmentNamesItsHolder(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	if err := fx.st.ReleaseLock(ctx, "shop/prod", "me"); err != nil {
		t.Fatal(err)
	}
	// rel-1 ended promoted; its lock is free.
	r, _ := fx.st.GetRelease(ctx, "rel-1")
	r.Phase = release.Promoted
	if err := fx.st.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	a := fx.lifecycle("a")
	started, err := a.Start(ctx, planned("rel-2"))
	if err != nil {
		t.Fatal(err)
	}
	if started.Phase != release.Planned || started.CreatedBy != "a" {
		t.Fatalf("started %+v", started)
	}
	evs, _ := fx.st.Events(ctx, "rel-2")
	if len(evs) != 1 || evs[0].Kind != release.EventCreated || !strings.Contains(evs[0].Message, "1 function changed (api), 10% for 1m0s, then 100%") {
		t.Fatalf("first entries %+v", evs)
	}
	if l, _ := fx.st.GetLock(ctx, "shop/prod"); l == nil || l.Holder != "rel-2" || l.Owner != "a" {
		t.Fatalf("lock %+v", l)
	}
	b := fx.lifecycle("b")
	for _, phase := range []release.Phase{release.Planned, release.Publishing, release.Shifting, release.AwaitingApproval, release.Promoting, release.RollingBack} {
		cur, _ := fx.st.GetRelease(ctx, "rel-2")
		cur.Phase = phase
		if err := fx.st.UpdateRelease(ctx, cur); err != nil {
			t.Fatal(err)
		}
		var held *release.LockHeldError
		if err := b.CheckLock(ctx, "shop", "prod"); !errors.As(err, &held) || held.Release == nil || held.Release.ID != "rel-2" {
			t.Errorf("%s: CheckLock = %v, want the holder named", phase, err)
		}
		if _, err := b.Start(ctx, planned("rel-3")); !errors.As(err, &held) || !strings.Contains(err.Error(), "release rel-2 holds the lock on shop/prod since") {
			t.Errorf("%s: Start = %v, want the holder named", phase, err)
		}
	}
	if _, err := fx.st.GetRelease(ctx, "rel-3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused start recorded a release: %v", err)
	}
	// A lock left by a release that ended is no obstacle.
	cur, _ := fx.st.GetRelease(ctx, "rel-2")
	cur.Phase = release.Promoted
	if err := fx.st.UpdateRelease(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckLock(ctx, "shop", "prod"); err != nil {
		t.Errorf("CheckLock with the holder ended: %v", err)
	}
}

// Another live process drives the release: a rollback request is carried out by it, and Drive
// says so rather than claiming it took over.
func TestDriveFollowsTheProcessThatDrivesTheRelease(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour})
	ctx := context.Background()
	baking := make(chan struct{})
	driver := fx.engine(onFirst(release.ProgressBake, func(release.Progress) { close(baking) }))
	done := runAsync(t, driver)
	<-baking
	// The driver's rollback waits until the other process follows it.
	followed := make(chan struct{})
	fx.fleet.mu.Lock()
	fx.fleet.fail = func(call, fn string) error {
		<-followed
		return nil
	}
	fx.fleet.mu.Unlock()
	other := fx.lifecycle("operator")
	var following *release.Lock
	other.Observe = func(p release.Progress) {
		if p.Kind == release.ProgressFollowing {
			following = p.Lock
			close(followed)
		}
	}
	req, err := other.RequestRollback(ctx, "rel-1", "errors in the logs")
	if err != nil || req.Reopened {
		t.Fatalf("RequestRollback = %+v, %v", req, err)
	}
	d, err := other.Drive(ctx, "rel-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if d.Drove || d.TookOver != nil || d.Waited == nil || d.Waited.Owner != "me" || following == nil || following.Owner != "me" {
		t.Fatalf("Drive = %+v (following %+v): want followed the driver, not taken over", d, following)
	}
	if d.Release.Phase != release.RolledBack || !strings.Contains(d.Release.Reason, "rollback requested by operator: errors in the logs") {
		t.Fatalf("ended %s", d.Release.Describe())
	}
}

// A driver whose lease ran out is taken over, not before.
func TestDriveTakesOverWhenTheLeaseRunsOut(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Second})
	ctx := context.Background()
	if err := fx.st.ReleaseLock(ctx, "shop/prod", "me"); err != nil {
		t.Fatal(err)
	}
	expires := fx.clock.Now().Add(3 * time.Second)
	if _, err := fx.st.AcquireLock(ctx, store.Lock{Key: "shop/prod", Holder: "rel-1", Owner: "elsewhere/1/x", ExpiresAt: expires}, fx.clock.Now(), ""); err != nil {
		t.Fatal(err)
	}
	b := fx.lifecycle("b")
	var tookOverAt time.Time
	b.Observe = func(p release.Progress) {
		if p.Kind == release.ProgressTookOver {
			tookOverAt = fx.clock.Now()
		}
	}
	d, err := b.Drive(ctx, "rel-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Drove || d.Waited == nil || d.TookOver == nil || d.TookOver.Owner != "elsewhere/1/x" || d.Release.Phase != release.Promoted {
		t.Fatalf("Drive = %+v", d)
	}
	if tookOverAt.Before(expires) {
		t.Errorf("took over at %s, before the lease ended at %s", tookOverAt, expires)
	}
}

// A driver that keeps its lease is followed for as long as allowed, then Drive says so.
func TestDriveGivesUpFollowingAfterWait(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Second})
	b := fx.lifecycle("b")
	_, err := b.Drive(context.Background(), "rel-1", 5*time.Second)
	var still *release.StillDrivenError
	if !errors.As(err, &still) || still.Lock.Owner != "me" {
		t.Fatalf("Drive = %v, want a *StillDrivenError", err)
	}
}

func TestOwnerDead(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	gone := fmt.Sprintf("h1/%d/x", cmd.Process.Pid)
	for _, c := range []struct {
		host, owner string
		want        bool
	}{
		{"h1", gone, true},
		{"h2", gone, false}, // another host's process: unknown
		{"h1", fmt.Sprintf("h1/%d/x", os.Getpid()), false}, // alive
		{"h1", "h1/not-a-pid/x", false},
		{"", gone, false},
	} {
		if got := release.OwnerDead(c.host, c.owner); got != c.want {
			t.Errorf("OwnerDead(%q, %q) = %v, want %v", c.host, c.owner, got, c.want)
		}
	}
	if o := release.NewOwner("h1"); !strings.HasPrefix(o, fmt.Sprintf("h1/%d/", os.Getpid())) {
		t.Errorf("NewOwner = %q", o)
	}
}

// An ended release is rolled back by reopening it under its lock, while it is the latest.
func TestRequestRollbackReopensAnEndedRelease(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Second})
	ctx := context.Background()
	if r, err := fx.engine(nil).Run(ctx, "rel-1"); err != nil || r.Phase != release.Promoted {
		t.Fatalf("first run: %v %v", r, err)
	}
	op := fx.lifecycle("operator")
	req, err := op.RequestRollback(ctx, "rel-1", "customers complain")
	if err != nil || !req.Reopened || req.Release.Phase != release.RollingBack || !req.Release.EndedAt.IsZero() {
		t.Fatalf("RequestRollback = %+v, %v", req, err)
	}
	if l, _ := fx.st.GetLock(ctx, "shop/prod"); l == nil || l.Owner != "operator" {
		t.Fatalf("lock after reopening: %+v", l)
	}
	if e := req.Release.Earlier; len(e) != 1 || e[0].Phase != release.Promoted || e[0].At.IsZero() {
		t.Fatalf("the earlier end is not kept: %+v", e)
	}
	d, err := op.Drive(ctx, "rel-1", time.Minute)
	if err != nil || !d.Drove || d.Release.Phase != release.RolledBack {
		t.Fatalf("Drive = %+v, %v", d, err)
	}
	for _, fn := range fns {
		if a := fx.fleet.alias(fn); a.Primary != "1" || a.Extra != "" {
			t.Errorf("%s: %+v", fn, a)
		}
	}
	if got, want := transitions(t, fx.st, "rel-1"), "publishing shifting promoting promoted rolling-back rolled-back"; got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
	// Rolled back already: nothing to do.
	if req, err := op.RequestRollback(ctx, "rel-1", ""); err != nil || !req.Already {
		t.Errorf("again: %+v, %v", req, err)
	}
}

func TestRequestRollbackOfAnOlderReleaseIsRefused(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	r, _ := fx.st.GetRelease(ctx, "rel-1")
	r.Phase = release.Promoted
	if err := fx.st.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	newer := planned("rel-2")
	newer.Phase, newer.CreatedAt = release.Promoted, r.CreatedAt.Add(time.Hour)
	if err := fx.st.CreateRelease(ctx, newer); err != nil {
		t.Fatal(err)
	}
	_, err := fx.lifecycle("operator").RequestRollback(ctx, "rel-1", "")
	var refused *release.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "not the latest of prod (rel-2 is)") {
		t.Fatalf("RequestRollback = %v, want refused", err)
	}
	if cur, _ := fx.st.GetRelease(ctx, "rel-1"); cur.Phase != release.Promoted || cur.Revision != r.Revision {
		t.Errorf("a refused rollback changed the release: %s", cur.Describe())
	}
}

func TestRequestPromote(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour}, release.Step{Weight: 0.5, Bake: time.Hour})
	ctx := context.Background()
	op := fx.engine(nil) // holds the release's lock
	if _, err := op.RequestPromote(ctx, "rel-1", "hotfix", true); err != nil {
		t.Fatal(err)
	}
	d, err := op.Drive(ctx, "rel-1", time.Minute)
	if err != nil || d.Release.Phase != release.Promoted {
		t.Fatalf("Drive = %+v, %v", d, err)
	}
	_, err = op.RequestPromote(ctx, "rel-1", "", false)
	var refused *release.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "nothing to promote") {
		t.Errorf("promoting a promoted release: %v", err)
	}
}

// The dashboard and the gate's Lambda, which cannot move aliases, ask a live release's driver to
// roll back through AskRollback: one request with its audit entry, a second one changes nothing,
// and an ended release is refused (aviary rollback, which can move aliases, reopens it).
func TestAskRollback(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour})
	ctx := context.Background()
	r, already, err := release.AskRollback(ctx, fx.st, "rel-1", "Ada", "dashboard from 127.0.0.1", "", map[string]any{"via": "dashboard"})
	if err != nil || already {
		t.Fatalf("first ask: already=%v err=%v", already, err)
	}
	if r.Request == nil || r.Request.Action != release.RequestRollback || r.Request.By != "Ada" || r.Request.Reason != "no reason given" {
		t.Fatalf("request %+v", r.Request)
	}
	if _, already, err = release.AskRollback(ctx, fx.st, "rel-1", "Bob", "cli", "again", nil); err != nil || !already {
		t.Fatalf("second ask: already=%v err=%v", already, err)
	}
	evs, err := fx.st.Events(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	var asks []release.Event
	for _, ev := range evs {
		if ev.Kind == release.EventRequest {
			asks = append(asks, ev)
		}
	}
	if len(asks) != 1 || asks[0].Actor != "Ada" || asks[0].Source != "dashboard from 127.0.0.1" || asks[0].Data["via"] != "dashboard" {
		t.Fatalf("request entries %+v", asks)
	}
	if r, err := fx.engine(nil).Run(ctx, "rel-1"); err != nil || r.Phase != release.RolledBack {
		t.Fatalf("run: %v, %v", r, err)
	}
	if _, already, err := release.AskRollback(ctx, fx.st, "rel-1", "Ada", "dashboard", "again", nil); err != nil || !already {
		t.Fatalf("ask of a rolled-back release: already=%v err=%v", already, err)
	}
	promoted := setup(t, release.Step{Weight: 0.1, Bake: 0})
	if r, err := promoted.engine(nil).Run(ctx, "rel-1"); err != nil || r.Phase != release.Promoted {
		t.Fatalf("run: %v, %v", r, err)
	}
	if _, _, err := release.AskRollback(ctx, promoted.st, "rel-1", "Ada", "dashboard", "late", nil); !errors.Is(err, release.ErrEnded) {
		t.Fatalf("ask of a promoted release: %v, want ErrEnded", err)
	}
	if _, _, err := release.AskRollback(ctx, fx.st, "rel-404", "Ada", "dashboard", "", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ask of a missing release: %v, want ErrNotFound", err)
	}
}

// Driving a release that already ended settles it and nothing more: with a newer release holding
// the environment, it is not an error and the newer release's lock is left alone.
func TestDriveOfAnEndedReleaseLeavesANewerLockAlone(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: 0})
	ctx := context.Background()
	if r, err := fx.engine(nil).Run(ctx, "rel-1"); err != nil || r.Phase != release.Promoted {
		t.Fatalf("run: %v, %v", r, err)
	}
	b := fx.lifecycle("b")
	if _, err := b.Start(ctx, planned("rel-2")); err != nil {
		t.Fatal(err)
	}
	before, _ := fx.st.GetLock(ctx, "shop/prod")
	d, err := fx.lifecycle("c").Drive(ctx, "rel-1", time.Minute)
	if err != nil || d.Drove || d.TookOver != nil || d.Release.Phase != release.Promoted {
		t.Fatalf("drive of an ended release: %+v, %v", d, err)
	}
	if after, _ := fx.st.GetLock(ctx, "shop/prod"); after == nil || *after != *before {
		t.Fatalf("the newer release's lock changed: %+v, was %+v", after, before)
	}
}

// A promotion that must be refused is refused before the gate is decided: no approval is left
// in the record for a release that will roll back.
func TestRefusedPromotionLeavesTheGateUndecided(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1}, nil, release.Step{Weight: 0.1, Bake: 0})
	ctx := context.Background()
	done := runAsync(t, fx.engine(nil))
	waitGate(t, fx)
	if _, _, err := release.AskRollback(ctx, fx.st, "rel-1", "ops", "dashboard", "wrong build", nil); err != nil {
		t.Fatal(err)
	}
	var refused *release.RefusedError
	if _, err := fx.lifecycle("b").RequestPromote(ctx, "rel-1", "ship it", false); !errors.As(err, &refused) {
		t.Fatalf("promote after a rollback request: %v, want a RefusedError", err)
	}
	r := <-done
	for _, g := range r.Gates {
		if g.Decision != nil && g.Decision.Action == release.Approve {
			t.Fatalf("a refused promotion approved gate %+v", g)
		}
	}
	if r.Phase != release.RolledBack {
		t.Fatalf("ended %s", r.Describe())
	}
}

// HandOff records, once, that the controller drives a live release, with its audit entry; an
// ended release is refused and left unchanged.
func TestHandOff(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour})
	ctx := context.Background()
	op := fx.engine(nil)
	for range 2 {
		r, err := op.HandOff(ctx, "rel-1", "deploy --detach")
		if err != nil || !r.Controller {
			t.Fatalf("HandOff = %+v, %v", r, err)
		}
	}
	evs, _ := fx.st.Events(ctx, "rel-1")
	n := 0
	for _, e := range evs {
		if e.Kind == release.EventHandOff {
			n++
			if !strings.Contains(e.Message, "deploy --detach") {
				t.Errorf("hand-off entry %q does not say why", e.Message)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d hand-off entries, want 1: %+v", n, evs)
	}
	if _, err := op.RequestRollback(ctx, "rel-1", "test"); err != nil {
		t.Fatal(err)
	}
	if d, err := op.Drive(ctx, "rel-1", time.Minute); err != nil || !d.Release.Phase.Final() {
		t.Fatalf("Drive = %+v, %v", d, err)
	}
	before, _ := fx.st.GetRelease(ctx, "rel-1")
	_, err := op.HandOff(ctx, "rel-1", "late")
	var refused *release.RefusedError
	if !errors.As(err, &refused) {
		t.Errorf("handing off an ended release: %v", err)
	}
	if after, _ := fx.st.GetRelease(ctx, "rel-1"); after.Revision != before.Revision {
		t.Errorf("a refused hand-off changed the release (revision %d → %d)", before.Revision, after.Revision)
	}
}

// A process that stops driving a live release lets go of it without freeing its environment:
// any process may take the release over at once, but no other release starts meanwhile (a
// release handed to the controller waits between ticks this way).
func TestLetGoKeepsTheEnvironmentHeld(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	op := fx.engine(nil)
	op.Observe = func(p release.Progress) {
		if p.Kind == release.ProgressBake {
			cancel()
		}
	}
	if _, err := op.TakeOver(context.Background(), "rel-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Run(ctx, "rel-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want it interrupted", err)
	}
	l, _ := fx.st.GetLock(context.Background(), "shop/prod")
	if l == nil || l.Holder != "rel-1" || l.ExpiresAt.After(fx.clock.Now()) {
		t.Fatalf("lock after the interrupted run: %+v; want it held by rel-1 with its lease over", l)
	}
	other := fx.engine(nil)
	other.Owner = "other"
	_, err := other.Start(context.Background(), &release.Release{ID: "rel-2", Service: "shop", Environment: "prod", Alias: "live", Steps: []release.Step{{Weight: 0.1, Bake: time.Minute}}})
	var held *release.LockHeldError
	if !errors.As(err, &held) || held.Lock.Holder != "rel-1" {
		t.Fatalf("a second release started while rel-1 is live: %v", err)
	}
	if _, err := other.TakeOver(context.Background(), "rel-1"); err != nil {
		t.Fatalf("taking rel-1 over after it was let go: %v", err)
	}
	if _, err := other.HandOff(context.Background(), "rel-1", "test"); err != nil {
		t.Fatal(err)
	}
	r, _ := fx.st.GetRelease(context.Background(), "rel-1")
	if msg := (&release.LockHeldError{Lock: *l, Release: r}).Error(); !strings.Contains(msg, "controller drives it") {
		t.Errorf("a controller-driven release's lock says %q", msg)
	}
}
