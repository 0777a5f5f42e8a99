// Package store keeps releases, their audit trail and the deploy locks: the one truth the CLI, the
// approval server and every CI runner share. Implementations: store/sqlite (one machine) and
// store/dynamo (a team), both held to store/storetest's conformance suite.
//
// The rules it keeps: an update applies only to the revision it was computed from (so the first
// decision wins and no transition is lost); the audit trail is append-only; a lock is taken only
// when free or expired, renewed only by its owner; an admin session, once revoked, stays revoked.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// Store is what Aviary keeps.
type Store interface {
	// CreateRelease stores a new release at revision 1.
	CreateRelease(ctx context.Context, r *release.Release) error
	// GetRelease returns a release, or ErrNotFound.
	GetRelease(ctx context.Context, id string) (*release.Release, error)
	// UpdateRelease stores r if the stored release is still at r.Revision, and advances
	// r.Revision; otherwise it returns ErrConflict and stores nothing.
	UpdateRelease(ctx context.Context, r *release.Release) error
	// ListReleases returns releases newest first.
	ListReleases(ctx context.Context, f Filter) ([]*release.Release, error)

	// AppendEvent adds an entry to a release's audit trail, numbering it (Seq) after the last.
	// An entry whose Key is already in the trail is not added again (e.Seq is set to the first's).
	AppendEvent(ctx context.Context, e *release.Event) error
	// Events returns a release's audit trail in order.
	Events(ctx context.Context, releaseID string) ([]release.Event, error)

	// AcquireLock takes the lock l.Key for l.Holder and l.Owner until l.ExpiresAt: when it is
	// free, expired (at now), already l.Owner's, or held by takeOver (an owner known to be dead).
	// Otherwise it returns a *LockHeldError saying who holds it.
	AcquireLock(ctx context.Context, l Lock, now time.Time, takeOver string) (Lock, error)
	// RenewLock extends the owner's lock; ErrLockLost if it is no longer the owner's.
	RenewLock(ctx context.Context, key, owner string, expires time.Time) error
	// ReleaseLock frees the owner's lock; freeing a lock held by someone else does nothing.
	ReleaseLock(ctx context.Context, key, owner string) error
	// GetLock returns the lock, or nil if none is held.
	GetLock(ctx context.Context, key string) (*Lock, error)

	// RevokeSession records that the admin session id has ended (its holder logged out), so that
	// its cookie, captured before, no longer works on any server sharing the store. expires is
	// when the session would have expired anyway: the record is not needed after it.
	RevokeSession(ctx context.Context, id string, expires time.Time) error
	// SessionRevoked reports whether the session id was revoked.
	SessionRevoked(ctx context.Context, id string) (bool, error)

	Close() error
}

// Filter narrows ListReleases; Lock is a deploy lock. They belong to the release's lifecycle,
// which takes and checks locks itself.
type (
	Filter = release.Filter
	Lock   = release.Lock
)

// Errors.
var (
	ErrNotFound = release.ErrNotFound
	ErrExists   = errors.New("already exists")
	ErrConflict = release.ErrConflict
	ErrLockLost = release.ErrLockLost
)

// LockHeldError says a lock is held by someone else.
type LockHeldError = release.LockHeldError
