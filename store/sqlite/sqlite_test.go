package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"

	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/sqlite"
	"github.com/aviary-deploy/aviary/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Two handles on one file, as two processes have, see one truth: a lock taken through one is
// held against the other, and racing updates through both apply exactly once.
func TestSharedFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	var handles []*sqlite.Store
	for range 2 {
		h, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		handles = append(handles, h)
	}
	a, b := handles[0], handles[1]
	now := time.Now()
	if _, err := a.AcquireLock(ctx, store.Lock{Key: "shop/prod", Holder: "r1", Owner: "p1", ExpiresAt: now.Add(time.Minute)}, now, ""); err != nil {
		t.Fatal(err)
	}
	var held *store.LockHeldError
	if _, err := b.AcquireLock(ctx, store.Lock{Key: "shop/prod", Holder: "r2", Owner: "p2", ExpiresAt: now.Add(time.Minute)}, now, ""); !errors.As(err, &held) {
		t.Fatalf("lock through the second handle: %v", err)
	}
	if err := a.CreateRelease(ctx, &release.Release{ID: "r1", Service: "shop", Environment: "prod", Phase: release.Planned, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := handles[i%2]
			r, err := h.GetRelease(ctx, "r1")
			if err != nil {
				results <- err
				return
			}
			r.Phase = release.Publishing
			results <- h.UpdateRelease(ctx, r)
		}()
	}
	wg.Wait()
	close(results)
	applied := 0
	for err := range results {
		switch {
		case err == nil:
			applied++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("unexpected: %v", err)
		}
	}
	got, _ := b.GetRelease(ctx, "r1")
	if got.Revision != int64(1+applied) || applied < 1 {
		t.Errorf("%d updates applied, revision %d", applied, got.Revision)
	}
}

// A release of 3,000 functions, over 2 MB of JSON, is kept and updated whole.
func TestTwoMegabyteRelease(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := storetest.LargeRelease("big", 3000, time.Now())
	if js, _ := json.Marshal(r); len(js) < 2_000_000 {
		t.Fatalf("%d bytes of JSON; the test wants over 2 MB", len(js))
	}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Functions[2999].Weight = 0.5
	if err := s.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRelease(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != 2 || len(got.Functions) != 3000 || got.Functions[2999].Weight != 0.5 || got.Functions[2999].CodeSha256 != r.Functions[2999].CodeSha256 {
		t.Errorf("stored: revision %d, %d functions", got.Revision, len(got.Functions))
	}
}
