package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Engine drives releases. One Run moves one release to a final phase, one transition at a time:
// it computes the next state, writes it to the store, then acts; every action is idempotent, so
// any process may pick up a release where another stopped.
type Engine struct {
	Store     Store
	Fleet     Fleet
	Health    Health
	Artifacts ArtifactSource
	Clock     Clock
	// Actor and Source say who acts and from where, for the audit trail.
	Actor  string
	Source string
	// Owner is this process's identity as the lock's owner ([NewOwner]).
	Owner string
	// Host is the host part of Owner: a lock whose owner is a process of this host that no
	// longer runs is taken over at once ([OwnerDead]). Empty: every owner is trusted until its
	// lease runs out (a controller on Lambda, which shares no host with anyone).
	Host string
	// LockTTL is the lock's lease, which the engine keeps renewing while it runs
	// (default [DefaultLease]). A process that dies holds its environment until then.
	LockTTL time.Duration
	// Parallelism bounds how many functions are worked on at once.
	Parallelism int
	// Poll is how often a bake looks for requests and judges health.
	Poll time.Duration
	// JudgeStateEvery is how often, at most, the health judge's changed state is written while a
	// step bakes or a gate waits (default 15 s; see keepJudgeState). Every verdict the engine
	// records carries it too.
	JudgeStateEvery time.Duration
	// Observe, if set, is told of progress.
	Observe func(Progress)

	mu      sync.Mutex // serialises this engine's writes to the release
	flushed int64      // the revision whose outbox is known to be in the audit trail
}

// Progress is what the engine tells its observer.
type Progress struct {
	Release  Release
	Kind     ProgressKind
	Function string
	Message  string
	BakeLeft time.Duration
	// Verdict is the latest health judgement, with ProgressBake and ProgressHealth.
	Verdict *Verdict
	// Lock is the other process's lock, with ProgressFollowing and ProgressTookOver.
	Lock *Lock
}

// ProgressKind says what happened.
type ProgressKind int

// Kinds of progress.
const (
	ProgressPhase ProgressKind = iota
	ProgressFunction
	ProgressBake
	ProgressHealth
	// ProgressAwaiting: the release waits for a person to promote or roll it back.
	ProgressAwaiting
	// ProgressFollowing: another live process drives the release; Drive follows it (Lock).
	ProgressFollowing
	// ProgressTookOver: Drive took the release over from a process that is gone (Lock).
	ProgressTookOver
)

// errInterrupted: someone else changed the release (a request, or a transition): stop the
// current action and decide again from the stored record.
var errInterrupted = errors.New("the release was changed by someone else")

func (e *Engine) defaults() {
	if e.Clock == nil {
		e.Clock = RealClock{}
	}
	if e.Health == nil {
		e.Health = BakeOnly{}
	}
	if e.LockTTL <= 0 {
		e.LockTTL = DefaultLease
	}
	if e.Parallelism <= 0 {
		e.Parallelism = 64
	}
	if e.Poll <= 0 {
		e.Poll = 250 * time.Millisecond
	}
	if e.JudgeStateEvery <= 0 {
		e.JudgeStateEvery = 15 * time.Second
	}
}

// Run drives the release to a final phase and frees its lock. The caller holds the lock (as
// e.Owner); Run keeps renewing it and stops acting at once if it is lost. If ctx ends first, the
// release stays where it is, its lock is freed, and Run returns ctx's error: `aviary resume`
// continues it, `aviary rollback` ends it.
func (e *Engine) Run(ctx context.Context, id string) (*Release, error) {
	e.defaults()
	r, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	key := LockKey(r.Service, r.Environment)
	// free lets another process take the release over at once, the environment still held by
	// the release while it is live ([Engine.LetGo]); a lost lock is not ours to free.
	free := func() { _ = e.LetGo(ctx, r) }
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hbDone := e.heartbeat(runCtx, key, cancel)
	defer func() {
		cancel(nil)
		<-hbDone
	}()
	for {
		if err := context.Cause(runCtx); err != nil {
			if errors.Is(err, ErrLockLost) {
				return r, fmt.Errorf("release %s: %w; stopped acting", id, err)
			}
			// Interrupted: leave the record as it is.
			free()
			return r, err
		}
		fresh, err := e.load(runCtx, id)
		if err != nil {
			if context.Cause(runCtx) != nil {
				continue // reported at the top of the loop
			}
			free()
			return r, err
		}
		r = fresh
		if r.Phase.Final() {
			if err := e.Store.ReleaseLock(context.WithoutCancel(ctx), key, e.Owner); err != nil {
				return r, fmt.Errorf("free the lock: %w", err)
			}
			return r, nil
		}
		if err := e.advance(runCtx, r); err != nil {
			if errors.Is(err, errInterrupted) || errors.Is(err, ErrConflict) {
				continue
			}
			if context.Cause(runCtx) != nil {
				continue // reported at the top of the loop
			}
			free()
			return r, err
		}
	}
}

