// Package release is a release as a persisted state machine: one deploy of one service to one
// environment, moving a fleet of functions together from their previous versions to new ones.
//
//	planned → publishing → shifting(step i) → awaiting-approval → promoting → promoted
//	any non-final phase → rolling-back → rolled-back        (failed: even rollback could not finish)
//
// Every move is one row of [Transitions] (phase × [Move] → phase), which the engine consults on
// each one and which refuses any move it does not list. A first release (no function has a
// previous version) goes from publishing straight to promoting: there is no canary to compare.
//
// The package owns the whole lifecycle, for the CLI, the dashboard and a controller alike:
// [Engine.Start] records a planned release and takes its environment's lock, [Engine.Drive]
// moves it to its end (or follows the process that does), [Engine.TakeOver] takes over from a
// holder that is gone, [Engine.RequestRollback] and [Engine.RequestPromote] record an
// operator's requests, and [Decide] closes a gate. Locks are leased ([Engine.LockTTL]); a holder
// of this host that died is taken over at once ([OwnerDead]).
//
// The rule it keeps: every transition is written to the store before it is acted on, and every
// action is idempotent, so a release whose process died is resumed or rolled back from its record.
package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors a store answers and the engine acts on.
var (
	// ErrConflict: the release changed since it was read; reload and decide again.
	ErrConflict = errors.New("changed by someone else since it was read")
	// ErrLockLost: another process took the lock over after this one's lease ran out.
	ErrLockLost = errors.New("the lock is no longer ours: another process took it over after our lease ran out")
)

// Phase is where a release is.
type Phase string

// Phases, in the order a release moves through them.
const (
	Planned          Phase = "planned"
	Publishing       Phase = "publishing"
	Shifting         Phase = "shifting"
	AwaitingApproval Phase = "awaiting-approval"
	Promoting        Phase = "promoting"
	Promoted         Phase = "promoted"
	RollingBack      Phase = "rolling-back"
	RolledBack       Phase = "rolled-back"
	Failed           Phase = "failed"
)

// Final reports whether nothing more will happen to a release in this phase.
func (p Phase) Final() bool { return p == Promoted || p == RolledBack || p == Failed }

// Step is one traffic shift: Weight on the new versions (0 < Weight ≤ 1), held for Bake.
type Step struct {
	Weight float64       `json:"weight"`
	Bake   time.Duration `json:"bake"`
}

