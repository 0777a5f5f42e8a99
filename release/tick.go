package release

import (
	"context"
	"errors"
	"time"
)

// Ticked is what one [Engine.Tick] did to a release.
type Ticked struct {
	Release *Release
	// Held is the lock of the live process that drives the release (a CLI's resume or rollback,
	// another controller's tick): this tick did nothing, and Held.Owner says who acts.
	Held *Lock
	// TookOver is the lock of a process that was gone (its lease ran out: a tick killed
	// mid-way, a CLI that stopped), which this tick took over.
	TookOver *Lock
	// Next is when the release next needs acting on: its bake's end or next judgement, its
	// gate's deadline or next look for a decision. Zero once the release ended.
	Next time.Time
	// Waiting says what the release waits for until Next: "bake", "gate" or "request" (awaiting
	// a promote or rollback request); empty once it ended.
	Waiting string
}

// Tick advances a release as far as it can go without waiting, for a controller that runs on a
// schedule rather than watching: it takes the release's lock without waiting, moves the release
// on exactly as [Engine.Run] does, and where Run would wait — a bake that is neither over nor
// failed, a gate without a decision — it stops, with the release saved as it is, and returns
// when it next needs to act (Ticked.Next). Tick keeps renewing the lease while it acts.
//
// The lock is let go ([Engine.LetGo]), never freed, while the release is live: its record stays
// (this release still holds the environment, so no other release can start there) with its
// lease run out — parked — so that the next tick, or a CLI's resume or rollback, takes it at
// once. A release that ends has its lock freed.
//
// A live process holding the lock (a CLI driving the release, another tick) is not an error:
// Ticked.Held names it and nothing was done. Another release holding the environment is a
// *LockHeldError. If ctx ends mid-way (the controller's budget), Tick returns ctx's error and
// the release stays where it was, its lock let go; every action being idempotent, the next
// tick converges.
func (e *Engine) Tick(ctx context.Context, id string) (*Ticked, error) {
	e.defaults()
	r, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	t := &Ticked{Release: r}
	if r.Phase.Final() {
		return t, e.settle(ctx, r)
	}
	prev, err := e.takeLock(ctx, r.Service, r.Environment, id)
	var held *LockHeldError
	switch {
	case errors.As(err, &held) && held.Lock.Holder == id:
		l := held.Lock
		t.Held = &l
		return t, nil
	case err != nil:
		return t, err
	}
	t.TookOver = prev
	y := &yield{}
	final, err := e.Run(context.WithValue(ctx, tickKey{}, y), id)
	if final != nil {
		t.Release = final
	}
	if errors.Is(err, errYield) {
		t.Next, t.Waiting = y.next, y.waiting
		return t, nil
	}
	return t, err
}

// errYield: in a tick, the release would wait now; the tick ends here (see [Engine.Tick]).
var errYield = errors.New("the release waits: the tick ends here")

// tickKey marks a context as a tick's: where the engine would wait, it yields instead.
type tickKey struct{}

// yield is where a tick stopped: when the release next needs acting on, and for what.
type yield struct {
	next    time.Time
	waiting string
}

// ticking is the tick's yield when ctx is a tick's, nil when the engine runs to the end.
func ticking(ctx context.Context) *yield {
	y, _ := ctx.Value(tickKey{}).(*yield)
	return y
}

// wait waits d, or in a tick yields: it records when and for what, and returns errYield.
func (e *Engine) wait(ctx context.Context, d time.Duration, waiting string) error {
	if y := ticking(ctx); y != nil {
		y.next, y.waiting = e.Clock.Now().Add(d), waiting
		return errYield
	}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-e.Clock.After(d):
		return nil
	}
}
