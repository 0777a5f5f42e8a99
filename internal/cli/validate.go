package cli

import (
	"fmt"
	"sort"
)

type validateCmd struct {
	manifestFlags
}

func (c *validateCmd) Run(e *env) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s is valid: service %s, alias %s, %s, artifacts in s3://%s/%s\n",
		c.File, m.Service, m.Alias, plural(len(m.Functions), "function", "functions"), m.Artifacts.Bucket, m.Artifacts.Prefix)
	var envs []string
	for n := range m.Environments {
		envs = append(envs, n)
	}
	sort.Strings(envs)
	for _, n := range envs {
		env := m.Environments[n]
		pre := ""
		if env.PreApprove {
			pre = ", pre-approved"
		}
		fmt.Fprintf(e.stdout, "  %-12s %s (%s)%s; functions named like %s\n", n, env.Strategy.Name, env.Strategy.Describe(), pre, m.FunctionName(env, m.Functions[0].Name))
	}
	return nil
}
