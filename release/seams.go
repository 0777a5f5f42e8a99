package release

import (
	"context"
	"time"
)

// Store is what the engine needs of the store.
type Store interface {
	GetRelease(ctx context.Context, id string) (*Release, error)
	UpdateRelease(ctx context.Context, r *Release) error
	AppendEvent(ctx context.Context, e *Event) error
	RenewLock(ctx context.Context, key, owner string, expires time.Time) error
	ReleaseLock(ctx context.Context, key, owner string) error
}

// Fleet is what the engine needs of Lambda and S3. Every method is idempotent: called again after
// a crash, it converges on the same result without doing the work twice.
type Fleet interface {
	// Inspect reads a function and its alias as they are now. It changes nothing.
	Inspect(ctx context.Context, functionName, alias string) (Current, error)
	// Upload makes sure the artifact is in the bucket, uploading it from src when it is not.
	Upload(ctx context.Context, a Artifacts, key string, src ArtifactSource) error
	// Pin points an alias that follows $LATEST at a published version of the code it served when
	// the release was planned (fn.BaseCodeSha256), so that updating the code moves no traffic.
	Pin(ctx context.Context, alias string, fn Function) (Pinned, error)
	// Publish puts the release's code in the function and publishes it, returning the version.
	Publish(ctx context.Context, a Artifacts, fn Function) (version string, err error)
	// Route sets the alias: all traffic on Primary except Weight on Extra (no Extra: none), or
	// deletes it. It returns the alias's new RevisionId.
	Route(ctx context.Context, alias string, fn Function, to Routing) (revision string, err error)
}

// Current is a function and its alias as they are.
type Current struct {
	Exists           bool
	LatestRevision   string
	LatestCodeSha256 string
	AliasExists      bool
	AliasVersion     string
	AliasWeights     map[string]float64
	AliasRevision    string
	// AliasCodeSha256 is the code of the alias's primary version: what the alias serves.
	AliasCodeSha256 string
}

// Pinned is what pinning left: the version the alias now points at, the alias's RevisionId, and
// $LATEST's RevisionId (publishing moved it), the code update's new precondition.
type Pinned struct {
	Version       string
	AliasRevision string
	BaseRevision  string
}

// Routing is where an alias sends traffic.
type Routing struct {
	Primary string
	Extra   string
	Weight  float64
	Delete  bool
}

// ArtifactSource reads an artifact's bytes (the local cache).
type ArtifactSource interface {
	Read(key string) ([]byte, error)
}

// Health judges a step while it bakes.
type Health interface {
	Judge(ctx context.Context, r *Release, since time.Time) (Verdict, error)
}

// Result is a health verdict.
type Result int

// Results.
const (
	Pass Result = iota
	Fail
	Inconclusive
)

func (r Result) String() string {
	return [...]string{"pass", "fail", "inconclusive"}[r]
}

// Verdict is a judgement with the numbers behind it.
type Verdict struct {
	Result  Result
	Reason  string
	Details map[string]any
}

// BakeOnly is the health seam's default: a step passes when its bake ends.
type BakeOnly struct{}

// Judge passes.
func (BakeOnly) Judge(context.Context, *Release, time.Time) (Verdict, error) {
	return Verdict{Result: Pass, Reason: "bake time over; no health checks configured"}, nil
}

// Clock is the engine's time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// After is time.After.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
