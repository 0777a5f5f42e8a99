package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The lifecycle is what the CLI, the dashboard and a controller call; the engine's Run is the
// part of it that moves a release on while holding its environment's lock:
//
//	Start            create the Planned release with its first audit entry, taking the lock
//	Drive            drive a release to its end (or follow the process that drives it)
//	TakeOver         take the lock of a release whose process is gone
//	Tick             advance a release as far as it goes without waiting (a controller's tick)
//	RequestRollback  ask for a rollback; reopen a release that ended
//	RequestPromote   ask for a promotion
//	Decide           close a gate (a package function: deciders need no engine)

// NewID names a release: service, environment, time, and a random suffix.
func NewID(service, environment string, now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%s-%s", service, environment, now.UTC().Format("20060102-150405"), hex.EncodeToString(b[:]))
}

// Start records a new release, Planned, with its first audit entry, taking its environment's
// lock for this process (a *LockHeldError names the holder when another release has it). r
// carries what was planned (service, environment, alias, functions, steps, checks, approval);
// Start sets its phase, times, creator and, if empty, its ID. The caller drives it next.
func (e *Engine) Start(ctx context.Context, r *Release) (*Release, error) {
	e.defaults()
	now := e.Clock.Now()
	if r.ID == "" {
		r.ID = NewID(r.Service, r.Environment, now)
	}
	if r.CreatedBy == "" {
		r.CreatedBy = e.Actor
	}
	r.Phase, r.Step, r.Revision = Planned, 0, 0
	r.CreatedAt, r.UpdatedAt = now, now
	if _, err := e.takeLock(ctx, r.Service, r.Environment, r.ID); err != nil {
		return nil, err
	}
	r.Outbox = []Event{{ReleaseID: r.ID, Key: r.ID + "/created", Time: now, Actor: e.Actor, Source: e.Source, Kind: EventCreated, Phase: Planned,
		Message: fmt.Sprintf("release of %s to %s: %s changed (%s), %s", r.Service, r.Environment, countFunctions(len(r.Functions)), functionNames(r.Functions), describeSteps(r.Steps)),
		Data:    map[string]any{"force": r.Force, "strategy": r.Strategy}}}
	if err := e.Store.CreateRelease(ctx, r); err != nil {
		_ = e.freeLock(ctx, r)
		return nil, err
	}
	// The entry is in the record's outbox: whoever loads the release next appends it if this fails.
	_ = e.flush(ctx, r)
	return r, nil
}

func functionNames(fns []Function) string {
	var n []string
	for _, f := range fns {
		n = append(n, f.Name)
	}
	if len(n) > 8 {
		return strings.Join(n[:8], ", ") + fmt.Sprintf(" and %d more", len(n)-8)
	}
	return strings.Join(n, ", ")
}

func describeSteps(steps []Step) string {
	if len(steps) == 0 {
		return "all at once"
	}
	var parts []string
	for _, s := range steps {
		parts = append(parts, fmt.Sprintf("%s for %s", percent(s.Weight), s.Bake))
	}
	return strings.Join(append(parts, "then 100%"), ", ")
}

// Driven is how [Engine.Drive] left a release, and who moved it there.
type Driven struct {
	Release *Release
	// Waited is the lock of the live process that drove the release when Drive began, if one
	// did: it acts on any request in the record, and Drive followed it.
	Waited *Lock
	// TookOver is the lock of the process this one took the release over from (its lease ran
	// out, or it died on this host); nil if none held it.
	TookOver *Lock
	// Drove says this process ran the engine on the release. False with Waited set: the other
	// process did the work and the release is as it left it.
	Drove bool
}

// StillDrivenError: another live process still drives the release after Drive followed it for
// as long as it was allowed to.
type StillDrivenError struct {
	Release *Release
	Lock    Lock
	Waited  time.Duration
}

func (e *StillDrivenError) Error() string {
	return fmt.Sprintf("release %s is still at %s after %s: its driver (%s) has the request", e.Release.ID, e.Release.Describe(), e.Waited, e.Lock.Owner)
}

