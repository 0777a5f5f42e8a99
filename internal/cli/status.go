package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/aviary-deploy/aviary/internal/textsafe"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

type statusCmd struct {
	manifestFlags
	storeFlags
	reportFlags
	Release string `arg:"" optional:"" help:"The release (default: the environment's latest)."`
	Env     string `short:"e" placeholder:"ENV" help:"Show the environment's latest release."`
	Events  int    `default:"15" help:"How many of the latest audit entries to show (0: all)."`
	Watch   bool   `help:"Follow the release to its end, printing its audit trail as it grows (phase, step, weights, verdicts, gates), then exit as deploy does: 0 promoted, 3 rolled back, 1 failed; 7 if --timeout came first."`
	// Timeout bounds --watch; zero follows the release however long it takes.
	Timeout time.Duration `placeholder:"D" help:"With --watch, stop following after D and exit 7; the release goes on (0: follow it to its end)."`
}

// safe escapes what would act on a terminal in text from outside (see internal/textsafe): every
// reason, name, user agent, release id and function name printed for people goes through it.
func safe(s string) string { return textsafe.Clean(s) }

func (c *statusCmd) Run(e *env) error {
	_, st, r, err := openRelease(e, c.File, c.storeFlags, c.Release, c.Env)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.Watch {
		return c.watch(e, st, r)
	}
	if c.Timeout != 0 {
		return badInput("--timeout bounds --watch; add --watch, or leave --timeout out")
	}
	// Entries a dead process wrote with its last change but did not get to append.
	for i := range r.Outbox {
		ev := r.Outbox[i]
		if err := st.AppendEvent(e.ctx, &ev); err != nil {
			return err
		}
	}
	evs, err := st.Events(e.ctx, r.ID)
	if err != nil {
		return err
	}
	lock, _ := st.GetLock(e.ctx, release.LockKey(r.Service, r.Environment))
	if c.json() {
		return writeJSON(e.stdout, statusOf(r, evs, lock, time.Now()))
	}
	if c.markdown() {
		markdownStatus(e.stdout, r, evs, c.Events)
		return nil
	}
	printStatus(e.stdout, r, evs, lock, c.Events, time.Now())
	return nil
}

// printStatus shows a release for people: where it is, its gates, who drives it, its functions,
// health and the latest maxEvents entries of its audit trail (0: all).
func printStatus(w io.Writer, r *release.Release, evs []release.Event, lock *store.Lock, maxEvents int, now time.Time) {
	id := safe(r.ID)
	fmt.Fprintf(w, "Release %s\n", id)
	fmt.Fprintf(w, "  %s → %s, alias %s, region %s\n", safe(r.Service), safe(r.Environment), safe(r.Alias), safe(orNone(r.Region)))
	fmt.Fprintf(w, "  phase     %s\n", safe(r.Describe()))
	fmt.Fprintf(w, "  strategy  %s (%s)\n", safe(r.Strategy), describeSteps(r.Steps))
	fmt.Fprintf(w, "  started   %s by %s\n", r.CreatedAt.Local().Format(time.DateTime), safe(r.CreatedBy))
	if !r.EndedAt.IsZero() {
		fmt.Fprintf(w, "  ended     %s (%s)\n", r.EndedAt.Local().Format(time.DateTime), r.EndedAt.Sub(r.CreatedAt).Round(time.Second))
	}
	if r.Unjudged != "" {
		fmt.Fprintf(w, "  UNJUDGED  %s\n            (too little traffic to see a regression; `aviary plan` says the bake each step needs)\n", safe(r.Unjudged))
	}
	if r.OpenGate() != nil || (r.Awaiting != "" && r.Phase == release.AwaitingApproval) {
		fmt.Fprintf(w, "  awaiting  a decision: %s\n            `aviary approve %s` goes on, `aviary rollback %s` ends it (`aviary link %s` prints signed links)\n", safe(r.Awaiting), id, id, id)
	}
	for _, g := range r.Gates {
		where := fmt.Sprintf("after step %d", g.Step)
		if g.Step == 0 {
			where = "before traffic"
		}
		if d := g.Decision; d != nil {
			fmt.Fprintf(w, "  gate      %s: %s by %s via %s at %s", where, d.Action, safe(d.By), safe(d.Via), d.At.Local().Format(time.DateTime))
			if d.Source != "" {
				fmt.Fprintf(w, " from %s", safe(d.Source))
			}
			if d.Reason != "" {
				fmt.Fprintf(w, ": %s", safe(d.Reason))
			}
			fmt.Fprintln(w)
		} else {
			fmt.Fprintf(w, "  gate      %s: waiting since %s", where, g.Opened.Local().Format(time.DateTime))
			if !g.Deadline.IsZero() {
				fmt.Fprintf(w, " (decides itself at %s)", g.Deadline.Local().Format(time.DateTime))
			}
			fmt.Fprintln(w)
		}
	}
	if r.Request != nil {
		fmt.Fprintf(w, "  request   %s by %s at %s %s\n", r.Request.Action, safe(r.Request.By), r.Request.At.Local().Format(time.TimeOnly), safe(r.Request.Reason))
	}
	switch {
	case lock != nil && lock.Holder == r.ID && lock.ExpiresAt.After(now):
		fmt.Fprintf(w, "  driven by %s (lease until %s)\n", safe(lock.Owner), lock.ExpiresAt.Local().Format(time.TimeOnly))
	case r.Controller && !r.Phase.Final():
		fmt.Fprintf(w, "  driven by the environment's controller, at its next tick (`aviary rollback %s` ends it)\n", id)
	case !r.Phase.Final():
		fmt.Fprintf(w, "  no process drives it: `aviary resume %s` continues it, `aviary rollback %s` ends it\n", id, id)
	}
	fmt.Fprintln(w)
	functionTable(w, r.Functions)
	fmt.Fprintln(w)
	printHealth(w, r)
	fmt.Fprintln(w)
	shown := evs
	if maxEvents > 0 && len(evs) > maxEvents {
		shown = evs[len(evs)-maxEvents:]
		fmt.Fprintf(w, "  audit trail (latest %d of %d; --events 0 shows all):\n", maxEvents, len(evs))
	} else {
		fmt.Fprintln(w, "  audit trail:")
	}
	for _, ev := range shown {
		fmt.Fprintf(w, "  %4d  %s  %-22s %s\n", ev.Seq, ev.Time.Local().Format("15:04:05.000"), safe(ev.Actor), safe(ev.Message))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
