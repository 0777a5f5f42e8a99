package cli

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/configvalue"
	"github.com/aviary-deploy/aviary/release"
)

// A release whose managed configuration uses ${VAR} is published by whoever drives it, reading
// the variable from its own environment. Handed to the controller, that is the controller's
// Lambda environment, which has none of the CI's variables unless it was installed with them
// (controller install --function-env): a detach checks, before anything is recorded, that the
// controller has every variable the release's configuration reads, instead of recording a release
// the controller could only roll back.

// runtimeEnv reports whether Lambda's runtime itself sets a variable (those are not in the
// function's configuration, but the controller's process has them).
func runtimeEnv(name string) bool {
	return strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "LAMBDA_") ||
		slices.Contains([]string{"_HANDLER", "_X_AMZN_TRACE_ID", "LANG", "PATH", "LD_LIBRARY_PATH", "TZ"}, name)
}

// envReferences maps every ${VAR} the release's managed configurations read to the fields that
// read it (functions.NAME.configuration.environment.KEY).
func envReferences(fns []release.Function) map[string][]string {
	out := map[string][]string{}
	for _, fn := range fns {
		if fn.Configuration == nil || fn.New != "" {
			continue // published already: nobody resolves it again
		}
		for k, v := range fn.Configuration.Template.Environment {
			refs, _ := configvalue.Refs(v)
			for _, r := range refs {
				if r.Kind == configvalue.Env {
					out[r.Name] = append(out[r.Name], "functions."+fn.Name+".configuration.environment."+k)
				}
			}
		}
	}
	return out
}

// missingEnv lists, sorted, what the release's configurations read from the environment that
// env (a controller's variables) lacks.
func missingEnv(fns []release.Function, env map[string]string) []string {
	var out []string
	for name, fields := range envReferences(fns) {
		if _, ok := env[name]; ok || runtimeEnv(name) {
			continue
		}
		sort.Strings(fields)
		out = append(out, fmt.Sprintf("${%s} (%s)", name, strings.Join(fields, ", ")))
	}
	sort.Strings(out)
	return out
}

// checkControllerEnv says, as bad input, which ${VAR} of the release's configurations the
// controller's function does not have; a controller that cannot be read is a warning's matter
// (the caller's), returned as a plain error.
func checkControllerEnv(ctx context.Context, api controllerAPI, function string, fns []release.Function) error {
	if len(envReferences(fns)) == 0 {
		return nil
	}
	gf, err := api.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(function)})
	if err != nil {
		return fmt.Errorf("read the controller's function %s to check its environment: %w", function, err)
	}
	var env map[string]string
	if c := gf.Configuration; c != nil && c.Environment != nil {
		env = c.Environment.Variables
	}
	if missing := missingEnv(fns, env); len(missing) > 0 {
		return badInput("nothing was recorded: the controller %s publishes this release, and its environment lacks %s, which the managed configuration reads: "+
			"install it with them (`aviary controller install --function-env NAME=VALUE`), take the values from SSM ({{ssm:/path}}), or deploy without --detach",
			function, strings.Join(missing, "; "))
	}
	return nil
}
