package controller_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/controller"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store/sqlite"
)

// fleet is a hand-written release.Fleet: versions and aliases in memory; publish, if set, is
// called before each publication (to hold one up).
type fleet struct {
	mu      sync.Mutex
	aliases map[string]release.Routing
	publish func(ctx context.Context, fn string)
}

func (f *fleet) Inspect(context.Context, string, string) (release.Current, error) {
	return release.Current{}, nil
}
func (f *fleet) Upload(context.Context, release.Artifacts, string, release.ArtifactSource) error {
	return nil
}
func (f *fleet) Pin(context.Context, string, release.Function) (release.Pinned, error) {
	return release.Pinned{}, fmt.Errorf("not used")
}
func (f *fleet) Publish(ctx context.Context, _ release.Artifacts, fn release.Function) (string, error) {
	if f.publish != nil {
		f.publish(ctx, fn.FunctionName)
	}
	return "2", ctx.Err()
}
func (f *fleet) Route(_ context.Context, _ string, fn release.Function, to release.Routing) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aliases[fn.FunctionName] = to
	return "rev", nil
}

type fixture struct {
	st    *sqlite.Store
	fleet *fleet
	log   bytes.Buffer
	logMu sync.Mutex
}

func setup(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{st: st, fleet: &fleet{aliases: map[string]release.Routing{}}}
}

// handed records a release of service to prod, planned and handed to the controller (or not),
// its lock parked as `deploy --detach` leaves it.
func (fx *fixture) handed(t *testing.T, service string, toController bool) *release.Release {
	t.Helper()
	ctx := context.Background()
	r := &release.Release{ID: service + "-1", Service: service, Environment: "prod", Alias: "live", Phase: release.Planned,
		Steps: []release.Step{{Weight: 0.1, Bake: time.Hour}}, Controller: toController, CreatedAt: time.Now(), UpdatedAt: time.Now(),
		Functions: []release.Function{{Name: "api", FunctionName: service + "-api", Previous: "1", ArtifactKey: "k", CodeSha256: "sha"}}}
	if err := fx.st.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := fx.st.AcquireLock(ctx, release.Lock{Key: release.LockKey(service, "prod"), Holder: r.ID, Owner: "cli", ExpiresAt: now}, now, ""); err != nil {
		t.Fatal(err)
	}
	return r
}

