// Package health judges a release from what AWS records of it: per-version Lambda metrics in
// CloudWatch, each invocation's platform lines in CloudWatch Logs, named CloudWatch alarms, smoke
// invocations of the new versions and pre/post-traffic hook functions. It implements the release
// engine's Health seam; the statistics are the analysis package's.
//
// The rule it keeps: only what was observed decides. No data yet is not a failure, a source that
// cannot be read is reported (and the other still works), and every verdict carries the numbers
// behind it.
//
// # Judged at ticks, judged the same
//
// A release may be judged by one process polling every second or by a controller that starts a
// fresh process every minute; both are the same test. Each judgement recomputes every function's
// split test (analysis.SplitTest) from all the counts so far: its statistic, the mixture
// likelihood ratio of the bad outcomes' split between canary and baseline, depends only on what
// was counted, not on when or how often anyone looked (within a step the weight is constant, so
// the order of outcomes does not change the product). Under H0 (the canary no worse) that ratio,
// as outcomes arrive, is a nonnegative supermartingale with mean at most 1, and by Ville's
// inequality it ever reaches 1/α with probability at most α. A judgement is a look at that path
// at some moment; looking at fewer moments (ticks) can only miss a crossing, never add one, and
// the moments may be chosen as the release goes (a test that is anytime-valid). So a healthy
// function is failed with probability at most its share of α however it is polled, and the
// fleet's α holds as before (each function gets α/judged, shared again between its tests). The
// ceilings (max error and throttle rates) are breakers outside α, and Inconclusive, at the end
// of a bake, is a matter of power, not of α.
//
// That holds only if a fresh process counts what the last one counted: the same invocations,
// none twice, none missed, smoke invocations not at all, and the same alarms excused. So the
// checker's state is written in the release's record with every verdict (state.go says what it
// holds and how it stays small), and a checker that has no watch of a release in memory, or an
// older one than the record's, restores it from there and goes on where the last one stopped.
package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/analysis"
	"github.com/aviary-deploy/aviary/release"
)

// Checker is the release engine's Health for AWS (and the sandbox). New makes one with the SDK's
// clients; anything that has the methods of [LambdaAPI], [CloudWatchAPI] and [LogsAPI] will do.
type Checker struct {
	Lambda     LambdaAPI
	CloudWatch CloudWatchAPI
	Logs       LogsAPI
	// Clock is the checker's time (default release.RealClock): what has settled, when each source
	// is read again, and every wait between calls.
	Clock release.Clock
	// LogsRate bounds FilterLogEvents calls per second across the fleet (CloudWatch Logs'
	// quota; default 5).
	LogsRate float64
	// LogsEvery, AlarmsEvery: how often each is read while a step bakes (defaults 1 s, 2 s);
	// metrics are read every half period, at least every second.
	LogsEvery   time.Duration
	AlarmsEvery time.Duration
	// InvokeBackoff is the wait before a smoke invocation or a hook is tried again after a
	// transient API error; it doubles at each try (default 500 ms).
	InvokeBackoff time.Duration
	// Parallelism bounds concurrent smoke invocations and reads (default 8).
	Parallelism int
	// FoldAfter is how long after a metrics period settled its counts are folded into its
	// step's totals (default 5 minutes): a late point of it is no longer counted, and the state
	// the record keeps stays small (see fold).
	FoldAfter time.Duration

	mu       sync.Mutex
	releases map[string]*watch
	logsTick *ticker
}

// New makes a checker with clients from cfg.
func New(cfg aws.Config) *Checker {
	return &Checker{
		Lambda:     lambda.NewFromConfig(cfg),
		CloudWatch: cloudwatch.NewFromConfig(cfg),
		Logs:       cloudwatchlogs.NewFromConfig(cfg),
	}
}

func (c *Checker) clock() release.Clock {
	if c.Clock != nil {
		return c.Clock
	}
	return release.RealClock{}
}

func (c *Checker) now() time.Time { return c.clock().Now() }

