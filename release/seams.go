package release

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aviary-deploy/aviary/analysis"
)

// Store is what the lifecycle needs of the store (store.Store is one).
type Store interface {
	CreateRelease(ctx context.Context, r *Release) error
	GetRelease(ctx context.Context, id string) (*Release, error)
	UpdateRelease(ctx context.Context, r *Release) error
	ListReleases(ctx context.Context, f Filter) ([]*Release, error)
	AppendEvent(ctx context.Context, e *Event) error
	AcquireLock(ctx context.Context, l Lock, now time.Time, takeOver string) (Lock, error)
	RenewLock(ctx context.Context, key, owner string, expires time.Time) error
	ReleaseLock(ctx context.Context, key, owner string) error
	GetLock(ctx context.Context, key string) (*Lock, error)
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
	// Timeout (seconds) and LogGroup are $LATEST's, for the health checks.
	Timeout  int
	LogGroup string
	// PackageType is Zip or Image (empty: Zip, as an emulator may not say).
	PackageType string
	// LatestSettings and AliasSettings are the configuration of $LATEST and of the alias's
	// primary version, as far as a release can manage it.
	LatestSettings *Settings
	AliasSettings  *Settings
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

// Health checks a release whose Checks are set (a release without them only bakes). Its methods
// read the release's record, never change it: the engine writes what they return. That includes
// the judge's own state (PreTraffic.State, Verdict.State), which the engine keeps in
// Health.JudgeState, so that a new process — a controller's next tick — judges on where the last
// one stopped.
type Health interface {
	// BeforeTraffic runs once every new version is published and before any alias moves: smoke
	// invocations of the new versions, the pre-traffic hook, the alarms already firing and the
	// baseline latency the latency check compares against.
	BeforeTraffic(ctx context.Context, r *Release) (PreTraffic, error)
	// Judge judges the release so far. It is called again and again while a step bakes; over
	// says the step's bake time is over, so that too little traffic is Inconclusive rather than
	// a Pass. Before that, only Fail and Pass count. The verdict's State is taken even when
	// Judge returns an error.
	Judge(ctx context.Context, r *Release, over bool) (Verdict, error)
	// AfterTraffic runs once every alias is wholly on its new version: the post-traffic hook.
	AfterTraffic(ctx context.Context, r *Release) (Verdict, error)
}

// PreTraffic is what the checks before traffic found.
type PreTraffic struct {
	Verdict           Verdict
	Reference         map[string]Reference
	PreexistingAlarms []string
	// State is the judge's state, for Health.JudgeState (nil: none).
	State json.RawMessage
}

// Result is a health verdict: analysis's, so that a judgement passes from the statistics to the
// release's record unchanged.
type Result = analysis.Result

// Results.
const (
	Pass         = analysis.Pass
	Fail         = analysis.Fail
	Inconclusive = analysis.Inconclusive
)

// Verdict is a judgement with the numbers behind it.
type Verdict struct {
	Result Result `json:"result"`
	Reason string `json:"reason"`
	// Check names what decided: errors, latency, ceiling, alarm, smoke, hook or data.
	Check string `json:"check,omitempty"`
	// Function is the function whose check decided, when one did.
	Function string `json:"function,omitempty"`
	// Functions holds every function's numbers (for errors: canary and baseline invocations and
	// errors, the statistic and its threshold, the upper bound on the ratio of error rates).
	Functions map[string]map[string]float64 `json:"functions,omitempty"`
	// Notes are what the checks noticed without deciding on it (an alarm that was already
	// firing, a source that could not be read, no data yet).
	Notes []string  `json:"notes,omitempty"`
	At    time.Time `json:"at,omitzero"`

	// State is the judge's state after this judgement, for the engine to keep in
	// Health.JudgeState (nil: none); it is not part of the verdict's record. The engine writes
	// a changed state at most every Engine.JudgeStateEvery while a step bakes, with every
	// verdict it records, and at once when StateNow is set: the state records work that must
	// not be done twice (smoke invocations ran).
	State    json.RawMessage `json:"-"`
	StateNow bool            `json:"-"`
}

// Numbers are the deciding function's numbers, if a function decided.
func (v Verdict) Numbers() map[string]float64 {
	if v.Function == "" {
		return nil
	}
	return v.Functions[v.Function]
}

// Data is the verdict as an audit entry's data.
func (v Verdict) Data() map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
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

// BakeOnly is the health seam for releases without checks: every check passes.
type BakeOnly struct{}

// BeforeTraffic passes.
func (BakeOnly) BeforeTraffic(context.Context, *Release) (PreTraffic, error) {
	return PreTraffic{Verdict: Verdict{Result: Pass, Reason: "no checks before traffic configured"}}, nil
}

// Judge passes.
func (BakeOnly) Judge(context.Context, *Release, bool) (Verdict, error) {
	return Verdict{Result: Pass, Reason: "bake time over; no health checks configured"}, nil
}

// AfterTraffic passes.
func (BakeOnly) AfterTraffic(context.Context, *Release) (Verdict, error) {
	return Verdict{Result: Pass, Reason: "no checks after traffic configured"}, nil
}
