// Package sqlite is the embedded store: one SQLite file (pure Go, WAL mode) that the CLI and the
// server share safely, across processes, on one machine.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// Store is a SQLite file.
type Store struct {
	db *sql.DB
}

var _ store.Store = (*Store)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS releases (
	id          TEXT PRIMARY KEY,
	service     TEXT NOT NULL,
	environment TEXT NOT NULL,
	phase       TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	revision    INTEGER NOT NULL,
	body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS releases_by_env ON releases (service, environment, created_at DESC);
CREATE TABLE IF NOT EXISTS events (
	release_id TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	ekey       TEXT NOT NULL DEFAULT '',
	body       TEXT NOT NULL,
	PRIMARY KEY (release_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_key ON events (release_id, ekey) WHERE ekey <> '';
CREATE TABLE IF NOT EXISTS locks (
	key         TEXT PRIMARY KEY,
	holder      TEXT NOT NULL,
	owner       TEXT NOT NULL,
	acquired_at INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_sessions (
	id         TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
`

// Open opens (creating if needed) the store at path.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	// WAL lets readers and a writer share the file across processes; FULL sync keeps every
	// committed transition and audit entry through a crash; IMMEDIATE transactions take the write
	// lock up front, so concurrent writers queue (busy_timeout) rather than fail mid-way.
	dsn := "file:" + path + "?_pragma=busy_timeout(15000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) CreateRelease(ctx context.Context, r *release.Release) error {
	r.Revision = 1
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO releases (id, service, environment, phase, created_at, revision, body) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		r.ID, r.Service, r.Environment, string(r.Phase), r.CreatedAt.UnixNano(), r.Revision, string(body))
	if err != nil {
		return fmt.Errorf("create release %s: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("create release %s: %w", r.ID, store.ErrExists)
	}
	return nil
}

func (s *Store) GetRelease(ctx context.Context, id string) (*release.Release, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM releases WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("release %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", id, err)
	}
	var r release.Release
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("release %s: %w", id, err)
	}
	return &r, nil
}

func (s *Store) UpdateRelease(ctx context.Context, r *release.Release) error {
	next := *r
	next.Revision = r.Revision + 1
	body, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE releases SET phase = ?, revision = ?, body = ? WHERE id = ? AND revision = ?`,
		string(next.Phase), next.Revision, string(body), r.ID, r.Revision)
	if err != nil {
		return fmt.Errorf("update release %s: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		if _, err := s.GetRelease(ctx, r.ID); err != nil {
			return err
		}
		return fmt.Errorf("update release %s at revision %d: %w", r.ID, r.Revision, store.ErrConflict)
	}
	r.Revision = next.Revision
	return nil
}

func (s *Store) ListReleases(ctx context.Context, f store.Filter) ([]*release.Release, error) {
	q := `SELECT body FROM releases WHERE (? = '' OR service = ?) AND (? = '' OR environment = ?) AND (? = '' OR phase = ?) ORDER BY created_at DESC, id DESC`
	args := []any{f.Service, f.Service, f.Environment, f.Environment, string(f.Phase), string(f.Phase)}
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var out []*release.Release
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var r release.Release
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, err
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

func (s *Store) AppendEvent(ctx context.Context, e *release.Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	// The next number and the insert are one statement, inside SQLite's write lock: concurrent
	// appenders get distinct numbers and none is lost.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append event to %s: %w", e.ReleaseID, err)
	}
	defer tx.Rollback()
	if e.Key != "" {
		err := tx.QueryRowContext(ctx, `SELECT seq FROM events WHERE release_id = ? AND ekey = ?`, e.ReleaseID, e.Key).Scan(&e.Seq)
		if err == nil {
			return nil // already in the trail
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("append event to %s: %w", e.ReleaseID, err)
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE release_id = ?`, e.ReleaseID).Scan(&e.Seq); err != nil {
		return fmt.Errorf("append event to %s: %w", e.ReleaseID, err)
	}
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (release_id, seq, ekey, body) VALUES (?, ?, ?, ?)`, e.ReleaseID, e.Seq, e.Key, string(body)); err != nil {
		return fmt.Errorf("append event to %s: %w", e.ReleaseID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append event to %s: %w", e.ReleaseID, err)
	}
	return nil
}

func (s *Store) Events(ctx context.Context, releaseID string) ([]release.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM events WHERE release_id = ? ORDER BY seq`, releaseID)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", releaseID, err)
	}
	defer rows.Close()
	var out []release.Event
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var e release.Event
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *Store) AcquireLock(ctx context.Context, l store.Lock, now time.Time, takeOver string) (store.Lock, error) {
	if l.AcquiredAt.IsZero() {
		l.AcquiredAt = now
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Lock{}, fmt.Errorf("lock %s: %w", l.Key, err)
	}
	defer tx.Rollback()
	cur, err := getLock(ctx, tx, l.Key)
	if err != nil {
		return store.Lock{}, err
	}
	switch {
	case cur == nil:
	case cur.Owner == l.Owner:
		l.AcquiredAt = cur.AcquiredAt
	case !cur.ExpiresAt.After(now), takeOver != "" && cur.Owner == takeOver:
	default:
		return store.Lock{}, &store.LockHeldError{Lock: *cur}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO locks (key, holder, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, owner = excluded.owner, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`,
		l.Key, l.Holder, l.Owner, l.AcquiredAt.UnixNano(), l.ExpiresAt.UnixNano()); err != nil {
		return store.Lock{}, fmt.Errorf("lock %s: %w", l.Key, err)
	}
	if err := tx.Commit(); err != nil {
		return store.Lock{}, fmt.Errorf("lock %s: %w", l.Key, err)
	}
	return l, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getLock(ctx context.Context, q queryer, key string) (*store.Lock, error) {
	var l store.Lock
	var acq, exp int64
	err := q.QueryRowContext(ctx, `SELECT key, holder, owner, acquired_at, expires_at FROM locks WHERE key = ?`, key).Scan(&l.Key, &l.Holder, &l.Owner, &acq, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	l.AcquiredAt, l.ExpiresAt = time.Unix(0, acq), time.Unix(0, exp)
	return &l, nil
}

func (s *Store) RenewLock(ctx context.Context, key, owner string, expires time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE locks SET expires_at = ? WHERE key = ? AND owner = ?`, expires.UnixNano(), key, owner)
	if err != nil {
		return fmt.Errorf("renew lock %s: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("renew lock %s: %w", key, store.ErrLockLost)
	}
	return nil
}

func (s *Store) ReleaseLock(ctx context.Context, key, owner string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM locks WHERE key = ? AND owner = ?`, key, owner); err != nil {
		return fmt.Errorf("release lock %s: %w", key, err)
	}
	return nil
}

func (s *Store) GetLock(ctx context.Context, key string) (*store.Lock, error) {
	return getLock(ctx, s.db, key)
}

// RevokeSession records the revocation, and forgets revocations of sessions that have expired
// since (their cookies no longer work anyway), so that the table stays small.
func (s *Store) RevokeSession(ctx context.Context, id string, expires time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM revoked_sessions WHERE expires_at < ?`, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO revoked_sessions (id, expires_at) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`, id, expires.UnixNano()); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

func (s *Store) SessionRevoked(ctx context.Context, id string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM revoked_sessions WHERE id = ?`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("session: %w", err)
	}
	return n > 0, nil
}
