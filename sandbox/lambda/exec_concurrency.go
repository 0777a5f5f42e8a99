package lambda

import (
	"context"
	"math"
	"slices"
	"time"
)

// Concurrency is held as Lambda holds it (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html,
// .../scaling-behavior.html):
//
//   - An invocation in flight is one unit of concurrency, whatever version it runs, from the moment
//     it is admitted until its environment is released.
//   - A function with reserved concurrency runs at most that many invocations across all its
//     versions ($LATEST included); the others share the account's unreserved concurrency, its limit
//     less every reservation. Past either bound a synchronous Invoke is throttled at once
//     (ReservedFunctionConcurrentInvocationLimitExceeded, ConcurrentInvocationLimitExceeded).
//   - A function scales by at most ScaleBurst new execution environments per ScaleWindow (AWS:
//     1,000 per 10 seconds), refilled continuously: a token bucket per function, one token per
//     environment started. An invocation that would need a new environment with the bucket empty
//     is throttled (FunctionInvocationRateLimitExceeded; ReservedFunctionInvocationRateLimitExceeded
//     for a function with reserved concurrency). AWS documents the model's reasons but not which
//     throttle answers with which; this pairing follows the two concurrency reasons.
//   - Asynchronous invocations are never throttled: they wait, as Lambda's internal queue does.
//
// One more bound is the sandbox's own and invisible but for latency: at most MaxStarts
// environments start at once (by default one per CPU), because a machine starting dozens of
// processes together makes every one of them slow. An invocation that finds no idle environment
// while starts are capped waits for whichever comes first — an environment of its version freed
// by another invocation, or a start slot — rather than being throttled or queueing a start of its
// own behind the others.

// concLimits is what bounds an invocation's concurrency, read from the function's state when
// Invoke resolved its target.
type concLimits struct {
	// reserved is the function's reserved concurrency; nil if it has none.
	reserved *int
	// unreserved is the account's unreserved concurrency: its limit less every reservation.
	unreserved int
}

// Throttle reasons, as the botocore model's ThrottleReason enum names them.
const (
	reasonAccount  = "ConcurrentInvocationLimitExceeded"
	reasonReserved = "ReservedFunctionConcurrentInvocationLimitExceeded"
	reasonRate     = "FunctionInvocationRateLimitExceeded"
	// reasonReservedRate is reasonRate for a function with reserved concurrency.
	reasonReservedRate = "ReservedFunctionInvocationRateLimitExceeded"
)

// errThrottled says a synchronous invocation was refused; reason is the TooManyRequestsException's
// Reason, retryAfter (seconds, 0 for none) its Retry-After.
type errThrottled struct {
	reason     string
	retryAfter int
}

func (e *errThrottled) Error() string { return "throttled: " + e.reason }

// claim is one admitted invocation's unit of concurrency: whose, and from which pool it came.
type claim struct {
	fn         string
	unreserved bool
	held       bool
}

// scaleBucket is a function's concurrency scaling rate: tokens are new environments it may start.
type scaleBucket struct {
	tokens float64
	at     time.Time
}

// watch returns a channel closed at the next signal of ch (e.concFreed, e.slotFreed). Taken
// before checking, it loses no wake-up.
func (e *executor) watch(ch *chan struct{}) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return *ch
}

// signal wakes every waiter on ch; the caller holds e.mu.
func signal(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

// admit takes a unit of concurrency for fn, or says which bound refused it.
func (e *executor) admit(fn string, lim concLimits) (claim, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if lim.reserved != nil {
		if e.running[fn] >= *lim.reserved {
			return claim{}, reasonReserved
		}
		e.running[fn]++
		return claim{fn: fn, held: true}, ""
	}
	if e.unreserved >= lim.unreserved {
		return claim{}, reasonAccount
	}
	e.running[fn]++
	e.unreserved++
	return claim{fn: fn, unreserved: true, held: true}, ""
}

// leave gives a unit of concurrency back.
func (e *executor) leave(c *claim) {
	if !c.held {
		return
	}
	c.held = false
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running[c.fn]--; e.running[c.fn] <= 0 {
		delete(e.running, c.fn)
	}
	if c.unreserved {
		e.unreserved--
	}
	signal(&e.concFreed)
}

// inFlight is the account's concurrency in use, for tests and GetAccountSettings' callers.
func (e *executor) inFlight() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, k := range e.running {
		n += k
	}
	return n
}

// scaleToken takes a token from fn's scaling bucket; when it is empty, it says how long until the
// next one.
func (e *executor) scaleToken(fn string) (bool, time.Duration) {
	cfg := e.s.cfg
	now := cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.buckets[fn]
	burst := float64(cfg.ScaleBurst)
	if !ok {
		b = &scaleBucket{tokens: burst, at: now}
		e.buckets[fn] = b
	}
	perSec := burst / cfg.ScaleWindow.Seconds()
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(burst, b.tokens+d.Seconds()*perSec)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / perSec * float64(time.Second))
}

