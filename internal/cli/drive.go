package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/internal/textsafe"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// openRelease reads a release for a command: the manifest at file if there is one (for its
// service, store and artifact cache), the store, and the release by id or as the environment's
// latest. The caller closes the store.
func openRelease(e *env, file string, sf storeFlags, id, envName string) (*manifest.Manifest, store.Store, *release.Release, error) {
	m, merr := manifestFlags{File: file}.load()
	if id == "" && envName != "" && merr != nil {
		// An environment names a release only with its service: without the manifest, the
		// newest release of any service in that environment could be the one acted on.
		return nil, nil, nil, usageError{fmt.Errorf("-e %s names the latest release of the manifest's service, and the manifest cannot be read: %w; name the release instead", envName, merr)}
	}
	st, err := sf.open(e.ctx, m)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := resolveRelease(e.ctx, st, id, m, envName)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return m, st, r, nil
}

// logWriter is where a command's narrative goes: stdout, or stderr when stdout carries JSON.
// With --quiet it goes nowhere: errors and the final result are printed apart.
func logWriter(e *env, o outputFlags) io.Writer {
	switch {
	case e.quiet:
		return io.Discard
	case o.json():
		return e.stderr
	}
	return e.stdout
}

// lifecycle builds the engine that acts on r for a command: its fleet and health checks from
// the AWS flags, its artifacts from the manifest's cache.
func lifecycle(e *env, st store.Store, r *release.Release, m *manifest.Manifest, af awsFlags) (*release.Engine, error) {
	fleet, checker, _, err := af.fleet(e.ctx, r.Region)
	if err != nil {
		return nil, err
	}
	cacheDir := filepath.Join(".aviary", "cache")
	if m != nil {
		cacheDir = m.Artifacts.Cache
	}
	return newEngine(st, fleet, artifact.Cache{Dir: cacheDir}, owner(), checker), nil
}

// drive moves a release to a final phase through eng (release.Engine.Drive): in this process if
// its lock can be taken, otherwise by following the process that holds it, which sees any
// request in the record and acts on it. asked says what this command asked for ("rollback
// requested"), to say what happened when another process did the work.
func drive(e *env, eng *release.Engine, st store.Store, r *release.Release, m *manifest.Manifest, log io.Writer, wait time.Duration, asked string) (*release.Release, error) {
	kit, err := gateKitFor(m, r, st, log)
	if err != nil {
		// Links and notices are extras here: the release's decision must not wait on them.
		fmt.Fprintf(log, "No links or notices: %s\n", safe(err.Error()))
		kit = nil
	}
	defer kit.close()
	v := newView(log, e.color)
	announce := kit.announcer(v).observe
	eng.Observe = func(p release.Progress) {
		switch p.Kind {
		case release.ProgressFollowing:
			fmt.Fprintf(log, "Release %s is driven by %s (lease until %s); waiting for it to act on the record, or for its lease to run out.\n",
				safe(r.ID), textsafe.Clean(p.Lock.Owner), p.Lock.ExpiresAt.Local().Format(time.TimeOnly))
		case release.ProgressTookOver:
			fmt.Fprintf(log, "Took over release %s.\n", safe(r.ID))
		default:
			announce(p)
		}
	}
	d, err := eng.Drive(e.ctx, r.ID, wait)
	v.close()
	final := d.Release
	if final == nil {
		final = r
	}
	var held *release.LockHeldError
	var still *release.StillDrivenError
	switch {
	case errors.As(err, &held) && held.Lock.Holder != r.ID:
		return final, exitError{ExitLocked, fmt.Errorf("release %s of %s holds the lock on %s since %s; finish it first",
			textsafe.Clean(held.Lock.Holder), r.Service, r.Environment, held.Lock.AcquiredAt.Local().Format(time.DateTime))}
	case errors.As(err, &still):
		return final, followed{fmt.Errorf("release %s is still at %s after %s: its driver (%s) has the request and acts on it; check with `aviary status %s`",
			safe(r.ID), safe(still.Release.Describe()), wait, textsafe.Clean(still.Lock.Owner), safe(r.ID))}
	case err != nil && d.Waited != nil && !d.Drove && e.ctx.Err() != nil:
		return final, followed{fmt.Errorf("stopped following release %s at %s: %s still drives it and acts on the request", safe(r.ID), safe(final.Describe()), textsafe.Clean(d.Waited.Owner))}
	case err != nil:
		return final, err
	}
	if d.Waited != nil && !d.Drove && final.Phase.Final() && asked != "" {
		fmt.Fprintf(log, "Release %s is driven by %s; %s, it %s at %s.\n", safe(r.ID), textsafe.Clean(d.Waited.Owner), asked, ended(final), final.EndedAt.Local().Format(time.TimeOnly))
	}
	return final, nil
}

// ended says in words how a release ended.
func ended(r *release.Release) string {
	switch r.Phase {
	case release.Promoted:
		return "was promoted"
	case release.RolledBack:
		return "rolled back"
	case release.Failed:
		return "failed"
	}
	return "is " + r.Describe()
}

// followed is how following another process's release ended early: that process still drives
// it, so no "resume it" hint applies.
type followed struct{ error }

func (f followed) Unwrap() error { return f.error }