func (c *Checker) parallelism() int {
	if c.Parallelism > 0 {
		return c.Parallelism
	}
	return 8
}

// watch is what the checker keeps of one release while it is judged. What AWS cannot tell
// again is persisted with every verdict (see state.go) and restored by a new process.
type watch struct {
	mu  sync.Mutex
	fns map[string]*fnWatch // by FunctionName
	// id names this watch (By in the states it makes); seq is the Seq of the record it built on
	// (see state.go). lastBody and lastState are the state it last made or restored, without
	// its Seq, By and time and as returned; lastSeq is its Seq, lastLost what fitting it lost.
	id                  string
	seq, lastSeq        int64
	lastBody, lastState []byte
	lastLost            string
	// kept is the last record's state found older than this watch: not decoded again.
	kept []byte

	metricsAt, alarmsAt time.Time
	metricsErr          error
	alarms              []alarmState
	alarmsErr           error
	// firingBefore is, for each alarm in ALARM when the alarms were read before traffic, when
	// its state last changed as that read told it: a later change happened during the release.
	// A release recorded before it was persisted has none (alarmVerdict then falls back to the
	// verdict's time).
	firingBefore map[string]time.Time

	// smokeFor is the StepStarted whose smoke invocations ran; smokeVerdict their failure.
	smokeFor     time.Time
	smokeVerdict *release.Verdict
}

// fnWatch is one function's observations, in buckets per version and period. Both sources count
// on the same grid (the metrics period, see grid): the logs by when each invocation was routed,
// the metrics as CloudWatch aggregates them. A bucket is merged across the sources before it is
// given to a step (stepOfPeriod), so that no invocation is counted twice.
type fnWatch struct {
	logs    logCursor
	logsErr error
	// fromLogs counts the committed lines, recent the pending ones (see logCursor); fromMetrics
	// counts per version, per period (its start, Unix ms).
	fromLogs, recent map[string]map[int64]*counts
	fromMetrics      map[string]map[int64]*counts
	throttles        map[int64]float64 // alias throttles per period (metrics)
	// smokeIDs are request IDs of smoke invocations (→ when invoked, Unix ms): not traffic,
	// so not counted.
	smokeIDs map[string]int64
	// foldedTo (Unix ms): the periods before it are counted in folded, each step's totals, and
	// no longer in the buckets above (see fold).
	foldedTo int64
	folded   []stepTotals
}

// stepTotals is what a step was given of folded periods.
type stepTotals struct {
	canary, base counts
	throttles    float64
}

type counts struct{ n, errors, slow float64 }

// watch is the release's watch: the one in memory, or, if there is none or the record's is newer
// (another process judged the release since), the one the record keeps.
func (c *Checker) watch(r *release.Release) *watch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.releases == nil {
		c.releases = map[string]*watch{}
	}
	w := c.releases[r.ID]
	raw := r.Health.JudgeState
	if w != nil {
		switch {
		case len(raw) == 0 || bytes.Equal(raw, w.kept):
			return w
		case bytes.Equal(raw, w.lastState): // written: the next states build on it
			w.seq = max(w.seq, w.lastSeq)
			return w
		}
	}
	s, ok := decodeState(raw)
	if w != nil && (!ok || s.By == w.id || s.Seq <= w.seq) {
		if ok && s.By == w.id {
			w.seq = max(w.seq, s.Seq) // an earlier state of this watch, written
		}
		w.kept = raw
		return w
	}
	w = &watch{fns: map[string]*fnWatch{}}
	for _, fn := range r.Functions {
		w.fns[fn.FunctionName] = &fnWatch{fromLogs: map[string]map[int64]*counts{}, recent: map[string]map[int64]*counts{},
			fromMetrics: map[string]map[int64]*counts{}, throttles: map[int64]float64{}, smokeIDs: map[string]int64{}}
	}
	if ok {
		w.restore(r, s, r.Health.JudgeState)
	}
	c.releases[r.ID] = w
	return w
}

// forget drops a finished release's state.
func (c *Checker) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.releases, id)
}

