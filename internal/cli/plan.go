package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/health"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

type planCmd struct {
	manifestFlags
	awsFlags
	reportFlags
	Env              string          `short:"e" required:"" placeholder:"ENV" help:"The environment to plan for."`
	Force            bool            `help:"Plan as deploy --force would: take over aliases that carry weights from another release."`
	TrafficWindows   []time.Duration `name:"traffic-window" default:"1h,24h" placeholder:"D" help:"The windows of recent traffic through the alias to judge each step's bake at (CloudWatch Invocations): plan says whether each step can see an errors.detect-fold regression at that traffic, and the bake it would need."`
	DetailedExitcode bool            `name:"detailed-exitcode" help:"Exit 0 when nothing would change, 2 when a deploy would change something, 1 on any error (bad input included), as terraform plan -detailed-exitcode does."`
}

// built is a function's artifact, made locally: a zip in the artifact cache (deploy) or only
// hashed (plan), never held in memory.
type built struct {
	fn     manifest.Function
	digest artifact.Digest
	size   int64
	key    string
	// image is an image function's image, pinned to its digest; zip and key are empty.
	image lambdafleet.ResolvedImage
}

// prepared is everything a deploy knows before its first write.
type prepared struct {
	m      *manifest.Manifest
	env    *manifest.Environment
	fleet  *lambdafleet.Fleet
	health *health.Checker
	checks *release.Checks
	region string
	built  []built
	rows   []release.PlanRow
	// traffic is what each function's alias served lately (plan only).
	traffic []fnTraffic
}

// prepare builds every artifact and reads every function: the checks a deploy makes before it
// changes anything. keep puts the zips in the artifact cache (deploy); without it they are only
// hashed (plan).
func prepare(ctx context.Context, mf manifestFlags, af awsFlags, envName string, force, keep bool, log io.Writer) (*prepared, error) {
	m, err := mf.load()
	if err != nil {
		return nil, err
	}
	env, err := m.Environment(envName)
	if err != nil {
		return nil, usageError{err}
	}
	fleet, checker, region, err := af.fleet(ctx, env.Region)
	if err != nil {
		return nil, err
	}
	p := &prepared{m: m, env: env, fleet: fleet, health: checker, region: region, checks: releaseChecks(env.Checks)}
	// What overlaps: the plan's reads of every function and alias (GetFunction, GetAlias: most of
	// the calls before the first write, paced by the control-plane quota) start now and run while
	// the zips are built and hashed. The plan needs both — a function changes when its alias
	// serves another digest — but neither needs the other to start. CheckBucket, the images'
	// digests and the managed configuration, a few calls, follow the builds as before.
	reads := prefetch(ctx, fleet, m.Alias, functionNames(m, env), planParallelism)
	defer reads.stop()
	fmt.Fprintf(log, "Building %s of %s (reading them meanwhile)\n", plural(len(m.Functions), "function", "functions"), m.Service)
	if p.built, err = buildAll(ctx, m, keep); err != nil {
		return nil, usageError{err}
	}
	if err := resolveImages(ctx, fleet, p.built); err != nil {
		return nil, err
	}
	if err := fleet.CheckBucket(ctx, m.Artifacts.Bucket); err != nil {
		return nil, usageError{err}
	}
	targets := make([]release.Target, len(p.built))
	for i, b := range p.built {
		targets[i] = release.Target{Name: b.fn.Name, FunctionName: m.FunctionName(env, b.fn.Name), ArtifactKey: b.key, CodeSha256: b.digest.CodeSha256}
		if b.fn.Image != nil {
			targets[i].ArtifactKey, targets[i].CodeSha256, targets[i].ImageUri = "", b.image.CodeSha256(), b.image.URI
			targets[i].Field = "functions." + b.fn.Name + ".image"
		}
	}
	if err := configureTargets(ctx, fleet, p.built, targets); err != nil {
		return nil, usageError{err}
	}
	p.rows, err = release.Plan(ctx, reads, m.Alias, targets, force, planParallelism)
	if err != nil {
		return nil, err
	}
	if problems := release.Problems(p.rows); len(problems) > 0 {
		return p, usageError{fmt.Errorf("nothing was changed: %s", strings.Join(problems, "; "))}
	}
	if p.checks != nil {
		if err := checker.Validate(ctx, p.checks); err != nil {
			return p, usageError{fmt.Errorf("nothing was changed: the checks of %s: %w", env.Name, err)}
		}
	}
	return p, nil
}