// refund gives back a token taken for a start that did not happen.
func (e *executor) refund(fn string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.buckets[fn]; ok {
		b.tokens = math.Min(float64(e.s.cfg.ScaleBurst), b.tokens+1)
	}
}

// startSlot takes one of the machine's start slots if one is free.
func (e *executor) startSlot() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.starting >= e.s.cfg.MaxStarts {
		return false
	}
	e.starting++
	return true
}

// startDone frees a start slot once env has finished its init (or died trying).
func (e *executor) startDone(env *execEnv) {
	if env != nil {
		select {
		case <-env.initDone:
		case <-env.dead:
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starting--
	signal(&e.slotFreed)
}

// acquire returns an environment of the pool for one invocation, holding a unit of the
// function's concurrency. A synchronous caller (wait false) is throttled at a concurrency bound;
// an asynchronous one waits for a unit.
func (p *pool) acquire(ctx context.Context, lim concLimits, wait bool) (*execEnv, error) {
	e := p.e
	var c claim
	for {
		freed := e.watch(&e.concFreed)
		var reason string
		if c, reason = e.admit(p.key.fn, lim); reason == "" {
			break
		}
		if !wait {
			return nil, &errThrottled{reason: reason}
		}
		if err := waitChange(ctx, freed, time.Second); err != nil {
			return nil, err
		}
	}
	env, err := p.get(ctx, wait, lim.reserved != nil)
	if err != nil {
		e.leave(&c)
		return nil, err
	}
	env.claim = c
	return env, nil
}

// get returns an idle environment of the pool, or a new one. While the machine's start slots are
// all taken it waits in line for whichever comes first: an environment of the pool freed (handed
// to the first in line), or a slot to start one. With the function's scaling bucket empty, a
// synchronous caller is throttled (its reason naming reserved concurrency when the function has
// some) and an asynchronous one waits for a token.
func (p *pool) get(ctx context.Context, wait, reserved bool) (*execEnv, error) {
	e, fn := p.e, p.key.fn
	var line chan *execEnv // this invocation's place in line, once it waits
	leave := func() *execEnv {
		if line == nil {
			return nil
		}
		p.mu.Lock()
		if i := slices.Index(p.waiters, line); i >= 0 {
			p.waiters = slices.Delete(p.waiters, i, i+1)
		}
		p.mu.Unlock()
		// Handed one meanwhile (under p.mu, so it is there now if ever)?
		select {
		case env := <-line:
			return env
		default:
			return nil
		}
	}
	for {
		slots := e.watch(&e.slotFreed)
		if line == nil {
			if env, err := p.idleEnv(); env != nil || err != nil {
				return env, err
			}
		}
		ok, after := e.scaleToken(fn)
		switch {
		case !ok && !wait:
			if env := leave(); env != nil {
				return env, nil
			}
			reason := reasonRate
			if reserved {
				reason = reasonReservedRate
			}
			return nil, &errThrottled{reason: reason, retryAfter: int(math.Ceil(after.Seconds()))}
		case ok && e.startSlot():
			if env := leave(); env != nil {
				// Handed one as it got a slot: the slot and the token go back.
				e.refund(fn)
				e.startDone(nil)
				return env, nil
			}
			return p.start()
		case ok:
			e.refund(fn)
			after = time.Second
		}
		if line == nil {
			line = make(chan *execEnv, 1)
			p.mu.Lock()
			if p.retired {
				p.mu.Unlock()
				return nil, errRetired
			}
			if len(p.idle) > 0 {
				// One was freed since it looked.
				p.mu.Unlock()
				line = nil
				continue
			}
			p.waiters = append(p.waiters, line)
			p.mu.Unlock()
		}
		t := time.NewTimer(max(after, time.Millisecond))
		select {
		case env := <-line:
			t.Stop()
			if env == nil {
				return nil, errRetired
			}
			return env, nil
		case <-slots:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if env := leave(); env != nil {
				p.putIdle(env)
			}
			return nil, ctx.Err()
		}
		t.Stop()
	}
}

// start starts an environment of the pool; the caller holds a start slot, which is freed once
// the environment's init has finished.
func (p *pool) start() (*execEnv, error) {
	p.mu.Lock()
	spec := p.spec
	p.mu.Unlock()
	env, err := startEnvironment(p, spec)
	if err != nil {
		p.e.startDone(nil)
		return nil, err
	}
	go p.e.startDone(env)
	p.mu.Lock()
	p.all[env] = true
	p.mu.Unlock()
	return env, nil
}

// idleEnv takes the most recently used idle environment, if any.
func (p *pool) idleEnv() (*execEnv, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retired {
		return nil, errRetired
	}
	for n := len(p.idle); n > 0; n = len(p.idle) {
		env := p.idle[n-1]
		p.idle = p.idle[:n-1]
		if env.exited() {
			// It exited while idle: it is not reused.
			delete(p.all, env)
			continue
		}
		return env, nil
	}
	return nil, nil
}

// waitChange waits for a change, the context's end, or at most d (a safety net: a change the
// waiter cares about always signals).
func waitChange(ctx context.Context, changed <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
