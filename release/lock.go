package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotFound: the store has no such release.
var ErrNotFound = errors.New("not found")

// Lock is a deploy lock: one live release per service and environment (see [LockKey]).
type Lock struct {
	Key        string    `json:"key"`
	Holder     string    `json:"holder"` // the release that holds it
	Owner      string    `json:"owner"`  // the process that acts for it: host/pid/nonce
	AcquiredAt time.Time `json:"acquiredAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

// Filter narrows a listing of releases.
type Filter struct {
	Service     string
	Environment string
	Phase       Phase
	Limit       int // 0: no limit
}

// LockHeldError says an environment's lock is held by someone else: another release, or another
// live process driving the same release. A store's AcquireLock returns it with Lock alone; the
// lifecycle adds the holding release as it read it.
type LockHeldError struct {
	Lock Lock
	// Release is the holding release, when it was read (nil: not read, or not in the store yet).
	Release *Release
	// Orphaned says the process driving Release is gone (its lease ran out, or it died on this
	// host): the release waits for someone to resume or roll it back.
	Orphaned bool
}

func (e *LockHeldError) Error() string {
	if e.Release != nil {
		msg := fmt.Sprintf("release %s holds the lock on %s since %s (it is at %s)", e.Release.ID, e.Lock.Key, e.Lock.AcquiredAt.UTC().Format(time.RFC3339), e.Release.Describe())
		if e.Release.Controller {
			msg += fmt.Sprintf("; the environment's controller drives it: `aviary status %s --watch` follows it, `aviary rollback %s` ends it", e.Release.ID, e.Release.ID)
		} else if e.Orphaned {
			msg += fmt.Sprintf("; the process driving it is gone: `aviary resume %s` continues it, `aviary rollback %s` ends it", e.Release.ID, e.Release.ID)
		}
		return msg
	}
	return fmt.Sprintf("release %s holds the lock on %s since %s (owner %s, lease until %s)",
		e.Lock.Holder, e.Lock.Key, e.Lock.AcquiredAt.UTC().Format(time.RFC3339), e.Lock.Owner, e.Lock.ExpiresAt.UTC().Format(time.RFC3339))
}

// NewOwner names this process as a lock's owner: host/pid/nonce. host names the machine (and,
// in containers, the PID namespace) so that [OwnerDead] can tell a process of this host that no
// longer runs; it must not contain "/".
func NewOwner(host string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// OwnerDead reports whether a lock's owner is a process of host that no longer runs: its lock
// can be taken over at once rather than after its lease. An owner of another host, or one that
// is not in [NewOwner]'s form, is never known to be dead.
func OwnerDead(host, owner string) bool {
	parts := strings.Split(owner, "/")
	if host == "" || len(parts) != 3 || parts[0] != host {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// DefaultLease is the lock's lease when the engine sets none.
const DefaultLease = 30 * time.Second

// dead reports whether the lock's owner is known to be gone.
func (e *Engine) dead(owner string) bool { return OwnerDead(e.Host, owner) }

// CheckLock reports whether a new release of service to environment could take the lock: nil
// when it is free, left over by a release that ended, or left by a process that is gone with no
// release recorded; a *LockHeldError naming the holder otherwise, whatever phase the holder is
// in. It changes nothing: a deploy checks it before reading anything another release may be
// changing, so that a busy environment is reported as locked rather than as mid-way.
func (e *Engine) CheckLock(ctx context.Context, service, environment string) error {
	e.defaults()
	cur, err := e.Store.GetLock(ctx, LockKey(service, environment))
	if err != nil || cur == nil {
		return err
	}
	other, err := e.Store.GetRelease(ctx, cur.Holder)
	switch {
	case err == nil && !other.Phase.Final():
		return &LockHeldError{Lock: *cur, Release: other, Orphaned: e.orphaned(cur)}
	case err == nil:
		return nil // the release ended; its lock is left over
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("read the release holding %s: %w", cur.Key, err)
	case !e.orphaned(cur):
		return &LockHeldError{Lock: *cur} // a release being started
	}
	return nil
}

// orphaned reports whether a lock's owner is gone: its lease ran out, or it died on this host.
func (e *Engine) orphaned(l *Lock) bool {
	return !l.ExpiresAt.After(e.Clock.Now()) || e.dead(l.Owner)
}

// takeLock takes an environment's lock for release id as e.Owner: when it is free, expired, held
// by a process of this host that died, or already ours. A lock held for another release that has
// not ended is never taken, whatever its lease: that release must be resumed or rolled back
// first. It returns the lock as it was before, when it took it over from a process that is gone.
func (e *Engine) takeLock(ctx context.Context, service, environment, id string) (*Lock, error) {
	key := LockKey(service, environment)
	now := e.Clock.Now()
	cur, err := e.Store.GetLock(ctx, key)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.Holder != id {
		other, err := e.Store.GetRelease(ctx, cur.Holder)
		switch {
		case err == nil && !other.Phase.Final():
			return nil, &LockHeldError{Lock: *cur, Release: other, Orphaned: e.orphaned(cur)}
		case err != nil && !errors.Is(err, ErrNotFound):
			// Unknown is not ended: a live release's lock is never taken on a read error.
			return nil, fmt.Errorf("read the release holding %s: %w", cur.Key, err)
		}
	}
	takeOver := ""
	if cur != nil && e.dead(cur.Owner) {
		takeOver = cur.Owner
	}
	if _, err := e.Store.AcquireLock(ctx, Lock{Key: key, Holder: id, Owner: e.Owner, ExpiresAt: now.Add(e.LockTTL)}, now, takeOver); err != nil {
		return nil, err
	}
	// A live owner's lock that could be taken was freed meanwhile: nothing was taken over. Only
	// this release's own lock is taken over; one left by another release that ended is not, nor
	// one let go (parked: handed over, not left by a process that is gone).
	if cur != nil && cur.Holder == id && cur.Owner != e.Owner && (!cur.ExpiresAt.After(now) && !cur.Parked() || takeOver != "") {
		return cur, nil
	}
	return nil, nil
}

// TakeOver takes the lock of release id for this process, from a holder that is gone (its lease
// ran out, or it died on this host). It returns the lock as it was, if another process held it,
// or a *LockHeldError when a live process drives the release or another release holds its
// environment. The caller drives the release next ([Engine.Drive]) or frees the lock.
func (e *Engine) TakeOver(ctx context.Context, id string) (*Lock, error) {
	e.defaults()
	r, err := e.Store.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.takeLock(ctx, r.Service, r.Environment, id)
}

// LetGo lets any process take release r over at once, keeping its environment held: for a live
// release the lease ends now but the lock stays with the release, so that no other release
// starts while this one is live, whoever drives it next (a resumed CLI, the controller at its
// next tick); an ended release's lock is deleted. A lock that is not this process's is left
// alone. Use it, not the store's ReleaseLock, when a process stops driving a live release.
func (e *Engine) LetGo(ctx context.Context, r *Release) error {
	e.defaults()
	ctx = context.WithoutCancel(ctx)
	key := LockKey(r.Service, r.Environment)
	if r.Phase.Final() {
		return e.Store.ReleaseLock(ctx, key, e.Owner)
	}
	cur, err := e.Store.GetLock(ctx, key)
	if err != nil {
		return fmt.Errorf("let go of the lock on %s: %w", key, err)
	}
	if cur == nil || cur.Owner != e.Owner {
		return nil // not ours
	}
	// The lease ends where it began: parked, as no lease left by a process that stopped is.
	end := cur.AcquiredAt
	if end.IsZero() || end.After(e.Clock.Now()) {
		end = e.Clock.Now()
	}
	if err := e.Store.RenewLock(ctx, key, e.Owner, end); err != nil && !errors.Is(err, ErrLockLost) {
		return fmt.Errorf("let go of the lock on %s: %w", key, err)
	}
	return nil
}

// Parked reports whether a lock was let go ([Engine.LetGo]: its lease ends where it began)
// rather than left by a process that stopped (a lease runs for a while after it began): taking
// it is picking up a release handed over, not taking over from a process that is gone.
func (l *Lock) Parked() bool { return !l.ExpiresAt.After(l.AcquiredAt) }

// freeLock frees this process's hold on a release's lock; a lock held by someone else is not ours
// to free.
func (e *Engine) freeLock(ctx context.Context, r *Release) error {
	return e.Store.ReleaseLock(context.WithoutCancel(ctx), LockKey(r.Service, r.Environment), e.Owner)
}
