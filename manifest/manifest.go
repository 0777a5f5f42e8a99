// Package manifest reads and validates aviary.yaml: the service, its functions and how each is
// built, the artifact bucket, the alias, and per environment how function names are formed and
// how traffic moves.
//
// The rule it keeps: a manifest is validated whole before anything changes, and every problem is
// reported at once with its file, line and field.
package manifest

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// DefaultFile is the manifest's name when none is given.
const DefaultFile = "aviary.yaml"

// Manifest is a validated aviary.yaml.
type Manifest struct {
	Path    string
	Service string
	Alias   string
	Store   string // where releases are kept: sqlite://PATH (default) or, with a team store, dynamodb://TABLE
	// Dashboard is the public address of `aviary serve` (or the gate's function URL): where
	// signed approval links and release pages point. AVIARY_URL overrides it.
	Dashboard    string
	Artifacts    Artifacts
	Functions    []Function // sorted by name
	Environments map[string]*Environment
}

// Artifacts says where function zips are kept: s3://Bucket/Prefix/<sha256>.zip, and a local copy
// in Cache so that a lost key can be restored.
type Artifacts struct {
	Bucket string
	Prefix string
	Cache  string
}

// Function is one logical function and how its zip is produced: exactly one of Zip (a built zip),
// Dir (a directory to package) or Build (a command whose output directory is packaged) — or,
// for a container-image function, Image.
type Function struct {
	Name  string
	Zip   string
	Dir   string
	Build *Build
	// Image is the container image in ECR the function runs (`image:`); nil for zip functions.
	Image *Image
	// Configuration is what Aviary manages of the function's configuration; nil: none of it.
	Configuration *Configuration
	Line          int
}

// Build is a command run with sh -c in Dir (default: the manifest's directory); it writes the
// files to package into the directory named by $AVIARY_OUT.
type Build struct {
	Command string
	Dir     string
}

// Environment is where a release goes.
type Environment struct {
	Name string
	// FunctionName forms each function's Lambda name from {service}, {function} and {env}.
	FunctionName string
	Region       string
	Strategy     Strategy
	// PreApprove decides the approval gate automatically, through the same path as a person.
	PreApprove bool
	// Checks say how each step's health is judged; nil: a step passes when its bake ends.
	Checks *Checks
	// Approval is the human gate; nil: none.
	Approval *Approval
	// Notify says where notices go; nil: nowhere.
	Notify *Notify
	// Retain says what retention (`aviary prune`, `aviary gc`, `aviary doctor`) keeps for
	// rollbacks beyond what aliases and live releases use.
	Retain Retain
	// Controller is the environment's controller (`controller:`), the Lambda that drives
	// detached releases; nil: none, every release is driven by the process that started it.
	Controller *Controller
	// OnCancel is what an attached deploy does when it is interrupted (SIGINT, SIGTERM) and no
	// controller can take the release: rollback (the default) or leave.
	OnCancel string
	Line     int
}

// Controller is an environment's `controller:` block.
type Controller struct {
	// Function is the controller's Lambda function name (default "aviary-controller").
	Function string
}

// DefaultControllerFunction is the controller's function name when the manifest names none.
const DefaultControllerFunction = "aviary-controller"

// What an interrupted attached deploy does (`on_cancel:`) when no controller can take over.
const (
	OnCancelRollback = "rollback"
	OnCancelLeave    = "leave"
)

// Retain is an environment's `retain:` block.
type Retain struct {
	// Releases is how many of the environment's latest promoted releases keep their versions and
	// artifacts, so that `aviary rollback` of any of them still works (default 3).
	Releases int
}

// DefaultRetainReleases is how many promoted releases are retained when the manifest is silent.
const DefaultRetainReleases = 3

