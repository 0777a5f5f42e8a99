package cli

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

type validateCmd struct {
	manifestFlags
	outputFlags
}

func (c *validateCmd) Run(e *env) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	if c.json() {
		out := &validateOutput{File: c.File, Service: m.Service, Alias: m.Alias, Functions: []string{}, Bucket: m.Artifacts.Bucket, Prefix: m.Artifacts.Prefix, Environments: []environmentOutput{}}
		for _, fn := range m.Functions {
			out.Functions = append(out.Functions, fn.Name)
		}
		for _, n := range slices.Sorted(maps.Keys(m.Environments)) {
			env := m.Environments[n]
			out.Environments = append(out.Environments, environmentOutput{Name: n, Strategy: env.Strategy.Name, Steps: env.Strategy.Describe(), PreApprove: env.PreApprove, FunctionName: m.FunctionName(env, m.Functions[0].Name)})
		}
		return writeJSON(e.stdout, out)
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
