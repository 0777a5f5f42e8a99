package cli

import (
	"errors"
	"fmt"

	"github.com/aviary-deploy/aviary/release"
)

type rollbackCmd struct {
	manifestFlags
	storeFlags
	awsFlags
	outputFlags
	waitFlags
	Release string `arg:"" optional:"" help:"The release (default: the environment's latest)."`
	Env     string `short:"e" placeholder:"ENV" help:"Roll back the environment's latest release."`
	Reason  string `help:"Why, for the audit trail."`
}

func (c *rollbackCmd) Run(e *env) error {
	m, st, r, err := openRelease(e, c.File, c.storeFlags, c.Release, c.Env)
	if err != nil {
		return err
	}
	defer st.Close()
	warnEphemeralStore(e.stderr, c.storeFlags.url(m))
	log := logWriter(e, c.outputFlags)
	// The AWS settings are checked before the request is written: bad input changes nothing. An
	// ended release is driven by this process, under the lock the request takes.
	eng, err := lifecycle(e, st, r, m, c.awsFlags)
	if err != nil {
		return err
	}
	req, err := eng.RequestRollback(e.ctx, r.ID, c.Reason)
	var refused *release.RefusedError
	if errors.As(err, &refused) {
		return usageError{err}
	}
	if err != nil {
		return lockedError(err)
	}
	if req.Release.Phase == release.RolledBack {
		// Settle what a process that died after the release's last transition left undone.
		if _, err := eng.Drive(e.ctx, r.ID, 0); err != nil {
			return err
		}
		if c.json() {
			return writeJSON(e.stdout, resultOf(req.Release))
		}
		fmt.Fprintf(e.stdout, "Release %s is already rolled back (%s).\n", safe(r.ID), safe(req.Release.Reason))
		return nil
	}
	if first := req.First; first != nil && first.Action == release.Approve {
		fmt.Fprintf(log, "The gate was approved first, by %s via %s; rolling back all the same, as an operator's rollback always does.\n", safe(first.By), safe(first.Via))
	}
	fmt.Fprintf(log, "Rolling back release %s (%s → %s).\n", safe(r.ID), safe(r.Service), safe(r.Environment))
	nudge(e.ctx, c.clientFlags, m, req.Release, nudgeRollback, e.stderr)
	final, err := drive(e, eng, st, r, m, log, c.Wait, "rollback requested")
	if err != nil || final == nil {
		return finish(e, c.outputFlags, log, final, err)
	}
	err = finish(e, c.outputFlags, log, final, nil)
	if final.Phase == release.RolledBack {
		return nil // what was asked
	}
	if err == nil {
		err = fmt.Errorf("release %s ended %s, not rolled back", final.ID, final.Describe())
	}
	return err
}