func (fx *fixture) controller(name string) *controller.Controller {
	return &controller.Controller{
		Store: fx.st,
		Engine: func(ctx context.Context, r *release.Release) (*release.Engine, error) {
			return &release.Engine{Store: fx.st, Fleet: fx.fleet, Actor: name, Source: "test", Owner: name, Poll: time.Minute}, nil
		},
		Log: slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
			fx.logMu.Lock()
			defer fx.logMu.Unlock()
			return fx.log.Write(p)
		}), nil)),
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// lines are the log's JSON lines with msg.
func (fx *fixture) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	fx.logMu.Lock()
	defer fx.logMu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(fx.log.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line that is not JSON: %q", sc.Text())
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// A tick drives every live release handed to the controller, and only those, to where it waits;
// one line per release and one for the tick say what it did.
func TestTickDrivesTheReleasesHandedToIt(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	fx.handed(t, "shop", true)
	fx.handed(t, "cart", true)
	fx.handed(t, "attached", false)
	rep, err := fx.controller("ctl").Tick(ctx, "tick-1", controller.Event{Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rep.Count(controller.Drove), 2; got != want || rep.Listed != 2 {
		t.Fatalf("drove %d of %d listed, want %d: %+v", got, rep.Listed, want, rep.Results)
	}
	for _, id := range []string{"shop-1", "cart-1"} {
		r, _ := fx.st.GetRelease(ctx, id)
		if r.Phase != release.Shifting || !r.Baking() {
			t.Errorf("%s is %s, want baking step 1", id, r.Describe())
		}
	}
	if r, _ := fx.st.GetRelease(ctx, "attached-1"); r.Phase != release.Planned {
		t.Errorf("a release not handed to the controller was moved: %s", r.Describe())
	}
	lines := fx.lines(t, "release")
	if len(lines) != 2 {
		t.Fatalf("%d release lines, want 2", len(lines))
	}
	for _, l := range lines {
		if l["tick"] != "tick-1" || l["action"] != "drove" || l["from"] != "planned" || l["phase"] != "shifting" || l["step"] != float64(1) ||
			l["waiting"] != "bake" || l["next"] == nil || l["level"] != "INFO" {
			t.Errorf("release line %v", l)
		}
	}
	ticks := fx.lines(t, "tick")
	if len(ticks) != 1 || ticks[0]["listed"] != float64(2) || ticks[0]["drove"] != float64(2) || ticks[0]["errors"] != float64(0) {
		t.Errorf("tick lines %v", ticks)
	}
	// Narrowed to one service's environment, a tick looks at that release alone.
	rep, err = fx.controller("ctl").Tick(ctx, "tick-2", controller.Event{Service: "shop", Environment: "prod"})
	if err != nil || rep.Listed != 1 || rep.Results[0].Release != "shop-1" {
		t.Fatalf("narrowed tick: %+v, %v", rep, err)
	}
}

// Two controllers ticking at once: for each release exactly one acts, the other names it.
func TestTwoControllersOneActs(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	fx.handed(t, "shop", true)
	inPublish, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fx.fleet.publish = func(context.Context, string) {
		once.Do(func() {
			close(inPublish)
			<-resume
		})
	}
	a, b := fx.controller("ctl-a"), fx.controller("ctl-b")
	done := make(chan *controller.Report, 1)
	go func() {
		rep, err := a.Tick(ctx, "tick-a", controller.Event{Environment: "prod"})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	<-inPublish // a holds the lock and acts
	repB, err := b.Tick(ctx, "tick-b", controller.Event{Environment: "prod"})
	close(resume)
	if err != nil {
		t.Fatal(err)
	}
	repA := <-done
	if got := repB.Results[0]; got.Action != controller.Held || got.HeldBy != "ctl-a" {
		t.Errorf("b: %+v, want held by ctl-a", got)
	}
	if got := repA.Results[0]; got.Action != controller.Drove || got.Phase != release.Shifting {
		t.Errorf("a: %+v, want drove to shifting", got)
	}
	var heldLine map[string]any
	for _, l := range fx.lines(t, "release") {
		if l["tick"] == "tick-b" {
			heldLine = l
		}
	}
	if heldLine["action"] != "held" || heldLine["heldBy"] != "ctl-a" {
		t.Errorf("b's line %v", heldLine)
	}
}

// A tick stops at its budget: the release whose tick is still acting is stopped, with its lock
// parked; the one whose turn had not come is skipped; the next tick converges on both.
func TestTickWithinItsBudget(t *testing.T) {
	fx := setup(t)
	fx.handed(t, "cart", true)
	fx.handed(t, "shop", true)
	// The first release's publication takes longer than the whole budget.
	fx.fleet.publish = func(ctx context.Context, fn string) {
		if fn == "cart-api" {
			<-ctx.Done()
		}
	}
	c := fx.controller("ctl")
	c.Parallelism, c.Margin = 1, time.Second
	ctx, cancel := context.WithTimeout(context.Background(), c.Margin+300*time.Millisecond)
	defer cancel()
	rep, err := c.Tick(ctx, "tick-1", controller.Event{Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the tick ran past its budget into the invocation's deadline")
	}
	actions := map[string]controller.Action{}
	for _, res := range rep.Results {
		actions[res.Release] = res.Action
	}
	if actions["cart-1"] != controller.Errored || actions["shop-1"] != controller.Skipped {
		t.Fatalf("actions %v, want cart-1 stopped (error) and shop-1 skipped", actions)
	}
	if l, _ := fx.st.GetLock(context.Background(), "cart/prod"); l == nil || l.Holder != "cart-1" || l.ExpiresAt.After(time.Now()) {
		t.Fatalf("cart's lock after a stopped tick: %+v, want parked", l)
	}
	fx.fleet.publish = nil
	rep, err = fx.controller("ctl-2").Tick(context.Background(), "tick-2", controller.Event{Environment: "prod"})
	if err != nil || rep.Count(controller.Drove) != 2 {
		t.Fatalf("next tick: %+v, %v", rep, err)
	}
	for _, id := range []string{"cart-1", "shop-1"} {
		if r, _ := fx.st.GetRelease(context.Background(), id); r.Phase != release.Shifting {
			t.Errorf("%s after the next tick: %s", id, r.Describe())
		}
	}
}

// Each release's line says how long its tick took (ms), as the tick's own line does.
func TestReleaseLineSaysHowLongItTook(t *testing.T) {
	fx := setup(t)
	fx.handed(t, "shop", true)
	c := fx.controller("ctl")
	// Every reading of the controller's clock is a second after the last.
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	c.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
	rep, err := c.Tick(context.Background(), "tick-1", controller.Event{Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Results[0].Took; got <= 0 {
		t.Errorf("the release's tick took %s, want its time", got)
	}
	lines := fx.lines(t, "release")
	if len(lines) != 1 || lines[0]["ms"] == float64(0) {
		t.Errorf("release line %v, want ms above 0", lines)
	}
}

// hook is a webhook receiver: the kinds of the notices it was sent, in order.
type hook struct {
	mu    sync.Mutex
	kinds []string
	urls  []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var m map[string]any
	if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.URL.Path == "/hooks/secret" {
		h.kinds = append(h.kinds, fmt.Sprint(m["kind"]))
		h.urls = append(h.urls, fmt.Sprint(m["releaseUrl"]))
	}
}

func (h *hook) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.kinds...)
}

// The controller tells people what it does to a release handed to it, as the attached deploy
// would: the notices the release's record names, their ${NAME}s filled in from the
// controller's environment; a gate is announced once, by the tick that opened it.
func TestTickSendsTheReleasesNotices(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	r := fx.handed(t, "shop", true)
	r.Steps = []release.Step{{Weight: 0.1, Bake: 0}}
	r.Approval = &release.Approval{AtStep: 1}
	r.Notify = &release.Notify{Webhook: []string{srv.URL + "/hooks/${HOOK_SECRET}"}, Dashboard: "https://aviary.example.com"}
	if err := fx.st.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	c := fx.controller("ctl")
	c.Getenv = func(name string) string {
		if name == "HOOK_SECRET" {
			return "secret"
		}
		return ""
	}
	for i := range 2 {
		if _, err := c.Tick(ctx, fmt.Sprintf("tick-%d", i), controller.Event{Environment: "prod"}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := h.got(), []string{"started", "step", "awaiting"}; !slices.Equal(got, want) {
		t.Fatalf("notices %v after two ticks at the gate, want %v", got, want)
	}
	if _, err := release.Decide(ctx, fx.st, r.ID, release.Decision{Action: release.Approve, By: "alice", Via: release.ViaCLI, At: time.Now(), Gate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tick(ctx, "tick-3", controller.Event{Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	if got, want := h.got(), []string{"started", "step", "awaiting", "promoted"}; !slices.Equal(got, want) {
		t.Fatalf("notices %v, want %v", got, want)
	}
	if got, want := h.urls[0], "https://aviary.example.com/releases/shop-1"; got != want {
		t.Errorf("releaseUrl %q, want %q", got, want)
	}
	// A variable the controller lacks: the release goes on, and its line says nobody was told.
	fx.handed(t, "cart", true)
	cr, _ := fx.st.GetRelease(ctx, "cart-1")
	cr.Notify = &release.Notify{Slack: []string{"https://hooks.slack.com/services/${SLACK_PATH}"}}
	if err := fx.st.UpdateRelease(ctx, cr); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Tick(ctx, "tick-4", controller.Event{Service: "cart", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if res := rep.Results[0]; res.Action != controller.Drove || res.Err == nil || !strings.Contains(res.Err.Error(), "SLACK_PATH") {
		t.Fatalf("cart's tick: %s, %v; want driven, with an error naming SLACK_PATH", res.Action, res.Err)
	}
}

// slowHooks is a release.Health whose pre-traffic hook answers only when its context ends.
type slowHooks struct{ release.BakeOnly }

func (slowHooks) BeforeTraffic(ctx context.Context, _ *release.Release) (release.PreTraffic, error) {
	<-ctx.Done()
	return release.PreTraffic{}, ctx.Err()
}

// A hook that may take longer than a whole tick has stops every tick in it: the release's line
// says so, and what to do, rather than only that the next tick goes on.
func TestTickStoppedInAHookLongerThanATick(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	r := fx.handed(t, "shop", true)
	r.Checks = &release.Checks{PreTraffic: "shop-check", HookTimeout: time.Minute}
	if err := fx.st.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	c := fx.controller("ctl")
	c.Engine = func(ctx context.Context, r *release.Release) (*release.Engine, error) {
		return &release.Engine{Store: fx.st, Fleet: fx.fleet, Health: slowHooks{}, Actor: "ctl", Source: "test", Owner: "ctl", Poll: time.Minute}, nil
	}
	c.Margin = time.Second
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rep, err := c.Tick(tctx, "tick-1", controller.Event{Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Results[0]
	if res.Action != controller.Errored || res.Phase != release.Publishing || res.Err == nil ||
		!strings.Contains(res.Err.Error(), "pre-traffic hook shop-check may take up to 1m0s") || !strings.Contains(res.Err.Error(), "--timeout") {
		t.Fatalf("release's tick: %s at %s, %v; want stopped in the pre-traffic hook, saying to raise the timeout", res.Action, res.Phase, res.Err)
	}
}

// A nudge naming a release the store does not have (pruned since) is a tick with nothing to
// do, not a failed invocation that Lambda would retry twice.
func TestNudgeForAReleaseNotThere(t *testing.T) {
	fx := setup(t)
	rep, err := fx.controller("ctl").Tick(context.Background(), "tick-1", controller.Event{Environment: "prod", Release: "gone-1", Reason: "decision"})
	if err != nil || rep.Listed != 0 {
		t.Fatalf("tick: %+v, %v; want nothing listed and no error", rep, err)
	}
}

// A release whose tick panics is that release's error; the others are ticked all the same.
func TestAPanicIsOneReleasesError(t *testing.T) {
	fx := setup(t)
	fx.handed(t, "cart", true)
	fx.handed(t, "shop", true)
	c := fx.controller("ctl")
	build := c.Engine
	c.Engine = func(ctx context.Context, r *release.Release) (*release.Engine, error) {
		if r.Service == "cart" {
			panic("a bug")
		}
		return build(ctx, r)
	}
	rep, err := c.Tick(context.Background(), "tick-1", controller.Event{Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range rep.Results {
		switch {
		case res.Release == "cart-1" && (res.Action != controller.Errored || !strings.Contains(fmt.Sprint(res.Err), "panic while ticking cart-1: a bug")):
			t.Errorf("cart: %s, %v; want its panic as its error", res.Action, res.Err)
		case res.Release == "shop-1" && res.Action != controller.Drove:
			t.Errorf("shop: %s, %v; want driven", res.Action, res.Err)
		}
	}
}
