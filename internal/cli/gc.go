package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/retention"
	"github.com/aviary-deploy/aviary/store"
)

type gcCmd struct {
	manifestFlags
	storeFlags
	awsFlags
	outputFlags
	Env    string `short:"e" required:"" placeholder:"ENV" help:"The environment whose region and credentials reach the bucket (the marking covers every environment of the manifest)."`
	Grace  string `default:"7d" placeholder:"D" help:"Keep unreachable artifacts younger than this: days (7d) or a duration (36h)."`
	DryRun bool   `name:"dry-run" help:"Say what would be deleted; delete nothing."`
	// AllowMissing: a function Lambda answers ResourceNotFound for may be one gc may not see.
	AllowMissing bool `name:"allow-missing" help:"Go on when a function a release names does not exist (it really was deleted): its versions reach nothing."`
}

func (c *gcCmd) Help() string {
	return `Deletes the artifacts (PREFIX/<sha256>.zip) that nothing reaches, once older than --grace.

An artifact is reachable when it is the code of any existing version, or $LATEST, of any function
of ANY environment of the manifest (they share the bucket and prefix: marking only ENV's would
delete the others'), or the artifact or base code of a retained release (live, or among an
environment's latest retain.releases promoted) of any environment. gc reads them all first and
deletes nothing if any cannot be read. Age alone never deletes anything: the grace period only
spares an upload whose version is not yet published. Objects under the prefix that are not
artifact keys are never touched.

In a versioned bucket DeleteObject leaves a delete marker and keeps the object as a noncurrent
version, still billed, until a NoncurrentVersionExpiration rule (or someone) removes it. gc does
not delete noncurrent versions: a mistaken collection stays recoverable by removing the delete
marker. Add a NoncurrentVersionExpiration rule to free the storage.

A function Lambda says does not exist (ResourceNotFound) while a release in the store names it
stops gc (exit 2, nothing deleted): it may be one these credentials or this region cannot see,
whose versions still use their artifacts. When it really was deleted, --allow-missing lets gc go
on, its versions reaching nothing.

Each service needs its own artifacts prefix: when the store holds releases of another service
that recorded the same bucket and prefix, gc refuses (it cannot read that service's functions,
so it cannot know which of their artifacts are still used) and deletes nothing.

Exit codes: 0 done; 2 bad input (unknown environment, bad --grace, unreadable bucket, a function
or the store that cannot be read, a missing function a release names, a prefix shared with
another service), nothing deleted; 1 a deletion failed.`
}

func gcObjectOf(v retention.ObjectVerdict) gcObjectOutput {
	return gcObjectOutput{Key: v.Object.Key, Size: v.Object.Size, LastModified: v.Object.LastModified, Needs: v.Needs}
}

