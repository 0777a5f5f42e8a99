package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// An attached deploy that is interrupted (SIGINT, SIGTERM: main's context ends) stops driving
// — its engine's Run returns and frees the lock — and then does what the environment says, on a
// fresh context bounded by --cancel-grace from the first signal:
//
//   - with a controller (`controller:`): hands the release to it and asks it for a tick: exit 8;
//   - on_cancel: rollback (the default): rolls the release back, every alias it may have
//     touched back on its previous version with no extra weights, driven to its end here: exit 3
//     (1 if the rollback cannot finish in time: `aviary rollback` finishes it);
//   - on_cancel: leave: leaves the release where it is, for `aviary resume` or `aviary rollback`: exit 9.
//
// The grace is GitHub Actions': when a run is cancelled the runner sends SIGINT to the step's
// process, SIGTERM if it has not exited 7500 ms later, and kills the process tree 2500 ms after
// that (https://docs.github.com/en/actions/reference/workflow-cancellation-reference). A signal
// after the first is reported and ignored (main's NotifyContext keeps them from killing
// the process): a rollback stopped half-way would leave the fleet split, and only SIGKILL, which
// nothing can catch, can stop it. --cancel-grace's default, 9 s, fits the 10 s from SIGINT to the
// kill with a second to spare for freeing the lock and saying what was done.

// Interrupt is the cause of the context NotifyContext ends (context.Cause): the signal and when
// it came, recorded together at its receipt, so that the grace is measured from the signal
// itself, however late the command looks.
type Interrupt struct {
	Signal os.Signal
	At     time.Time
}

func (i *Interrupt) Error() string { return signalName(i.Signal) + " received" }

// NotifyContext is main's signal.NotifyContext: its context ends at the first SIGINT or SIGTERM,
// with an *Interrupt as its cause. Until stop, later signals do not kill the process either.
func NotifyContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(&Interrupt{Signal: s, At: time.Now()})
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		signal.Stop(ch)
		cancel(nil)
	}
}

// interrupts records the signals this process receives while a command runs. main turns the
// first into the end of the command's context (NotifyContext); this reports any later one.
type interrupts struct {
	ch   chan os.Signal
	done chan struct{}

	mu    sync.Mutex
	first os.Signal
	at    time.Time
	later func(os.Signal)
}

// watchInterrupts starts recording SIGINT and SIGTERM; stop ends it.
func watchInterrupts() *interrupts {
	in := &interrupts{ch: make(chan os.Signal, 4), done: make(chan struct{})}
	signal.Notify(in.ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for {
			select {
			case <-in.done:
				return
			case s := <-in.ch:
				in.mu.Lock()
				later := in.later
				if in.first == nil {
					in.first, in.at, later = s, time.Now(), nil
				}
				in.mu.Unlock()
				if later != nil {
					later(s)
				}
			}
		}
	}()
	return in
}

func (in *interrupts) stop() {
	signal.Stop(in.ch)
	close(in.done)
}

