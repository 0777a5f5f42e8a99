package cli

import (
	"fmt"
)

type resumeCmd struct {
	manifestFlags
	storeFlags
	awsFlags
	outputFlags
	waitFlags
	Release string `arg:"" help:"The release."`
}

func (c *resumeCmd) Run(e *env) error {
	m, st, r, err := openRelease(e, c.File, c.storeFlags, c.Release, "")
	if err != nil {
		return err
	}
	defer st.Close()
	warnEphemeralStore(e.stderr, c.storeFlags.url(m))
	log := logWriter(e, c.outputFlags)
	if r.Phase.Final() {
		// Settle what a process that died after the release's last transition left undone.
		d, err := newEngine(st, nil, nil, owner(), nil).Drive(e.ctx, r.ID, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "Release %s already ended: %s.\n", safe(r.ID), safe(d.Release.Describe()))
		return finish(e, c.outputFlags, log, d.Release, nil)
	}
	eng, err := lifecycle(e, st, r, m, c.awsFlags)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "Resuming release %s from %s.\n", safe(r.ID), safe(r.Describe()))
	final, err := drive(e, eng, st, r, m, log, c.Wait, "")
	return finish(e, c.outputFlags, log, final, err)
}
