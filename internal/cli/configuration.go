package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/aviary-deploy/aviary/configvalue"
	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// templateOf is a manifest's configuration block as a release's template: the values as written.
func templateOf(c *manifest.Configuration) release.Settings {
	s := release.Settings{MemorySize: c.MemorySize, Timeout: c.Timeout, Architectures: slices.Clone(c.Architectures)}
	if c.Environment != nil {
		s.Environment = maps.Clone(c.Environment)
	}
	if c.Layers != nil {
		s.Layers = slices.Clone(c.Layers)
	}
	return s
}

// configureTargets resolves every managed configuration at plan time (${VAR} from this process,
// {{ssm:/path}} from SSM) before anything is written. Every problem is reported at once, each
// naming the function and the field.
func configureTargets(ctx context.Context, fleet *lambdafleet.Fleet, built []built, targets []release.Target) error {
	var problems []string
	for i, b := range built {
		if b.fn.Configuration == nil {
			continue
		}
		c, s, err := fleet.PrepareConfiguration(ctx, templateOf(b.fn.Configuration))
		if err != nil {
			field := "functions." + b.fn.Name + ".configuration"
			var ce *lambdafleet.ConfigurationError
			if errors.As(err, &ce) {
				err = fmt.Errorf("%s.environment.%s: %w", field, ce.Key, ce.Err)
			} else {
				err = fmt.Errorf("%s.%w", field, err)
			}
			problems = append(problems, err.Error())
			continue
		}
		targets[i].Configuration, targets[i].Settings = c, s
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing was changed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// printConfigChanges lists a plan row's configuration changes under it, secrets masked.
func printConfigChanges(w io.Writer, r release.PlanRow, indent string) {
	for _, c := range r.ConfigChanges {
		fmt.Fprintf(w, "%s%s\n", indent, safe(c.String()))
	}
}

// configurationPolicy is what the environment's managed configuration needs of IAM; nil: none.
func configurationPolicy(m *manifest.Manifest, env *manifest.Environment) *iampolicy.Configuration {
	var c iampolicy.Configuration
	for _, fn := range m.Functions {
		if fn.Configuration == nil {
			continue
		}
		c.Functions = append(c.Functions, m.FunctionName(env, fn.Name))
		for _, k := range fn.Configuration.Keys() {
			refs, _ := configvalue.Refs(fn.Configuration.Environment[k])
			for _, r := range refs {
				if r.Kind == configvalue.SSM {
					c.Parameters = append(c.Parameters, r.Name)
				}
			}
		}
	}
	if len(c.Functions) == 0 {
		return nil
	}
	return &c
}
