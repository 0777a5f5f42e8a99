package cli

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aviary-deploy/aviary/release"
)

// inspectFleet is a release.Fleet whose Inspect is a function; its other methods are not called.
type inspectFleet struct {
	release.Fleet
	inspect func(ctx context.Context, name, alias string) (release.Current, error)
}

func (f inspectFleet) Inspect(ctx context.Context, name, alias string) (release.Current, error) {
	return f.inspect(ctx, name, alias)
}

func TestPrefetchReadsEachFunctionOnceForThePlan(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	fleet := inspectFleet{inspect: func(_ context.Context, name, alias string) (release.Current, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[name+":"+alias]++
		return release.Current{Exists: true, AliasExists: true, AliasCodeSha256: "old=" + name}, nil
	}}
	names := []string{"shop-a-prod", "shop-b-prod", "shop-c-prod"}
	reads := prefetch(context.Background(), fleet, "live", names, 2)
	defer reads.stop()
	var targets []release.Target
	for _, n := range names {
		targets = append(targets, release.Target{Name: n, FunctionName: n, CodeSha256: "new"})
	}
	rows, err := release.Plan(context.Background(), reads, "live", targets, false, 16)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if !r.Change || r.Current.AliasCodeSha256 != "old="+names[i] {
			t.Errorf("row %s: change %v, current %q; want the prefetched read of its own function", r.Name, r.Change, r.Current.AliasCodeSha256)
		}
	}
	// Another alias is not what was prefetched: read anew.
	if _, err := reads.Inspect(context.Background(), names[0], "staging"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"shop-a-prod:live": 1, "shop-b-prod:live": 1, "shop-c-prod:live": 1, "shop-a-prod:staging": 1}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range want {
		if calls[k] != n {
			t.Errorf("Inspect(%s) called %d times, want %d (all: %v)", k, calls[k], n, calls)
		}
	}
}

func TestPrefetchStopEndsTheReads(t *testing.T) {
	started := make(chan struct{}, 8)
	fleet := inspectFleet{inspect: func(ctx context.Context, _, _ string) (release.Current, error) {
		started <- struct{}{}
		<-ctx.Done() // a read that only ends when cancelled
		return release.Current{}, ctx.Err()
	}}
	reads := prefetch(context.Background(), fleet, "live", []string{"a", "b", "c", "d"}, 2)
	<-started
	reads.stop() // returns: the reads under way are cancelled, the others never start
	for _, n := range []string{"a", "b", "c", "d"} {
		if _, err := reads.Inspect(context.Background(), n, "live"); !errors.Is(err, context.Canceled) {
			t.Errorf("Inspect(%s) after stop: %v, want context.Canceled", n, err)
		}
	}
}
