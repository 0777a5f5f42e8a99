package cli

import (
	"context"
	"sync"

	"github.com/aviary-deploy/aviary/release"
)

// planParallelism is how many functions a plan reads at a time.
const planParallelism = 16

// prefetched is a fleet whose Inspect of the functions handed to prefetch answers from reads
// started in the background, so that a plan's reads (the bulk of its calls under the Lambda
// quota) run while the zips are built rather than after. Everything else goes to the fleet.
type prefetched struct {
	release.Fleet
	alias  string
	reads  map[string]*inspection
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type inspection struct {
	name string
	done chan struct{}
	cur  release.Current
	err  error
}

// prefetch starts reading every named function and its alias, parallelism at a time. stop ends
// the reads not yet done and waits for them.
func prefetch(ctx context.Context, fleet release.Fleet, alias string, names []string, parallelism int) *prefetched {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetched{Fleet: fleet, alias: alias, reads: map[string]*inspection{}, cancel: cancel}
	var order []*inspection
	for _, n := range names {
		if p.reads[n] == nil {
			p.reads[n] = &inspection{name: n, done: make(chan struct{})}
			order = append(order, p.reads[n])
		}
	}
	sem := make(chan struct{}, parallelism)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for i, in := range order {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				for _, rest := range order[i:] {
					rest.err = ctx.Err()
					close(rest.done)
				}
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer func() { <-sem }()
				in.cur, in.err = fleet.Inspect(ctx, in.name, alias)
				close(in.done)
			}()
		}
	}()
	return p
}

// Inspect answers from the read prefetch started, waiting for it if need be.
func (p *prefetched) Inspect(ctx context.Context, name, alias string) (release.Current, error) {
	in := p.reads[name]
	if in == nil || alias != p.alias {
		return p.Fleet.Inspect(ctx, name, alias)
	}
	select {
	case <-in.done:
		return in.cur, in.err
	case <-ctx.Done():
		return release.Current{}, ctx.Err()
	}
}

func (p *prefetched) stop() {
	p.cancel()
	p.wg.Wait()
}
