package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

type approveCmd struct {
	manifestFlags
	storeFlags
	awsFlags
	outputFlags
	waitFlags
	Release string `arg:"" optional:"" help:"The release (default: the environment's latest)."`
	Env     string `short:"e" placeholder:"ENV" help:"Approve the environment's latest release."`
	Reason  string `help:"Why, for the audit trail."`
	Detach  bool   `help:"Record the decision and return; the process driving the release acts on it."`
}

func (c *approveCmd) Help() string {
	return `Approve a release waiting at its gate: the decision is written to the store, where the
process driving the release (the deploy that is waiting) acts on it within seconds. The first
decision wins: if someone approved or rolled the release back first (from the dashboard, a
signed link, or the gate's timeout), this one is recorded as too late and changes nothing.

Then it follows the release to its end (or, if no process drives it any more, drives it itself),
unless --detach.

` + envDriving
}

func (c *approveCmd) Run(e *env) error {
	m, st, r, err := openRelease(e, c.File, c.storeFlags, c.Release, c.Env)
	if err != nil {
		return err
	}
	defer st.Close()
	warnEphemeralStore(e.stderr, c.storeFlags.url(m))
	log := logWriter(e, c.outputFlags)
	// The AWS settings are checked before the decision is written: bad input changes nothing.
	var eng *release.Engine
	if !c.Detach {
		if eng, err = lifecycle(e, st, r, m, c.awsFlags); err != nil {
			return err
		}
	}
	r, err = release.Decide(e.ctx, st, r.ID, release.Decision{Action: release.Approve, By: actor(), Via: release.ViaCLI, Source: source(), Reason: c.Reason, At: time.Now()})
	var late *release.TooLateError
	switch {
	case errors.As(err, &late):
		return exitError{ExitTooLate, err}
	case errors.Is(err, release.ErrNotWaiting):
		return badInput("%v; nothing was changed (`aviary promote %s` skips the remaining steps instead)", err, r.ID)
	case err != nil:
		return err
	}
	fmt.Fprintf(log, "Approved release %s (%s → %s).\n", safe(r.ID), safe(r.Service), safe(r.Environment))
	nudge(e.ctx, c.clientFlags, m, r, nudgeDecision, e.stderr)
	if c.Detach {
		if c.json() {
			out := resultOf(r)
			out.Outcome = "approved"
			return writeJSON(e.stdout, out)
		}
		if e.quiet {
			fmt.Fprintf(e.stdout, "Approved release %s.\n", safe(r.ID))
		}
		return nil
	}
	final, err := drive(e, eng, st, r, m, log, c.Wait, "approved")
	return finish(e, c.outputFlags, log, final, err)
}