// BeforeTraffic invokes every new version with the smoke payloads, asks the pre-traffic hook,
// notes the alarms already firing and measures each baseline's latency. Nothing has moved yet.
func (c *Checker) BeforeTraffic(ctx context.Context, r *release.Release) (release.PreTraffic, error) {
	w := c.watch(r)
	pre, err := c.beforeTraffic(ctx, r, w)
	w.mu.Lock()
	defer w.mu.Unlock()
	var lost string
	if pre.State, lost = w.state(r, c.now()); lost != "" {
		pre.Verdict.Notes = append(pre.Verdict.Notes, lost)
	}
	return pre, err
}

func (c *Checker) beforeTraffic(ctx context.Context, r *release.Release, w *watch) (release.PreTraffic, error) {
	ch := r.Checks
	var pre release.PreTraffic
	var notes, done []string
	if len(ch.Alarms) > 0 {
		states, err := c.describeAlarms(ctx, ch.Alarms)
		if err != nil {
			return pre, err
		}
		w.mu.Lock()
		w.firingBefore = map[string]time.Time{}
		for _, a := range states {
			if !a.missing && a.state == "ALARM" {
				w.firingBefore[a.name] = a.updated
			}
		}
		w.mu.Unlock()
		for _, a := range states {
			switch {
			case a.missing:
				notes = append(notes, fmt.Sprintf("alarm %s does not exist", a.name))
			case a.state == "ALARM":
				pre.PreexistingAlarms = append(pre.PreexistingAlarms, a.name)
				if ch.BlockPreexisting {
					pre.Verdict = release.Verdict{Result: release.Fail, Check: "alarm", Reason: fmt.Sprintf("alarm %s was already in ALARM (%s) and block_on_firing_alarms is set", a.name, a.reason)}
					return pre, nil
				}
				notes = append(notes, fmt.Sprintf("alarm %s was already in ALARM before the release (%s); it is reported, not blocking, since this release may be the fix", a.name, a.reason))
			}
		}
		done = append(done, fmt.Sprintf("%d alarms read", len(ch.Alarms)))
	}
	if len(ch.Smoke) > 0 {
		v, err := c.smoke(ctx, r, w, "before traffic")
		if err != nil {
			return pre, err
		}
		if v != nil {
			v.Notes = append(notes, v.Notes...)
			pre.Verdict = *v
			return pre, nil
		}
		done = append(done, fmt.Sprintf("smoke invocations of %s passed", countNew(r)))
	}
	if ch.PreTraffic != "" {
		v, err := c.hook(ctx, r, ch.PreTraffic, "pre-traffic")
		if err != nil {
			return pre, err
		}
		if v.Result != release.Pass {
			v.Notes = append(notes, v.Notes...)
			pre.Verdict = v
			return pre, nil
		}
		done = append(done, v.Reason)
	}
	if ch.Latency != "" {
		ref, refNotes, err := c.references(ctx, r)
		if err != nil {
			notes = append(notes, "baseline latency not measured: "+err.Error())
		}
		pre.Reference = ref
		notes = append(notes, refNotes...)
		if len(ref) > 0 {
			done = append(done, fmt.Sprintf("baseline %s latency measured for %d functions", ch.Latency, len(ref)))
		}
	}
	if len(done) == 0 {
		done = append(done, "nothing to check before traffic")
	}
	pre.Verdict = release.Verdict{Result: release.Pass, Reason: strings.Join(done, "; "), Notes: notes}
	return pre, nil
}

func countNew(r *release.Release) string {
	if len(r.Functions) == 1 {
		return "the new version"
	}
	return fmt.Sprintf("the %d new versions", len(r.Functions))
}

// AfterTraffic asks the post-traffic hook, once every alias is wholly on its new version.
func (c *Checker) AfterTraffic(ctx context.Context, r *release.Release) (release.Verdict, error) {
	defer c.forget(r.ID)
	if r.Checks.PostTraffic == "" {
		return release.Verdict{Result: release.Pass, Reason: "no post-traffic hook"}, nil
	}
	return c.hook(ctx, r, r.Checks.PostTraffic, "post-traffic")
}

