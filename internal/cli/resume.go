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
		// Settle what a process that died after the release's last transition left undone.
		d, err := newEngine(st, nil, nil, owner(), nil).Drive(e.ctx, r.ID, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "Release %s already ended: %s.\n", r.ID, d.Release.Describe())
		return finish(e, c.outputFlags, log, d.Release, nil)
	}
	eng, err := lifecycle(e, st, r, m, c.awsFlags)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "Resuming release %s from %s.\n", r.ID, r.Describe())
	final, err := drive(e, eng, st, r, m, log, c.Wait, "")
	return finish(e, c.outputFlags, log, final, err)
}