// heartbeat renews the lock every third of its lease. If the lock is lost, or renewals fail for
// so long that the lease may have run out (and another process may act), it cancels the run.
func (e *Engine) heartbeat(ctx context.Context, key string, cancel context.CancelCauseFunc) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		renewed := e.Clock.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-e.Clock.After(e.LockTTL / 3):
			}
			now := e.Clock.Now()
			err := e.Store.RenewLock(ctx, key, e.Owner, now.Add(e.LockTTL))
			switch {
			case err == nil:
				renewed = now
			case errors.Is(err, ErrLockLost):
				cancel(ErrLockLost)
				return
			case now.Sub(renewed) > e.LockTTL*2/3 && ctx.Err() == nil:
				cancel(fmt.Errorf("%w (could not renew the lease since %s: %v)", ErrLockLost, renewed.Format(time.TimeOnly), err))
				return
			}
		}
	}()
	return done
}

// load reads the release and appends any audit entries its last writer did not get to.
func (e *Engine) load(ctx context.Context, id string) (*Release, error) {
	r, err := e.Store.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := e.flush(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (e *Engine) flush(ctx context.Context, r *Release) error {
	for i := range r.Outbox {
		ev := r.Outbox[i]
		if err := e.Store.AppendEvent(ctx, &ev); err != nil {
			return fmt.Errorf("audit trail of %s: %w", r.ID, err)
		}
	}
	return nil
}

// advance performs the current phase's action and moves to the next phase.
func (e *Engine) advance(ctx context.Context, r *Release) error {
	if req := r.Request; req != nil {
		switch {
		case req.Action == RequestRollback && r.Phase != RollingBack:
			return e.transition(ctx, r, MoveRollback, requestReason("rollback", req), nil)
		case req.Action == RequestPromote && r.OpenGate() != nil:
			// A promotion at an open gate is that gate's approval: recorded through Decide
			// (unless someone decided first), then acted on as any decision is.
			_, err := Decide(ctx, e.Store, r.ID, Decision{Action: Approve, By: req.By, Via: ViaCLI, Reason: "promotion requested: " + orNone(req.Reason),
				At: e.Clock.Now(), Gate: len(r.Gates)})
			var late *TooLateError
			if err != nil && !errors.As(err, &late) {
				return err
			}
			return errInterrupted
		case req.Action == RequestPromote && (r.Phase == AwaitingApproval && r.LastGate() == nil || r.Phase == Shifting && (req.Now || !r.Baking())):
			return e.transition(ctx, r, MovePromote, requestReason("promotion", req), func(r *Release) { r.Awaiting = "" })
		}
	}
	switch r.Phase {
	case Planned:
		return e.transition(ctx, r, MovePublish, "publishing new versions of "+countFunctions(len(r.Functions)), nil)
	case Publishing:
		if err := e.publish(ctx, r); err != nil {
			return e.rollbackOn(ctx, r, "publishing", err)
		}
		if r.Checks != nil && r.Health.PreTraffic == nil {
			return e.beforeTraffic(ctx, r)
		}
		return e.continueAfter(ctx, r, 0, "every new version is published", nil)
	case Shifting:
		return e.shiftAndBake(ctx, r)
	case AwaitingApproval:
		g := r.LastGate()
		switch {
		case g == nil && r.Awaiting == "":
			return e.transition(ctx, r, MovePromote, "no approval required", nil)
		case g == nil:
			return e.await(ctx, r, nil)
		case g.Decision != nil:
			return e.passGate(ctx, r, g)
		case g.Kind == GateApproval && r.Approval != nil && r.Approval.PreApprove:
			_, err := Decide(ctx, e.Store, r.ID, Decision{Action: Approve, By: "aviary (pre-approved by " + r.Approval.PreApprovedBy + ")",
				Via: ViaPreApprove, Source: e.Source, Reason: "the environment is pre-approved", At: e.Clock.Now(), Gate: len(r.Gates)})
			var late *TooLateError
			if err != nil && !errors.As(err, &late) {
				return err
			}
			return errInterrupted // decided, by this or by someone first: act on the record
		}
		return e.await(ctx, r, g)
	case Promoting:
		if err := e.promote(ctx, r); err != nil {
			return e.rollbackOn(ctx, r, "promoting", err)
		}
		if r.Checks != nil && r.Health.PostTraffic == nil {
			return e.afterTraffic(ctx, r)
		}
		return e.transition(ctx, r, MoveDone, "all traffic on the new versions of "+countFunctions(len(r.Functions)), func(r *Release) { r.EndedAt = e.Clock.Now() })
	case RollingBack:
		failures := e.rollback(ctx, r)
		if errors.Is(failures, errInterrupted) || errors.Is(failures, ErrConflict) || context.Cause(ctx) != nil {
			return failures
		}
		if failures != nil {
			return e.transition(ctx, r, MoveFail, fmt.Sprintf("%s; rollback could not finish: %v", r.Reason, failures), func(r *Release) { r.EndedAt = e.Clock.Now() })
		}
		return e.transition(ctx, r, MoveDone, fmt.Sprintf("every function is back on its previous version (%s)", r.Reason), func(r *Release) { r.EndedAt = e.Clock.Now() })
	}
	return fmt.Errorf("release %s is in an unknown phase %q", r.ID, r.Phase)
}

func countFunctions(n int) string {
	if n == 1 {
		return "1 function"
	}
	return fmt.Sprintf("%d functions", n)
}

func requestReason(what string, req *Request) string {
	s := fmt.Sprintf("%s requested by %s", what, req.By)
	if req.Reason != "" {
		s += ": " + req.Reason
	}
	return s
}

// rollbackOn turns an action's failure into a rollback, unless the failure is the engine's own
// (interrupted, lost lock, stopped), which leaves the release for the next decision.
func (e *Engine) rollbackOn(ctx context.Context, r *Release, during string, err error) error {
	if errors.Is(err, errInterrupted) || errors.Is(err, ErrConflict) || context.Cause(ctx) != nil {
		return err
	}
	return e.transition(ctx, r, MoveRollback, fmt.Sprintf("%s failed: %v", during, err), nil)
}

// transition moves the release to a phase: written (with its audit entry) before anything is
// done in it.
func (e *Engine) transition(ctx context.Context, r *Release, move Move, message string, mutate func(*Release), extra ...Event) error {
	from := r.Phase
	to, err := Next(from, move)
	if err != nil {
		return fmt.Errorf("release %s: %w", r.ID, err)
	}
	err = e.save(ctx, r, func(r *Release) {
		if r.Phase != from {
			return
		}
		r.Phase = to
		if to == RollingBack || to == Failed {
			r.Reason = message
		}
		if to == Shifting || to == Promoting {
			r.Moving = true
		}
		if to != AwaitingApproval {
			r.Awaiting = ""
		}
		if mutate != nil {
			mutate(r)
		}
	}, append(extra, Event{Kind: EventTransition, Phase: to, Message: fmt.Sprintf("%s → %s: %s", from, to, message), Data: map[string]any{"from": string(from), "to": string(to), "move": string(move)}})...)
	if err != nil {
		return err
	}
	e.observe(Progress{Release: *r, Kind: ProgressPhase, Message: message})
	return nil
}

// save applies mutate to the release and writes it with its audit entries, all in one update
// conditional on the revision. If someone else changed the release meanwhile, mutate is applied to
// their version instead when the phase is unchanged (the result is still true), and
// errInterrupted tells the caller to stop and decide again.
func (e *Engine) save(ctx context.Context, r *Release, mutate func(*Release), events ...Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	interrupted := false
	for {
		// The outbox about to be replaced must be in the trail first (a sibling's flush may
		// have failed after its write).
		if e.flushed != r.Revision {
			if err := e.flush(ctx, r); err != nil {
				return err
			}
			e.flushed = r.Revision
		}
		next := clone(r)
		mutate(next)
		if interrupted && next.Phase != r.Phase {
			// A request arrived since this transition was decided: decide again.
			return errInterrupted
		}
		now := e.Clock.Now()
		next.UpdatedAt = now
		next.Outbox = nil
		for i, ev := range events {
			ev.ReleaseID, ev.Time = r.ID, now
			ev.Key = fmt.Sprintf("%s/%d/%d", r.ID, r.Revision, i)
			if ev.Actor == "" {
				ev.Actor = e.Actor
			}
			if ev.Source == "" {
				ev.Source = e.Source
			}
			if ev.Step == 0 && next.Phase == Shifting {
				ev.Step = next.Step + 1
			}
			next.Outbox = append(next.Outbox, ev)
		}
		err := e.Store.UpdateRelease(ctx, next)
		if err == nil {
			*r = *next
			if err := e.flush(ctx, r); err != nil {
				return err
			}
			e.flushed = r.Revision
			if interrupted {
				return errInterrupted
			}
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
		fresh, gerr := e.Store.GetRelease(ctx, r.ID)
		if gerr != nil {
			return gerr
		}
		if fresh.Phase != r.Phase {
			if err := e.flush(ctx, fresh); err != nil {
				return err
			}
			e.flushed = fresh.Revision
			*r = *fresh
			return errInterrupted
		}
		interrupted = interrupted || !sameRequest(fresh.Request, r.Request)
		*r = *fresh
	}
}

func sameRequest(a, b *Request) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// snapshot copies the release for an observer, safely against concurrent saves.
func (e *Engine) snapshot(r *Release) Release {
	e.mu.Lock()
	defer e.mu.Unlock()
	return *clone(r)
}

func clone(r *Release) *Release {
	b, _ := json.Marshal(r)
	var c Release
	_ = json.Unmarshal(b, &c)
	return &c
}

func (e *Engine) observe(p Progress) {
	if e.Observe != nil {
		e.Observe(p)
	}
}

// forEach runs work for every function that is not done yet, in parallel, recording each result
// as it comes. It stops starting work once a result cannot be recorded or the release was
// changed by someone else, and returns the errors of the functions that failed.
func (e *Engine) forEach(ctx context.Context, r *Release, done func(Function) bool,
	work func(ctx context.Context, fn Function) (apply func(*Function), message string, err error)) error {
	return e.each(ctx, r, false, done, work)
}

// each is forEach; with keepGoing, one function's failure does not stop the others (rollback
// tries every function).
//
// Results are recorded by group commit: one writer saves every result that finished while its
// last save ran, in one update of the release. A release of 1,000 functions is a megabyte that
// takes tens of milliseconds to copy and write, longer than the quota leaves between two calls
// (67 ms at 15/s), so saving each result alone made the store, not the quota, the bound. Each
// result is still written before its worker ends (and frees its place for the next function),
// so no more than Parallelism functions are ever done but unrecorded, as before; resuming
// after a crash finds the same kinds of state either way (the fleet recognises work done
// before a crash lost its record).
func (e *Engine) each(ctx context.Context, r *Release, keepGoing bool, done func(Function) bool,
	work func(ctx context.Context, fn Function) (apply func(*Function), message string, err error)) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var todo []Function
	for _, fn := range r.Functions {
		if !done(fn) {
			todo = append(todo, fn)
		}
	}
	var (
		mu       sync.Mutex
		failures []string
		stop     error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, e.Parallelism)
		results  = make(chan doneWork)
		recorded = make(chan struct{})
	)
	go func() {
		defer close(recorded)
		e.record(parent, r, results)
	}()
	for _, fn := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			apply, msg, err := work(ctx, fn)
			if err != nil {
				mu.Lock()
				if ctx.Err() == nil {
					failures = append(failures, fmt.Sprintf("%s: %v", fn.FunctionName, err))
				}
				mu.Unlock()
				if !keepGoing {
					cancel()
				}
				return
			}
			// Work that was done is recorded even when a sibling's failure stopped the rest.
			saved := make(chan error, 1)
			results <- doneWork{fn: fn, apply: apply, message: msg, saved: saved}
			if serr := <-saved; serr != nil {
				mu.Lock()
				if stop == nil {
					stop = serr
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	close(results)
	<-recorded
	if stop != nil {
		return stop
	}
	if len(failures) > 0 {
		sort.Strings(failures)
		return errors.New(strings.Join(failures, "; "))
	}
	return parent.Err()
}

// doneWork is one function's finished work, waiting to be recorded.
type doneWork struct {
	fn      Function
	apply   func(*Function)
	message string
	saved   chan<- error // told once it is recorded (nil) or could not be
}

// record saves the results as they come, each save taking every result that is waiting, and
// tells each worker when its result is in the store; then tells the observer.
func (e *Engine) record(ctx context.Context, r *Release, results <-chan doneWork) {
	for first := range results {
		batch := []doneWork{first}
	more:
		for {
			select {
			case d, ok := <-results:
				if !ok {
					break more
				}
				batch = append(batch, d)
			default:
				break more
			}
		}
		events := make([]Event, len(batch))
		for i, d := range batch {
			events[i] = Event{Kind: EventFunction, Message: d.fn.FunctionName + ": " + d.message, Data: map[string]any{"function": d.fn.FunctionName}}
		}
		err := e.save(ctx, r, func(r *Release) {
			at := make(map[string]int, len(r.Functions))
			for i := range r.Functions {
				at[r.Functions[i].Name] = i
			}
			for _, d := range batch {
				if i, ok := at[d.fn.Name]; ok {
					d.apply(&r.Functions[i])
				}
			}
		}, events...)
		for _, d := range batch {
			d.saved <- err
		}
		if err != nil {
			continue
		}
		snap := e.snapshot(r)
		for _, d := range batch {
			e.observe(Progress{Release: snap, Kind: ProgressFunction, Function: d.fn.Name, Message: d.message})
		}
	}
}

// publish uploads the artifacts, pins aliases that follow $LATEST, and publishes every function's
// new version.
func (e *Engine) publish(ctx context.Context, r *Release) error {
	alias, arts := r.Alias, r.Artifacts // workers read these, not r, which saves rewrite
	// The uploads run beside the publishes rather than all before the first: a function's
	// UpdateFunctionCode waits only for its own artifact, so a large fleet's uploads (not under
	// Lambda's quota) overlap the quota-bound calls instead of adding to them. Each key is
	// uploaded once, a few at a time, in the fleet's order.
	uctx, stopUploads := context.WithCancel(ctx)
	defer stopUploads()
	uploads := e.startUploads(uctx, r)
	if err := e.forEach(ctx, r, func(fn Function) bool { return !fn.PinnedFromLatest || fn.Previous != "" }, func(ctx context.Context, fn Function) (func(*Function), string, error) {
		p, err := e.Fleet.Pin(ctx, alias, fn)
		if err != nil {
			return nil, "", err
		}
		return func(f *Function) {
				f.Previous, f.AliasRevision, f.BaseRevision = p.Version, p.AliasRevision, p.BaseRevision
			},
			fmt.Sprintf("alias %s followed $LATEST; pinned to version %s (the same code) before the update", alias, p.Version), nil
	}); err != nil {
		return err
	}
	return e.forEach(ctx, r, func(fn Function) bool { return fn.New != "" }, func(ctx context.Context, fn Function) (func(*Function), string, error) {
		if u := uploads[fn.ArtifactKey]; u != nil && fn.ImageUri == "" {
			select {
			case <-u.done:
			case <-ctx.Done():
				return nil, "", ctx.Err()
			}
			if u.err != nil {
				return nil, "", fmt.Errorf("upload %s: %w", fn.ArtifactKey, u.err)
			}
		}
		v, err := e.Fleet.Publish(ctx, arts, fn)
		if err != nil {
			return nil, "", err
		}
		return func(f *Function) { f.New = v }, fmt.Sprintf("published version %s (CodeSha256 %s)", v, fn.CodeSha256), nil
	})
}

// upload is one artifact's upload; err is set before done is closed.
type upload struct {
	done chan struct{}
	err  error
}

// uploadParallelism bounds the uploads in flight at once.
const uploadParallelism = 4

// startUploads starts uploading every artifact the release's unpublished functions need, each
// key once, and returns them by key.
func (e *Engine) startUploads(ctx context.Context, r *Release) map[string]*upload {
	uploads := map[string]*upload{}
	var keys []string
	for _, fn := range r.Functions {
		if fn.New == "" && fn.ImageUri == "" && uploads[fn.ArtifactKey] == nil {
			uploads[fn.ArtifactKey] = &upload{done: make(chan struct{})}
			keys = append(keys, fn.ArtifactKey)
		}
	}
	arts, sem := r.Artifacts, make(chan struct{}, uploadParallelism)
	go func() {
		for _, key := range keys {
			u := uploads[key]
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				u.err = ctx.Err()
				close(u.done)
				continue
			}
			go func() {
				defer func() { <-sem }()
				u.err = e.Fleet.Upload(ctx, arts, key, e.Artifacts)
				close(u.done)
			}()
		}
	}()
	return uploads
}

// target is where a function's alias should send traffic at weight w on the new version.
func target(fn Function, w float64) Routing {
	if fn.Previous == "" {
		return Routing{Primary: fn.New}
	}
	return Routing{Primary: fn.Previous, Extra: fn.New, Weight: w}
}

// shiftAndBake puts every alias at the step's weight, then bakes the step while judging health.
func (e *Engine) shiftAndBake(ctx context.Context, r *Release) error {
	step, alias := r.Steps[r.Step], r.Alias
	if !r.Baking() {
		err := e.forEach(ctx, r, func(fn Function) bool { return fn.Weight == step.Weight || (fn.Previous == "" && fn.Weight == 1) },
			func(ctx context.Context, fn Function) (func(*Function), string, error) {
				to := target(fn, step.Weight)
				rev, err := e.Fleet.Route(ctx, alias, fn, to)
				if err != nil {
					return nil, "", err
				}
				if to.Extra == "" {
					return func(f *Function) { f.AliasRevision, f.Weight = rev, 1 },
						fmt.Sprintf("alias %s created at version %s (first release: no previous version to share traffic with)", alias, fn.New), nil
				}
				return func(f *Function) { f.AliasRevision, f.Weight = rev, step.Weight },
					fmt.Sprintf("alias %s: version %s with %s on version %s", alias, fn.Previous, percent(step.Weight), fn.New), nil
			})
		if err != nil {
			return e.rollbackOn(ctx, r, fmt.Sprintf("shifting to step %d", r.Step+1), err)
		}
		if err := e.save(ctx, r, func(r *Release) {
			now := e.Clock.Now()
			r.StepStarted = now
			e.stepRecord(r).Started = now
		}, Event{Kind: EventNote, Message: fmt.Sprintf("step %d of %d: %s on the new versions of every function; baking %s", r.Step+1, len(r.Steps), percent(step.Weight), step.Bake)}); err != nil {
			return err
		}
	}
	v, err := e.bake(ctx, r, step)
	if err != nil {
		return err
	}
	n := r.Step + 1
	healthEvent := Event{Kind: EventHealth, Step: n, Message: fmt.Sprintf("step %d: %s: %s", n, v.Result, v.Reason), Data: v.Data()}
	record := func(r *Release) {
		rec := e.stepRecord(r)
		rec.Ended = e.Clock.Now()
		rec.Verdict = &v
		keepState(r, v)
	}
	policy := "" // as the manifest wrote it, for the record
	if r.Checks != nil {
		policy = r.Checks.OnInconclusive
	}
	switch {
	case v.Result == Fail:
		return e.transition(ctx, r, MoveRollback, fmt.Sprintf("step %d failed its health check: %s", n, v.Reason), record, healthEvent)
	case v.Result == Inconclusive && r.InconclusivePolicy() == OnInconclusiveGate:
		return e.transition(ctx, r, MoveGate, fmt.Sprintf("step %d was inconclusive (%s); waiting for a person to approve or roll back (on_inconclusive: %s)", n, v.Reason, policy),
			func(r *Release) {
				record(r)
				e.openGate(r, n, GateInconclusive, fmt.Sprintf("step %d was inconclusive after its longest bake: %s", n, v.Reason))
			}, healthEvent)
	case v.Result == Inconclusive && r.InconclusivePolicy() != OnInconclusivePromote:
		return e.transition(ctx, r, MoveRollback, fmt.Sprintf("step %d was inconclusive after its longest bake (on_inconclusive: rollback): %s", n, v.Reason), record, healthEvent)
	case v.Result == Inconclusive:
		// Promote, unjudged: a release is never rolled back for want of traffic unless the
		// manifest says so; but it says, loudly and in the record, that nobody judged it.
		why := fmt.Sprintf("step %d was inconclusive after its longest bake (%s); going on unjudged as on_inconclusive: %s says", n, v.Reason, policy)
		if policy == OnInconclusiveAuto {
			why += " (no approval gate to ask a person at)"
		}
		return e.continueAfter(ctx, r, n, "UNJUDGED: "+why, func(r *Release) {
			record(r)
			markUnjudged(r, r.Step, why)
		}, healthEvent, Event{Kind: EventHealth, Step: n, Message: "UNJUDGED: " + why, Data: map[string]any{"unjudged": true}})
	}
	return e.continueAfter(ctx, r, n, fmt.Sprintf("step %d passed (%s)", n, v.Reason), record, healthEvent)
}

// markUnjudged records that step i (0-based) went on without being judged, and why.
func markUnjudged(r *Release, i int, why string) {
	for j := range r.Health.Steps {
		if r.Health.Steps[j].Step == i {
			r.Health.Steps[j].Unjudged = true
		}
	}
	if r.Unjudged == "" {
		r.Unjudged = why
	} else if !strings.Contains(r.Unjudged, why) {
		r.Unjudged += "; " + why
	}
}

// continueAfter moves a release on once n steps are done (0: none, as published): to the
// approval gate if the environment has one here that nobody passed yet, else to the next step,
// else to promotion (at once on a promotion request).
func (e *Engine) continueAfter(ctx context.Context, r *Release, n int, done string, mutate func(*Release), extra ...Event) error {
	if req := r.Request; req != nil && req.Action == RequestPromote {
		return e.transition(ctx, r, MovePromote, fmt.Sprintf("%s; %s", done, requestReason("promotion", req)), mutate, extra...)
	}
	// A first release has no previous version to share traffic with or to compare a canary
	// against: its steps would only wait. It goes to promotion, where one alias write per
	// function creates the alias — still through the environment's approval gate, if it has one.
	first := firstRelease(r)
	if a := r.Approval; a != nil && (a.AtStep == n || first && a.AtStep > n) && !gatePassed(r, a.AtStep) {
		why := "the environment requires approval"
		switch {
		case first:
			why += " before the new versions take traffic (first release: no canary steps)"
			n = a.AtStep
		case n == 0:
			why += " before any traffic moves"
		case n == len(r.Steps):
			why += fmt.Sprintf(" after the last step (%s on the new versions)", percent(r.Steps[n-1].Weight))
		default:
			why += fmt.Sprintf(" after step %d of %d (%s on the new versions)", n, len(r.Steps), percent(r.Steps[n-1].Weight))
		}
		msg := done + "; waiting for a decision: " + why
		if a.PreApprove {
			msg = done + "; at the gate, pre-approved by " + a.PreApprovedBy
		}
		return e.transition(ctx, r, MoveGate, msg, func(r *Release) {
			if mutate != nil {
				mutate(r)
			}
			e.openGate(r, n, GateApproval, why)
		}, extra...)
	}
	if first {
		return e.transition(ctx, r, MovePromote, done+"; first release: no previous version to compare a canary with, so all traffic goes to the new versions at once", mutate, extra...)
	}
	if n < len(r.Steps) {
		return e.transition(ctx, r, MoveShift, fmt.Sprintf("%s; step %d of %d: %s on the new versions", done, n+1, len(r.Steps), percent(r.Steps[n].Weight)),
			func(r *Release) {
				if mutate != nil {
					mutate(r)
				}
				e.enterStep(r, n)
			}, extra...)
	}
	return e.transition(ctx, r, MovePromote, done+"; moving all traffic to the new versions", mutate, extra...)
}

// firstRelease reports whether no function of the release has a previous version.
func firstRelease(r *Release) bool {
	for _, fn := range r.Functions {
		if fn.Previous != "" {
			return false
		}
	}
	return true
}

// openGate starts a wait for a decision after n steps.
func (e *Engine) openGate(r *Release, n int, kind, why string) {
	now := e.Clock.Now()
	g := Gate{Step: n, Kind: kind, Opened: now, Why: why}
	// Only the environment's approval gate times out: an inconclusive step waits for a person.
	if a := r.Approval; a != nil && a.Timeout > 0 && kind == GateApproval {
		g.Deadline = now.Add(a.Timeout)
	}
	r.Gates = append(r.Gates, g)
	r.Awaiting = why
}

// gatePassed reports whether someone approved the release at a gate after n steps.
func gatePassed(r *Release, n int) bool {
	for _, g := range r.Gates {
		if g.Step == n && g.Decision != nil && g.Decision.Action == Approve {
			return true
		}
	}
	return false
}

// passGate acts on a gate's decision.
func (e *Engine) passGate(ctx context.Context, r *Release, g *Gate) error {
	d := g.Decision
	by := fmt.Sprintf("%s via %s", d.By, d.Via)
	if d.Reason != "" {
		by += ": " + d.Reason
	}
	if d.Action == DecideRollback {
		return e.transition(ctx, r, MoveRollback, "rollback decided at the gate by "+by, nil)
	}
	if g.Kind == GateInconclusive {
		step := g.Step
		why := fmt.Sprintf("step %d was inconclusive after its longest bake; approved at the gate by %s", step, by)
		return e.continueAfter(ctx, r, step, "approved at the gate by "+by+" (the step itself is unjudged)", func(r *Release) { markUnjudged(r, step-1, why) })
	}
	return e.continueAfter(ctx, r, g.Step, "approved at the gate by "+by, nil)
}

// enterStep makes step i current, recording when its shift began.
func (e *Engine) enterStep(r *Release, i int) {
	r.Step, r.StepStarted = i, time.Time{}
	r.Health.Steps = append(r.Health.Steps, StepRecord{Step: i, Weight: r.Steps[i].Weight, Shifted: e.Clock.Now()})
}

// stepRecord is the current step's record, made if an older record lacks it.
func (e *Engine) stepRecord(r *Release) *StepRecord {
	if n := len(r.Health.Steps); n > 0 && r.Health.Steps[n-1].Step == r.Step {
		return &r.Health.Steps[n-1]
	}
	r.Health.Steps = append(r.Health.Steps, StepRecord{Step: r.Step, Weight: r.Steps[r.Step].Weight, Shifted: r.UpdatedAt})
	return &r.Health.Steps[len(r.Health.Steps)-1]
}

// bake waits out a step's bake time, judging health and looking for requests as it goes. A failed
// judgement ends it early; an Inconclusive one at the end of the bake extends it, up to the
// checks' longest bake.
func (e *Engine) bake(ctx context.Context, r *Release, step Step) (Verdict, error) {
	end := r.StepStarted.Add(step.Bake)
	longest := end
	if r.Checks != nil && r.StepStarted.Add(r.Checks.MaxBake).After(end) {
		longest = r.StepStarted.Add(r.Checks.MaxBake)
	}
	var stateSaved time.Time
	for {
		now := e.Clock.Now()
		over := !now.Before(end)
		v := Verdict{Result: Pass, Reason: "bake time over; no health checks configured"}
		if r.Checks != nil {
			var err error
			v, err = e.Health.Judge(ctx, r, over)
			if err != nil {
				if context.Cause(ctx) != nil {
					return Verdict{}, context.Cause(ctx)
				}
				// A source that cannot be read fails nothing, and passes nothing either.
				v = Verdict{Result: Inconclusive, Check: "data", Reason: "could not judge health: " + err.Error(), State: v.State, StateNow: v.StateNow}
			}
		}
		v.At = now
		if v.Result == Fail {
			e.observe(Progress{Release: *r, Kind: ProgressHealth, Message: v.Reason, Verdict: &v})
			return v, nil
		}
		if over && (v.Result == Pass || !now.Before(longest)) {
			return v, nil
		}
		if err := e.keepJudgeState(ctx, r, v, &stateSaved); err != nil {
			return Verdict{}, err
		}
		left := end.Sub(now)
		if over {
			left = longest.Sub(now)
			if rec := e.stepRecord(r); !rec.Extended {
				n := r.Step + 1
				if err := e.save(ctx, r, func(r *Release) { e.stepRecord(r).Extended = true },
					Event{Kind: EventHealth, Step: n, Message: fmt.Sprintf("step %d extended by up to %s: %s", n, left.Round(time.Second), v.Reason), Data: v.Data()}); err != nil {
					return Verdict{}, err
				}
			}
		}
		e.observe(Progress{Release: *r, Kind: ProgressBake, BakeLeft: max(left, 0), Message: v.Reason, Verdict: &v})
		wait := e.Poll
		if left > 0 && left < wait {
			wait = left
		}
		if err := e.wait(ctx, wait, "bake"); err != nil {
			return Verdict{}, err
		}
		fresh, err := e.load(ctx, r.ID)
		if err != nil {
			return Verdict{}, err
		}
		if fresh.Revision != r.Revision {
			*r = *fresh
			return Verdict{}, errInterrupted
		}
	}
}

// keepJudgeState writes the health judge's state (v.State) when it changed since the record's:
// at once when v.StateNow asks, or when this bake or wait has not written it yet (saved is zero,
// so a process that stops after one judgement — a controller's tick — leaves its state
// written), else at most every JudgeStateEvery. A nil saved writes a changed state at once: for
// a caller about to stop after several judgements.
func (e *Engine) keepJudgeState(ctx context.Context, r *Release, v Verdict, saved *time.Time) error {
	if v.State == nil || bytes.Equal(v.State, r.Health.JudgeState) {
		return nil
	}
	now := e.Clock.Now()
	if saved != nil && !v.StateNow && !saved.IsZero() && now.Sub(*saved) < e.JudgeStateEvery {
		return nil
	}
	if err := e.save(ctx, r, func(r *Release) { keepState(r, v) }); err != nil {
		return err
	}
	if saved != nil {
		*saved = now
	}
	return nil
}

// keepState puts a verdict's judge state in the record.
func keepState(r *Release, v Verdict) {
	if v.State != nil {
		r.Health.JudgeState = v.State
	}
}

// beforeTraffic runs the checks before any alias moves and records what they found; a failure
// rolls the release back with nothing moved.
func (e *Engine) beforeTraffic(ctx context.Context, r *Release) error {
	pre, err := e.Health.BeforeTraffic(ctx, r)
	if err != nil {
		return e.rollbackOn(ctx, r, "checking the new versions before traffic", err)
	}
	v := pre.Verdict
	v.At = e.Clock.Now()
	record := func(r *Release) {
		r.Health.PreTraffic = &v
		r.Health.Reference = pre.Reference
		r.Health.PreexistingAlarms = pre.PreexistingAlarms
		if pre.State != nil {
			r.Health.JudgeState = pre.State
		}
	}
	ev := Event{Kind: EventHealth, Message: fmt.Sprintf("before traffic: %s: %s", v.Result, v.Reason), Data: v.Data()}
	if v.Result != Pass {
		return e.transition(ctx, r, MoveRollback, "the checks before traffic failed, so no traffic moved: "+v.Reason, record, ev)
	}
	if err := e.save(ctx, r, record, ev); err != nil {
		return err
	}
	e.observe(Progress{Release: *r, Kind: ProgressHealth, Message: "before traffic: " + v.Reason, Verdict: &v})
	return nil
}

// afterTraffic runs the checks once every alias is on its new version; a failure rolls back.
func (e *Engine) afterTraffic(ctx context.Context, r *Release) error {
	v, err := e.Health.AfterTraffic(ctx, r)
	if err != nil {
		return e.rollbackOn(ctx, r, "checking the new versions after traffic", err)
	}
	v.At = e.Clock.Now()
	record := func(r *Release) { r.Health.PostTraffic = &v }
	ev := Event{Kind: EventHealth, Message: fmt.Sprintf("after traffic: %s: %s", v.Result, v.Reason), Data: v.Data()}
	if v.Result != Pass {
		return e.transition(ctx, r, MoveRollback, "the checks after traffic failed: "+v.Reason, record, ev)
	}
	return e.transition(ctx, r, MoveDone, "all traffic on the new versions of "+countFunctions(len(r.Functions))+"; "+v.Reason, func(r *Release) {
		record(r)
		r.EndedAt = e.Clock.Now()
	}, ev)
}

// await waits, in AwaitingApproval, for a decision at gate g (nil: for a promote or rollback
// request), reading the store with backoff. Health is judged all the while, since the canary
// keeps its weight: a failure rolls back as usual. When the gate's deadline passes, the gate
// decides as its approval says, through Decide like any decider.
func (e *Engine) await(ctx context.Context, r *Release, g *Gate) error {
	wait := e.Poll
	var stateSaved time.Time
	for {
		e.observe(Progress{Release: *r, Kind: ProgressAwaiting, Message: r.Awaiting})
		now := e.Clock.Now()
		if g != nil && !g.Deadline.IsZero() && !now.Before(g.Deadline) {
			action := DecideRollback
			if r.Approval != nil && r.Approval.OnTimeout == string(Approve) {
				action = Approve
			}
			_, err := Decide(ctx, e.Store, r.ID, Decision{Action: action, By: "aviary (gate timeout)", Via: ViaTimeout, Source: e.Source,
				Reason: fmt.Sprintf("nobody decided within %s; on_timeout: %s", g.Deadline.Sub(g.Opened).Round(time.Second), action), At: now, Gate: len(r.Gates)})
			if err != nil {
				var late *TooLateError
				if !errors.As(err, &late) {
					return err
				}
			}
			return errInterrupted
		}
		if r.Checks != nil && g != nil && g.Step > 0 {
			v, err := e.Health.Judge(ctx, r, true)
			if err == nil && v.Result == Fail {
				v.At = now
				n := g.Step
				return e.transition(ctx, r, MoveRollback, fmt.Sprintf("step %d failed its health check while waiting at the gate: %s", n, v.Reason),
					func(r *Release) {
						if rec := e.stepRecord(r); rec.Step == n-1 {
							rec.Verdict = &v
						}
						keepState(r, v)
					}, Event{Kind: EventHealth, Step: n, Message: fmt.Sprintf("step %d: %s while waiting at the gate: %s", n, v.Result, v.Reason), Data: v.Data()})
			}
			if err != nil && context.Cause(ctx) != nil {
				return context.Cause(ctx)
			}
			if err := e.keepJudgeState(ctx, r, v, &stateSaved); err != nil {
				return err
			}
		}
		d := wait
		if g != nil && !g.Deadline.IsZero() {
			d = min(d, max(g.Deadline.Sub(now), time.Millisecond))
		}
		waiting := "gate"
		if g == nil {
			waiting = "request"
		}
		if err := e.wait(ctx, d, waiting); err != nil {
			return err
		}
		// Poll with backoff, up to 2 s: a gate may wait for hours.
		wait = min(wait*3/2, max(2*time.Second, e.Poll))
		fresh, err := e.load(ctx, r.ID)
		if err != nil {
			return err
		}
		if fresh.Revision != r.Revision {
			*r = *fresh
			return errInterrupted
		}
	}
}

// promote moves every alias wholly to its new version.
func (e *Engine) promote(ctx context.Context, r *Release) error {
	alias := r.Alias
	return e.forEach(ctx, r, func(fn Function) bool { return fn.Promoted }, func(ctx context.Context, fn Function) (func(*Function), string, error) {
		rev, err := e.Fleet.Route(ctx, alias, fn, Routing{Primary: fn.New})
		if err != nil {
			return nil, "", err
		}
		return func(f *Function) { f.AliasRevision, f.Weight, f.Promoted = rev, 1, true },
			fmt.Sprintf("alias %s: all traffic on version %s", alias, fn.New), nil
	})
}

// touched reports whether the release may have moved a function's alias, so that rollback must
// restore it: by its record, or — once aliases were being moved — because a crash may have lost
// the record of a move.
func touched(moving bool, fn Function) bool {
	return fn.Weight > 0 || fn.Promoted || fn.PinnedFromLatest && fn.Previous != "" || moving && fn.New != ""
}

// rollback puts every alias the release touched back on its previous version, with no extra
// weights; an alias the release created is deleted. It tries every function, and returns the
// failures.
func (e *Engine) rollback(ctx context.Context, r *Release) error {
	alias, moving := r.Alias, r.Moving
	return e.each(ctx, r, true, func(fn Function) bool { return fn.RolledBack || !touched(moving, fn) }, func(ctx context.Context, fn Function) (func(*Function), string, error) {
		to := Routing{Primary: fn.Previous}
		msg := fmt.Sprintf("alias %s: back on version %s, no extra weights", alias, fn.Previous)
		if fn.AliasMissing {
			to = Routing{Delete: true}
			msg = fmt.Sprintf("alias %s deleted (the release created it)", alias)
		}
		var rev string
		var err error
		for attempt := range 3 {
			if rev, err = e.Fleet.Route(ctx, alias, fn, to); err == nil || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-e.Clock.After(time.Duration(attempt+1) * time.Second):
			}
		}
		if err != nil {
			return nil, "", err
		}
		return func(f *Function) { f.AliasRevision, f.Weight, f.Promoted, f.RolledBack = rev, 0, false, true }, msg, nil
	})
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
