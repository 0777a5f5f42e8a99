package cli

import (
	"errors"
	"fmt"
	"time"

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
	log := logWriter(e, c.outputFlags)
	// At a gate, the promotion is the gate's decision too: it fails if someone decided first.
	if r.OpenGate() != nil {
		_, err := release.Decide(e.ctx, st, r.ID, release.Decision{Action: release.Approve, By: actor(), Via: release.ViaCLI, Source: source(), Reason: c.Reason, At: time.Now(), Gate: len(r.Gates)})
		var late *release.TooLateError
		if errors.As(err, &late) {
			return exitError{ExitTooLate, err}
		}
		if err != nil {
			return err
		}
	}
	if _, err := request(e.ctx, st, r.ID, func(r *release.Release) (*release.Event, error) {
		switch {
		case r.Phase.Final() || r.Phase == release.Promoting:
			return nil, badInput("release %s is %s: there is nothing to promote", r.ID, r.Describe())
		case r.Phase == release.RollingBack:
			return nil, badInput("release %s is rolling back (%s): it cannot be promoted", r.ID, r.Reason)
		case r.Request != nil && r.Request.Action == release.RequestRollback:
			return nil, badInput("a rollback of release %s was requested by %s first", r.ID, r.Request.By)
		}
		r.Request = &release.Request{Action: release.RequestPromote, By: actor(), Reason: c.Reason, At: time.Now(), Now: c.Now}
		when := "after the current step's bake"
		if c.Now {
			when = "now"
		}
		return &release.Event{Kind: release.EventRequest, Phase: r.Phase,
			Message: fmt.Sprintf("promotion requested by %s (%s): skip the remaining steps", actor(), when)}, nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(log, "Promoting release %s.\n", safe(r.ID))
	final, err := drive(e, st, r, m, c.awsFlags, log, c.Wait, nil)
	return finish(e, c.outputFlags, log, final, err)
}