// Drive moves a release to a final phase: in this process if its lock can be taken (it is free,
// expired, ours, or its owner died), otherwise by following the live process that holds it,
// which sees any request in the record and acts on it, for up to wait (then a
// *StillDrivenError); if that process goes away meanwhile, this one takes over. A release that
// already ended is settled: its last audit entries appended, a lock left by a process that is
// gone freed. Another release holding the environment is a *LockHeldError.
//
// While it runs the engine Drive renews the lease; if ctx ends first, the release stays where it
// is and its lock is freed (see [Engine.Run]).
func (e *Engine) Drive(ctx context.Context, id string, wait time.Duration) (*Driven, error) {
	e.defaults()
	d := &Driven{}
	deadline := e.Clock.Now().Add(wait)
	for {
		r, err := e.load(ctx, id)
		if err != nil {
			return d, err
		}
		d.Release = r
		if r.Phase.Final() {
			return d, e.settle(ctx, r)
		}
		prev, err := e.takeLock(ctx, r.Service, r.Environment, id)
		if err == nil {
			d.TookOver = prev
			break
		}
		var held *LockHeldError
		if !errors.As(err, &held) || held.Lock.Holder != id {
			return d, err
		}
		if d.Waited == nil {
			l := held.Lock
			d.Waited = &l
			e.observe(Progress{Release: *r, Kind: ProgressFollowing, Lock: &l})
		}
		if r.Phase.Final() {
			return d, nil // its driver finished; it frees its lock itself
		}
		if !e.Clock.Now().Before(deadline) {
			return d, &StillDrivenError{Release: r, Lock: held.Lock, Waited: wait}
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-e.Clock.After(e.Poll):
		}
	}
	// The lock is ours: read the release again, as its last driver may have ended it and let go
	// between the read and the lock.
	r, err := e.load(ctx, id)
	if err != nil {
		_ = e.freeLock(ctx, d.Release)
		return d, err
	}
	d.Release = r
	if r.Phase.Final() {
		return d, e.freeLock(ctx, r)
	}
	if d.TookOver != nil {
		e.observe(Progress{Release: *r, Kind: ProgressTookOver, Lock: d.TookOver})
	}
	d.Drove = true
	final, err := e.Run(ctx, id)
	if final != nil {
		d.Release = final
	}
	return d, err
}

// settle finishes what the process that ended a release left undone: it appends the audit
// entries of the release's last write and frees the environment's lock if this release still
// holds it through an owner that is gone. A lock held by another release, or by a live process
// still finishing up, is left alone: settling never makes an environment look busy.
func (e *Engine) settle(ctx context.Context, r *Release) error {
	if err := e.flush(ctx, r); err != nil {
		return err
	}
	key := LockKey(r.Service, r.Environment)
	l, err := e.Store.GetLock(ctx, key)
	if err != nil || l == nil || l.Holder != r.ID || !e.orphaned(l) {
		return err
	}
	takeOver := ""
	if e.dead(l.Owner) {
		takeOver = l.Owner
	}
	now := e.Clock.Now()
	if _, err := e.Store.AcquireLock(ctx, Lock{Key: key, Holder: r.ID, Owner: e.Owner, ExpiresAt: now.Add(e.LockTTL)}, now, takeOver); err != nil {
		var held *LockHeldError
		if errors.As(err, &held) {
			return nil // taken meanwhile: no longer this release's to free
		}
		return err
	}
	return e.freeLock(ctx, r)
}

// promotable refuses a promotion the release cannot take, as a *RefusedError.
func promotable(r *Release) error {
	switch {
	case r.Phase.Final() || r.Phase == Promoting:
		return &RefusedError{Release: r, Why: fmt.Sprintf("release %s is %s: there is nothing to promote", r.ID, r.Describe())}
	case r.Phase == RollingBack:
		return &RefusedError{Release: r, Why: fmt.Sprintf("release %s is rolling back (%s): it cannot be promoted", r.ID, r.Reason)}
	case r.Request != nil && r.Request.Action == RequestRollback:
		return &RefusedError{Release: r, Why: fmt.Sprintf("a rollback of release %s was requested by %s first", r.ID, r.Request.By)}
	}
	return nil
}

// RefusedError is a request that does not apply to the release as it is: nothing was changed.
type RefusedError struct {
	Release *Release
	Why     string
}

func (e *RefusedError) Error() string { return e.Why }

// Requested is what a request did.
type Requested struct {
	Release *Release
	// First is the gate decision that came before this request, when the release waited at a
	// gate and someone decided first (an operator's rollback goes ahead all the same).
	First *Decision
	// Reopened: the release had ended and is rolling back again; this process holds its lock
	// and drives it next ([Engine.Drive]).
	Reopened bool
	// Already: a rollback had already been requested, or the release is rolled back already.
	Already bool
}

