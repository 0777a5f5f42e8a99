package cli

import (
	"fmt"
	"time"
)

type resumeCmd struct {
	storeFlags
	awsFlags
	outputFlags
	Release string        `arg:"" help:"The release."`
	File    string        `short:"f" default:"aviary.yaml" placeholder:"PATH" help:"The manifest, for its store and artifact cache."`
	Wait    time.Duration `default:"30m" help:"How long to wait if another process still drives the release."`
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
		fmt.Fprintf(log, "Release %s already ended: %s.\n", r.ID, r.Describe())
		return finish(e, c.outputFlags, log, r, nil)
	}
	fmt.Fprintf(log, "Resuming release %s from %s.\n", r.ID, r.Describe())
	final, err := drive(e, st, r, m, c.awsFlags, log, c.Wait, nil)
	return finish(e, c.outputFlags, log, final, err)
}