// Checks are an environment's health checks (`checks:`).
type Checks struct {
	// Alpha bounds the chance of rolling back a canary that is no worse (errors.alpha, 1%).
	Alpha float64
	// Detect is the ratio of error rates a step must be able to see (errors.detect, 5).
	Detect float64
	// MinRate floors the baseline's error rate in that power check (errors.min_rate, 0.1%), so
	// that a canary and baseline without errors pass once they ran enough.
	MinRate float64
	// Latency is p95 or p99 (latency.percentile); empty: latency is not judged.
	Latency       string
	LatencyDetect float64
	// MaxErrorRate and MaxThrottleRate are the catastrophic-failure breakers (ceilings).
	MaxErrorRate    float64
	MaxThrottleRate float64
	// Metrics turns the CloudWatch metrics source on (metrics: off turns it off), read in
	// MetricsPeriod points trusted MetricsDelay after they close.
	Metrics       bool
	MetricsPeriod time.Duration
	MetricsDelay  time.Duration
	// Logs turns the per-invocation log source on (logs: auto, the default, or off).
	Logs bool
	// Alarms are CloudWatch alarm names, with {service}, {env} and {function} filled in (an alarm
	// naming {function} is one alarm per function).
	Alarms           []string
	BlockPreexisting bool
	Smoke            []Smoke
	// PreTraffic and PostTraffic are hook functions' names ({service} and {env} filled in).
	PreTraffic  string
	PostTraffic string
	HookTimeout time.Duration
	// MaxBake is how long an Inconclusive step may bake; then OnInconclusive decides: auto (the
	// default: gate where the environment has an approval gate, else promote, recorded as
	// unjudged), rollback, gate or promote.
	MaxBake        time.Duration
	OnInconclusive string
}

// Smoke is one smoke invocation of each new version (of Function only, when set): Payload (JSON)
// must be answered with no function error and, for every JSON path in Expect, that value.
type Smoke struct {
	Function string
	Payload  string
	Expect   map[string]any
}

// Strategy is how traffic moves to the new versions: Steps in order, each a weight on the new
// version and a bake time, then promotion. All-at-once has no steps.
type Strategy struct {
	Name  string // as written: "all-at-once", "canary", "linear" or a preset such as Canary10Percent5Minutes
	Steps []Step
}

// Step is one traffic shift: Weight is the share of traffic on the new version (0 < Weight < 1),
// held for Bake while health is judged.
type Step struct {
	Weight float64
	Bake   time.Duration
}

// DefaultFunctionName is how function names are formed when the environment does not say.
const DefaultFunctionName = "{service}-{function}-{env}"

// FunctionName is the Lambda name of function fn in environment env.
func (m *Manifest) FunctionName(env *Environment, fn string) string {
	r := strings.NewReplacer("{service}", m.Service, "{function}", fn, "{env}", env.Name)
	return r.Replace(env.FunctionName)
}

// Environment returns the named environment, or an error listing the ones there are.
func (m *Manifest) Environment(name string) (*Environment, error) {
	if env, ok := m.Environments[name]; ok {
		return env, nil
	}
	names := make([]string, 0, len(m.Environments))
	for n := range m.Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%s has no environment %q; it has: %s", m.Path, name, strings.Join(names, ", "))
}

// Override replaces the weight of the strategy's first step (seed 001's NEW_VERSION_WEIGHTAGE).
// An all-at-once strategy gains a first step at that weight, with no bake.
func (s Strategy) Override(weight float64) Strategy {
	steps := append([]Step(nil), s.Steps...)
	if len(steps) == 0 {
		steps = []Step{{Weight: weight}}
	} else {
		steps[0].Weight = weight
	}
	return Strategy{Name: s.Name + " (first step overridden)", Steps: steps}
}

// Describe says what a strategy does, for plans and progress.
func (s Strategy) Describe() string {
	if len(s.Steps) == 0 {
		return "all at once"
	}
	parts := make([]string, 0, len(s.Steps)+1)
	for _, st := range s.Steps {
		parts = append(parts, fmt.Sprintf("%s for %s", Percent(st.Weight), st.Bake))
	}
	return strings.Join(append(parts, "then 100%"), ", ")
}

// Percent writes a weight as a percentage.
func Percent(w float64) string {
	s := fmt.Sprintf("%.2f", w*100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

var (
	presetCanary = regexp.MustCompile(`^(?:CodeDeployDefault\.)?(?:Lambda)?Canary(\d+)Percent(\d+)Minutes?$`)
	presetLinear = regexp.MustCompile(`^(?:CodeDeployDefault\.)?(?:Lambda)?Linear(\d+)PercentEvery(\d+)Minutes?$`)
	presetAll    = regexp.MustCompile(`^(?:CodeDeployDefault\.)?(?:Lambda)?AllAtOnce$`)
)

// linearSteps expands a linear strategy: step, 2×step, ... below 100%, each baking interval.
func linearSteps(step float64, interval time.Duration) []Step {
	var steps []Step
	for i := 1; float64(i)*step < 1-1e-9; i++ {
		steps = append(steps, Step{Weight: float64(i) * step, Bake: interval})
	}
	return steps
}
