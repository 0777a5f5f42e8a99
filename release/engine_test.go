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
	if _, err := st.AcquireLock(context.Background(), store.Lock{Key: release.LockKey("shop", "prod"), Holder: r.ID, Owner: "me", ExpiresAt: time.Now().Add(time.Minute)}, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, fleet: newFakeFleet(fns...), r: r}
}

func (fx *fixture) engine(observe func(release.Progress)) *release.Engine {
	return &release.Engine{Store: fx.st, Fleet: fx.fleet, Actor: "tester", Owner: "me", Poll: 10 * time.Millisecond, LockTTL: time.Minute, Observe: observe}
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
	go func() {
		// Another process asks for a rollback once the first step bakes.
		for {
			r, err := fx.st.GetRelease(ctx, "rel-1")
			if err == nil && r.Phase == release.Shifting && !r.StepStarted.IsZero() {
				r.Request = &release.Request{Action: release.RequestRollback, By: "operator", Reason: "errors in the logs", At: time.Now()}
				if fx.st.UpdateRelease(ctx, r) == nil {
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	r, err := fx.engine(nil).Run(ctx, "rel-1")
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
	go func() {
		for {
			r, err := fx.st.GetRelease(ctx, "rel-1")
			if err == nil && r.Phase == release.Shifting && !r.StepStarted.IsZero() {
				r.Request = &release.Request{Action: release.RequestPromote, By: "operator", Now: true, At: time.Now()}
				if fx.st.UpdateRelease(ctx, r) == nil {
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	r, err := fx.engine(nil).Run(ctx, "rel-1")
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

type failingHealth struct{}

func (failingHealth) Judge(context.Context, *release.Release, time.Time) (release.Verdict, error) {
	return release.Verdict{Result: release.Fail, Reason: "canary error rate 40% vs baseline 0%"}, nil
}

func TestHealthFailureRollsBack(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour})
	e := fx.engine(nil)
	e.Health = failingHealth{}
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "health check failed: canary error rate 40%") {
		t.Fatalf("phase %s, reason %q", r.Phase, r.Reason)
	}
}

func TestRollbackThatCannotFinishFails(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Hour})
	e := fx.engine(nil)
	e.Health = failingHealth{}
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
