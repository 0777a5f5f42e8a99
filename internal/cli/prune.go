package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudfront"

	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/retention"
	"github.com/aviary-deploy/aviary/store"
)

type pruneCmd struct {
	manifestFlags
	storeFlags
	awsFlags
	outputFlags
	Env    string `short:"e" required:"" placeholder:"ENV" help:"The environment whose functions to prune."`
	Keep   int    `default:"5" placeholder:"N" help:"How many of each function's newest versions to keep whatever else holds (at least 1)."`
	DryRun bool   `name:"dry-run" help:"Say what would be deleted, and delete nothing."`
}

func (c *pruneCmd) Help() string {
	return `Deletes the published versions of ENV's functions that nothing needs. A version is never deleted
when:

  - any alias of the function routes to it, as its version or as an extra weight (every alias,
    not only the manifest's);
  - a live release names it (new or previous), or one of the environment's last K promoted
    releases does (retain: {releases: K} in the manifest, default 3), so that a rollback of a
    recent release still works;
  - a CloudFront distribution associates it (Lambda@Edge);
  - an event source mapping or a provisioned-concurrency configuration names it;
  - it is among the newest N (--keep, default 5), or it is $LATEST.

Lambda refuses to delete a Lambda@Edge version until CloudFront has removed its replicas (hours
after its last association went): such a version is reported as deferred and tried again on the
next run. An error on one version is reported and the run goes on; the exit is 1 when any
version failed. Bad input (an unknown environment, --keep below 1, a store that cannot be read)
exits 2 and deletes nothing.

  aviary prune -e production --dry-run
  aviary prune -e production --keep 10 -o json`
}

// Why pruning is safe against a release running at the same time: the store's releases are read
// first, then each function right before its versions are deleted. A release created after the
// store was read publishes a version newer than any read (kept as the newest: --keep is at least
// 1, or not read at all), and its previous version is the one its alias routed to, which the
// later read of the aliases keeps. An alias moved onto a version after the read makes Lambda
// refuse the deletion (ResourceConflictException): the version is kept and reported.

func (c *pruneCmd) Run(e *env) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	envm, err := m.Environment(c.Env)
	if err != nil {
		return usageError{err}
	}
	if c.Keep < 1 {
		return badInput("--keep must be at least 1: the newest version is what a release running now may be publishing, and a function without versions has nothing to roll back to (got %d)", c.Keep)
	}
	if c.rate() <= 0 {
		return badInput("--api-rate must be above 0")
	}
	st, err := c.storeFlags.openExisting(e.ctx, m, "prune keeps what releases need and knows them only from the store; nothing was deleted")
	if err != nil {
		return err
	}
	defer st.Close()
	rels, err := st.ListReleases(e.ctx, store.Filter{Service: m.Service, Environment: c.Env})
	if err != nil {
		return usageError{fmt.Errorf("the store cannot be read, so no release's versions are known and nothing was deleted: %w", err)}
	}
	retained := retention.Retained(rels, envm.Retain.Releases)
	cfg, err := c.config(e.ctx, envm.Region)
	if err != nil {
		return err
	}
	clients := lambdafleet.NewClients(cfg, lambdafleet.Options{Rate: c.rate()})
	cf := cloudfront.NewFromConfig(cfg, func(o *cloudfront.Options) { o.Retryer = lambdafleet.Retryer(10) })

	p := &pruner{
		lambda: clients.Lambda, consumers: clients.Lambda, cloudfront: cf,
		keep: c.Keep, dryRun: c.DryRun, releases: retention.ReleaseNeeds(retained),
	}
	var names []string
	for _, fn := range m.Functions {
		names = append(names, m.FunctionName(envm, fn.Name))
	}
	var progress io.Writer = e.stderr
	if e.quiet {
		progress = io.Discard
	}
	res, err := p.run(e.ctx, names, progress)
	if err != nil {
		return err
	}
	out := pruneOf(m.Service, c.Env, c.Keep, c.DryRun, retained, m.Functions, res)
	if c.json() {
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		printPrune(e.stdout, out)
	}
	if out.Totals.Failed > 0 {
		return exitError{ExitFailed, fmt.Errorf("prune: %s could not be deleted (see above); the others were", plural(out.Totals.Failed, "version", "versions"))}
	}
	return nil
}

// pruner prunes functions: the consumers read once, then each function read and pruned.
type pruner struct {
	lambda interface {
		inventory.LambdaAPI
		inventory.DeleteAPI
	}
	consumers  inventory.ConsumerAPI
	cloudfront inventory.CloudFrontAPI
	keep       int
	dryRun     bool
	releases   map[string]map[string][]retention.Need
	// workers read and prune this many functions at a time (default 4): the shared limiter paces
	// the calls, a few in flight keep it busy.
	workers int
}

// pruned is what became of one function.
type pruned struct {
	name     string
	missing  bool
	err      error // the function could not be read: nothing of it was deleted
	deleted  []string
	deferred []deferredVersion
	kept     []retention.Verdict
	failed   []failedVersion
}

type deferredVersion struct {
	version string
	err     error
}

type failedVersion struct {
	version string
	err     error
}

