package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// openRelease reads a release for a command: the manifest at file if there is one (for its
// service, store and artifact cache), the store, and the release by id or as the environment's
// latest. The caller closes the store.
func openRelease(e *env, file string, sf storeFlags, id, envName string) (*manifest.Manifest, store.Store, *release.Release, error) {
	m, _ := manifestFlags{File: file}.load()
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

// drive moves a release to a final phase: in this process if its lock can be taken (it is free,
// expired, or its owner died), otherwise by waiting for the process that holds it, which sees any
// request in the record and acts on it.
// Once the lock is taken, locked (if set) runs before the engine.
func drive(e *env, st store.Store, r *release.Release, m *manifest.Manifest, af awsFlags, log io.Writer, wait time.Duration, locked func() error) (*release.Release, error) {
	me := owner()
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	told := false
	for {
		err := takeLock(e.ctx, st, r, me)
		if err == nil {
			break
		}
		var held *store.LockHeldError
		if !errors.As(err, &held) {
			return r, err
		}
		if held.Lock.Holder != r.ID {
			return r, exitError{ExitLocked, fmt.Errorf("release %s of %s holds the lock on %s since %s; finish it first",
				safe(held.Lock.Holder), safe(r.Service), safe(r.Environment), held.Lock.AcquiredAt.Local().Format(time.DateTime))}
		}
		// Another process drives the release: it sees the request in the record and acts. If it
		// died, its lease runs out (or, on this host, its death is seen) and this process takes
		// over.
		if !told {
			fmt.Fprintf(log, "Release %s is driven by %s (lease until %s); waiting for it to act on the record, or for its lease to run out.\n",
				safe(r.ID), safe(held.Lock.Owner), held.Lock.ExpiresAt.Local().Format(time.TimeOnly))
			told = true
		}
		cur, err := st.GetRelease(ctx, r.ID)
		if err != nil {
			return r, err
		}
		if cur.Phase.Final() && locked == nil {
			fmt.Fprintf(log, "%s  %s\n", time.Now().Format("15:04:05"), safe(cur.Describe()))
			return cur, nil
		}
		select {
		case <-ctx.Done():
			if e.ctx.Err() != nil {
				return cur, e.ctx.Err()
			}
			return cur, fmt.Errorf("release %s is still at %s after %s: its driver has the request; check with `aviary status %s`", r.ID, cur.Describe(), wait, r.ID)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if told {
		fmt.Fprintf(log, "Took over release %s.\n", safe(r.ID))
	}
	fleet, checker, _, err := af.fleet(e.ctx, r.Region)
	if err == nil && locked != nil {
		err = locked()
	}
	if err != nil {
		_ = st.ReleaseLock(e.ctx, release.LockKey(r.Service, r.Environment), me)
		return r, err
	}
	cacheDir := filepath.Join(".aviary", "cache")
	if m != nil {
		cacheDir = m.Artifacts.Cache
	}
	kit, err := gateKitFor(m, r, st, log)
	if err != nil {
		// Links and notices are extras here: the release's decision must not wait on them.
		fmt.Fprintf(log, "No links or notices: %s\n", safe(err.Error()))
		kit = nil
	}
	defer kit.close()
	v := newView(log, e.color)
	eng := newEngine(st, fleet, artifact.Cache{Dir: cacheDir}, me, checker)
	eng.Observe = kit.announcer(v).observe
	final, err := eng.Run(e.ctx, r.ID)
	v.close()
	return final, err
}

// request records an operator's request (or, for an ended release, its reopening) on a release:
// conditional on the revision it read, retried on conflict, with its audit entry in the same write.
// Entries the last writer did not get to append are appended first.
func request(ctx context.Context, st store.Store, id string, mutate func(r *release.Release) (*release.Event, error)) (*release.Release, error) {
	return release.Change(ctx, st, id, actor(), source(), mutate)
}

// settle finishes what a process that died after a release's last transition left undone: it
// appends the audit entries of the last write and, if the release still holds its environment's
// lock through a dead or expired owner, frees it.
func settle(ctx context.Context, st store.Store, r *release.Release) error {
	for i := range r.Outbox {
		ev := r.Outbox[i]
		if err := st.AppendEvent(ctx, &ev); err != nil {
			return err
		}
	}
	if !r.Phase.Final() {
		return nil
	}
	key := release.LockKey(r.Service, r.Environment)
	l, err := st.GetLock(ctx, key)
	if err != nil || l == nil || l.Holder != r.ID {
		return err
	}
	me := owner()
	if err := takeLock(ctx, st, r, me); err != nil {
		return nil // a live owner still finishing up frees it itself
	}
	return st.ReleaseLock(ctx, key, me)
}