// Release is the record of one release. The store keeps it whole; Revision is its optimistic
// concurrency token: an update applies only to the revision it was computed from.
type Release struct {
	ID          string     `json:"id"`
	Service     string     `json:"service"`
	Environment string     `json:"environment"`
	Alias       string     `json:"alias"`
	Region      string     `json:"region,omitempty"`
	Strategy    string     `json:"strategy"`
	Steps       []Step     `json:"steps"`
	Functions   []Function `json:"functions"`
	Artifacts   Artifacts  `json:"artifacts"`
	// Checks say how health is judged; nil: a step passes when its bake ends.
	Checks *Checks `json:"checks,omitempty"`

	Phase Phase `json:"phase"`
	// Step is the index of the step being shifted to or baked, while Phase is Shifting.
	Step int `json:"step"`
	// StepStarted is when the current step's weights were all in place: its bake runs from here.
	StepStarted time.Time `json:"stepStarted,omitzero"`
	// Reason says why a release is rolling back, rolled back or failed.
	Reason string `json:"reason,omitempty"`
	// Awaiting, in AwaitingApproval, says why a person must decide: the release waits for
	// `aviary promote` or `aviary rollback`.
	Awaiting string `json:"awaiting,omitempty"`
	// Unjudged says why the checks did not judge the release, when a step stayed Inconclusive
	// (too little traffic to see a regression) and the release went on anyway: promoted as
	// on_inconclusive says, or approved by a person. Empty: every step was judged.
	Unjudged string `json:"unjudged,omitempty"`
	// Health is what the checks found: before traffic, at every step, after traffic.
	Health HealthRecord `json:"health,omitzero"`
	// Approval is the environment's gate as it was when the release was planned; nil: no gate.
	Approval *Approval `json:"approval,omitempty"`
	// Gates are the waits for a decision, in order: when each opened, until when it waits, and
	// the decision that closed it (the first one wins). The last is open while it is undecided
	// and the release is AwaitingApproval.
	Gates []Gate `json:"gates,omitempty"`
	// Request is an operator's pending request (rollback, or promote now), acted on by whichever
	// process drives the release.
	Request *Request `json:"request,omitempty"`
	// Force lets the release move aliases that carry weights it did not set.
	Force bool `json:"force,omitempty"`
	// Controller says the environment's controller drives the release (`aviary deploy
	// --detach`, or an attached deploy cancelled where a controller is configured, see
	// [Engine.HandOff]): it takes the lock at each tick and moves the release on. A CLI may still
	// drive it (resume, rollback): the lock decides who acts.
	Controller bool `json:"controller,omitempty"`
	// Moving is set, before any alias is moved, when the release starts shifting or promoting:
	// from then on a crash may have moved an alias the record does not show, so a rollback
	// restores every published function.
	Moving bool `json:"moving,omitempty"`
	// Notify is where notices of the release go, for a process that has no manifest: the
	// controller, which tells people what it does to a release handed to it as an attached
	// deploy would. Nil: no notices (or a release not meant for a controller).
	Notify *Notify `json:"notify,omitempty"`

	// Outbox holds the audit entries of the last change, written with it in one update and then
	// appended to the audit trail (idempotently, by Key): a crash between the two loses nothing,
	// since whoever next loads the release appends them.
	Outbox []Event `json:"outbox,omitempty"`

	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	// Earlier are the ends a release had before an operator reopened it to roll it back (a
	// promoted release rolled back after the fact): an end, once recorded, is never lost, so
	// what counts releases by how they ended (the dashboard's /metrics) only ever counts up.
	Earlier  []Ending `json:"earlier,omitempty"`
	Revision int64    `json:"revision"`
}

// Notify is where a release's notices go, as its environment's `notify:` was written when it
// was planned: the URLs keep their ${NAME} references unfilled, so that the secret a Slack
// webhook's URL is stays out of the store; whoever sends the notices fills them in from its own
// environment (the controller's function's variables).
type Notify struct {
	Slack   []string `json:"slack,omitempty"`
	Webhook []string `json:"webhook,omitempty"`
	// Dashboard is where `aviary serve` answers, for a notice's link to the release; empty: none.
	Dashboard string `json:"dashboard,omitempty"`
}

// Ending is how and when a release ended.
type Ending struct {
	Phase Phase     `json:"phase"`
	At    time.Time `json:"at"`
}

// Checks say how a release's health is judged, as the environment's checks were when it was
// planned (a resumed release is judged as it began).
type Checks struct {
	// Alpha bounds the chance of rolling back a canary that is no worse than its baseline.
	Alpha float64 `json:"alpha"`
	// Detect is the ratio of error rates a step must have had the traffic to see; a step that
	// ran too little is Inconclusive.
	Detect float64 `json:"detect"`
	// MinRate floors the baseline's error rate in that check (0: the judge's default, 0.1%), so
	// that a clean canary beside a clean baseline passes once it ran enough.
	MinRate float64 `json:"minRate,omitempty"`
	// Latency is the baseline percentile slow invocations are counted against (p95, p99); empty:
	// latency is not judged.
	Latency       string  `json:"latency,omitempty"`
	LatencyDetect float64 `json:"latencyDetect,omitempty"`
	// MaxErrorRate and MaxThrottleRate are catastrophic-failure breakers on the canary alone.
	MaxErrorRate    float64 `json:"maxErrorRate"`
	MaxThrottleRate float64 `json:"maxThrottleRate"`
	// MetricsPeriod is the period of the CloudWatch metrics read (AWS: 1m); MetricsDelay how
	// long after a period closes its points are trusted to be complete.
	MetricsPeriod time.Duration `json:"metricsPeriod"`
	MetricsDelay  time.Duration `json:"metricsDelay"`
	// Metrics and Logs turn the two sources on.
	Metrics bool `json:"metrics"`
	Logs    bool `json:"logs"`
	// Alarms are CloudWatch alarm names: any in ALARM during a step fails it. One already in
	// ALARM before the release blocks it only with BlockPreexisting.
	Alarms           []string `json:"alarms,omitempty"`
	BlockPreexisting bool     `json:"blockPreexisting,omitempty"`
	// Smoke invocations of each new version, before traffic and at every step.
	Smoke []Smoke `json:"smoke,omitempty"`
	// PreTraffic and PostTraffic are hook functions; each must answer success within HookTimeout.
	PreTraffic  string        `json:"preTraffic,omitempty"`
	PostTraffic string        `json:"postTraffic,omitempty"`
	HookTimeout time.Duration `json:"hookTimeout,omitempty"`
	// MaxBake is how long an Inconclusive step may bake; then OnInconclusive decides: auto (gate
	// where the release has an approval gate, else promote unjudged), rollback, gate (a person
	// decides) or promote (unjudged). Empty, as in records made before auto existed: rollback.
	MaxBake        time.Duration `json:"maxBake"`
	OnInconclusive string        `json:"onInconclusive"`
}

