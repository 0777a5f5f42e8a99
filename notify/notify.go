// Package notify tells people about releases: a Slack incoming webhook (Block Kit) or a generic
// JSON webhook hears when a release starts, shifts a step, waits for a decision (with the signed
// approve and rollback links), is promoted, rolled back or fails.
//
// The rule it keeps: a notice never fails a release and never holds it up. Send only queues; a
// worker per target delivers in order, retrying with backoff; what could not be delivered is
// logged and recorded in the audit trail, and the release goes on.
package notify

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// Kind of notice.
type Kind string

// Kinds of notice, in the order a release may give them.
const (
	Started    Kind = "started"
	Step       Kind = "step"
	Awaiting   Kind = "awaiting"
	Promoted   Kind = "promoted"
	RolledBack Kind = "rolled-back"
	Failed     Kind = "failed"
)

// Notice is one thing to tell people about a release.
type Notice struct {
	Kind Kind
	// Release is the release as it was when the notice was given: service, environment, ID, the
	// functions with their versions and weights, the steps, the reason, the gate and health.
	Release release.Release
	// Message is one line saying what happened; empty: the release's own description.
	Message string
	// ApproveURL and RollbackURL, with Awaiting, are the signed links to the confirmation pages.
	ApproveURL  string
	RollbackURL string
	// ReleaseURL is the dashboard's page of the release, when a server address is known.
	ReleaseURL string
	// Time is when it happened; zero: when it was sent.
	Time time.Time
}

// Headline is the notice in a line: "<service> → <environment>: release <id> <what happened>".
func (n Notice) Headline() string {
	r := n.Release
	return fmt.Sprintf("%s → %s: release %s %s", r.Service, r.Environment, r.ID, n.happened())
}

// happened says what the notice's kind means, in words.
func (n Notice) happened() string {
	r := n.Release
	switch n.Kind {
	case Started:
		return "started"
	case Step:
		if r.Step >= 0 && r.Step < len(r.Steps) {
			return fmt.Sprintf("is at step %d of %d (%s on the new versions)", r.Step+1, len(r.Steps), percent(r.Steps[r.Step].Weight))
		}
		return "moved a step"
	case Awaiting:
		return "waits for a decision"
	case Promoted:
		return "was promoted"
	case RolledBack:
		return "was rolled back"
	case Failed:
		return "failed"
	}
	return string(n.Kind)
}

// message is the notice's message, or the release's description when it has none.
func (n Notice) message() string {
	if n.Message != "" {
		return n.Message
	}
	r := n.Release
	return r.Describe()
}

// stepNumber is the step (1-based) the release reached, as the audit trail numbers steps; 0:
// no traffic has moved yet.
func stepNumber(r release.Release) int {
	if len(r.Health.Steps) == 0 && r.Phase != release.Shifting {
		return 0
	}
	return r.Step + 1
}

// stage is one health judgement and when in the release it was made.
type stage struct {
	name    string // before traffic, step N, after traffic
	verdict *release.Verdict
}

// judgements are a release's health verdicts in the order they were made.
func judgements(h release.HealthRecord) []stage {
	var out []stage
	if h.PreTraffic != nil {
		out = append(out, stage{"before traffic", h.PreTraffic})
	}
	for _, rec := range h.Steps {
		if rec.Verdict != nil {
			out = append(out, stage{fmt.Sprintf("step %d", rec.Step+1), rec.Verdict})
		}
	}
	if h.PostTraffic != nil {
		out = append(out, stage{"after traffic", h.PostTraffic})
	}
	return out
}

// decisive is the verdict that turned a release back: the last that failed, or else the last
// one if it was inconclusive (a release rolled back when it could not be judged).
func decisive(h release.HealthRecord) (stage, bool) {
	all := judgements(h)
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].verdict.Result == release.Fail {
			return all[i], true
		}
	}
	if n := len(all); n > 0 && all[n-1].verdict.Result == release.Inconclusive {
		return all[n-1], true
	}
	return stage{}, false
}

// latest is the verdict worth reporting: the decisive one if there is one, else the last.
func latest(h release.HealthRecord) (stage, bool) {
	if s, ok := decisive(h); ok {
		return s, true
	}
	all := judgements(h)
	if len(all) == 0 {
		return stage{}, false
	}
	return all[len(all)-1], true
}

// functionName is a function's logical name, given its Lambda name.
func functionName(r release.Release, lambdaName string) string {
	for _, fn := range r.Functions {
		if fn.FunctionName == lambdaName {
			return fn.Name
		}
	}
	return lambdaName
}

// numbersLine says what a verdict's numbers show, in words: the canary's errors against the
// baseline's, and slow and throttled invocations when there were any. Empty: it has none.
func numbersLine(v *release.Verdict) string {
	n := v.Numbers()
	if n == nil {
		return ""
	}
	ci, ok := n["canaryInvocations"]
	if !ok {
		return ""
	}
	ce, bi, be := n["canaryErrors"], n["baselineInvocations"], n["baselineErrors"]
	s := fmt.Sprintf("canary %s errors in %s invocations (%s)", count(ce), count(ci), rate(ce, ci))
	if bi > 0 || be > 0 {
		s += fmt.Sprintf(" against the baseline's %s in %s (%s)", count(be), count(bi), rate(be, bi))
	}
	if cs, ok := n["canarySlow"]; ok && (cs > 0 || n["baselineSlow"] > 0) {
		s += fmt.Sprintf("; slow: canary %s of %s, baseline %s of %s", count(cs), count(ci), count(n["baselineSlow"]), count(bi))
	}
	if t := n["canaryThrottles"] + n["aliasThrottles"]; t > 0 {
		s += fmt.Sprintf("; throttled %s times", count(t))
	}
	return s
}

func count(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func rate(bad, n float64) string {
	if n == 0 {
		return "no invocations"
	}
	return percent(bad / n)
}

// percent writes a share as a percentage with at most two decimals: 0.1 → 10%, 0.125 → 12.5%.
func percent(w float64) string {
	s := strconv.FormatFloat(w*100, 'f', 2, 64)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s + "%"
}