// buildAll produces every function's zip, in parallel (as many at a time as there are CPUs, at
// least 4: build commands wait on compilers and disks too): streamed into the artifact cache
// with keep, otherwise only hashed. Functions whose zips are the same bytes share one file.
func buildAll(ctx context.Context, m *manifest.Manifest, keep bool) ([]built, error) {
	out := make([]built, len(m.Functions))
	errs := make([]error, len(m.Functions))
	cache := artifact.Cache{Dir: m.Artifacts.Cache}
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(4, runtime.NumCPU()))
	for i, fn := range m.Functions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if fn.Image != nil {
				out[i] = built{fn: fn} // resolved against ECR by resolveImages
				return
			}
			src := artifact.Source{Function: fn.Name, Zip: fn.Zip, Dir: fn.Dir}
			if fn.Build != nil {
				src.Command, src.CommandDir = fn.Build.Command, fn.Build.Dir
			}
			var d artifact.Digest
			var size int64
			var err error
			if keep {
				d, size, err = cache.Produce(ctx, src)
			} else {
				d, size, err = artifact.Hash(ctx, src)
			}
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = built{fn: fn, digest: d, size: size, key: artifact.Key(m.Artifacts.Prefix, d)}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (c *planCmd) Run(e *env) error {
	err := c.plan(e)
	if !c.DetailedExitcode {
		return err
	}
	var silent silentExit
	if err != nil && !errors.As(err, &silent) {
		return exitError{ExitFailed, err} // bad input too: 2 means changes here
	}
	return err
}

func (c *planCmd) plan(e *env) error {
	log := c.reportFlags.log(e)
	p, err := prepare(e.ctx, c.manifestFlags, c.awsFlags, c.Env, c.Force, false, log)
	if p == nil {
		return err
	}
	warnGateWithoutLinks(e.stderr, p.env)
	if err == nil {
		if terr := readTraffic(e, p, c.TrafficWindows); terr != nil {
			return terr
		}
	}
	out := planOf(p)
	if c.json() {
		if werr := writeJSON(e.stdout, out); werr != nil {
			return werr
		}
	} else if c.markdown() {
		markdownPlan(e.stdout, p)
	} else {
		printPlan(e.stdout, p)
	}
	if err == nil && c.DetailedExitcode && out.Changes > 0 {
		return silentExit(2)
	}
	return err
}

func printPlan(w io.Writer, p *prepared) {
	changed := 0
	fmt.Fprintf(w, "\n%s → %s (alias %s, %s)\n", safe(p.m.Service), safe(p.env.Name), safe(p.m.Alias), p.env.Strategy.Describe())
	fmt.Fprintf(w, "  %-16s %-36s %-8s %-12s %-12s %s\n", "FUNCTION", "LAMBDA", "ALIAS", "CURRENT", "NEW", "")
	for _, r := range p.rows {
		aliasV, cur := r.Current.AliasVersion, short(r.Current.AliasCodeSha256)
		if !r.Current.AliasExists {
			aliasV, cur = "(none)", "-"
		}
		what := "unchanged"
		switch {
		case r.Problem != "":
			what = "PROBLEM: " + safe(r.Problem)
		case r.Change:
			what = "changes"
			changed++
		}
		fmt.Fprintf(w, "  %-16s %-36s %-8s %-12s %-12s %s\n", safe(r.Name), safe(r.FunctionName), safe(aliasV), safe(cur), short(r.CodeSha256), what)
		printConfigChanges(w, r, "      ")
	}
	fmt.Fprintf(w, "%s change, %d unchanged.\n", plural(changed, "function", "functions"), len(p.rows)-changed)
	printImages(w, p)
	fmt.Fprintf(w, "Checks: %s\n", describeChecks(p.checks))
	fmt.Fprintf(w, "Gate: %s\n", safe(describeGate(p.env)))
	printTraffic(w, p, trafficOf(p))
}

func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}

// describeGate says in a line whether and where a release of env waits for a person.
func describeGate(env *manifest.Environment) string {
	a, err := approvalOf(env)
	if err != nil {
		return err.Error()
	}
	if a == nil {
		return "none (add approval: to the environment to wait for a person)"
	}
	where := fmt.Sprintf("after step %d", a.AtStep)
	switch {
	case a.AtStep == 0:
		where = "before any traffic moves"
	case a.AtStep == len(env.Strategy.Steps):
		where = "after the last step"
	}
	s := "waits for approval " + where
	if a.Timeout > 0 {
		s += fmt.Sprintf(", then %s after %s", a.OnTimeout, a.Timeout)
	}
	if a.PreApprove {
		s += "; pre-approved by " + a.PreApprovedBy
	}
	return s
}
