package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/manifest"
)

type initCmd struct {
	manifestFlags
	clientFlags
	Prefix string `placeholder:"PREFIX" help:"The functions whose names start with PREFIX (such as shop-); it becomes the service's name."`
	Tag    string `placeholder:"KEY=VALUE" help:"The functions tagged KEY=VALUE (read with ListTags, function by function)."`
	Env    string `short:"e" default:"staging" placeholder:"ENV" help:"The environment the functions make up; a suffix -ENV common to their names becomes {env}."`
	Force  bool   `help:"Overwrite the manifest if it exists."`
}

func (c *initCmd) Help() string {
	return `Writes a starting aviary.yaml (-f) from the functions that exist: every function whose name
starts with --prefix and/or that carries --tag, one environment (--env, strategy all-at-once, to
start), the names mapped back to them through function_name. Edit what it marks TODO: how each
function is built, and the artifact bucket. It never overwrites a manifest without --force, and
checks that what it wrote loads (aviary validate reads it the same way).`
}

// lambdaLister is what init reads of Lambda.
type lambdaLister interface {
	lambda.ListFunctionsAPIClient
	ListTags(ctx context.Context, in *lambda.ListTagsInput, opts ...func(*lambda.Options)) (*lambda.ListTagsOutput, error)
}

func (c *initCmd) Run(e *env) error {
	if c.Prefix == "" && c.Tag == "" {
		return badInput("init: say which functions make up the service: --prefix PREFIX, --tag KEY=VALUE, or both")
	}
	var tagKey, tagValue string
	if c.Tag != "" {
		var ok bool
		if tagKey, tagValue, ok = strings.Cut(c.Tag, "="); !ok || tagKey == "" {
			return badInput("init: --tag %q is not KEY=VALUE", c.Tag)
		}
	}
	if _, err := os.Stat(c.File); err == nil && !c.Force {
		return badInput("init: %s exists; --force overwrites it", c.File)
	}
	cfg, err := c.clientFlags.config(e.ctx, "")
	if err != nil {
		return err
	}
	fns, err := findFunctions(e.ctx, lambda.NewFromConfig(cfg), c.Prefix, tagKey, tagValue)
	if err != nil {
		return err
	}
	if len(fns) == 0 {
		return badInput("init: no function in %s matches%s", cfg.Region, describeFilter(c.Prefix, c.Tag))
	}
	doc, err := startingManifest(fns, c.Prefix, c.Env, cfg.Region)
	if err != nil {
		return err
	}
	// Checked before it is written: a manifest that does not load is never left behind.
	m, err := manifest.Parse(c.File, doc)
	if err != nil {
		return fmt.Errorf("init: the manifest written would not load (a bug): %w", err)
	}
	env, _ := m.Environment(c.Env)
	for _, f := range fns {
		short := f.short
		if got := m.FunctionName(env, short); got != aws.ToString(f.cfg.FunctionName) {
			return fmt.Errorf("init: function %s maps to %s, not %s (a bug)", short, got, aws.ToString(f.cfg.FunctionName))
		}
	}
	if err := os.WriteFile(c.File, doc, 0o644); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(e.stdout, "Wrote %s: service %s, %s in environment %s (%s). Edit its TODOs (the artifact bucket, how each function is built), then: aviary plan -e %s\n",
		c.File, m.Service, plural(len(fns), "function", "functions"), c.Env, cfg.Region, c.Env)
	return nil
}

func describeFilter(prefix, tag string) string {
	var s []string
	if prefix != "" {
		s = append(s, " prefix "+prefix)
	}
	if tag != "" {
		s = append(s, " tag "+tag)
	}
	return strings.Join(s, " and")
}

// found is a function init found, with the short name it gets in the manifest.
type found struct {
	cfg   lambdatypes.FunctionConfiguration
	short string
}

// findFunctions lists the functions (every page) whose names start with prefix and, when tagKey
// is set, that carry tagKey=tagValue.
func findFunctions(ctx context.Context, lc lambdaLister, prefix, tagKey, tagValue string) ([]found, error) {
	var out []found
	pages := lambda.NewListFunctionsPaginator(lc, &lambda.ListFunctionsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list functions: %w", err)
		}
		for _, f := range page.Functions {
			if !strings.HasPrefix(aws.ToString(f.FunctionName), prefix) {
				continue
			}
			if tagKey != "" {
				tags, err := lc.ListTags(ctx, &lambda.ListTagsInput{Resource: f.FunctionArn})
				if err != nil {
					return nil, fmt.Errorf("list the tags of %s: %w", aws.ToString(f.FunctionName), err)
				}
				if v, ok := tags.Tags[tagKey]; !ok || v != tagValue {
					continue
				}
			}
			out = append(out, found{cfg: f})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return aws.ToString(out[i].cfg.FunctionName) < aws.ToString(out[j].cfg.FunctionName)
	})
	return out, nil
}

// commonPrefix is the longest prefix of every name that ends with a separator (- or _).
func commonPrefix(names []string) string {
	p := names[0]
	for _, n := range names[1:] {
		for !strings.HasPrefix(n, p) {
			p = p[:len(p)-1]
		}
	}
	if i := strings.LastIndexAny(p, "-_"); i >= 0 {
		return p[:i+1]
	}
	return ""
}

