// Package storetest is the conformance suite every store.Store passes: the same test functions run
// against the SQLite file and the DynamoDB table.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// Open returns a fresh, empty store for one test.
type Open func(t *testing.T) store.Store

// Run runs the whole suite.
func Run(t *testing.T, open Open) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"UpdateAppliesOnlyToItsRevision", testUpdateRevision},
		{"FirstRequestWins", testFirstRequestWins},
		{"FirstGateDecisionWins", testFirstDecisionWins},
		{"ListNewestFirst", testList},
		{"EventsInOrderNoneLost", testEvents},
		{"Locks", testLocks},
		{"LockRace", testLockRace},
		{"RevokedSessionsStayRevoked", testSessions},
		{"ThousandFunctionRelease", testLargeRelease},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
		})
	}
}

var base = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func newRelease(id, service, env string, at time.Time) *release.Release {
	return &release.Release{
		ID: id, Service: service, Environment: env, Alias: "live", Phase: release.Planned, Strategy: "canary",
		Steps:     []release.Step{{Weight: 0.1, Bake: time.Minute}},
		Functions: []release.Function{{Name: "api", FunctionName: service + "-api-" + env, Previous: "3", ArtifactKey: "k.zip", CodeSha256: "abc="}},
		CreatedBy: "tester", CreatedAt: at, UpdatedAt: at,
	}
}

func testCreateAndGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := newRelease("r1", "shop", "prod", base)
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Revision != 1 {
		t.Errorf("revision after create = %d, want 1", r.Revision)
	}
	got, err := s.GetRelease(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "r1" || got.Service != "shop" || got.Phase != release.Planned || len(got.Functions) != 1 || got.Functions[0].Previous != "3" ||
		got.Steps[0].Bake != time.Minute || !got.CreatedAt.Equal(base) || got.Revision != 1 {
		t.Errorf("stored release differs: %+v", got)
	}
	if err := s.CreateRelease(ctx, newRelease("r1", "shop", "prod", base)); !errors.Is(err, store.ErrExists) {
		t.Errorf("creating r1 twice: %v, want ErrExists", err)
	}
	if _, err := s.GetRelease(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing release: %v, want ErrNotFound", err)
	}
}

func testUpdateRevision(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := newRelease("r1", "shop", "prod", base)
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	stale, _ := s.GetRelease(ctx, "r1")
	r.Phase = release.Publishing
	if err := s.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Revision != 2 {
		t.Errorf("revision after update = %d, want 2", r.Revision)
	}
	stale.Phase = release.RollingBack
	if err := s.UpdateRelease(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update from a stale revision: %v, want ErrConflict", err)
	}
	got, _ := s.GetRelease(ctx, "r1")
	if got.Phase != release.Publishing || got.Revision != 2 {
		t.Errorf("after a refused update: %s at %d", got.Phase, got.Revision)
	}
	if err := s.UpdateRelease(ctx, newRelease("ghost", "shop", "prod", base)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("updating a missing release: %v, want ErrNotFound", err)
	}
}

