// Package controller advances the releases handed to it ([release.Engine.HandOff]: `aviary
// deploy --detach`, a cancelled deploy) from a schedule, so that no process has to watch a
// release while it bakes: each invocation — a tick — lists the live releases the controller
// drives and moves each as far as it goes without waiting ([release.Engine.Tick]), then stops.
// cmd/aviary-controller runs it as a Lambda function invoked by EventBridge Scheduler.
//
// The rule it keeps: a tick only ever acts under a release's lock. A release another live
// process drives (a CLI's resume or rollback, another tick) is left to it and logged as held,
// naming the holder; between ticks the lock is parked, so that the next tick, on any instance,
// or a CLI, takes it at once. Every action is idempotent, so a tick killed mid-way (its function
// timed out, its instance died) is converged on by the next one.
//
// # One recurring schedule, not one-time schedules per deadline
//
// The controller is invoked by one recurring schedule per service and environment, rate(1
// minute), whose input names them ([Event]), rather than by one-time at() schedules set for
// each release's next deadline (a bake's end, a gate's timeout):
//
//   - Missed ticks heal themselves. A recurring schedule comes back every minute whatever the last
//     tick did; with at() schedules each tick must create the next one, and a tick that dies, or
//     fails to create it, strands the release with nothing judging it — the failure this
//     controller exists to remove.
//   - Health is judged at every tick anyway: a step with checks must be looked at every minute
//     (the error-rate test is anytime-valid, so looking at ticks keeps its α), so most deadlines
//     are "the next poll", and at() schedules would be one a minute too.
//   - Fewer control-plane calls: none per tick. at() schedules cost a CreateSchedule (and a
//     DeleteSchedule, or ActionAfterCompletion) per deadline, each subject to Scheduler's API
//     quotas and each a new way to fail.
//   - Cost: 43,200 invocations a month per schedule, inside EventBridge Scheduler's free tier of
//     14 million invocations a month; an idle tick is one DynamoDB Query (the environment's
//     newest releases) and a few milliseconds of Lambda, billed at the 1 ms granularity.
//
// What it gives up: a step whose bake ends between two ticks waits for the next one (at most a
// minute, the benchmark's "added time per step"), and the schedule's granularity is Scheduler's
// (one minute).
//
// A decision need not wait for the next tick: whoever records one (the CLI's approve, the gate's
// link, a rollback request) and knows the controller's function (the manifest's `controller:
// {function: NAME}`, or AVIARY_CONTROLLER_FUNCTION for the gate's Lambda) invokes it at once,
// asynchronously (InvocationType Event) with the same input, naming the release ([Nudge]). A
// nudge that coincides with the scheduled tick is harmless: the lock lets one of them act.
//
// # Budget
//
// A tick stops starting work [Controller.Margin] before its invocation's deadline (the Lambda's
// timeout), and a release's tick that is still acting by then is stopped (its context ends): the
// release stays where it was, its lock parked, and the next tick goes on from there, so the
// function is never killed holding a lease that would keep the next tick out.
//
// # Log
//
// Every tick writes, to its logger (stdout, as JSON, which Lambda sends to CloudWatch Logs),
// one line per release it looked at, msg "release", and one line for the tick, msg "tick";
// `aviary controller status` reads them back. See [Controller.Tick] for the fields.
package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// Event is a tick's input: the schedule's (or a nudge's) JSON. Service and Environment narrow
// the releases looked at to one environment of one service (one DynamoDB Query); Environment
// alone, or nothing, looks at every release of the store (a Scan: fine for a small table, see
// `aviary prune`). Release, if set, ticks only that release (a nudge after a decision).
type Event struct {
	Service     string `json:"service,omitempty"`
	Environment string `json:"environment,omitempty"`
	Release     string `json:"release,omitempty"`
	// Reason says why a tick was asked for at once ("detach", "cancel", "decision"); logged.
	Reason string `json:"reason,omitempty"`
}