// RequestRollback asks for a release to be rolled back, for reason. A live release gets the
// request in its record, where whoever drives it acts on it; at an open gate the rollback is
// the gate's decision too (unless someone decided first). A release that ended promoted or
// failed is reopened: under its environment's lock, and only while it is still the
// environment's latest release, it moves back to RollingBack with its transition in the audit
// trail, and this process, holding the lock, drives it next.
func (e *Engine) RequestRollback(ctx context.Context, id, reason string) (*Requested, error) {
	e.defaults()
	if reason == "" {
		reason = "no reason given"
	}
	r, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	switch r.Phase {
	case RolledBack:
		return &Requested{Release: r, Already: true}, nil
	case Promoted, Failed:
		return e.reopen(ctx, r, reason)
	}
	out := &Requested{}
	if r.OpenGate() != nil {
		_, err := Decide(ctx, e.Store, r.ID, Decision{Action: DecideRollback, By: e.Actor, Via: ViaCLI, Source: e.Source, Reason: reason, At: e.Clock.Now(), Gate: len(r.Gates)})
		var late *TooLateError
		switch {
		case errors.As(err, &late):
			out.First = late.First
		case err != nil:
			return nil, err
		}
		if out.First != nil && out.First.Action == Approve {
			reason += fmt.Sprintf(" (after the gate's approval by %s)", out.First.By)
		}
	}
	out.Release, err = e.change(ctx, id, askRollback(e.Actor, reason, e.Clock.Now(), nil, &out.Already))
	if errors.Is(err, ErrEnded) {
		err = fmt.Errorf("%w; run rollback again to roll it back from there", err)
	}
	return out, err
}

// ErrEnded: a request only a live release can take (its driver acts on it) came for a release
// that has ended.
var ErrEnded = errors.New("the release has ended")

// AskRollback records a rollback request on a live release, for the process that drives it (a
// deploy, a controller) to act on at once: the request and its audit entry (with data, such as
// who asked from where) in one conditional write. It is how a caller without AWS access — the
// dashboard, the gate's Lambda — rolls a release back. already reports a request that was there
// before. An ended release is refused with an error wrapping [ErrEnded]: rolling it back moves
// aliases, which [Engine.RequestRollback] does in a process that can.
func AskRollback(ctx context.Context, st Store, id, by, source, reason string, data map[string]any) (r *Release, already bool, err error) {
	if reason == "" {
		reason = "no reason given"
	}
	r, err = change(ctx, st, id, by, source, time.Now, askRollback(by, reason, time.Now(), data, &already))
	return r, already, err
}

// askRollback is the change that records a rollback request on a live release.
func askRollback(by, reason string, at time.Time, data map[string]any, already *bool) func(r *Release) (*Event, error) {
	return func(r *Release) (*Event, error) {
		if r.Phase == RolledBack || !r.Phase.Final() && r.Request != nil && r.Request.Action == RequestRollback {
			*already = true
			return nil, nil
		}
		if r.Phase.Final() {
			return nil, fmt.Errorf("release %s is %s: %w", r.ID, r.Describe(), ErrEnded)
		}
		r.Request = &Request{Action: RequestRollback, By: by, Reason: reason, At: at}
		return &Event{Kind: EventRequest, Phase: r.Phase, Message: fmt.Sprintf("rollback requested by %s: %s", by, reason), Data: data}, nil
	}
}

// reopen moves an ended release back to RollingBack, holding its lock.
func (e *Engine) reopen(ctx context.Context, r *Release, reason string) (*Requested, error) {
	if err := e.latest(ctx, r); err != nil {
		return nil, err
	}
	if _, err := e.takeLock(ctx, r.Service, r.Environment, r.ID); err != nil {
		return nil, err
	}
	from := r.Phase
	fresh, err := e.change(ctx, r.ID, func(r *Release) (*Event, error) {
		if r.Phase != from {
			return nil, fmt.Errorf("release %s moved to %s meanwhile", r.ID, r.Phase)
		}
		// Checked again under the lock: a release started since is the one to roll back.
		if err := e.latest(ctx, r); err != nil {
			return nil, err
		}
		to, err := Next(from, MoveReopen)
		if err != nil {
			return nil, err
		}
		r.Earlier = append(r.Earlier, Ending{Phase: from, At: r.EndedAt})
		r.Phase, r.EndedAt = to, time.Time{}
		r.Reason = fmt.Sprintf("rollback requested by %s after the release %s: %s", e.Actor, from, reason)
		r.Request = &Request{Action: RequestRollback, By: e.Actor, Reason: reason, At: e.Clock.Now()}
		for i := range r.Functions {
			r.Functions[i].RolledBack = false
		}
		return &Event{Kind: EventTransition, Phase: to, Message: fmt.Sprintf("%s → %s: %s", from, to, r.Reason),
			Data: map[string]any{"from": string(from), "to": string(to), "move": string(MoveReopen)}}, nil
	})
	if err != nil {
		_ = e.freeLock(ctx, r)
		return nil, err
	}
	return &Requested{Release: fresh, Reopened: true}, nil
}