// Many writers race to put their request on the same revision: exactly one applies.
func testFirstRequestWins(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateRelease(ctx, newRelease("r1", "shop", "prod", base)); err != nil {
		t.Fatal(err)
	}
	const writers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	winner := ""
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.GetRelease(ctx, "r1")
			if err != nil {
				t.Error(err)
				return
			}
			if r.Request != nil {
				mu.Lock()
				conflicts++
				mu.Unlock()
				return
			}
			by := fmt.Sprintf("writer-%d", i)
			r.Request = &release.Request{Action: release.RequestRollback, By: by, At: base}
			err = s.UpdateRelease(ctx, r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				winner = by
			case errors.Is(err, store.ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || wins+conflicts != writers {
		t.Fatalf("%d writers: %d applied, %d refused; want exactly one applied", writers, wins, conflicts)
	}
	got, _ := s.GetRelease(ctx, "r1")
	if got.Request == nil || got.Request.By != winner {
		t.Errorf("stored request %+v, want the winner %s", got.Request, winner)
	}
}

// testFirstDecisionWins races gate decisions through release.Decide: exactly one is applied,
// every other is recorded in the audit trail as too late.
func testFirstDecisionWins(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := newRelease("r1", "shop", "prod", base)
	r.Phase, r.Awaiting = release.AwaitingApproval, "approval required"
	r.Gates = []release.Gate{{Step: 1, Kind: release.GateApproval, Opened: base, Why: "approval required"}}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	const deciders = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied, late := 0, 0
	for i := range deciders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := release.Approve
			if i%2 == 1 {
				a = release.DecideRollback
			}
			_, err := release.Decide(ctx, s, "r1", release.Decision{Action: a, By: fmt.Sprintf("person-%d", i), Via: release.ViaLink, At: base})
			var tl *release.TooLateError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				applied++
			case errors.As(err, &tl):
				late++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if applied != 1 || late != deciders-1 {
		t.Fatalf("%d deciders: %d applied, %d too late", deciders, applied, late)
	}
	evs, err := s.Events(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetRelease(ctx, "r1")
	inTrail, lateInTrail := 0, 0
	for _, e := range evs {
		if e.Kind != release.EventDecision {
			continue
		}
		if e.Data["tooLate"] == true {
			lateInTrail++
		} else {
			inTrail++
			if e.Actor != got.Gates[0].Decision.By {
				t.Errorf("the trail says %s decided, the record %s", e.Actor, got.Gates[0].Decision.By)
			}
		}
	}
	if inTrail != 1 || lateInTrail != deciders-1 {
		t.Errorf("the trail has %d decisions and %d late ones", inTrail, lateInTrail)
	}
}

func testList(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, spec := range []struct{ id, svc, env string }{
		{"a", "shop", "prod"}, {"b", "shop", "staging"}, {"c", "shop", "prod"}, {"d", "blog", "prod"}, {"e", "shop", "prod"},
	} {
		if err := s.CreateRelease(ctx, newRelease(spec.id, spec.svc, spec.env, base.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(f store.Filter) string {
		rs, err := s.ListReleases(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, r := range rs {
			out += r.ID
		}
		return out
	}
	if got := ids(store.Filter{Service: "shop", Environment: "prod"}); got != "eca" {
		t.Errorf("shop/prod newest first = %q, want eca", got)
	}
	if got := ids(store.Filter{Service: "shop", Environment: "prod", Limit: 2}); got != "ec" {
		t.Errorf("with limit 2 = %q, want ec", got)
	}
	if got := ids(store.Filter{}); got != "edcba" {
		t.Errorf("all = %q, want edcba", got)
	}
	r, _ := s.GetRelease(ctx, "c")
	r.Phase = release.Promoted
	if err := s.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := ids(store.Filter{Phase: release.Promoted}); got != "c" {
		t.Errorf("promoted = %q, want c", got)
	}
}

// Concurrent appenders: every entry kept, numbered 1..n without gaps, read back in order.
func testEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &release.Event{ReleaseID: "r1", Actor: "tester", Kind: release.EventNote, Message: fmt.Sprint(i), Time: base.Add(time.Duration(i) * time.Second)}
			if err := s.AppendEvent(ctx, e); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s.AppendEvent(ctx, &release.Event{ReleaseID: "other", Actor: "tester", Kind: release.EventNote, Message: "elsewhere"})
	evs, err := s.Events(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n {
		t.Fatalf("%d events kept of %d appended", len(evs), n)
	}
	seen := map[string]bool{}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		seen[e.Message] = true
		if e.Actor != "tester" || e.Kind != release.EventNote || e.Time.IsZero() {
			t.Errorf("event stored as %+v", e)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct events of %d", len(seen), n)
	}
	// Appending by key is idempotent: a retried append adds nothing.
	for range 3 {
		e := &release.Event{ReleaseID: "r1", Key: "r1/7/0", Actor: "tester", Kind: release.EventTransition, Message: "to publishing"}
		if err := s.AppendEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != n+1 {
			t.Errorf("keyed append got seq %d, want %d", e.Seq, n+1)
		}
	}
	if evs, _ := s.Events(ctx, "r1"); len(evs) != n+1 {
		t.Errorf("%d events after three appends of one key, want %d", len(evs), n+1)
	}
}

func testLocks(t *testing.T, s store.Store) {
	ctx := context.Background()
	key := release.LockKey("shop", "prod")
	a := store.Lock{Key: key, Holder: "r1", Owner: "host/1/a", ExpiresAt: base.Add(time.Minute)}
	got, err := s.AcquireLock(ctx, a, base, "")
	if err != nil {
		t.Fatal(err)
	}
	if !got.AcquiredAt.Equal(base) {
		t.Errorf("AcquiredAt = %v", got.AcquiredAt)
	}
	// Someone else is refused, and told who holds it since when.
	b := store.Lock{Key: key, Holder: "r2", Owner: "host/2/b", ExpiresAt: base.Add(2 * time.Minute)}
	_, err = s.AcquireLock(ctx, b, base.Add(30*time.Second), "")
	var held *store.LockHeldError
	if !errors.As(err, &held) || held.Lock.Holder != "r1" || held.Lock.Owner != "host/1/a" || !held.Lock.AcquiredAt.Equal(base) {
		t.Fatalf("second acquire: %v", err)
	}
	// The owner renews; others cannot.
	if err := s.RenewLock(ctx, key, "host/1/a", base.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.RenewLock(ctx, key, "host/2/b", base.Add(5*time.Minute)); !errors.Is(err, store.ErrLockLost) {
		t.Errorf("renewal by a non-owner: %v, want ErrLockLost", err)
	}
	// Before the renewed lease runs out, still held; after, taken over.
	if _, err := s.AcquireLock(ctx, b, base.Add(80*time.Second), ""); !errors.As(err, &held) {
		t.Errorf("acquire before the renewed lease ends: %v", err)
	}
	if _, err := s.AcquireLock(ctx, b, base.Add(91*time.Second), ""); err != nil {
		t.Fatalf("acquire after the lease ran out: %v", err)
	}
	// The old owner learns it lost the lock.
	if err := s.RenewLock(ctx, key, "host/1/a", base.Add(3*time.Minute)); !errors.Is(err, store.ErrLockLost) {
		t.Errorf("renewal by the previous owner: %v, want ErrLockLost", err)
	}
	// An owner known to be dead can be taken over before its lease ends.
	c := store.Lock{Key: key, Holder: "r2", Owner: "host/3/c", ExpiresAt: base.Add(10 * time.Minute)}
	if _, err := s.AcquireLock(ctx, c, base.Add(92*time.Second), "host/2/b"); err != nil {
		t.Fatalf("take over from a dead owner: %v", err)
	}
	cur, err := s.GetLock(ctx, key)
	if err != nil || cur == nil || cur.Owner != "host/3/c" || cur.Holder != "r2" {
		t.Fatalf("lock now %+v, %v", cur, err)
	}
	// Releasing someone else's lock does nothing; the owner's release frees it.
	s.ReleaseLock(ctx, key, "host/1/a")
	if cur, _ := s.GetLock(ctx, key); cur == nil {
		t.Fatal("a non-owner freed the lock")
	}
	if err := s.ReleaseLock(ctx, key, "host/3/c"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.GetLock(ctx, key); cur != nil {
		t.Errorf("lock still held after release: %+v", cur)
	}
	if _, err := s.AcquireLock(ctx, a, base.Add(93*time.Second), ""); err != nil {
		t.Errorf("acquire a freed lock: %v", err)
	}
}

// Many would-be holders race for a free lock: exactly one gets it.
func testLockRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	const racers = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := store.Lock{Key: "shop/prod", Holder: fmt.Sprint("r", i), Owner: fmt.Sprint("host/", i), ExpiresAt: base.Add(time.Minute)}
			_, err := s.AcquireLock(ctx, l, base, "")
			var held *store.LockHeldError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				got++
			case errors.As(err, &held):
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got != 1 {
		t.Errorf("%d racers took the lock, want exactly 1", got)
	}
}

// A revoked session is revoked for every handle on the store, revoking it again changes nothing,
// other sessions are untouched, and the records are not releases.
func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	expires := time.Now().Add(12 * time.Hour)
	if err := s.CreateRelease(ctx, newRelease("r1", "shop", "production", base)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SessionRevoked(ctx, "s-1"); err != nil || got {
		t.Fatalf("SessionRevoked(s-1) before = %v, %v; want false", got, err)
	}
	for range 2 {
		if err := s.RevokeSession(ctx, "s-1", expires); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.SessionRevoked(ctx, "s-1"); err != nil || !got {
		t.Fatalf("SessionRevoked(s-1) after = %v, %v; want true", got, err)
	}
	if got, err := s.SessionRevoked(ctx, "s-2"); err != nil || got {
		t.Fatalf("SessionRevoked(s-2) = %v, %v; want false", got, err)
	}
	rs, err := s.ListReleases(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rs), 1; got != want {
		t.Fatalf("ListReleases returned %d, want %d (a session record listed as a release?)", got, want)
	}
}

// LargeRelease is a release of n functions as a deploy records them: names, hashes, revisions
// and a configuration each, the hashes as incompressible as real ones. At n = 1,000 its JSON
// is about a megabyte.
func LargeRelease(id string, n int, at time.Time) *release.Release {
	r := newRelease(id, "shop", "prod", at)
	r.Steps = []release.Step{{Weight: 0.1}, {Weight: 0.5}}
	r.Functions = nil
	for i := range n {
		h := func(what string) [32]byte { return sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", id, what, i))) }
		code, base, cfg := h("code"), h("base"), h("cfg")
		rev, alias := h("rev"), h("alias")
		r.Functions = append(r.Functions, release.Function{
			Name: fmt.Sprintf("fn%04d", i), FunctionName: fmt.Sprintf("shop-fn%04d-prod", i), Previous: fmt.Sprint(i + 3),
			ArtifactKey:    "shop/" + hex.EncodeToString(code[:]) + ".zip",
			CodeSha256:     base64.StdEncoding.EncodeToString(code[:]),
			BaseCodeSha256: base64.StdEncoding.EncodeToString(base[:]),
			BaseRevision:   uuid(rev), AliasRevision: uuid(alias),
			Timeout: 30, LogGroup: fmt.Sprintf("/aws/lambda/shop-fn%04d-prod", i),
			Configuration: &release.Configuration{
				Template: release.Settings{MemorySize: 512, Timeout: 30, Environment: map[string]string{
					"TABLE": fmt.Sprintf("shop-fn%04d", i), "LOG_LEVEL": "info", "CONFIG_DIGEST": hex.EncodeToString(cfg[:]),
				}},
				Digest: hex.EncodeToString(cfg[:16]),
			},
		})
	}
	return r
}

func uuid(b [32]byte) string {
	x := hex.EncodeToString(b[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// A 1,000-function release (about a megabyte of JSON, over DynamoDB's 400 KB item limit) is
// kept whole, updated at its revision only, and listed.
func testLargeRelease(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := LargeRelease("big", 1000, base)
	js, _ := json.Marshal(r)
	if len(js) < 700_000 {
		t.Fatalf("the release is %d bytes of JSON; the test wants one near a megabyte", len(js))
	}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	stale, err := s.GetRelease(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Functions {
		r.Functions[i].New = fmt.Sprint(i + 4)
		r.Functions[i].Weight = 0.1
	}
	r.Phase = release.Shifting
	if err := s.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	stale.Phase = release.RollingBack
	if err := s.UpdateRelease(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update from a stale revision: %v, want ErrConflict", err)
	}
	got, err := s.GetRelease(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	want := *r
	if got.Revision != 2 || got.Phase != release.Shifting || len(got.Functions) != 1000 {
		t.Fatalf("stored: revision %d, phase %s, %d functions", got.Revision, got.Phase, len(got.Functions))
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(&want)
	if string(gj) != string(wj) {
		t.Errorf("the stored release differs from the one written (%d bytes of JSON, want %d)", len(gj), len(wj))
	}
	list, err := s.ListReleases(ctx, store.Filter{Service: "shop", Environment: "prod"})
	if err != nil || len(list) != 1 || len(list[0].Functions) != 1000 || list[0].Functions[999].New != "1003" {
		t.Fatalf("list: %d releases, %v", len(list), err)
	}
	if all, err := s.ListReleases(ctx, store.Filter{}); err != nil || len(all) != 1 || len(all[0].Functions) != 1000 {
		t.Fatalf("list without a filter: %d releases, %v", len(all), err)
	}
}
