package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// `aviary status RELEASE --watch` follows a release to its end, whoever drives it (a deploy, a
// resume, the controller): it reads the record, never the lock, so it never gets in a driver's
// way. It prints the audit trail as it grows — every transition, function move, verdict, gate
// and request is an entry — with a line for the release's state when it changes, then exits as
// deploy does for that end.

// watchPoll is how often --watch reads the release: one GetRelease (and, when the release
// changed, one read of its audit trail), cheap for SQLite and DynamoDB alike.
const watchPoll = 500 * time.Millisecond

func (c *statusCmd) watch(e *env, st store.Store, r *release.Release) error {
	log := c.reportFlags.log(e)
	var deadline <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	fmt.Fprintf(log, "Following release %s (%s → %s, %s).\n", safe(r.ID), safe(r.Service), safe(r.Environment), describeSteps(r.Steps))
	w := watcher{log: log, max: c.Events, seen: -1, rev: -1, now: time.Now}
	var evs []release.Event
	stopped := ""
	for {
		if r.Revision != w.rev {
			var err error
			if evs, err = w.show(e, st, r); err != nil {
				return err
			}
		}
		if r.Phase.Final() {
			break
		}
		if err := w.hint(e, st, r); err != nil {
			return err
		}
		w.stale(r)
		w.bake(r)
		select {
		case <-e.ctx.Done():
			stopped = "interrupted"
		case <-deadline:
			stopped = fmt.Sprintf("after %s (--timeout)", c.Timeout)
		case <-time.After(watchPoll):
		}
		if stopped != "" {
			break
		}
		fresh, err := st.GetRelease(e.ctx, r.ID)
		if err != nil {
			if e.ctx.Err() != nil {
				continue // reported as interrupted above
			}
			if errors.Is(err, store.ErrNotFound) {
				// Exit 2, not 1: 1 says the release failed.
				return usageError{fmt.Errorf("release %s is no longer in the store (deleted while it was followed)", r.ID)}
			}
			return fmt.Errorf("read release %s: %w", r.ID, err)
		}
		r = fresh
	}
	if err := c.watchResult(e, st, r, evs); err != nil {
		return err
	}
	if stopped != "" {
		return exitError{ExitStillLive, fmt.Errorf("stopped following release %s %s: it is at %s and goes on; `aviary status %s --watch` follows it again, `aviary rollback %s` ends it",
			safe(r.ID), stopped, safe(r.Describe()), safe(r.ID), safe(r.ID))}
	}
	return outcome(r)
}

// watchResult prints where the watch left the release: the status document (json), report
// (markdown), or its end and functions (text; printed even with --quiet).
func (c *statusCmd) watchResult(e *env, st store.Store, r *release.Release, evs []release.Event) error {
	switch {
	case c.json():
		lock, _ := st.GetLock(e.ctx, release.LockKey(r.Service, r.Environment))
		return writeJSON(e.stdout, statusOf(r, evs, lock, time.Now()))
	case c.markdown():
		markdownStatus(e.stdout, r, evs, c.Events)
		return nil
	}
	color := phaseColor(r.Phase)
	if r.Unjudged != "" {
		color = "33"
	}
	fmt.Fprintf(e.stdout, "\nRelease %s %s\n", safe(r.ID), paint(e.color, e.stdout, color, safe(r.Describe())))
	functionTable(e.stdout, r.Functions)
	return nil
}

// watcher is what --watch has printed so far.
type watcher struct {
	log      io.Writer
	max      int   // audit entries shown at first (0: all)
	seen     int64 // the last audit entry printed
	rev      int64 // the revision last shown
	state    string
	hinted   bool
	lastLock time.Time
	lastBake time.Time
	// now is the watcher's clock; updated is the release's UpdatedAt last seen, moved when (by
	// now) it was first seen; staleWarned: the warning that the controller may not run is given.
	now         func() time.Time
	updated     time.Time
	moved       time.Time
	staleWarned bool
}

// controllerStale is how long a controller-driven release may go unchanged before --watch says
// the controller may not be running: three ticks of its schedule (a minute each). A release
// baking writes at least its judge's state every tick or so; one waiting at a gate may be quiet
// longer, hence a warning, once, not an end.
const controllerStale = 3 * time.Minute

