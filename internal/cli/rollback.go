package cli

import (
	"fmt"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
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
	log := logWriter(e, c.outputFlags)
	reason := c.Reason
	if reason == "" {
		reason = "no reason given"
	}
	var locked func() error
	switch r.Phase {
	case release.RolledBack:
		if err := settle(e.ctx, st, r); err != nil {
			return err
		}
		if c.json() {
			return writeJSON(e.stdout, resultOf(r))
		}
		fmt.Fprintf(e.stdout, "Release %s is already rolled back (%s).\n", safe(r.ID), safe(r.Reason))
		return nil
	case release.Promoted, release.Failed:
		// Ended: nobody drives it. Roll it back here, under the lock — and only if it is still
		// what the environment runs (checked again under the lock).
		latest := func() error {
			rs, err := st.ListReleases(e.ctx, store.Filter{Service: r.Service, Environment: r.Environment, Limit: 1})
			if err != nil {
				return err
			}
			if len(rs) > 0 && rs[0].ID != r.ID {
				return badInput("release %s is not the latest of %s (%s is): roll that one back instead", r.ID, r.Environment, rs[0].ID)
			}
			return nil
		}
		if err := latest(); err != nil {
			return err
		}
		from := r.Phase
		locked = func() error {
			if err := latest(); err != nil {
				return err
			}
			_, err := request(e.ctx, st, r.ID, func(r *release.Release) (*release.Event, error) {
				if r.Phase != from {
					return nil, fmt.Errorf("release %s moved to %s meanwhile", r.ID, r.Phase)
				}
				r.Phase, r.EndedAt = release.RollingBack, time.Time{}
				r.Reason = fmt.Sprintf("rollback requested by %s after the release %s: %s", actor(), from, reason)
				r.Request = &release.Request{Action: release.RequestRollback, By: actor(), Reason: reason, At: time.Now()}
				for i := range r.Functions {
					r.Functions[i].RolledBack = false
				}
				return &release.Event{Kind: release.EventTransition, Phase: release.RollingBack,
					Message: fmt.Sprintf("%s → %s: %s", from, release.RollingBack, r.Reason),
					Data:    map[string]any{"from": string(from), "to": string(release.RollingBack)}}, nil
			})
			return err
		}
	default:
		// At a gate, the rollback is the gate's decision too (unless someone decided first).
		first, err := decideAtGate(e, st, r, release.DecideRollback, reason)
		if err != nil {
			return err
		}
		if first != nil && first.Action == release.Approve {
			fmt.Fprintf(log, "The gate was approved first, by %s via %s; rolling back all the same, as an operator's rollback always does.\n", safe(first.By), safe(first.Via))
			reason += fmt.Sprintf(" (after the gate's approval by %s)", first.By)
		}
		if _, err := request(e.ctx, st, r.ID, func(r *release.Release) (*release.Event, error) {
			if r.Request != nil && r.Request.Action == release.RequestRollback {
				return nil, nil // already asked
			}
			if r.Phase.Final() {
				return nil, fmt.Errorf("release %s reached %s meanwhile; run rollback again to roll it back from there", r.ID, r.Phase)
			}
			r.Request = &release.Request{Action: release.RequestRollback, By: actor(), Reason: reason, At: time.Now()}
			return &release.Event{Kind: release.EventRequest, Phase: r.Phase, Message: fmt.Sprintf("rollback requested by %s: %s", actor(), reason)}, nil
		}); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "Rolling back release %s (%s → %s).\n", safe(r.ID), safe(r.Service), safe(r.Environment))
	final, err := drive(e, st, r, m, c.awsFlags, log, c.Wait, locked)
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