// Judge reads what is new (logs every LogsEvery, metrics every half period, alarms every
// AlarmsEvery), runs the step's smoke invocations once, and judges every function of the fleet:
// one failing function fails the release. The verdict carries the checker's state for the
// engine to write, even with an error; StateNow is set when smoke invocations ran.
func (c *Checker) Judge(ctx context.Context, r *release.Release, over bool) (release.Verdict, error) {
	w := c.watch(r)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(r.Health.Steps) == 0 {
		return release.Verdict{Result: release.Pass, Reason: "no step started yet"}, nil
	}
	smoked := w.smokeFor
	now := c.now()
	v, err := c.judge(ctx, r, w, over, now)
	var lost string
	v.State, lost = w.state(r, now)
	v.StateNow = !w.smokeFor.Equal(smoked)
	if lost != "" {
		v.Notes = append(v.Notes, lost)
	}
	return v, err
}

func (c *Checker) judge(ctx context.Context, r *release.Release, w *watch, over bool, now time.Time) (release.Verdict, error) {
	ch := r.Checks

	var notes []string
	var unread error // a check that could not be read

	// Smoke invocations of the new versions, once per step. What Lambda's API could not invoke
	// is not remembered: the next look tries again.
	if len(ch.Smoke) > 0 && !r.StepStarted.Equal(w.smokeFor) {
		v, err := c.smoke(ctx, r, w, fmt.Sprintf("at step %d", r.Step+1))
		switch {
		case err != nil && ctx.Err() != nil:
			return release.Verdict{}, err
		case err != nil:
			unread = err
		default:
			w.smokeFor, w.smokeVerdict = r.StepStarted, v
		}
	}
	if w.smokeVerdict != nil {
		return *w.smokeVerdict, nil
	}
	if ch.Logs {
		if err := c.readLogs(ctx, r, w, now); err != nil {
			return release.Verdict{}, err
		}
		for _, fn := range r.Functions {
			if err := w.fns[fn.FunctionName].logsErr; err != nil {
				if !ch.Metrics {
					return release.Verdict{}, err
				}
				notes = append(notes, "logs: "+err.Error())
			}
		}
	}
	if ch.Metrics {
		period := ch.MetricsPeriod
		if now.Sub(w.metricsAt) >= max(period/2, time.Second) {
			w.metricsErr = c.readMetrics(ctx, r, w, now)
			w.metricsAt = now
		}
		if w.metricsErr != nil {
			if !ch.Logs {
				return release.Verdict{}, w.metricsErr
			}
			notes = append(notes, "metrics: "+w.metricsErr.Error())
		}
	}
	if len(ch.Alarms) > 0 {
		every := c.AlarmsEvery
		if every <= 0 {
			every = 2 * time.Second
		}
		if now.Sub(w.alarmsAt) >= every {
			w.alarms, w.alarmsErr = c.describeAlarms(ctx, ch.Alarms)
			w.alarmsAt = now
		}
		if w.alarmsErr != nil {
			unread = errors.Join(unread, fmt.Errorf("read alarms: %w", w.alarmsErr))
		} else if v, alarmNotes := alarmVerdict(r, w.alarms, w.firingBefore); v != nil {
			return *v, nil
		} else {
			notes = append(notes, alarmNotes...)
		}
	}
	// What was counted is judged even when a check could not be read: a canary the split test
	// rejected fails whatever the alarms say. Otherwise the unread check leaves the step
	// unjudged (the engine takes the error as Inconclusive).
	c.fold(r, w, now)
	v := c.verdict(r, w, over, notes)
	if unread != nil {
		if v.Result == release.Fail {
			v.Notes = append(v.Notes, strings.Split(unread.Error(), "\n")...)
			return v, nil
		}
		return release.Verdict{}, unread
	}
	return v, nil
}

