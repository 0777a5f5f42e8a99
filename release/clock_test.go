package release

import (
	"sync"
	"time"
)

// FakeClock is the engine's time in tests: it moves only when waited on or advanced, never with
// the wall clock. A wait of at most Horizon passes at once — the clock jumps to its end — so a
// bake, a gate's timeout or a retry's backoff takes no real time. A longer wait (the lock's
// heartbeat, a poll a test must not see pass) fires only once the clock has passed its end,
// through shorter waits or Advance.
type FakeClock struct {
	Horizon time.Duration

	mu     sync.Mutex
	now    time.Time
	parked []parkedWait
}

type parkedWait struct {
	at time.Time
	ch chan time.Time
}

// NewFakeClock starts at the wall clock's second (so that records read well), with a one-minute
// horizon.
func NewFakeClock() *FakeClock {
	return &FakeClock{Horizon: time.Minute, now: time.Now().Truncate(time.Second)}
}

// Now is the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires once the clock has moved d on: at once (moving it) when d is within the horizon.
func (c *FakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= c.Horizon {
		c.set(c.now.Add(max(d, 0)))
		ch <- c.now
		return ch
	}
	c.parked = append(c.parked, parkedWait{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock on by d, firing the waits it passes.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(c.now.Add(d))
}

func (c *FakeClock) set(t time.Time) {
	c.now = t
	kept := c.parked[:0]
	for _, w := range c.parked {
		if w.at.After(t) {
			kept = append(kept, w)
			continue
		}
		w.ch <- t
	}
	c.parked = kept
}