// Store is what the controller reads of the store, besides what the engine needs.
type Store interface {
	GetRelease(ctx context.Context, id string) (*release.Release, error)
	ListReleases(ctx context.Context, f release.Filter) ([]*release.Release, error)
	// AppendEvent records, in a release's audit trail, a notice that could not be sent.
	AppendEvent(ctx context.Context, e *release.Event) error
}

// Controller ticks the releases handed to it.
type Controller struct {
	Store Store
	// Engine builds the engine that ticks r (its fleet and health checks in r's region), one per
	// release and tick: an engine's writes are serialised per release.
	Engine func(ctx context.Context, r *release.Release) (*release.Engine, error)
	// Parallelism bounds how many releases are ticked at once (default 4).
	Parallelism int
	// Margin is how long before the invocation's deadline the tick stops (default 5 s, at most
	// a fifth of the invocation's time): no release's tick starts, and one still acting is
	// stopped, leaving time to park its lock, log and return.
	Margin time.Duration
	// Log gets one line per release and one per tick (default slog.Default()).
	Log *slog.Logger
	// Now is the controller's time (default time.Now).
	Now func() time.Time
	// Getenv fills in the ${NAME} references of a release's notice URLs (default os.Getenv):
	// the controller's function's variables must name what the manifest's notify: URLs use.
	Getenv func(string) string
	// NoticeLog gets what the notice sender says of notices it could not send (default:
	// nowhere; the release's audit trail records them all the same).
	NoticeLog io.Writer
}

// Action is what a tick did with one release.
type Action string

// Actions.
const (
	// Drove: the tick held the release's lock and moved it as far as it goes now.
	Drove Action = "drove"
	// Held: another live process drives the release; the tick did nothing.
	Held Action = "held"
	// Errored: the tick could not move the release; the next tick tries again.
	Errored Action = "error"
	// Skipped: the tick's budget ran out before the release's turn.
	Skipped Action = "skipped"
)

// Result is one release's part of a tick.
type Result struct {
	Release     string        `json:"release"`
	Service     string        `json:"service"`
	Environment string        `json:"environment"`
	Action      Action        `json:"action"`
	From        release.Phase `json:"from"`
	Phase       release.Phase `json:"phase"`
	// Step is the 1-based step the release is at, while shifting.
	Step int `json:"step,omitempty"`
	// Next and Waiting: when the release next needs acting on, and for what (a bake, a gate).
	Next    time.Time `json:"next,omitzero"`
	Waiting string    `json:"waiting,omitempty"`
	// HeldBy names the live process driving the release, with Held.
	HeldBy string `json:"heldBy,omitempty"`
	// TookOver names the process gone that this tick took the release over from.
	TookOver string        `json:"tookOver,omitempty"`
	Err      error         `json:"-"`
	Took     time.Duration `json:"-"`
}

// Report is what one tick did.
type Report struct {
	Tick    string
	Results []Result
	// Listed is how many live releases the controller drives were found.
	Listed int
	Took   time.Duration
}

// Count counts the results with action a.
func (r *Report) Count(a Action) int {
	n := 0
	for _, res := range r.Results {
		if res.Action == a {
			n++
		}
	}
	return n
}