// JudgeConfig is how each function of a release is judged, for releases with these checks and
// steps, of which judged functions have a baseline: what the checker judges with, and what
// `aviary plan` predicts with.
func JudgeConfig(ch *release.Checks, steps []release.Step, judged int) analysis.Config {
	cfg := analysis.Config{
		Alpha: ch.Alpha / float64(max(judged, 1)), Detect: ch.Detect, MinRate: ch.MinRate,
		LatencyDetect: ch.LatencyDetect, MaxErrorRate: ch.MaxErrorRate, MaxThrottleRate: ch.MaxThrottleRate,
	}
	if len(steps) > 0 {
		cfg.DesignWeight = steps[0].Weight
	}
	return cfg
}

// verdict judges every function from the counts so far.
func (c *Checker) verdict(r *release.Release, w *watch, over bool, notes []string) release.Verdict {
	ch := r.Checks
	// The fleet fails if any function fails: each function gets an equal share of α, which its
	// judge shares again between its tests (errors, and latency where it has a baseline
	// reference to count slow invocations against), so that a healthy release is rolled back
	// with probability at most α however many functions and tests it has.
	judged := 0
	for _, fn := range r.Functions {
		if fn.Previous != "" {
			judged++
		}
	}
	cfg := JudgeConfig(ch, r.Steps, judged)
	all := map[string]map[string]float64{}
	var fail, inconclusive *release.Verdict
	var passed, firsts int
	var sum counts4
	worst, worstFn := 0.0, ""
	for _, fn := range r.Functions {
		fw := w.fns[fn.FunctionName]
		cfg := cfg
		_, hasRef := r.Health.Reference[fn.FunctionName]
		cfg.Latency = ch.Latency != "" && hasRef && ch.Logs // slow invocations are counted from the logs
		j := analysis.NewJudge(cfg)
		var canaryN float64
		wins, aliasThrottles := fw.windows(r, fn, grid(ch))
		for _, win := range wins {
			canaryN += float64(win.CanaryN)
			j.Add(win)
		}
		v := j.Verdict(over)
		nums := v.Numbers
		nums["aliasThrottles"] = aliasThrottles
		if ref, ok := r.Health.Reference[fn.FunctionName]; ok {
			nums["referenceMillis"] = ref.Millis
		}
		all[fn.FunctionName] = nums
		name := fn.FunctionName
		verdict := release.Verdict{Result: release.Result(v.Result), Check: checkOf(v), Function: name, Reason: name + ": " + v.Reason}
		// Throttles are not recorded by version: the breaker is on the alias as a whole.
		if attempts := nums["baselineInvocations"] + canaryN + aliasThrottles; verdict.Result != release.Fail && attempts >= 20 && aliasThrottles/attempts > ch.MaxThrottleRate {
			verdict = release.Verdict{Result: release.Fail, Check: "ceiling", Function: name,
				Reason: fmt.Sprintf("%s: alias %s was throttled %.0f of %.0f times, above the %.0f%% ceiling", name, r.Alias, aliasThrottles, attempts, 100*ch.MaxThrottleRate)}
		}
		if fn.Previous == "" && verdict.Result != release.Fail {
			// A first release has no baseline to split errors against: only the ceilings apply.
			verdict = release.Verdict{Result: release.Pass, Function: name, Reason: fmt.Sprintf("%s: no previous version to compare with; %0.f invocations, %.0f errors, within the ceilings", name, nums["canaryInvocations"], nums["canaryErrors"])}
		}
		if over && verdict.Result == release.Inconclusive && nums["canaryInvocations"] == 0 && nums["baselineInvocations"] == 0 {
			verdict.Check, verdict.Reason = "data", fmt.Sprintf("%s: no invocations of either version seen during the step: is traffic reaching alias %s? (%s)", name, r.Alias, sources(ch))
		}
		switch verdict.Result {
		case release.Fail:
			if fail == nil || nums["logEvidence"]-nums["threshold"] > all[fail.Function]["logEvidence"]-all[fail.Function]["threshold"] {
				vv := verdict
				fail = &vv
			}
		case release.Inconclusive:
			if inconclusive == nil {
				vv := verdict
				inconclusive = &vv
			}
		default:
			if fn.Previous == "" {
				firsts++
				continue
			}
			passed++
			sum.add(nums)
			if up, ok := nums["rhoUpper"]; ok && up > worst {
				worst, worstFn = up, name
			}
		}
	}
	var out release.Verdict
	switch {
	case fail != nil:
		out = *fail
	case inconclusive != nil:
		out = *inconclusive
	default:
		out = release.Verdict{Result: release.Pass, Check: "errors", Reason: summarise(passed, firsts, sum, worst, worstFn, over)}
	}
	out.Functions, out.Notes = all, append(out.Notes, notes...)
	return out
}