func (p *pruner) run(ctx context.Context, names []string, progress io.Writer) ([]pruned, error) {
	// What consumes versions outside the functions is read once, before any deletion: if it
	// cannot be read, nothing is deleted.
	esm, err := inventory.ReadEventSourceMappings(ctx, p.consumers, names)
	if err != nil {
		return nil, err
	}
	edge, err := inventory.ReadCloudFront(ctx, p.cloudfront)
	if err != nil {
		return nil, err
	}
	workers := p.workers
	if workers <= 0 {
		workers = 4
	}
	out := make([]pruned, len(names))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		next = make(chan int)
	)
	start, last := time.Now(), time.Now()
	for range min(workers, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = p.function(ctx, names[i], esm[names[i]], edge[names[i]])
				mu.Lock()
				done++
				if time.Since(last) >= 5*time.Second {
					last = time.Now()
					fmt.Fprintf(progress, "pruned %d of %d functions (%s)\n", done, len(names), time.Since(start).Round(time.Second))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, ctx.Err()
}

// function reads one function and deletes the versions nothing needs.
func (p *pruner) function(ctx context.Context, name string, esm, edge map[string][]retention.Need) pruned {
	res := pruned{name: name}
	fn, err := inventory.ReadFunction(ctx, p.lambda, name)
	if err != nil {
		res.err = err
		return res
	}
	if fn.Missing {
		res.missing = true
		return res
	}
	provisioned, err := inventory.ReadProvisioned(ctx, p.consumers, name)
	if err != nil {
		res.err = err
		return res
	}
	in := retention.Function{Name: name}
	for _, v := range fn.Versions {
		in.Versions = append(in.Versions, v.Number)
	}
	for _, a := range fn.Aliases {
		in.Aliases = append(in.Aliases, retention.AliasTarget{Name: a.Name, Version: a.Version, Weights: a.Weights})
	}
	for _, v := range retention.Prune(in, p.keep, p.releases[name], edge, esm, provisioned) {
		if !v.Delete() {
			res.kept = append(res.kept, v)
			continue
		}
		if p.dryRun {
			res.deleted = append(res.deleted, v.Version)
			continue
		}
		switch outcome, err := inventory.DeleteVersion(ctx, p.lambda, name, v.Version); outcome {
		case inventory.Deleted, inventory.Gone:
			res.deleted = append(res.deleted, v.Version)
		case inventory.Deferred:
			res.deferred = append(res.deferred, deferredVersion{v.Version, err})
		case inventory.Conflict:
			res.kept = append(res.kept, retention.Verdict{Version: v.Version, Needs: []retention.Need{{Kind: retention.ByInUse, By: "Lambda refused: " + apiMessage(err)}}})
		default:
			res.failed = append(res.failed, failedVersion{v.Version, err})
		}
	}
	sort.SliceStable(res.kept, func(i, j int) bool { return versionNumber(res.kept[i].Version) < versionNumber(res.kept[j].Version) })
	return res
}

func versionNumber(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// apiMessage is an AWS error's message alone, without the SDK's operation context.
func apiMessage(err error) string {
	var api interface{ ErrorMessage() string }
	if errors.As(err, &api) {
		return api.ErrorMessage()
	}
	return err.Error()
}

// printPrune writes the text report: per function, what was deleted, deferred, kept and why,
// failed; then the totals.
func printPrune(w io.Writer, out *pruneOutput) {
	verb := "deleted"
	if out.DryRun {
		verb = "would delete"
	}
	fmt.Fprintf(w, "Pruning %s in %s: the newest %d of each function kept, and what %s name.\n",
		safe(out.Service), safe(out.Environment), out.Keep, plural(len(out.Retained), "retained release", "retained releases"))
	for _, f := range out.Functions {
		fmt.Fprintf(w, "%s\n", safe(f.FunctionName))
		switch {
		case f.Error != "":
			fmt.Fprintf(w, "  not read, nothing deleted: %s\n", safe(f.Error))
			continue
		case f.Missing:
			fmt.Fprintf(w, "  does not exist\n")
			continue
		}
		if len(f.Deleted) > 0 {
			fmt.Fprintf(w, "  %-13s %s\n", verb, safe(ranges(f.Deleted)))
		}
		for _, d := range f.Deferred {
			fmt.Fprintf(w, "  %-13s %s (still replicated by CloudFront; the next run tries again)\n", "deferred", safe(d.Version))
		}
		for _, k := range groupKept(f.Kept) {
			fmt.Fprintf(w, "  %-13s %s\n", "kept", safe(k))
		}
		for _, x := range f.Failed {
			fmt.Fprintf(w, "  %-13s %s: %s\n", "failed", safe(x.Version), safe(x.Error))
		}
	}
	t := out.Totals
	if out.DryRun {
		fmt.Fprintf(w, "Dry run: would delete %s; %d kept. Nothing was deleted.\n", plural(t.Deleted, "version", "versions"), t.Kept)
		return
	}
	fmt.Fprintf(w, "Deleted %s; %d deferred, %d kept, %d failed.\n", plural(t.Deleted, "version", "versions"), t.Deferred, t.Kept, t.Failed)
}

// groupKept writes kept versions compactly: consecutive versions kept for the same reasons share a
// line ("8-10 newest").
func groupKept(kept []keptOutput) []string {
	var lines []string
	var run []string
	why := ""
	flush := func() {
		if len(run) > 0 {
			lines = append(lines, ranges(run)+" "+why)
		}
		run = nil
	}
	for _, k := range kept {
		var parts []string
		for _, n := range k.Reasons {
			parts = append(parts, n.String())
		}
		w := strings.Join(parts, ", ")
		if w != why {
			flush()
			why = w
		}
		run = append(run, k.Version)
	}
	flush()
	return lines
}

// ranges writes version numbers as runs: 1-4, 6, 9-10.
func ranges(vs []string) string {
	var parts []string
	for i := 0; i < len(vs); {
		j := i
		for j+1 < len(vs) && versionNumber(vs[j+1]) == versionNumber(vs[j])+1 && versionNumber(vs[j]) >= 0 {
			j++
		}
		if j > i {
			parts = append(parts, vs[i]+"-"+vs[j])
		} else {
			parts = append(parts, vs[i])
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
