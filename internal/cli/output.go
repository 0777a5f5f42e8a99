package cli

import (
	"time"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/retention"
	"github.com/aviary-deploy/aviary/store"
)

// schemaV1 names the format of every document -o json prints. A change that could break a reader
// (a field removed, renamed or changing type) comes with aviary/v2; new fields may appear in v1.
const schemaV1 = "aviary/v1"

// v1 leads every JSON document with its schema: embed it first.
type v1 struct {
	Schema string `json:"schema"`
}

func (h *v1) stamp() { h.Schema = schemaV1 }

// document is a JSON document of the CLI: a struct that embeds v1 first. The output structs are
// the CLI's own, so that what the store keeps for itself (revisions, lock owners, outboxes) never
// leaks into what scripts read.
type document interface{ stamp() }

// releaseOutput is a release as -o json shows it.
type releaseOutput struct {
	ID          string        `json:"id"`
	Service     string        `json:"service"`
	Environment string        `json:"environment"`
	Alias       string        `json:"alias"`
	Region      string        `json:"region,omitempty"`
	Strategy    string        `json:"strategy"`
	Steps       []stepOutput  `json:"steps"`
	Phase       release.Phase `json:"phase"`
	Summary     string        `json:"summary"` // the phase in words, as status prints it
	Step        int           `json:"step"`    // the current step, from 0
	Reason      string        `json:"reason,omitempty"`
	Awaiting    string        `json:"awaiting,omitempty"`
	// Unjudged says why the checks did not judge the release (a step stayed inconclusive for
	// want of traffic and the release went on); absent: every step was judged.
	Unjudged string `json:"unjudged,omitempty"`
	// Controller says the environment's controller drives the release (deploy --detach, or an
	// interrupted deploy handed over); absent: the process that started it, or none.
	Controller bool             `json:"controller,omitempty"`
	Functions  []functionOutput `json:"functions"`
	Gates      []gateOutput     `json:"gates,omitempty"`
	Request    *requestOutput   `json:"request,omitempty"`
	CreatedBy  string           `json:"createdBy"`
	CreatedAt  time.Time        `json:"createdAt"`
	UpdatedAt  time.Time        `json:"updatedAt"`
	EndedAt    *time.Time       `json:"endedAt,omitempty"`
}

type stepOutput struct {
	Weight float64 `json:"weight"` // 0..1
	Bake   string  `json:"bake"`   // a Go duration, such as 5m0s
}

type functionOutput struct {
	Name         string `json:"name"`
	FunctionName string `json:"functionName"`
	Previous     string `json:"previous,omitempty"`
	New          string `json:"new,omitempty"`
	CodeSha256   string `json:"codeSha256"`
	// Image, for an image function, is its image pinned to the digest the release ships.
	Image       string  `json:"image,omitempty"`
	ArtifactKey string  `json:"artifactKey"`
	Weight      float64 `json:"weight"`
	Promoted    bool    `json:"promoted"`
	RolledBack  bool    `json:"rolledBack"`
}

type gateOutput struct {
	Step     int             `json:"step"`
	Kind     string          `json:"kind"`
	Why      string          `json:"why"`
	Opened   time.Time       `json:"opened"`
	Deadline *time.Time      `json:"deadline,omitempty"`
	Decision *decisionOutput `json:"decision,omitempty"`
}