// stale says, once, when a release the controller owns has not changed for controllerStale, as
// this process's clock measures it (the record's times are other hosts').
func (w *watcher) stale(r *release.Release) {
	now := w.now()
	if !r.UpdatedAt.Equal(w.updated) || w.moved.IsZero() {
		w.updated, w.moved = r.UpdatedAt, now
		return
	}
	if w.staleWarned || !r.Controller || r.Phase.Final() || now.Sub(w.moved) < controllerStale {
		return
	}
	w.staleWarned = true
	fmt.Fprintf(w.log, "  Warning: release %s is the controller's and has not changed for %s: the controller may not be running (`aviary controller status -e %s` shows its ticks); still watching.\n",
		safe(r.ID), now.Sub(w.moved).Round(time.Second), safe(r.Environment))
}

// show prints the audit entries appended since the last call and the release's state if it
// changed, and returns the whole trail.
func (w *watcher) show(e *env, st store.Store, r *release.Release) ([]release.Event, error) {
	// Entries a dead driver wrote with its last change but did not get to append.
	for i := range r.Outbox {
		ev := r.Outbox[i]
		if err := st.AppendEvent(e.ctx, &ev); err != nil && e.ctx.Err() == nil {
			return nil, err
		}
	}
	evs, err := st.Events(e.ctx, r.ID)
	if err != nil {
		if e.ctx.Err() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("read the audit trail of %s: %w", r.ID, err)
	}
	w.rev = r.Revision
	shown := evs
	if w.seen < 0 && w.max > 0 && len(evs) > w.max {
		shown = evs[len(evs)-w.max:]
		fmt.Fprintf(w.log, "  (the latest %d of %d audit entries; --events 0 shows all)\n", w.max, len(evs))
	}
	for _, ev := range shown {
		if ev.Seq <= w.seen {
			continue
		}
		w.seen = ev.Seq
		fmt.Fprintf(w.log, "%s  %-22s %s\n", ev.Time.Local().Format("15:04:05"), safe(ev.Actor), safe(ev.Message))
	}
	if s := stateLine(r); s != w.state {
		w.state = s
		fmt.Fprintf(w.log, "  now: %s\n", s)
	}
	return evs, nil
}

// stateLine is the release's state in one line: its phase and step, and where its aliases send
// traffic.
func stateLine(r *release.Release) string {
	parts := []string{safe(r.Describe())}
	if r.Controller {
		parts = append(parts, "driven by the controller")
	}
	weights := map[string]int{}
	var order []string
	for _, f := range r.Functions {
		var where string
		switch {
		case f.RolledBack:
			where = "rolled back"
		case f.Promoted:
			where = "100% on new"
		case f.Weight > 0:
			where = manifest.Percent(f.Weight) + " on new"
		default:
			where = "untouched"
		}
		if weights[where] == 0 {
			order = append(order, where)
		}
		weights[where]++
	}
	var ws []string
	for _, where := range order {
		ws = append(ws, fmt.Sprintf("%d %s", weights[where], where))
	}
	return strings.Join(append(parts, strings.Join(ws, ", ")), " · ")
}

// hint says, once, when nothing drives the release: no live lock holds it and no controller
// owns it, so it waits for `aviary resume` or `aviary rollback`. The lock is read every 5 s.
func (w *watcher) hint(e *env, st store.Store, r *release.Release) error {
	if w.hinted || r.Controller || time.Since(w.lastLock) < 5*time.Second {
		return nil
	}
	w.lastLock = time.Now()
	l, err := st.GetLock(e.ctx, release.LockKey(r.Service, r.Environment))
	if err != nil {
		if e.ctx.Err() != nil || errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	if l != nil && l.Holder == r.ID && l.ExpiresAt.After(time.Now()) {
		return nil
	}
	w.hinted = true
	fmt.Fprintf(w.log, "  nothing drives release %s now (no process holds its lock, no controller owns it): `aviary resume %s` continues it, `aviary rollback %s` ends it; still watching.\n",
		safe(r.ID), safe(r.ID), safe(r.ID))
	return nil
}

// bake prints how long the current step has left to bake, every 15 s.
func (w *watcher) bake(r *release.Release) {
	if !r.Baking() || r.Step >= len(r.Steps) || time.Since(w.lastBake) < 15*time.Second {
		return
	}
	w.lastBake = time.Now()
	left := max(time.Until(r.StepStarted.Add(r.Steps[r.Step].Bake)), 0)
	fmt.Fprintf(w.log, "%s    baking step %d: %s left\n", time.Now().Format("15:04:05"), r.Step+1, left.Round(time.Second))
}
