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
	log := logWriter(e, c.outputFlags)
	if r.Phase.Final() {
		if err := settle(e.ctx, st, r); err != nil {
			return err
		}
		fmt.Fprintf(log, "Release %s already ended: %s.\n", safe(r.ID), safe(r.Describe()))
		return finish(e, c.outputFlags, log, r, nil)
	}
	fmt.Fprintf(log, "Resuming release %s from %s.\n", safe(r.ID), safe(r.Describe()))
	final, err := drive(e, st, r, m, c.awsFlags, log, c.Wait, nil)
	return finish(e, c.outputFlags, log, final, err)
}