type decisionOutput struct {
	Action string    `json:"action"`
	By     string    `json:"by"`
	Via    string    `json:"via"`
	Source string    `json:"source,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

type requestOutput struct {
	Action string    `json:"action"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

type eventOutput struct {
	Seq     int64          `json:"seq"`
	Time    time.Time      `json:"time"`
	Actor   string         `json:"actor"`
	Source  string         `json:"source,omitempty"`
	Kind    string         `json:"kind"`
	Phase   release.Phase  `json:"phase,omitempty"`
	Step    int            `json:"step,omitempty"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data,omitempty"`
}

// statusOutput is `aviary status -o json`.
type statusOutput struct {
	v1
	Release releaseOutput `json:"release"`
	// Driven says a process holds the environment's lock for this release, and until when its
	// lease runs; absent when none does.
	Driven *drivenOutput `json:"driven,omitempty"`
	Events []eventOutput `json:"events"`
}

type drivenOutput struct {
	LeaseExpiresAt time.Time `json:"leaseExpiresAt"`
}

// historyOutput is `aviary history -o json`: releases newest first, [] when there are none.
type historyOutput struct {
	v1
	Releases []releaseOutput `json:"releases"`
}

// resultOutput is where a release command (deploy, rollback, promote, resume, approve) left a
// release.
type resultOutput struct {
	v1
	// Outcome: promoted, rolled-back, failed, stopped (not ended: interrupted, or waiting was cut
	// short), approved (approve --detach), unchanged (deploy found nothing to ship), detached
	// (deploy --detach) or handed-off (an interrupted deploy gave it to the controller).
	Outcome     string        `json:"outcome"`
	Release     string        `json:"release,omitempty"`
	Service     string        `json:"service"`
	Environment string        `json:"environment"`
	Phase       release.Phase `json:"phase,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	// Unjudged: as in releaseOutput; a promoted release that nobody's checks judged.
	Unjudged  string           `json:"unjudged,omitempty"`
	Functions []functionOutput `json:"functions"`
}

// planOutput is `aviary plan -o json`.
type planOutput struct {
	v1
	Service     string          `json:"service"`
	Environment string          `json:"environment"`
	Alias       string          `json:"alias"`
	Strategy    string          `json:"strategy"`
	Changes     int             `json:"changes"` // functions a deploy would change
	Functions   []planRowOutput `json:"functions"`
	Checks      string          `json:"checks"` // how a release would be judged, in words
	Gate        string          `json:"gate"`   // whether and where it would wait for a person
	// Traffic is each function's recent traffic through the alias (per window) and whether each
	// step's bake can judge at it; absent without checks or without an alias serving traffic.
	Traffic []planTrafficOutput `json:"traffic,omitempty"`
}

type planRowOutput struct {
	Function     string `json:"function"`
	FunctionName string `json:"functionName"`
	AliasVersion string `json:"aliasVersion,omitempty"`
	Current      string `json:"currentCodeSha256,omitempty"`
	New          string `json:"newCodeSha256"`
	// Image, for an image function, is the image the release ships, pinned to its digest (the
	// hex of which is newCodeSha256); artifactKey is then empty.
	Image       string `json:"image,omitempty"`
	ArtifactKey string `json:"artifactKey"`
	Change      bool   `json:"change"`
	Problem     string `json:"problem,omitempty"`
	// Configuration lists the managed configuration's changes, secret values masked.
	Configuration []release.FieldChange `json:"configuration,omitempty"`
}

// linkOutput is `aviary link -o json`.
type linkOutput struct {
	v1
	Release  string    `json:"release"`
	Approve  string    `json:"approve"`
	Rollback string    `json:"rollback"`
	Expires  time.Time `json:"expires"`
}

// trafficOutput is `aviary traffic -o json`: one result per alias and executed version.
type trafficOutput struct {
	v1
	Results []trafficRow `json:"results"`
}

// packageOutput is `aviary package -o json`.
type packageOutput struct {
	v1
	Zip        string `json:"zip"`
	Files      int    `json:"files"`
	Bytes      int    `json:"bytes"`
	Sha256     string `json:"sha256"`
	CodeSha256 string `json:"codeSha256"`
}

// validateOutput is `aviary validate -o json`.
type validateOutput struct {
	v1
	File         string              `json:"file"`
	Service      string              `json:"service"`
	Alias        string              `json:"alias"`
	Functions    []string            `json:"functions"`
	Bucket       string              `json:"bucket"`
	Prefix       string              `json:"prefix"`
	Environments []environmentOutput `json:"environments"`
}

type environmentOutput struct {
	Name         string `json:"name"`
	Strategy     string `json:"strategy"`
	Steps        string `json:"steps"`
	PreApprove   bool   `json:"preApprove"`
	FunctionName string `json:"functionName"` // how the first function is named there
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func releaseOf(r *release.Release) releaseOutput {
	out := releaseOutput{
		ID: r.ID, Service: r.Service, Environment: r.Environment, Alias: r.Alias, Region: r.Region,
		Strategy: r.Strategy, Steps: []stepOutput{}, Phase: r.Phase, Summary: r.Describe(), Step: r.Step,
		Reason: r.Reason, Awaiting: r.Awaiting, Unjudged: r.Unjudged, Controller: r.Controller, Functions: functionsOf(r.Functions),
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, EndedAt: optTime(r.EndedAt),
	}
	for _, s := range r.Steps {
		out.Steps = append(out.Steps, stepOutput{Weight: s.Weight, Bake: s.Bake.String()})
	}
	for _, g := range r.Gates {
		gate := gateOutput{Step: g.Step, Kind: g.Kind, Why: g.Why, Opened: g.Opened, Deadline: optTime(g.Deadline)}
		if d := g.Decision; d != nil {
			gate.Decision = &decisionOutput{Action: string(d.Action), By: d.By, Via: d.Via, Source: d.Source, Reason: d.Reason, At: d.At}
		}
		out.Gates = append(out.Gates, gate)
	}
	if q := r.Request; q != nil {
		out.Request = &requestOutput{Action: string(q.Action), By: q.By, Reason: q.Reason, At: q.At}
	}
	return out
}

func functionsOf(fns []release.Function) []functionOutput {
	out := []functionOutput{}
	for _, f := range fns {
		out = append(out, functionOutput{
			Name: f.Name, FunctionName: f.FunctionName, Previous: f.Previous, New: f.New,
			CodeSha256: f.CodeSha256, Image: f.ImageUri, ArtifactKey: f.ArtifactKey, Weight: f.Weight, Promoted: f.Promoted, RolledBack: f.RolledBack,
		})
	}
	return out
}

// statusOf is the JSON status of r at now (a lock whose lease ran out by then drives nothing).
func statusOf(r *release.Release, evs []release.Event, lock *store.Lock, now time.Time) *statusOutput {
	out := &statusOutput{Release: releaseOf(r), Events: []eventOutput{}}
	if lock != nil && lock.Holder == r.ID && lock.ExpiresAt.After(now) {
		out.Driven = &drivenOutput{LeaseExpiresAt: lock.ExpiresAt}
	}
	for _, ev := range evs {
		out.Events = append(out.Events, eventOutput{Seq: ev.Seq, Time: ev.Time, Actor: ev.Actor, Source: ev.Source, Kind: ev.Kind, Phase: ev.Phase, Step: ev.Step, Message: ev.Message, Data: ev.Data})
	}
	return out
}

func historyOf(rs []*release.Release) *historyOutput {
	out := &historyOutput{Releases: []releaseOutput{}}
	for _, r := range rs {
		out.Releases = append(out.Releases, releaseOf(r))
	}
	return out
}

func resultOf(r *release.Release) *resultOutput {
	out := &resultOutput{Release: r.ID, Service: r.Service, Environment: r.Environment, Phase: r.Phase, Reason: r.Reason, Unjudged: r.Unjudged, Functions: functionsOf(r.Functions)}
	switch r.Phase {
	case release.Promoted:
		out.Outcome = "promoted"
	case release.RolledBack:
		out.Outcome = "rolled-back"
	case release.Failed:
		out.Outcome = "failed"
	default:
		out.Outcome = "stopped"
	}
	return out
}

func planOf(p *prepared) *planOutput {
	out := &planOutput{Service: p.m.Service, Environment: p.env.Name, Alias: p.m.Alias, Strategy: p.env.Strategy.Describe(),
		Functions: []planRowOutput{}, Checks: describeChecks(p.checks), Gate: describeGate(p.env), Traffic: trafficOf(p)}
	for _, r := range p.rows {
		if r.Change && r.Problem == "" {
			out.Changes++
		}
		out.Functions = append(out.Functions, planRowOutput{r.Name, r.FunctionName, r.Current.AliasVersion, r.Current.AliasCodeSha256, r.CodeSha256, r.ImageUri, r.ArtifactKey, r.Change, r.Problem, r.ConfigChanges})
	}
	return out
}

// pruneOutput is what `aviary prune -o json` prints.
type pruneOutput struct {
	v1
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Keep        int    `json:"keep"`
	// DryRun: nothing was deleted; Deleted lists what would have been.
	DryRun bool `json:"dryRun"`
	// Retained are the releases whose versions were kept (live ones and the last K promoted).
	Retained  []string               `json:"retained"`
	Functions []prunedFunctionOutput `json:"functions"`
	Totals    pruneTotals            `json:"totals"`
}

type prunedFunctionOutput struct {
	Name         string `json:"name"`
	FunctionName string `json:"functionName"`
	// Missing: the function does not exist.
	Missing bool `json:"missing,omitempty"`
	// Error: the function could not be read, and nothing of it was deleted.
	Error    string                `json:"error,omitempty"`
	Deleted  []string              `json:"deleted"`
	Deferred []deferredOutput      `json:"deferred"`
	Kept     []keptOutput          `json:"kept"`
	Failed   []failedVersionOutput `json:"failed"`
}

type deferredOutput struct {
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

type keptOutput struct {
	Version string           `json:"version"`
	Reasons []retention.Need `json:"reasons"`
}

type failedVersionOutput struct {
	Version string `json:"version"`
	Error   string `json:"error"`
}

type pruneTotals struct {
	Deleted  int `json:"deleted"`
	Deferred int `json:"deferred"`
	Kept     int `json:"kept"`
	// Failed counts the versions whose deletion failed and the functions that could not be read.
	Failed int `json:"failed"`
}

func pruneOf(service, envName string, keep int, dryRun bool, retained []*release.Release, fns []manifest.Function, res []pruned) *pruneOutput {
	out := &pruneOutput{Service: service, Environment: envName, Keep: keep, DryRun: dryRun, Retained: []string{}, Functions: []prunedFunctionOutput{}}
	for _, r := range retained {
		out.Retained = append(out.Retained, r.ID)
	}
	for i, p := range res {
		f := prunedFunctionOutput{FunctionName: p.name, Missing: p.missing, Deleted: []string{}, Deferred: []deferredOutput{}, Kept: []keptOutput{}, Failed: []failedVersionOutput{}}
		if i < len(fns) {
			f.Name = fns[i].Name
		}
		if p.err != nil {
			f.Error = p.err.Error()
			out.Totals.Failed++
		}
		f.Deleted = append(f.Deleted, p.deleted...)
		for _, d := range p.deferred {
			f.Deferred = append(f.Deferred, deferredOutput{d.version, apiMessage(d.err)})
		}
		for _, k := range p.kept {
			f.Kept = append(f.Kept, keptOutput{k.Version, k.Needs})
		}
		for _, x := range p.failed {
			f.Failed = append(f.Failed, failedVersionOutput{x.version, x.err.Error()})
		}
		out.Totals.Deleted += len(f.Deleted)
		out.Totals.Deferred += len(f.Deferred)
		out.Totals.Kept += len(f.Kept)
		out.Totals.Failed += len(f.Failed)
		out.Functions = append(out.Functions, f)
	}
	return out
}

// finding is one line of doctor's report.
type finding struct {
	Severity retention.Severity `json:"severity"`
	Check    string             `json:"check"` // artifact, cache, version, lifecycle, versioning, code-storage, function
	Subject  string             `json:"subject"`
	Message  string             `json:"message"`
	Fix      string             `json:"fix,omitempty"`
}

// doctorOutput is `aviary doctor -o json`.
type doctorOutput struct {
	v1
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Bucket      string `json:"bucket"`
	Prefix      string `json:"prefix"`
	// Ready says every rollback can run: no finding is an error.
	Ready     bool             `json:"ready"`
	Findings  []finding        `json:"findings"`
	Artifacts []artifactOutput `json:"artifacts"`
}

type artifactOutput struct {
	Key        string           `json:"key"`
	CodeSha256 string           `json:"codeSha256"`
	Versions   []string         `json:"versions"`
	Needs      []retention.Need `json:"needs"`
	// S3 and Cache are "ok" or the problem found.
	S3            string `json:"s3"`
	Cache         string `json:"cache"`
	Restored      string `json:"restoredFrom,omitempty"`
	CacheRestored string `json:"cacheRestoredFrom,omitempty"`
	RestoreError  string `json:"restoreError,omitempty"`
	// Unverified says why the object's digest was not checked ("" when it was).
	Unverified string `json:"digestUnverified,omitempty"`
}

// gcOutput is `aviary gc -o json`.
type gcOutput struct {
	v1
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Bucket      string `json:"bucket"`
	Prefix      string `json:"prefix"`
	Grace       string `json:"grace"`
	DryRun      bool   `json:"dryRun"`
	// Versioned says the bucket keeps deleted objects as noncurrent versions (still billed).
	Versioned bool `json:"versioned"`
	// Deleted are the keys deleted (in a dry run: that would be); Bytes their total size.
	Deleted []gcObjectOutput `json:"deleted"`
	Bytes   int64            `json:"bytes"`
	Kept    []gcObjectOutput `json:"kept"`
	Foreign []string         `json:"foreign,omitempty"`
	// Failed are deletions that failed, with why.
	Failed []gcObjectOutput `json:"failed,omitempty"`
}

type gcObjectOutput struct {
	Key          string           `json:"key"`
	Size         int64            `json:"size"`
	LastModified time.Time        `json:"lastModified"`
	Needs        []retention.Need `json:"needs,omitempty"`
	Error        string           `json:"error,omitempty"`
}