// startingManifest writes the manifest for fns: the service named for their common prefix, each
// function by the rest of its name (less a common -ENV suffix), and function_name mapping back.
func startingManifest(fns []found, prefix, envName, region string) ([]byte, error) {
	names := make([]string, len(fns))
	for i, f := range fns {
		names[i] = aws.ToString(f.cfg.FunctionName)
	}
	p := commonPrefix(names)
	switch {
	case prefix != "":
		// The prefix asked for, with the separator every name has after it.
		p = prefix
		if !strings.HasSuffix(p, "-") && !strings.HasSuffix(p, "_") {
			if sep := names[0][len(p):min(len(p)+1, len(names[0]))]; sep == "-" || sep == "_" {
				for _, n := range names {
					if !strings.HasPrefix(n, p+sep) {
						sep = ""
					}
				}
				p += sep
			}
		}
	case len(names) == 1:
		// One function: its service is its name's first part.
		if i := strings.IndexAny(names[0], "-_"); i >= 0 {
			p = names[0][:i+1]
		}
	}
	// The names must keep something of their own.
	for _, n := range names {
		if n == p {
			p = commonPrefix([]string{strings.TrimRight(p, "-_")})
		}
	}
	suffix := ""
	for _, sep := range []string{"-", "_"} {
		s := sep + envName
		all := true
		for _, n := range names {
			if !strings.HasSuffix(n, s) || len(n)-len(s) <= len(p) {
				all = false
			}
		}
		if all {
			suffix = s
			break
		}
	}
	service := strings.TrimRight(p, "-_")
	template := ""
	switch {
	case service == "":
		service = strings.TrimRight(strings.TrimSuffix(names[0], suffix), "-_")
		if len(names) > 1 {
			service = "service" // TODO in the manifest: the names share nothing
		}
		template = "{function}"
	default:
		template = "{service}" + p[len(service):] + "{function}"
	}
	if suffix != "" {
		template += suffix[:1] + "{env}"
	}
	for i := range fns {
		fns[i].short = strings.TrimSuffix(names[i][len(p):], suffix)
	}
	if !regexpSafe(service) {
		return nil, errors.New("init: the functions' names give no service name; use --prefix")
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# yaml-language-server: $schema=https://raw.githubusercontent.com/aviary-deploy/aviary/main/manifest/aviary.schema.json\n")
	fmt.Fprintf(&b, "# Written by aviary init from the functions in %s. Check it with aviary validate, then aviary plan -e %s.\n", region, envName)
	fmt.Fprintf(&b, "service: %s\n", service)
	fmt.Fprintf(&b, "# The alias Aviary moves, step by step: point your triggers (API Gateway, event sources) at it.\nalias: live\n")
	fmt.Fprintf(&b, "# Where releases are kept: this machine's sqlite://.aviary/state.db by default; in CI, a DynamoDB\n# table (aviary store init creates it):\n# store: dynamodb://aviary\n")
	fmt.Fprintf(&b, "artifacts:\n  # TODO: a versioned S3 bucket of yours for the release zips (aviary doctor checks it)\n  bucket: %s-artifacts\n  prefix: releases/%s\n", strings.ToLower(strings.ReplaceAll(service, "_", "-")), service)
	fmt.Fprintf(&b, "functions:\n")
	for _, f := range fns {
		fmt.Fprintf(&b, "  %s:\n", f.short)
		fmt.Fprintf(&b, "    # TODO: how %s is built (runtime %s, handler %s): a command writing the\n    # zip's files into $AVIARY_OUT, or dir: a directory to package, or zip: a built zip\n", aws.ToString(f.cfg.FunctionName), orNone(string(f.cfg.Runtime)), orNone(aws.ToString(f.cfg.Handler)))
		fmt.Fprintf(&b, "    build: %s\n", buildGuess(f))
	}
	fmt.Fprintf(&b, "environments:\n  %s:\n", envName)
	fmt.Fprintf(&b, "    function_name: %q\n", template)
	if region != "" {
		fmt.Fprintf(&b, "    region: %s\n", region)
	}
	fmt.Fprintf(&b, "    # All at once, to start; then canary steps with health checks (see the README's Strategies).\n    strategy: all-at-once\n")
	return b.Bytes(), nil
}

func regexpSafe(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
}

// buildGuess is a build command for a function, by its runtime: for a custom runtime, a Go
// bootstrap for its architecture; otherwise a copy of a source directory named for it.
func buildGuess(f found) string {
	if strings.HasPrefix(string(f.cfg.Runtime), "provided") {
		arch := "arm64"
		if len(f.cfg.Architectures) > 0 && f.cfg.Architectures[0] == lambdatypes.ArchitectureX8664 {
			arch = "amd64"
		}
		return fmt.Sprintf(`'GOOS=linux GOARCH=%s CGO_ENABLED=0 go build -tags lambda.norpc -o "$AVIARY_OUT/bootstrap" ./cmd/%s'`, arch, f.short)
	}
	return fmt.Sprintf(`'cp -R ./%s/. "$AVIARY_OUT"/'`, f.short)
}