// Approval is a gate: after step AtStep (1-based; 0: before any traffic moves) the release waits
// for a person to approve or roll it back, for at most Timeout (0: no limit), then decides
// OnTimeout. PreApprove decides "approve" at once, as the system, through the same path.
type Approval struct {
	AtStep     int           `json:"atStep"`
	Timeout    time.Duration `json:"timeout,omitempty"`
	OnTimeout  string        `json:"onTimeout,omitempty"`
	PreApprove bool          `json:"preApprove,omitempty"`
	// PreApprovedBy says where pre-approval came from: the manifest or AVIARY_PRE_APPROVE.
	PreApprovedBy string `json:"preApprovedBy,omitempty"`
}

// Gate is one wait for a decision.
type Gate struct {
	// Step is the step (1-based) after which the release waits; 0: before any traffic moved.
	Step     int       `json:"step"`
	Opened   time.Time `json:"opened"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Kind is approval (the environment requires it) or inconclusive (on_inconclusive: gate).
	Kind string `json:"kind"`
	// Why says why a person must decide.
	Why      string    `json:"why"`
	Decision *Decision `json:"decision,omitempty"`
}

// Gate kinds.
const (
	GateApproval     = "approval"
	GateInconclusive = "inconclusive"
)

// OpenGate is the gate the release waits at, or nil.
func (r *Release) OpenGate() *Gate {
	if r.Phase != AwaitingApproval || len(r.Gates) == 0 || r.Gates[len(r.Gates)-1].Decision != nil {
		return nil
	}
	return &r.Gates[len(r.Gates)-1]
}

// LastGate is the latest gate, open or decided, or nil.
func (r *Release) LastGate() *Gate {
	if len(r.Gates) == 0 {
		return nil
	}
	return &r.Gates[len(r.Gates)-1]
}

// Decision is what closed a gate: approve or roll back, by whom, through what, from where.
type Decision struct {
	Action DecisionAction `json:"action"`
	// Gate is the gate (1-based) the decider saw and meant; 0: whichever is open. A decision
	// for a gate that has since closed is too late, even when a later gate is open.
	Gate int    `json:"gate,omitempty"`
	By   string `json:"by"`
	// Via is how it came: cli, dashboard, link, pre-approve or timeout.
	Via       string    `json:"via"`
	Source    string    `json:"source,omitempty"`
	UserAgent string    `json:"userAgent,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// DecisionAction is a gate's outcome.
type DecisionAction string

// Decisions.
const (
	Approve        DecisionAction = "approve"
	DecideRollback DecisionAction = "rollback"
)

// How decisions come.
const (
	ViaCLI        = "cli"
	ViaDashboard  = "dashboard"
	ViaLink       = "link"
	ViaPreApprove = "pre-approve"
	ViaTimeout    = "timeout"
)

// Smoke is one smoke invocation: Payload sent to the new version of Function (every function
// when empty); it passes with no function error and, for each JSON path in Expect, that value.
type Smoke struct {
	Function string         `json:"function,omitempty"`
	Payload  string         `json:"payload,omitempty"`
	Expect   map[string]any `json:"expect,omitempty"`
}

// On-inconclusive policies: what a step still Inconclusive after its longest bake does.
const (
	// OnInconclusiveAuto, the default, never rolls back a release for want of traffic: it gates
	// where the release has an approval gate a person decides (not pre-approved), and otherwise
	// promotes, recording the release as unjudged.
	OnInconclusiveAuto     = "auto"
	OnInconclusiveRollback = "rollback"
	OnInconclusiveGate     = "gate"
	OnInconclusivePromote  = "promote"
)

// HealthRecord is what a release's checks found.
type HealthRecord struct {
	PreTraffic  *Verdict `json:"preTraffic,omitempty"`
	PostTraffic *Verdict `json:"postTraffic,omitempty"`
	// Reference is each function's baseline latency, measured before traffic moved.
	Reference map[string]Reference `json:"reference,omitempty"`
	// PreexistingAlarms were in ALARM before the release began.
	PreexistingAlarms []string `json:"preexistingAlarms,omitempty"`
	// Steps records every step the release shifted to, in order.
	Steps []StepRecord `json:"steps,omitempty"`
	// JudgeState is the health judge's own state, as its last verdict returned it (Verdict.State):
	// what a new process needs to judge on exactly where the last one stopped (the health
	// package's doc says what it holds). Opaque to the engine, which only stores it.
	JudgeState json.RawMessage `json:"judgeState,omitempty"`
}

// StepRecord is one step as it happened.
type StepRecord struct {
	Step   int     `json:"step"`
	Weight float64 `json:"weight"`
	// Shifted is when the shift began (before any alias moved), Started when every weight was
	// in place, Ended when the step was judged.
	Shifted  time.Time `json:"shifted"`
	Started  time.Time `json:"started,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
	Extended bool      `json:"extended,omitempty"`
	// Unjudged: the step stayed Inconclusive after its longest bake and the release went on.
	Unjudged bool     `json:"unjudged,omitempty"`
	Verdict  *Verdict `json:"verdict,omitempty"`
}

// Reference is a baseline latency.
type Reference struct {
	Percentile string  `json:"percentile"`
	Millis     float64 `json:"millis"`
	Samples    int     `json:"samples"`
	Source     string  `json:"source"`
}

// Artifacts says where the release's zips are.
type Artifacts struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
}

// Function is one function of a release.
type Function struct {
	Name         string `json:"name"`         // logical, as the manifest names it
	FunctionName string `json:"functionName"` // the Lambda function
	// Previous is the version the alias pointed to before the release: what rollback restores.
	// Empty when the alias did not exist (the release creates it).
	Previous string `json:"previous,omitempty"`
	// New is the version the release published; empty until it is.
	New         string `json:"new,omitempty"`
	ArtifactKey string `json:"artifactKey"`
	CodeSha256  string `json:"codeSha256"`
	// ImageUri is an image function's code: the image pinned to its digest
	// (REPOSITORY_URI@sha256:...), whose hex is CodeSha256. Empty for zip functions, whose code
	// is ArtifactKey.
	ImageUri string `json:"imageUri,omitempty"`
	// BaseRevision is $LATEST's RevisionId when the release was planned: the code update's
	// precondition, so a function changed by someone else since is not overwritten.
	BaseRevision string `json:"baseRevision,omitempty"`
	// BaseCodeSha256 is $LATEST's code when the release was planned.
	BaseCodeSha256 string `json:"baseCodeSha256,omitempty"`
	// AliasRevision is the alias's RevisionId as the release last saw or left it.
	AliasRevision string `json:"aliasRevision,omitempty"`
	// AliasMissing says the alias did not exist before the release.
	AliasMissing bool `json:"aliasMissing,omitempty"`
	// PinnedFromLatest says the alias pointed at $LATEST; the release first pinned it to a
	// published version of the same code (Previous), so that the code update changes no traffic.
	PinnedFromLatest bool `json:"pinnedFromLatest,omitempty"`
	// Weight is the share of traffic on New as the release last set it; Promoted and
	// RolledBack say the alias was moved wholly to New or back to Previous.
	Weight     float64 `json:"weight"`
	Promoted   bool    `json:"promoted,omitempty"`
	RolledBack bool    `json:"rolledBack,omitempty"`
	// Timeout (seconds) and LogGroup are the function's as planned: how long an invocation
	// may run, so that metrics are judged only once every invocation in them has ended, and
	// where its logs go.
	Timeout  int    `json:"timeout,omitempty"`
	LogGroup string `json:"logGroup,omitempty"`
	// Configuration is the managed configuration the new version carries, without secret
	// values (see [Configuration]); nil: the release changes code only.
	Configuration *Configuration `json:"configuration,omitempty"`
}

// Request is an operator's request to a release.
type Request struct {
	Action RequestAction `json:"action"`
	By     string        `json:"by"`
	Reason string        `json:"reason,omitempty"`
	At     time.Time     `json:"at"`
	// Now, on a promotion, skips the current step's remaining bake too.
	Now bool `json:"now,omitempty"`
}

// RequestAction is what an operator asks of a release.
type RequestAction string

// Requests.
const (
	RequestRollback RequestAction = "rollback"
	RequestPromote  RequestAction = "promote"
)

// Event is one entry of the audit trail: who did what to which release, when, from where, why.
type Event struct {
	ReleaseID string `json:"releaseId"`
	Seq       int64  `json:"seq"`
	// Key makes appending idempotent: an entry whose Key is already in the trail is not added again.
	Key     string         `json:"key,omitempty"`
	Time    time.Time      `json:"time"`
	Actor   string         `json:"actor"`
	Source  string         `json:"source,omitempty"`
	Kind    string         `json:"kind"`
	Phase   Phase          `json:"phase,omitempty"`
	Step    int            `json:"step,omitempty"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data,omitempty"`
}

// Event kinds.
const (
	EventCreated    = "created"
	EventTransition = "transition"
	EventFunction   = "function"
	EventRequest    = "request"
	EventHealth     = "health"
	EventNote       = "note"
	// EventDecision is a gate decision; Data["tooLate"] marks one that came after the first.
	EventDecision = "decision"
	// EventNotice records a notice sent (or not) to Slack or a webhook.
	EventNotice = "notice"
	// EventHandOff records that the release was handed to the environment's controller.
	EventHandOff = "handoff"
)

// InconclusivePolicy is what a step still Inconclusive after its longest bake does: rollback,
// gate or promote, with auto resolved against the release's approval gate. A release recorded
// before auto existed (no policy) rolls back, as it did then.
func (r *Release) InconclusivePolicy() string {
	if r.Checks == nil {
		return OnInconclusivePromote // no checks: nothing is inconclusive
	}
	switch p := r.Checks.OnInconclusive; p {
	case OnInconclusiveAuto:
		if a := r.Approval; a != nil && !a.PreApprove {
			return OnInconclusiveGate
		}
		return OnInconclusivePromote
	case "":
		return OnInconclusiveRollback
	default:
		return p
	}
}

// LockKey names the lock a release of a service to an environment takes.
func LockKey(service, environment string) string { return service + "/" + environment }

// Describe is one line saying where a release is.
func (r *Release) Describe() string {
	switch r.Phase {
	case Shifting:
		if r.Step < len(r.Steps) {
			return fmt.Sprintf("%s (step %d of %d: %s on the new versions)", r.Phase, r.Step+1, len(r.Steps), percent(r.Steps[r.Step].Weight))
		}
	case AwaitingApproval:
		if r.Awaiting != "" {
			return fmt.Sprintf("%s: %s", r.Phase, r.Awaiting)
		}
	case Promoted:
		if r.Unjudged != "" {
			return fmt.Sprintf("%s, UNJUDGED: %s", r.Phase, r.Unjudged)
		}
	case RollingBack, RolledBack, Failed:
		if r.Reason != "" {
			return fmt.Sprintf("%s: %s", r.Phase, r.Reason)
		}
	}
	return string(r.Phase)
}

func percent(w float64) string {
	s := fmt.Sprintf("%.2f", w*100)
	for len(s) > 0 && (s[len(s)-1] == '0') {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s + "%"
}
