package cli

import (
	"fmt"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

type statusCmd struct {
	storeFlags
	outputFlags
	Release string `arg:"" optional:"" help:"The release (default: the environment's latest)."`
	Env     string `short:"e" placeholder:"ENV" help:"Show the environment's latest release."`
	File    string `short:"f" default:"aviary.yaml" placeholder:"PATH" help:"The manifest, for its service and store."`
	Events  int    `default:"15" help:"How many of the latest audit entries to show (0: all)."`
}

func (c *statusCmd) Run(e *env) error {
	_, st, r, err := openRelease(e, c.File, c.storeFlags, c.Release, c.Env)
	if err != nil {
		return err
	}
	defer st.Close()
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
		out := map[string]any{"release": r, "events": evs}
		if lock != nil && lock.Holder == r.ID {
			out["lock"] = lock
		}
		return writeJSON(e.stdout, out)
	}
	w := e.stdout
	fmt.Fprintf(w, "Release %s\n", r.ID)
	fmt.Fprintf(w, "  %s → %s, alias %s, region %s\n", r.Service, r.Environment, r.Alias, orNone(r.Region))
	fmt.Fprintf(w, "  phase     %s\n", r.Describe())
	fmt.Fprintf(w, "  strategy  %s (%s)\n", r.Strategy, describeSteps(r.Steps))
	fmt.Fprintf(w, "  started   %s by %s\n", r.CreatedAt.Local().Format(time.DateTime), r.CreatedBy)
	if !r.EndedAt.IsZero() {
		fmt.Fprintf(w, "  ended     %s (%s)\n", r.EndedAt.Local().Format(time.DateTime), r.EndedAt.Sub(r.CreatedAt).Round(time.Second))
	}
	if r.OpenGate() != nil || (r.Awaiting != "" && r.Phase == release.AwaitingApproval) {
		fmt.Fprintf(w, "  awaiting  a decision: %s\n            `aviary approve %s` goes on, `aviary rollback %s` ends it (`aviary link %s` prints signed links)\n", r.Awaiting, r.ID, r.ID, r.ID)
	}
	for _, g := range r.Gates {
		where := fmt.Sprintf("after step %d", g.Step)
		if g.Step == 0 {
			where = "before traffic"
		}
		if d := g.Decision; d != nil {
			fmt.Fprintf(w, "  gate      %s: %s by %s via %s at %s", where, d.Action, d.By, d.Via, d.At.Local().Format(time.DateTime))
			if d.Source != "" {
				fmt.Fprintf(w, " from %s", d.Source)
			}
			if d.Reason != "" {
				fmt.Fprintf(w, ": %s", d.Reason)
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
		fmt.Fprintf(w, "  request   %s by %s at %s %s\n", r.Request.Action, r.Request.By, r.Request.At.Local().Format(time.TimeOnly), r.Request.Reason)
	}
	switch {
	case lock != nil && lock.Holder == r.ID:
		fmt.Fprintf(w, "  driven by %s (lease until %s)\n", lock.Owner, lock.ExpiresAt.Local().Format(time.TimeOnly))
	case !r.Phase.Final():
		fmt.Fprintf(w, "  no process drives it: `aviary resume %s` continues it, `aviary rollback %s` ends it\n", r.ID, r.ID)
	}
	fmt.Fprintln(w)
	functionTable(w, r.Functions)
	fmt.Fprintln(w)
	printHealth(w, r)
	fmt.Fprintln(w)
	shown := evs
	if c.Events > 0 && len(evs) > c.Events {
		shown = evs[len(evs)-c.Events:]
		fmt.Fprintf(w, "  audit trail (latest %d of %d; --events 0 shows all):\n", c.Events, len(evs))
	} else {
		fmt.Fprintln(w, "  audit trail:")
	}
	for _, ev := range shown {
		fmt.Fprintf(w, "  %4d  %s  %-22s %s\n", ev.Seq, ev.Time.Local().Format("15:04:05.000"), ev.Actor, ev.Message)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