// latest refuses to reopen a release that is no longer the latest of its environment.
func (e *Engine) latest(ctx context.Context, r *Release) error {
	rs, err := e.Store.ListReleases(ctx, Filter{Service: r.Service, Environment: r.Environment, Limit: 1})
	if err != nil {
		return err
	}
	if len(rs) > 0 && rs[0].ID != r.ID {
		return &RefusedError{Release: r, Why: fmt.Sprintf("release %s is not the latest of %s (%s is): roll that one back instead", r.ID, r.Environment, rs[0].ID)}
	}
	return nil
}

// RequestPromote asks for a release to skip its remaining steps (now: the current step's bake
// too). At an open gate the promotion is the gate's approval, and a *TooLateError if someone
// decided first. A release that ended, is promoting or rolling back, or has a rollback
// requested, is a *RefusedError. Whoever drives the release acts on the request.
func (e *Engine) RequestPromote(ctx context.Context, id, reason string, now bool) (*Requested, error) {
	e.defaults()
	r, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	// Refused before the gate is decided, so a refusal leaves no approval behind.
	if err := promotable(r); err != nil {
		return nil, err
	}
	if r.OpenGate() != nil {
		if _, err := Decide(ctx, e.Store, r.ID, Decision{Action: Approve, By: e.Actor, Via: ViaCLI, Source: e.Source, Reason: reason, At: e.Clock.Now(), Gate: len(r.Gates)}); err != nil {
			return nil, err
		}
	}
	fresh, err := e.change(ctx, id, func(r *Release) (*Event, error) {
		if err := promotable(r); err != nil {
			return nil, err
		}
		r.Request = &Request{Action: RequestPromote, By: e.Actor, Reason: reason, At: e.Clock.Now(), Now: now}
		when := "after the current step's bake"
		if now {
			when = "now"
		}
		return &Event{Kind: EventRequest, Phase: r.Phase, Message: fmt.Sprintf("promotion requested by %s (%s): skip the remaining steps", e.Actor, when)}, nil
	})
	if err != nil {
		return nil, err
	}
	return &Requested{Release: fresh}, nil
}

// HandOff gives a live release to the environment's controller, for reason (`deploy --detach`,
// a cancelled deploy): it records Controller with an audit entry, and the controller drives it
// from its next tick. The caller should not be driving it (its Run has returned, freeing the
// lock), or the controller only follows it until the lock is free. A release that ended is a
// *RefusedError; one already handed over is left as it is.
//
// If this process holds the release's lock (`deploy --detach` after Start), HandOff lets it go
// ([Engine.LetGo]): the lease ends now but the record stays, so the release keeps its
// environment (no other release starts there) and the controller's next tick takes the lock at
// once (see [Engine.Tick]).
func (e *Engine) HandOff(ctx context.Context, id, reason string) (*Release, error) {
	e.defaults()
	r, err := e.handOff(ctx, id, reason)
	if err == nil {
		err = e.LetGo(ctx, r)
	}
	return r, err
}

func (e *Engine) handOff(ctx context.Context, id, reason string) (*Release, error) {
	return e.change(ctx, id, func(r *Release) (*Event, error) {
		if r.Phase.Final() {
			return nil, &RefusedError{Why: fmt.Sprintf("release %s already ended (%s): there is nothing to hand to the controller", r.ID, r.Phase)}
		}
		if r.Controller {
			return nil, nil
		}
		r.Controller = true
		return &Event{Kind: EventHandOff, Phase: r.Phase, Message: fmt.Sprintf("handed to the controller by %s: %s", e.Actor, reason)}, nil
	})
}

// change is [Change] as this engine: its actor, source and clock.
func (e *Engine) change(ctx context.Context, id string, mutate func(r *Release) (*Event, error)) (*Release, error) {
	return change(ctx, e.Store, id, e.Actor, e.Source, e.Clock.Now, mutate)
}