func sources(ch *release.Checks) string {
	var s []string
	if ch.Logs {
		s = append(s, "log streams")
	}
	if ch.Metrics {
		s = append(s, "CloudWatch metrics")
	}
	return "read from " + strings.Join(s, " and ")
}

func checkOf(v analysis.Verdict) string {
	switch {
	case strings.Contains(v.Reason, "ceiling"):
		return "ceiling"
	case strings.Contains(v.Reason, "slow"):
		return "latency"
	}
	return "errors"
}

// counts4 sums canary and baseline errors and invocations over functions.
type counts4 struct{ ce, cn, be, bn float64 }

func (c *counts4) add(n map[string]float64) {
	c.ce += n["canaryErrors"]
	c.cn += n["canaryInvocations"]
	c.be += n["baselineErrors"]
	c.bn += n["baselineInvocations"]
}

// summarise says why the fleet passes.
func summarise(passed, firsts int, sum counts4, worst float64, worstFn string, over bool) string {
	var parts []string
	if passed > 0 {
		s := fmt.Sprintf("no regression in %s: canaries %.0f errors in %.0f invocations, baselines %.0f in %.0f",
			plural(passed, "function"), sum.ce, sum.cn, sum.be, sum.bn)
		if !over {
			s = fmt.Sprintf("no regression so far in %s (canaries %.0f errors in %.0f, baselines %.0f in %.0f)", plural(passed, "function"), sum.ce, sum.cn, sum.be, sum.bn)
		} else if worstFn != "" {
			s += fmt.Sprintf("; every canary's error rate is at most %.1f× its baseline's (the loosest bound: %s)", worst, worstFn)
		}
		parts = append(parts, s)
	}
	if firsts > 0 {
		parts = append(parts, fmt.Sprintf("%s with no previous version to compare with, within the ceilings", plural(firsts, "function")))
	}
	if len(parts) == 0 {
		return "nothing to judge"
	}
	return strings.Join(parts, "; ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// merge takes, count by count, the more complete of two sources' views of the same invocations
// (one period's): logs arrive in seconds but may miss errors a runtime does not log; metrics are
// complete once their period has settled.
func merge(a, b *counts) counts {
	var out counts
	for _, c := range []*counts{a, b} {
		if c == nil {
			continue
		}
		out.n = math.Max(out.n, c.n)
		out.errors = math.Max(out.errors, c.errors)
		out.slow = math.Max(out.slow, c.slow)
	}
	return out
}

// stepAt is the index of the step an invocation routed at t belongs to: the last whose shift had
// begun by then (while a shift is under way some aliases already carry the new weight, so the
// higher weight is the cautious one). Before the first step: -1.
func stepAt(steps []release.StepRecord, t time.Time) int {
	i := sort.Search(len(steps), func(i int) bool { return steps[i].Shifted.After(t) })
	return i - 1
}

// grid is the period both sources count in: the metrics period when metrics are read (AWS: 1
// minute), else a second (the logs alone time each invocation to the millisecond).
func grid(ch *release.Checks) time.Duration {
	switch {
	case !ch.Metrics:
		return time.Second
	case ch.MetricsPeriod <= 0:
		return time.Minute
	}
	return ch.MetricsPeriod
}

// periodOf is the start (Unix ms) of the period holding t, periods aligned to the Unix epoch as
// CloudWatch aligns them.
func periodOf(t time.Time, period time.Duration) int64 {
	ms, p := t.UnixMilli(), period.Milliseconds()
	if ms < 0 {
		return (ms - p + 1) / p * p
	}
	return ms / p * p
}

// stepOfPeriod is the step a whole period is judged in: of the steps in force during it, the one
// with the highest canary weight (-1: the period ended before the first step). A period that a
// step change cuts in two is given wholly to one step, the same for both sources; the higher
// weight is the cautious one, since a bad outcome judged at a weight at least that at which it
// was routed can only weaken the evidence against the canary.
func stepOfPeriod(steps []release.StepRecord, start int64, period time.Duration) int {
	from := time.UnixMilli(start)
	lo, hi := stepAt(steps, from), stepAt(steps, from.Add(period-time.Nanosecond))
	best := -1
	for i := max(lo, 0); i <= hi; i++ {
		if best < 0 || steps[i].Weight > steps[best].Weight {
			best = i
		}
	}
	return best
}

// windows sums the function's counts per step: period by period, each the more complete of the
// two sources' counts of it (merge), given wholly to one step (stepOfPeriod). A period not yet
// settled for the metrics is counted from the logs alone. It also returns the alias's throttles
// in the periods the steps were judged over.
func (fw *fnWatch) windows(r *release.Release, fn release.Function, period time.Duration) ([]analysis.Window, float64) {
	steps := r.Health.Steps
	wins := make([]analysis.Window, len(steps))
	for i, rec := range steps {
		wins[i].Weight = rec.Weight
		if fn.Previous == "" {
			wins[i].Weight = 1
		}
	}
	var throttles float64
	for i, f := range fw.folded {
		if i >= len(wins) {
			break
		}
		win := &wins[i]
		win.CanaryN += int(f.canary.n)
		win.CanaryErrors += int(f.canary.errors)
		win.CanarySlow += int(f.canary.slow)
		win.BaseN += int(f.base.n)
		win.BaseErrors += int(f.base.errors)
		win.BaseSlow += int(f.base.slow)
		throttles += f.throttles
	}
	periods := map[int64]bool{}
	for _, m := range []map[string]map[int64]*counts{fw.fromLogs, fw.recent, fw.fromMetrics} {
		for _, v := range []string{fn.New, fn.Previous} {
			for p := range m[v] {
				periods[p] = true
			}
		}
	}
	for p := range fw.throttles {
		periods[p] = true
	}
	for p := range periods {
		i := stepOfPeriod(steps, p, period)
		if i < 0 || p < fw.foldedTo {
			continue
		}
		win := &wins[i]
		canary := merge(fw.logCounts(fn.New, p), fw.fromMetrics[fn.New][p])
		win.CanaryN += int(canary.n)
		win.CanaryErrors += int(canary.errors)
		win.CanarySlow += int(canary.slow)
		if fn.Previous != "" {
			base := merge(fw.logCounts(fn.Previous, p), fw.fromMetrics[fn.Previous][p])
			win.BaseN += int(base.n)
			win.BaseErrors += int(base.errors)
			win.BaseSlow += int(base.slow)
		}
		throttles += fw.throttles[p]
	}
	return wins, throttles
}

// logCounts is what the logs counted of a version in a period: committed and pending lines.
func (fw *fnWatch) logCounts(version string, period int64) *counts {
	a, b := fw.fromLogs[version][period], fw.recent[version][period]
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return &counts{a.n + b.n, a.errors + b.errors, a.slow + b.slow}
}

// fold moves the periods that can no longer change into their steps' totals, so that the state
// the record keeps grows with steps, not with the length of the bake. A period can no longer
// change once every line of an invocation routed in it is committed (the logs' cursor has passed
// its end by the function's timeout and a second) and, with metrics, once it settled FoldAfter
// before the last successful read; its step is final by then too (a later step shifts later).
// Folding sums what windows would sum: it changes no verdict.
func (c *Checker) fold(r *release.Release, w *watch, now time.Time) {
	ch := r.Checks
	period := grid(ch)
	after := c.FoldAfter
	if after <= 0 {
		after = 5 * time.Minute
	}
	if ch.Metrics && (w.metricsErr != nil || w.metricsAt.IsZero()) {
		return
	}
	for _, fn := range r.Functions {
		fw := w.fns[fn.FunctionName]
		timeout := time.Duration(max(fn.Timeout, 3)) * time.Second
		upTo := periodOf(now, period)
		if ch.Logs {
			if fw.logs.seen == nil {
				continue // not read yet
			}
			upTo = min(upTo, periodOf(time.UnixMilli(fw.logs.from).Add(-timeout-time.Second), period))
		}
		if ch.Metrics {
			upTo = min(upTo, periodOf(w.metricsAt.Add(-timeout-ch.MetricsDelay-after), period))
		}
		if upTo <= fw.foldedTo {
			continue
		}
		periods := map[int64]bool{}
		for _, m := range []map[string]map[int64]*counts{fw.fromLogs, fw.recent, fw.fromMetrics} {
			for _, byPeriod := range m {
				for p := range byPeriod {
					periods[p] = true
				}
			}
		}
		for p := range fw.throttles {
			periods[p] = true
		}
		for p := range periods {
			if p >= upTo || p < fw.foldedTo {
				continue
			}
			if i := stepOfPeriod(r.Health.Steps, p, period); i >= 0 {
				for len(fw.folded) <= i {
					fw.folded = append(fw.folded, stepTotals{})
				}
				f := &fw.folded[i]
				f.canary = add(f.canary, merge(fw.logCounts(fn.New, p), fw.fromMetrics[fn.New][p]))
				if fn.Previous != "" {
					f.base = add(f.base, merge(fw.logCounts(fn.Previous, p), fw.fromMetrics[fn.Previous][p]))
				}
				f.throttles += fw.throttles[p]
			}
			for _, m := range []map[string]map[int64]*counts{fw.fromLogs, fw.recent, fw.fromMetrics} {
				for _, byPeriod := range m {
					delete(byPeriod, p)
				}
			}
			delete(fw.throttles, p)
		}
		fw.foldedTo = upTo
	}
}

func add(a, b counts) counts { return counts{a.n + b.n, a.errors + b.errors, a.slow + b.slow} }

func bucket(m map[string]map[int64]*counts, version string, period int64) *counts {
	byPeriod := m[version]
	if byPeriod == nil {
		byPeriod = map[int64]*counts{}
		m[version] = byPeriod
	}
	c := byPeriod[period]
	if c == nil {
		c = &counts{}
		byPeriod[period] = c
	}
	return c
}

// errNoChecks is returned for a release without checks: the engine should not have asked.
var errNoChecks = errors.New("the release has no checks")

// Validate checks, before a release is created, that what the checks name exists: the alarms and
// the hook functions.
func (c *Checker) Validate(ctx context.Context, ch *release.Checks) error {
	if ch == nil {
		return errNoChecks
	}
	var problems []string
	if len(ch.Alarms) > 0 {
		states, err := c.describeAlarms(ctx, ch.Alarms)
		if err != nil {
			return fmt.Errorf("read the alarms: %w", err)
		}
		for _, a := range states {
			if a.missing {
				problems = append(problems, fmt.Sprintf("alarm %s does not exist (create it, or fix its name under checks.alarms)", a.name))
			}
		}
	}
	for _, h := range []struct{ name, which string }{{ch.PreTraffic, "pre_traffic"}, {ch.PostTraffic, "post_traffic"}} {
		if h.name == "" {
			continue
		}
		if _, err := c.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(h.name)}); err != nil {
			if isNotFound(err) {
				problems = append(problems, fmt.Sprintf("hook function %s does not exist (checks.hooks.%s)", h.name, h.which))
				continue
			}
			return fmt.Errorf("read hook function %s: %w", h.name, err)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
