package cli

import (
	"fmt"
	"time"

	"github.com/aviary-deploy/aviary/store"
)

type historyCmd struct {
	manifestFlags
	storeFlags
	outputFlags
	Env   string `short:"e" required:"" placeholder:"ENV" help:"The environment."`
	Limit int    `default:"20" help:"How many releases to list (0: all)."`
}

func (c *historyCmd) Run(e *env) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	if _, err := m.Environment(c.Env); err != nil {
		return usageError{err}
	}
	st, err := c.storeFlags.open(e.ctx, m)
	if err != nil {
		return err
	}
	defer st.Close()
	rs, err := st.ListReleases(e.ctx, store.Filter{Service: m.Service, Environment: c.Env, Limit: c.Limit})
	if err != nil {
		return err
	}
	if c.json() {
		return writeJSON(e.stdout, historyOf(rs))
	}
	if len(rs) == 0 {
		fmt.Fprintf(e.stdout, "No releases of %s to %s yet.\n", safe(m.Service), safe(c.Env))
		return nil
	}
	fmt.Fprintf(e.stdout, "%-40s %-20s %-10s %-20s %s\n", "RELEASE", "STARTED", "FUNCTIONS", "BY", "PHASE")
	for _, r := range rs {
		fmt.Fprintf(e.stdout, "%-40s %-20s %-10d %-20s %s\n", safe(r.ID), r.CreatedAt.Local().Format(time.DateTime), len(r.Functions), safe(r.CreatedBy), safe(r.Describe()))
	}
	return nil
}