func (c *Controller) defaults() {
	if c.Parallelism <= 0 {
		c.Parallelism = 4
	}
	if c.Margin <= 0 {
		c.Margin = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
}

// Tick lists the live releases the controller drives (as ev narrows them) and ticks each, at
// most Parallelism at once, within ctx's deadline less Margin. id names the tick in the log (the
// Lambda request id). It returns an error only when the releases could not be listed: one
// release's failure is in its Result and its log line, and the next tick tries it again.
//
// Each release's line (msg "release", level INFO, or ERROR with an error) has: tick, release,
// service, environment, action (drove, held, error, skipped), from and phase (the
// release's phase before and after), step (1-based, while shifting), next and waiting (when the
// release next needs acting on, and for what), heldBy (the live process that drives it, with
// held), tookOver (the process gone it was taken over from), error, and ms (how long its tick
// took). The tick's line (msg "tick") has: tick, service, environment, release, reason (as ev
// named them), listed, drove, held, errors, skipped, and ms.
func (c *Controller) Tick(ctx context.Context, id string, ev Event) (*Report, error) {
	c.defaults()
	start := c.Now()
	rep := &Report{Tick: id}
	stop := ctx
	if deadline, ok := ctx.Deadline(); ok {
		// A short invocation keeps a fifth of its time, not the whole margin.
		margin := min(c.Margin, deadline.Sub(start)/5)
		var cancel context.CancelFunc
		stop, cancel = context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancel()
	}
	rs, err := c.live(stop, ev)
	if err != nil {
		c.Log.Error("tick", "tick", id, "service", ev.Service, "environment", ev.Environment, "release", ev.Release, "error", err.Error(), "ms", c.Now().Sub(start).Milliseconds())
		return rep, err
	}
	rep.Listed = len(rs)
	results := make([]Result, len(rs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, c.Parallelism)
	for i, r := range rs {
		select {
		case sem <- struct{}{}:
		case <-stop.Done():
		}
		if stop.Err() != nil {
			results[i] = Result{Release: r.ID, Service: r.Service, Environment: r.Environment, Action: Skipped, From: r.Phase, Phase: r.Phase,
				Err: errors.New("the tick's budget ran out before this release's turn")}
			c.logResult(id, results[i])
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = c.tickOne(stop, r, start)
			c.logResult(id, results[i])
		}()
	}
	wg.Wait()
	rep.Results = results
	rep.Took = c.Now().Sub(start)
	c.Log.Info("tick", "tick", id, "service", ev.Service, "environment", ev.Environment, "release", ev.Release, "reason", ev.Reason,
		"listed", rep.Listed, "drove", rep.Count(Drove), "held", rep.Count(Held),
		"errors", rep.Count(Errored), "skipped", rep.Count(Skipped), "ms", rep.Took.Milliseconds())
	return rep, nil
}

// live lists the releases to tick: live and handed to the controller, the least recently
// changed first.
func (c *Controller) live(ctx context.Context, ev Event) ([]*release.Release, error) {
	var rs []*release.Release
	switch {
	case ev.Release != "":
		r, err := c.Store.GetRelease(ctx, ev.Release)
		switch {
		case errors.Is(err, release.ErrNotFound):
			// Pruned, or a nudge's mistake: nothing to tick, and nothing a retry would find.
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("read release %s: %w", ev.Release, err)
		}
		rs = []*release.Release{r}
	case ev.Service != "" && ev.Environment != "":
		// One live release per environment (its lock): the newest few are enough.
		var err error
		if rs, err = c.Store.ListReleases(ctx, release.Filter{Service: ev.Service, Environment: ev.Environment, Limit: 3}); err != nil {
			return nil, fmt.Errorf("list the releases of %s in %s: %w", ev.Service, ev.Environment, err)
		}
	default:
		var err error
		if rs, err = c.Store.ListReleases(ctx, release.Filter{Environment: ev.Environment}); err != nil {
			return nil, fmt.Errorf("list the releases: %w", err)
		}
	}
	var out []*release.Release
	for _, r := range rs {
		if r.Controller && !r.Phase.Final() {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].UpdatedAt.Before(out[j].UpdatedAt) })
	return out, nil
}

// tickOne ticks one release.
func (c *Controller) tickOne(ctx context.Context, r *release.Release, tickStart time.Time) (res Result) {
	start := c.Now()
	res = Result{Release: r.ID, Service: r.Service, Environment: r.Environment, From: r.Phase, Phase: r.Phase}
	defer func() { res.Took = c.Now().Sub(start) }()
	defer func() {
		// One release's bug must not crash the function, and with it every tick of every other
		// release: its lock's lease runs out, and the next tick tries it again.
		if p := recover(); p != nil {
			res.Action, res.Err = Errored, fmt.Errorf("panic while ticking %s: %v\n%s", r.ID, p, debug.Stack())
		}
	}()
	eng, err := c.Engine(ctx, r)
	if err != nil {
		res.Action, res.Err = Errored, fmt.Errorf("build the engine for %s: %w", r.ID, err)
		return res
	}
	ns, nerr := c.notices(r)
	if nerr != nil {
		// The release moves on all the same; that nobody is told is its line's error.
		defer func() { res.Err = errors.Join(res.Err, nerr) }()
	}
	if ns != nil {
		observe := eng.Observe
		eng.Observe = func(p release.Progress) {
			if observe != nil {
				observe(p)
			}
			ns.observe(p)
		}
		defer func() {
			// Lambda freezes the function once the tick returns: deliver now, within the margin.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Margin/2)
			defer cancel()
			if err := ns.close(cctx); err != nil {
				res.Err = errors.Join(res.Err, err)
			}
		}()
	}
	t, err := eng.Tick(ctx, r.ID)
	if t != nil && t.Release != nil {
		res.Phase = t.Release.Phase
		if t.Release.Phase == release.Shifting {
			res.Step = t.Release.Step + 1
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		res.Action, res.Err = Errored, fmt.Errorf("stopped at the tick's budget, where it was; the next tick goes on: %w", err)
		if h := slowHook(t, ctx, tickStart); h != "" {
			res.Err = fmt.Errorf("stopped at the tick's budget, where it was: %s: %w", h, err)
		}
	case err != nil:
		res.Action, res.Err = Errored, err
	case t.Held != nil:
		res.Action, res.HeldBy = Held, t.Held.Owner
	default:
		res.Action, res.Next, res.Waiting = Drove, t.Next, t.Waiting
		if t.TookOver != nil {
			res.TookOver = t.TookOver.Owner
		}
	}
	return res
}

// slowHook says, of a release whose tick was stopped at its budget, which hook it was stopped
// in if that hook may take longer than a whole tick has (from start to ctx's deadline) — then
// every tick would stop there and the release never get past it — and what to do; "" if none.
func slowHook(t *release.Ticked, ctx context.Context, start time.Time) string {
	deadline, ok := ctx.Deadline()
	if !ok || t == nil || t.Release == nil || t.Release.Checks == nil {
		return ""
	}
	r := t.Release
	budget := deadline.Sub(start)
	timeout := r.Checks.HookTimeout
	if timeout <= 0 {
		timeout = time.Minute // the checker's default
	}
	var which string
	switch {
	case timeout <= budget:
		return ""
	case r.Checks.PreTraffic != "" && r.Phase == release.Publishing:
		which = "pre-traffic hook " + r.Checks.PreTraffic
	case r.Checks.PostTraffic != "" && r.Phase == release.Promoting:
		which = "post-traffic hook " + r.Checks.PostTraffic
	default:
		return ""
	}
	return fmt.Sprintf("the %s may take up to %s (checks' hooks.timeout), longer than a tick has (%s), so every tick may stop there and the release never get past it: "+
		"raise the controller function's timeout above %s (aviary controller install --timeout), or roll the release back", which, timeout, budget.Round(time.Second), timeout+10*time.Second)
}

func (c *Controller) logResult(tick string, res Result) {
	attrs := []any{"tick", tick, "release", res.Release, "service", res.Service, "environment", res.Environment,
		"action", string(res.Action), "from", string(res.From), "phase", string(res.Phase)}
	if res.Step > 0 {
		attrs = append(attrs, "step", res.Step)
	}
	if !res.Next.IsZero() {
		attrs = append(attrs, "next", res.Next.UTC().Format(time.RFC3339), "waiting", res.Waiting)
	}
	if res.HeldBy != "" {
		attrs = append(attrs, "heldBy", res.HeldBy)
	}
	if res.TookOver != "" {
		attrs = append(attrs, "tookOver", res.TookOver)
	}
	attrs = append(attrs, "ms", res.Took.Milliseconds())
	if res.Err != nil {
		c.Log.Error("release", append(attrs, "error", res.Err.Error())...)
		return
	}
	c.Log.Info("release", attrs...)
}