// cause names what interrupted the command, whose context is ctx ("SIGINT", "SIGTERM";
// "cancelled" when its context ended without a signal) and when (now, if no signal came): as
// ctx's cause says (NotifyContext), or else as this process's own record of the signals.
func (in *interrupts) cause(ctx context.Context) (string, time.Time) {
	var i *Interrupt
	if errors.As(context.Cause(ctx), &i) {
		return signalName(i.Signal), i.At
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	switch in.first {
	case nil:
		return "cancelled", time.Now()
	case os.Interrupt:
		return "SIGINT", in.at
	case syscall.SIGTERM:
		return "SIGTERM", in.at
	}
	return in.first.String(), in.at
}

// onLater calls f for every signal after the first, from now on.
func (in *interrupts) onLater(f func(os.Signal)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.later = f
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// interrupted does what the environment says with release id, whose deploy was interrupted
// after its engine stopped driving it (see the comment at the top of this file). It says what
// it did on stderr, whatever the output.
func (c *deployCmd) interrupted(e *env, eng *release.Engine, p *prepared, id string, in *interrupts) error {
	sig, at := in.cause(e.ctx)
	ctx, cancel := context.WithDeadline(context.WithoutCancel(e.ctx), at.Add(c.CancelGrace))
	defer cancel()
	r, err := eng.Store.GetRelease(ctx, id)
	if err != nil {
		return fmt.Errorf("interrupted (%s), and release %s cannot be read: %w; `aviary status %s` shows it, `aviary rollback %s` ends it", sig, id, err, id, id)
	}
	// Run frees the lock when it stops; if the signal came before Run read the release, the lock
	// Start took is still this process's: freed here (a lock held by anyone else is left alone).
	if err := eng.LetGo(ctx, r); err != nil {
		return fmt.Errorf("interrupted (%s), and the lock of release %s cannot be freed: %w; `aviary rollback %s` ends it", sig, id, err, id)
	}
	say := func(format string, args ...any) { fmt.Fprintf(e.stderr, "aviary: "+format+"\n", args...) }
	if r.Phase.Final() {
		say("%s: release %s had already ended (%s): nothing to do.", sig, safe(id), safe(r.Describe()))
		return finish(e, c.outputFlags, logWriter(e, c.outputFlags), r, nil)
	}
	toController := p.env.Controller != nil
	var api controllerAPI
	if toController {
		var err error
		if api, err = c.controllerInvoker(ctx, r.Region); err != nil {
			say("Warning: no Lambda client to check and trigger the controller: %s", safe(err.Error()))
			api = nil
		} else if err := checkController(ctx, api, p.env.Controller.Function); errors.Is(err, errNoControllerFunction) {
			// Handed to a controller that does not exist, the release would be driven by no one.
			say("%s: %s, so release %s is not handed to it (`aviary controller install -e %s` installs it); on_cancel decides instead.",
				sig, safe(err.Error()), safe(id), safe(r.Environment))
			toController = false
		} else if err != nil {
			say("Warning: %s; handing the release to it anyway.", safe(err.Error()))
		} else if err := checkControllerEnv(ctx, api, p.env.Controller.Function, r.Functions); err != nil {
			var bad usageError
			if errors.As(err, &bad) && (r.Phase == release.Planned || r.Phase == release.Publishing) {
				// The controller would fail at publish and could only roll back: on_cancel decides now.
				say("%s: release %s is not handed to the controller: %s; on_cancel decides instead.", sig, safe(id), safe(err.Error()))
				toController = false
			} else if !errors.As(err, &bad) {
				say("Warning: %s; handing the release to it anyway.", safe(err.Error()))
			}
		}
	}
	switch {
	case toController:
		return c.cancelToController(e, ctx, eng, p, r, api, sig, say)
	case p.env.OnCancel == manifest.OnCancelLeave:
		say("%s: release %s is left at %s (on_cancel: leave); nothing drives it now. `aviary resume %s` continues it, `aviary rollback %s` ends it.",
			sig, safe(id), safe(r.Describe()), safe(id), safe(id))
		if c.json() {
			_ = writeJSON(e.stdout, resultOf(r))
		}
		return silentExit(ExitLeft)
	}
	say("%s: rolling release %s back from %s (on_cancel: rollback), within %s of the signal; another signal will not stop it.",
		sig, safe(id), safe(r.Describe()), c.CancelGrace)
	in.onLater(func(s os.Signal) {
		say("%s received during the rollback of %s: ignored, the rollback goes on (a rollback stopped half-way would leave the fleet split).", signalName(s), safe(id))
	})
	if _, err := eng.RequestRollback(ctx, id, fmt.Sprintf("deploy interrupted by %s (on_cancel: rollback)", sig)); err != nil {
		return fmt.Errorf("%s: could not request the rollback of release %s: %w; `aviary rollback %s` ends it", sig, id, err, id)
	}
	log := logWriter(e, c.outputFlags)
	v := newView(log, e.color)
	// Only the view: Slack or webhook notices could spend the grace the rollback needs.
	eng.Observe = v.observe
	d, err := eng.Drive(ctx, id, time.Until(at.Add(c.CancelGrace)))
	v.close()
	final := d.Release
	if err != nil || final == nil || !final.Phase.Final() {
		if final == nil {
			final = r
		}
		if err == nil {
			err = errors.New("the rollback did not end")
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("the rollback did not finish within %s of the signal", c.CancelGrace)
		}
		if c.json() {
			_ = writeJSON(e.stdout, resultOf(final))
		}
		return fmt.Errorf("%s: release %s is at %s: %w; `aviary rollback %s` finishes it", sig, id, final.Describe(), err, id)
	}
	say("%s: release %s %s in %s after the signal.", sig, safe(id), ended(final), time.Since(at).Round(10*time.Millisecond))
	return finish(e, c.outputFlags, log, final, nil)
}

// cancelToController hands an interrupted deploy's release to the environment's controller
// (api nil: not triggered). The hand-off comes first, so that the grace cannot run out before the
// release is someone's; then what publishing had not uploaded goes to S3 with the time left
// (the controller has no local cache), and the controller is asked for a tick.
func (c *deployCmd) cancelToController(e *env, ctx context.Context, eng *release.Engine, p *prepared, r *release.Release, api controllerAPI, sig string, say func(string, ...any)) error {
	ctl := p.env.Controller
	h, err := handOver(ctx, eng, r.ID, "deploy cancelled: "+sig)
	if err != nil {
		return fmt.Errorf("%s: could not hand release %s to the controller %s: %w; it is left at %s: `aviary resume %s` continues it, `aviary rollback %s` ends it",
			sig, r.ID, ctl.Function, err, r.Describe(), r.ID, r.ID)
	}
	// A moment is kept for the trigger.
	upCtx, cancel := ctx, context.CancelFunc(func() {})
	if deadline, ok := ctx.Deadline(); ok {
		upCtx, cancel = context.WithDeadline(ctx, deadline.Add(-min(time.Second, time.Until(deadline)/2)))
	}
	err = uploadAll(upCtx, eng.Fleet, h.Artifacts, h.Functions, eng.Artifacts)
	cancel()
	if err != nil {
		say("WARNING: %s: the artifacts of release %s are not all in S3 (%s). The controller publishes from S3 alone: its publish will fail "+
			"on the missing artifact and roll the release back. `aviary rollback %s` ends it now; deploy again to ship this code.",
			sig, safe(h.ID), safe(err.Error()), safe(h.ID))
	}
	var inv invoker
	if api != nil {
		inv = api
	}
	trigger(ctx, inv, ctl, h, tickCancel, e.stderr)
	say("%s: release %s (at %s) is handed to the controller %s, which drives it on from its next tick. Follow it with `aviary status %s --watch`; `aviary rollback %s` ends it.",
		sig, safe(h.ID), safe(h.Describe()), safe(ctl.Function), safe(h.ID), safe(h.ID))
	if c.json() {
		out := resultOf(h)
		out.Outcome = "handed-off"
		_ = writeJSON(e.stdout, out)
	}
	return silentExit(ExitHandedOff)
}