func (c *gcCmd) Run(e *env) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	envm, err := m.Environment(c.Env)
	if err != nil {
		return usageError{err}
	}
	grace, err := retention.ParseGrace(c.Grace)
	if err != nil {
		return badInput("--grace: %v", err)
	}
	if c.rate() <= 0 {
		return badInput("--api-rate must be above 0")
	}
	progress := io.Writer(e.stderr)
	if e.quiet {
		progress = io.Discard
	}
	cfg, err := c.config(e.ctx, envm.Region)
	if err != nil {
		return err
	}
	clients := lambdafleet.NewClients(cfg, lambdafleet.Options{Rate: c.rate()})
	bucket, prefix := m.Artifacts.Bucket, m.Artifacts.Prefix
	listPrefix := strings.Trim(prefix, "/")
	if listPrefix != "" {
		listPrefix += "/"
	}

	// Everything is read before anything is deleted; any read that fails stops gc here.
	versioning, err := inventory.Versioning(e.ctx, clients.S3, bucket)
	if err != nil {
		return usageError{fmt.Errorf("nothing was deleted: the artifact bucket %s cannot be read: %w", bucket, err)}
	}
	objects, err := inventory.ListObjects(e.ctx, clients.S3, bucket, listPrefix)
	if err != nil {
		return usageError{fmt.Errorf("nothing was deleted: the artifact bucket %s cannot be read: %w", bucket, err)}
	}
	st, err := c.storeFlags.openExisting(e.ctx, m, "gc keeps the artifacts releases name and knows them only from the store; nothing was deleted")
	if err != nil {
		return err
	}
	defer st.Close()
	// Every service's releases: another service whose releases record the same bucket and
	// prefix keeps its artifacts there too, and gc cannot read that service's functions.
	all, err := st.ListReleases(e.ctx, store.Filter{})
	if err != nil {
		return usageError{fmt.Errorf("nothing was deleted: the store's releases cannot be read: %w", err)}
	}
	if others := sharingServices(all, m.Service, bucket, prefix); len(others) > 0 {
		return usageError{fmt.Errorf("nothing was deleted: the releases of %s also keep their artifacts in s3://%s/%s, and gc cannot read that service's functions to know which of them are still used; give each service its own artifacts prefix", strings.Join(others, ", "), bucket, strings.Trim(prefix, "/"))}
	}
	var retained []*release.Release
	envNames := sortedEnvs(m)
	var fns []inventory.Function
	for _, name := range envNames {
		other := m.Environments[name]
		var rels []*release.Release
		for _, r := range all {
			if r.Service == m.Service && r.Environment == name {
				rels = append(rels, r)
			}
		}
		retained = append(retained, retention.Retained(rels, other.Retain.Releases)...)
		lc := clients.Lambda
		if r := other.Region; r != "" && r != cfg.Region && c.Region == "" {
			ocfg, err := c.config(e.ctx, r)
			if err != nil {
				return err
			}
			lc = lambdafleet.NewClients(ocfg, lambdafleet.Options{Rate: c.rate()}).Lambda
		}
		fmt.Fprintf(progress, "Reading %s of %s\n", plural(len(m.Functions), "function", "functions"), name)
		read, err := readFunctions(e.ctx, lc, functionNames(m, other))
		if err != nil {
			return usageError{fmt.Errorf("nothing was deleted: the functions of %s cannot all be read (gc must see every version that may use an artifact): %w", name, err)}
		}
		if missing := retention.MissingNamed(read, rels); len(missing) > 0 && !c.AllowMissing {
			return usageError{fmt.Errorf("nothing was deleted: %s of %s (named by releases in the store) cannot be found: gc cannot tell a function it may not see from one that was deleted, and the artifacts its versions use would look unreachable; if %s really deleted, run again with --allow-missing", strings.Join(missing, ", "), name, map[bool]string{true: "it was", false: "they were"}[len(missing) == 1])}
		}
		fns = append(fns, read...)
	}
	plan, err := retention.PlanCollection(retention.Collect{Prefix: prefix, Objects: objects, Functions: fns, Releases: retained, Now: time.Now(), Grace: grace})
	if err != nil {
		return fmt.Errorf("nothing was deleted: %w", err)
	}

	// A deploy that started since the store was read recorded its release before uploading, and
	// its upload skips a key already there: read the releases again right before deleting, and
	// keep every key a live one names. (What remains is a deploy starting during the deletions
	// themselves: its UpdateFunctionCode finds no object and the release fails before shifting
	// any traffic; deploying again uploads the artifact again.)
	if !c.DryRun && len(plan.Delete) > 0 {
		again, err := st.ListReleases(e.ctx, store.Filter{Service: m.Service})
		if err != nil {
			return usageError{fmt.Errorf("nothing was deleted: the store's releases cannot be read again before deleting: %w", err)}
		}
		plan = retention.SpareLive(plan, again)
	}

	out := &gcOutput{Service: m.Service, Environment: envm.Name, Bucket: bucket, Prefix: prefix, Grace: grace.String(), DryRun: c.DryRun,
		Versioned: versioning != "", Deleted: []gcObjectOutput{}, Kept: []gcObjectOutput{}, Foreign: plan.Foreign}
	for _, v := range plan.Keep {
		out.Kept = append(out.Kept, gcObjectOf(v))
	}
	for _, v := range plan.Delete {
		o := gcObjectOf(v)
		if !c.DryRun {
			if _, err := clients.S3.DeleteObject(e.ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(v.Object.Key)}); err != nil {
				o.Error = err.Error()
				out.Failed = append(out.Failed, o)
				continue
			}
		}
		out.Deleted = append(out.Deleted, o)
		out.Bytes += o.Size
	}
	if c.json() {
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		printGC(e.stdout, out, manifestEnvs(m))
	}
	if len(out.Failed) > 0 {
		return fmt.Errorf("%s could not be deleted", plural(len(out.Failed), "artifact", "artifacts"))
	}
	return nil
}

// sharingServices are the services other than service, sorted, whose releases recorded their
// artifacts in bucket under the same prefix.
func sharingServices(rels []*release.Release, service, bucket, prefix string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rels {
		if r.Service == service || seen[r.Service] || r.Artifacts.Bucket != bucket || strings.Trim(r.Artifacts.Prefix, "/") != strings.Trim(prefix, "/") {
			continue
		}
		seen[r.Service] = true
		out = append(out, r.Service)
	}
	sort.Strings(out)
	return out
}

func manifestEnvs(m *manifest.Manifest) string { return strings.Join(sortedEnvs(m), ", ") }

// sortedEnvs are the manifest's environment names, sorted.
func sortedEnvs(m *manifest.Manifest) []string {
	names := make([]string, 0, len(m.Environments))
	for n := range m.Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func printGC(w io.Writer, out *gcOutput, envs string) {
	verb := "Deleted"
	if out.DryRun {
		verb = "Would delete"
	}
	fmt.Fprintf(w, "Artifacts in s3://%s/%s, reachable from every environment (%s), grace %s\n", safe(out.Bucket), safe(strings.Trim(out.Prefix, "/")), safe(envs), out.Grace)
	for _, o := range out.Deleted {
		fmt.Fprintf(w, "  %-14s %s (%s, uploaded %s)\n", strings.ToLower(verb), safe(o.Key), retention.Bytes(o.Size), o.LastModified.UTC().Format(time.DateTime))
	}
	for _, o := range out.Failed {
		fmt.Fprintf(w, "  %-14s %s: %s\n", "FAILED", safe(o.Key), safe(o.Error))
	}
	for _, o := range out.Kept {
		fmt.Fprintf(w, "  %-14s %s (%s)\n", "kept", safe(o.Key), safe(needsText(o.Needs)))
	}
	if len(out.Foreign) > 0 {
		fmt.Fprintf(w, "  %s under the prefix %s not an artifact key; left alone\n", plural(len(out.Foreign), "object", "objects"), map[bool]string{true: "is", false: "are"}[len(out.Foreign) == 1])
	}
	fmt.Fprintf(w, "%s %s (%s); kept %d.\n", verb, plural(len(out.Deleted), "artifact", "artifacts"), retention.Bytes(out.Bytes), len(out.Kept))
	if out.Versioned && len(out.Deleted) > 0 {
		fmt.Fprintln(w, "The bucket is versioned: each deletion left a delete marker, and the object stays as a noncurrent version, still billed, until a NoncurrentVersionExpiration rule removes it (gc does not delete noncurrent versions, so a mistaken collection can be undone by deleting the marker).")
	}
}
