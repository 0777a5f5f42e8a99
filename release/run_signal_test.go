package release

import (
	"context"
	"testing"
)

// signalStore serves a release that has ended, and cancels the run's context (a signal) on its
// second read, the one after which Run frees the lock of the ended release.
type signalStore struct {
	memStore
	reads  int
	cancel context.CancelFunc
	freed  error
}

func (s *signalStore) GetRelease(ctx context.Context, id string) (*Release, error) {
	s.reads++
	if s.reads == 2 {
		s.cancel()
	}
	return s.memStore.GetRelease(ctx, id)
}

func (s *signalStore) ReleaseLock(ctx context.Context, _, _ string) error {
	s.freed = ctx.Err() // a real store's call fails on an ended context
	return s.freed
}

// A signal that comes as Run finds its release ended does not make Run fail: the lock is freed
// anyway and the release is reported as it ended.
func TestRunFreesTheLockOfAnEndedReleaseAfterASignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &signalStore{memStore: memStore{r: &Release{ID: "rel-1", Service: "shop", Environment: "production", Phase: Promoted}}, cancel: cancel}
	e := &Engine{Store: st, Clock: RealClock{}, Owner: "me"}
	r, err := e.Run(ctx, "rel-1")
	if err != nil {
		t.Fatalf("Run: %v, want the ended release", err)
	}
	if st.freed != nil {
		t.Errorf("the lock was freed with an ended context: %v", st.freed)
	}
	if r == nil || r.Phase != Promoted {
		t.Errorf("Run returned %+v, want the promoted release", r)
	}
}
