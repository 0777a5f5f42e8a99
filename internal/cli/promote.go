package cli

import (
	"errors"
	"fmt"

	"github.com/aviary-deploy/aviary/release"
)

type promoteCmd struct {
	manifestFlags
	storeFlags
	awsFlags
	outputFlags
	waitFlags
	Release string `arg:"" help:"The release."`
	Now     bool   `help:"Do not wait for the current step's bake to end."`
	Reason  string `help:"Why, for the audit trail."`
}

func (c *promoteCmd) Run(e *env) error {
	m, st, r, err := openRelease(e, c.File, c.storeFlags, c.Release, "")
	if err != nil {
		return err
	}
	defer st.Close()
	warnEphemeralStore(e.stderr, c.storeFlags.url(m))
	log := logWriter(e, c.outputFlags)
	// The AWS settings are checked before the request is written: bad input changes nothing.
	eng, err := lifecycle(e, st, r, m, c.awsFlags)
	if err != nil {
		return err
	}
	// At a gate, the promotion is the gate's decision too: it fails if someone decided first.
	req, err := eng.RequestPromote(e.ctx, r.ID, c.Reason, c.Now)
	var late *release.TooLateError
	var refused *release.RefusedError
	switch {
	case errors.As(err, &late):
		return exitError{ExitTooLate, err}
	case errors.As(err, &refused):
		return usageError{err}
	case err != nil:
		return err
	}
	fmt.Fprintf(log, "Promoting release %s.\n", safe(r.ID))
	nudge(e.ctx, c.clientFlags, m, req.Release, nudgePromote, e.stderr)
	final, err := drive(e, eng, st, r, m, log, c.Wait, "promotion requested")
	return finish(e, c.outputFlags, log, final, err)
}
