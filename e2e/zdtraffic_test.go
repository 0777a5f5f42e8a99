package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/release"
)

// Causes an invocation is counted under. Only causeOK and causeFaulty are allowed in a
// zero-downtime run; the machinery causes are what a release must never cause.
const (
	causeOK        = "ok"
	causeFaulty    = "function error, faulty version" // the faulty canary's own errors: allowed
	causeGoodError = "function error, good version"
	causeThrottled = "throttled"                    // + ": " + Reason
	causeNotFound  = "machinery: not found"         // alias or version gone (ResourceNotFoundException)
	causeConflict  = "machinery: resource conflict" // ResourceConflictException
	causeAPI       = "api error"                    // + ": " + code, any other error Lambda answered
	causeTransport = "transport error"              // no answer from Lambda at all
	causeNoReport  = "sandbox: no REPORT line in the tail log"
)

// machinery reports whether a cause is a failure the release machinery would be to blame for.
func machinery(cause string) bool {
	return strings.HasPrefix(cause, "machinery:") || strings.HasPrefix(cause, causeAPI)
}

// zdKey is what one invocation is counted by: the function, the version that ran ("" when none
// answered), the release phase when it started, and what came of it. A function error is
// recorded as "function error" and classified as faulty or good when the report is made, since
// which versions are faulty is known only once their release has published them.
type zdKey struct {
	fn, version, phase, outcome string
	errorType                   string // a function error's errorType
}

type zdCount struct {
	n      int
	millis []float32
	// timing is where each answered invocation's time went, from its REPORT line.
	timing zdTiming
}

// zdTiming splits invocations' latency as their REPORT lines (LogType Tail) tell it: the cold
// starts and their Init Duration, the function's own Duration, and the overhead of warm
// invocations — the client's latency less the function's time: the sandbox, the HTTP round trip
// and the machine's scheduling.
type zdTiming struct {
	cold     int
	init, fn []float32
	// warmOverhead is warm invocations' latency less Duration; coldOverhead cold starts' latency
	// less Duration and Init Duration: unpacking the version's zip at its first start (as Lambda
	// downloads a version's code outside Init Duration), and any wait for a start slot.
	warmOverhead, coldOverhead []float32
}

// zdSample is one answer's REPORT line: its Duration, and its Init Duration on a cold start.
type zdSample struct {
	cold     bool
	fn, init float32
}

// record adds an answer that took took (ms) to the counts.
func (t *zdTiming) record(s zdSample, took float32) {
	t.fn = append(t.fn, s.fn)
	if s.cold {
		t.cold++
		t.init = append(t.init, s.init)
		t.coldOverhead = append(t.coldOverhead, took-s.fn-s.init)
	} else {
		t.warmOverhead = append(t.warmOverhead, took-s.fn)
	}
}

func (t *zdTiming) add(o zdTiming) {
	t.cold += o.cold
	t.init = append(t.init, o.init...)
	t.fn = append(t.fn, o.fn...)
	t.warmOverhead = append(t.warmOverhead, o.warmOverhead...)
	t.coldOverhead = append(t.coldOverhead, o.coldOverhead...)
}

// zdTraffic invokes every alias of a fleet at a steady rate through the real SDK and counts
// each answer by function, executed version, release phase and cause. Its client never retries,
// so that every failure is seen: a retry would hide the very errors a release must not cause.
type zdTraffic struct {
	f      *fleet
	lc     *lambda.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup
	phase  atomic.Pointer[string]
	lag    atomic.Int64 // invocations started more than 100 ms behind their schedule
	// warming labels invocations "warm-up" until the fleet's first execution environments
	// have started: the cold start of a function nobody invoked yet is no release's doing.
	warming  atomic.Bool
	inflight atomic.Int64
	// buildingFrom labels invocations "building" while a deploy has started and not yet
	// recorded its release (it builds and packages its zips on the same machine): it holds the
	// newest release's ID before that deploy, and pollPhase clears it when it sees another.
	buildingFrom atomic.Pointer[string]
	// cpu is the machine's CPU time by phase, sampled from /proc/stat: busy and all.
	cpu map[string]*[2]uint64

	mu     sync.Mutex
	counts map[zdKey]*zdCount
	// served counts answers (ok or function error) by "fn:version", for waitServed to read
	// without building a report.
	served map[string]int
	faulty map[string]bool // "fn:version" of versions whose errors are expected
	start  time.Time
	end    time.Time
}

// startZDTraffic invokes each function's alias at rate per second (spread evenly), with up to
// 128 invocations in flight per alias, and polls the newest release's phase every 50 ms.
func startZDTraffic(f *fleet, rate float64) *zdTraffic {
	f.t.Helper()
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	httpc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
	})
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = httpc
	})
	ctx, cancel := context.WithCancel(context.Background())
	t := &zdTraffic{f: f, lc: lc, cancel: cancel, counts: map[zdKey]*zdCount{}, served: map[string]int{}, faulty: map[string]bool{}, cpu: map[string]*[2]uint64{}, start: time.Now()}
	t.pollPhase(ctx)
	for _, name := range f.names {
		target := f.fn(name) + ":live"
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			sem := make(chan struct{}, 128)
			gap := time.Duration(float64(time.Second) / rate)
			next := time.Now()
			for {
				next = next.Add(gap)
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				} else if ctx.Err() != nil {
					return
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				if time.Since(next) > 100*time.Millisecond {
					t.lag.Add(1)
				}
				t.wg.Add(1)
				go func() {
					defer t.wg.Done()
					defer func() { <-sem }()
					t.invoke(ctx, name, target)
				}()
			}
		}()
	}
	return t
}

// pollPhase keeps t.phase at the newest release's phase: "steady" when it is final (or there is
// none), "baking" for a shifting release whose step's weights are all in place. It also charges
// the machine's CPU time since the last poll to the phase.
func (t *zdTraffic) pollPhase(ctx context.Context) {
	steady := "steady"
	t.phase.Store(&steady)
	t.warming.Store(true)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		busy, all := cpuTimes()
		for ctx.Err() == nil {
			if r, err := t.f.newest(); err == nil {
				p := phaseLabel(r)
				t.phase.Store(&p)
				// The phase first: a release recorded is never counted as steady.
				if from := t.buildingFrom.Load(); from != nil && r != nil && r.ID != *from {
					t.buildingFrom.CompareAndSwap(from, nil)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			b, a := cpuTimes()
			if a > all {
				l := t.label()
				t.mu.Lock()
				c := t.cpu[l]
				if c == nil {
					c = &[2]uint64{}
					t.cpu[l] = c
				}
				c[0], c[1] = c[0]+b-busy, c[1]+a-all
				t.mu.Unlock()
			}
			busy, all = b, a
		}
	}()
}

// label is the phase an invocation starting now is counted under.
func (t *zdTraffic) label() string {
	switch p := *t.phase.Load(); {
	case t.warming.Load():
		return "warm-up"
	case p == "steady" && t.buildingFrom.Load() != nil:
		return "building"
	default:
		return p
	}
}

// building says a deploy has started: invocations are "building" until pollPhase sees a
// release other than the newest now, whose ID is before.
func (t *zdTraffic) building(before string) { t.buildingFrom.Store(&before) }

// servedCount is how many answers version v of function fn gave.
func (t *zdTraffic) servedCount(fn, v string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.served[fn+":"+v]
}

// cpuTimes reads the machine's CPU time from /proc/stat, in ticks: busy (user, nice, system,
// irq, softirq) and all (busy, idle and iowait). Steal (time the hypervisor gave elsewhere) and
// guest time (already inside user and nice) are left out. Both are 0 where there is no
// /proc/stat.
func cpuTimes() (busy, all uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, f := range fields[1:min(len(fields), 8)] {
		v, _ := strconv.ParseUint(f, 10, 64)
		all += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, all
}

// reportSample reads an invocation's tail log's REPORT line, as a function with the Text log
// format writes it (the fleet's); false if there is none with a Duration.
func reportSample(out *lambda.InvokeOutput) (zdSample, bool) {
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		return zdSample{}, false
	}
	ms := func(v string) (float32, bool) {
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, " ms"), 32)
		return float32(f), err == nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "REPORT RequestId: ") {
			continue
		}
		var s zdSample
		hasDuration := false
		for _, f := range strings.Split(line, "\t") {
			if v, ok := strings.CutPrefix(f, "Duration: "); ok {
				if s.fn, hasDuration = ms(v); !hasDuration {
					return zdSample{}, false
				}
			}
			if v, ok := strings.CutPrefix(f, "Init Duration: "); ok {
				if s.init, s.cold = ms(v); !s.cold {
					return zdSample{}, false
				}
			}
		}
		return s, hasDuration
	}
	return zdSample{}, false
}

func phaseLabel(r *release.Release) string {
	switch {
	case r == nil || r.Phase.Final():
		return "steady"
	case r.Phase == release.Shifting && !r.StepStarted.IsZero():
		return fmt.Sprintf("baking %d%%", int(r.Steps[r.Step].Weight*100+0.5))
	case r.Phase == release.Shifting:
		return fmt.Sprintf("shifting to %d%%", int(r.Steps[r.Step].Weight*100+0.5))
	}
	return string(r.Phase)
}

func (t *zdTraffic) invoke(ctx context.Context, name, target string) {
	phase := t.label()
	t.inflight.Add(1)
	defer t.inflight.Add(-1)
	start := time.Now()
	out, err := t.lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(target), Payload: []byte(`{}`), LogType: lambdatypes.LogTypeTail})
	took := float32(time.Since(start).Microseconds()) / 1000
	if ctx.Err() != nil {
		return // stopped mid-flight: not an answer
	}
	k := zdKey{fn: name, phase: phase}
	var sample zdSample
	if err == nil {
		var ok bool
		if sample, ok = reportSample(out); !ok {
			k.outcome = causeNoReport
		}
	}
	var (
		tooMany  *lambdatypes.TooManyRequestsException
		notFound *lambdatypes.ResourceNotFoundException
		conflict *lambdatypes.ResourceConflictException
		apiErr   smithy.APIError
	)
	switch {
	case k.outcome != "":
	case err == nil && out.FunctionError != nil:
		var payload struct{ ErrorType string }
		json.Unmarshal(out.Payload, &payload)
		k.version, k.outcome = aws.ToString(out.ExecutedVersion), "function error"
		k.errorType = payload.ErrorType
	case err == nil:
		k.version, k.outcome = aws.ToString(out.ExecutedVersion), causeOK
	case errors.As(err, &tooMany):
		k.outcome = causeThrottled + ": " + string(tooMany.Reason)
	case errors.As(err, &notFound):
		k.outcome = causeNotFound
	case errors.As(err, &conflict):
		k.outcome = causeConflict
	case errors.As(err, &apiErr):
		k.outcome = causeAPI + ": " + apiErr.ErrorCode()
	default:
		k.outcome = causeTransport
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counts[k]
	if c == nil {
		c = &zdCount{}
		t.counts[k] = c
	}
	c.n++
	c.millis = append(c.millis, took)
	if k.version != "" {
		c.timing.record(sample, took)
		t.served[name+":"+k.version]++
	}
}

// warmUp waits until the first execution environments have started, which it reckons from the
// invocations in flight: below a twentieth of a second's worth (a mean latency under 50 ms) for
// a second, then counts what follows as the run. It gives up waiting after a minute, saying so.
func (t *zdTraffic) warmUp(ratePerSecond float64) {
	deadline := time.Now().Add(time.Minute)
	calm := 0
	for calm < 10 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if float64(t.inflight.Load()) <= max(ratePerSecond/20, 2) {
			calm++
		} else {
			calm = 0
		}
	}
	if calm < 10 {
		t.f.t.Logf("the fleet was still not warm after a minute (%d invocations in flight): counting anyway", t.inflight.Load())
	}
	t.warming.Store(false)
}

// expectFaulty says a version's function errors are its own (a faulty canary), not the
// machinery's.
func (t *zdTraffic) expectFaulty(name, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faulty[name+":"+version] = true
}

func (t *zdTraffic) stop() {
	t.cancel()
	t.wg.Wait()
	t.end = time.Now()
}

// total is how many invocations answered (or failed) so far.
func (t *zdTraffic) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.counts {
		n += c.n
	}
	return n
}

// zdReport is a run's counts: by cause, by phase and by version, with latencies.
type zdReport struct {
	Invocations int
	Took        time.Duration
	Lagged      int64
	ByCause     map[string]int
	// Served counts successful and function-error answers by "fn:version".
	Served    map[string]int
	byPhase   map[string]*zdRow
	byVersion map[string]*zdRow
	// WarmUp counts the invocations before the fleet was warm by cause: reported, not judged.
	WarmUp map[string]int
	// ErrorTypes counts function errors by cause and errorType.
	ErrorTypes map[string]int
	// Machinery lists where the machinery failures happened (cause, function, phase).
	Machinery map[string]int
	// cpu is the machine's CPU time by phase: busy and all.
	cpu map[string][2]uint64
}

type zdRow struct {
	n, errors, failed int
	millis            []float32
	timing            zdTiming
}

func (t *zdTraffic) report() *zdReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	end := t.end
	if end.IsZero() {
		end = time.Now()
	}
	r := &zdReport{Took: end.Sub(t.start), Lagged: t.lag.Load(), ByCause: map[string]int{}, Served: map[string]int{},
		byPhase: map[string]*zdRow{}, byVersion: map[string]*zdRow{}, Machinery: map[string]int{}, ErrorTypes: map[string]int{}, WarmUp: map[string]int{},
		cpu: map[string][2]uint64{}}
	for k, c := range t.cpu {
		r.cpu[k] = *c
	}
	row := func(m map[string]*zdRow, k string) *zdRow {
		if m[k] == nil {
			m[k] = &zdRow{}
		}
		return m[k]
	}
	for k, c := range t.counts {
		cause := k.outcome
		if cause == "function error" {
			cause = causeGoodError
			if t.faulty[k.fn+":"+k.version] {
				cause = causeFaulty
			}
			r.ErrorTypes[cause+": "+k.errorType] += c.n
		}
		if k.phase == "warm-up" {
			r.WarmUp[cause] += c.n
		} else {
			r.Invocations += c.n
			r.ByCause[cause] += c.n
		}
		if machinery(cause) {
			r.Machinery[fmt.Sprintf("%s (%s, %s)", cause, k.fn, k.phase)] += c.n
		}
		p := row(r.byPhase, k.phase)
		p.n += c.n
		p.millis = append(p.millis, c.millis...)
		p.timing.add(c.timing)
		label := "(none)"
		if k.version != "" {
			r.Served[k.fn+":"+k.version] += c.n
			label = "v" + k.version
			if t.faulty[k.fn+":"+k.version] {
				label += " faulty"
			}
		}
		v := row(r.byVersion, label)
		v.n += c.n
		v.millis = append(v.millis, c.millis...)
		switch {
		case cause == causeFaulty || cause == causeGoodError:
			p.errors += c.n
			v.errors += c.n
		case cause != causeOK:
			p.failed += c.n
			v.failed += c.n
		}
	}
	return r
}

// MachineryFailures is how many invocations failed because of the release machinery.
func (r *zdReport) MachineryFailures() int {
	n := 0
	for c, k := range r.ByCause {
		if machinery(c) {
			n += k
		}
	}
	return n
}

// Throttled is how many invocations were throttled, whatever the reason.
func (r *zdReport) Throttled() int {
	n := 0
	for c, k := range r.ByCause {
		if strings.HasPrefix(c, causeThrottled) {
			n += k
		}
	}
	return n
}

// print writes the report as tables: causes, then p50/p99 by phase and by version.
func (r *zdReport) print(w io.Writer) {
	fmt.Fprintf(w, "%d invocations in %s (%.0f/s); %d started over 100 ms late (the generator fell behind)\n",
		r.Invocations, r.Took.Round(time.Second), float64(r.Invocations)/r.Took.Seconds(), r.Lagged)
	if len(r.WarmUp) > 0 {
		fmt.Fprintf(w, "before them, while the fleet's first environments started (not judged): %v\n", r.WarmUp)
	}
	fmt.Fprintf(w, "\n%-44s %12s %9s\n", "CAUSE", "INVOCATIONS", "SHARE")
	causes := make([]string, 0, len(r.ByCause))
	for c := range r.ByCause {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	for _, c := range causes {
		fmt.Fprintf(w, "%-44s %12d %8.4f%%\n", c, r.ByCause[c], 100*float64(r.ByCause[c])/float64(max(r.Invocations, 1)))
	}
	fmt.Fprintf(w, "%-44s %12d\n", "machinery failures (must be 0)", r.MachineryFailures())
	for where, n := range r.Machinery {
		fmt.Fprintf(w, "  %s: %d\n", where, n)
	}
	for what, n := range r.ErrorTypes {
		fmt.Fprintf(w, "  %s: %d\n", what, n)
	}
	table := func(title string, rows map[string]*zdRow, less func(a, b string) bool) {
		keys := make([]string, 0, len(rows))
		for k := range rows {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
		fmt.Fprintf(w, "\n%-20s %12s %10s %10s %9s %9s %9s\n", title, "INVOCATIONS", "FN ERRORS", "FAILED", "p50 ms", "p99 ms", "max ms")
		for _, k := range keys {
			row := rows[k]
			ms := row.millis
			fmt.Fprintf(w, "%-20s %12d %10d %10d %9.1f %9.1f %9.1f\n", k, row.n, row.errors, row.failed, quantile(ms, 0.5), quantile(ms, 0.99), quantile(ms, 1))
		}
	}
	table("PHASE", r.byPhase, func(a, b string) bool {
		return phaseOrder(a) < phaseOrder(b) || phaseOrder(a) == phaseOrder(b) && a < b
	})
	table("VERSION", r.byVersion, func(a, b string) bool {
		return versionOrder(a) < versionOrder(b) || versionOrder(a) == versionOrder(b) && a < b
	})
	r.printTiming(w)
}

// printTiming writes where the time went by phase: cold starts and their Init Duration, the
// function's own Duration, the overhead of warm invocations (latency less Duration), and how
// busy the machine's CPUs were.
func (r *zdReport) printTiming(w io.Writer) {
	phases := make([]string, 0, len(r.byPhase))
	for k := range r.byPhase {
		phases = append(phases, k)
	}
	sort.Slice(phases, func(i, j int) bool {
		a, b := phases[i], phases[j]
		return phaseOrder(a) < phaseOrder(b) || phaseOrder(a) == phaseOrder(b) && a < b
	})
	fmt.Fprintf(w, "\nWHERE THE TIME GOES (ms): cold starts, their Init Duration and the rest of their latency (less Init and the\n"+
		"function's Duration: unpacking a version's zip at its first start, any wait for a start slot); the function's Duration; warm\n"+
		"invocations' overhead (latency less Duration: the sandbox, HTTP, scheduling); the machine's CPU, all cores\n")
	fmt.Fprintf(w, "%-20s %6s %9s %9s %9s %9s %9s %9s %9s %6s\n", "PHASE", "COLD", "init p50", "init max", "rest max", "fn p99", "ovh p50", "ovh p99", "ovh max", "CPU")
	for _, k := range phases {
		tm := r.byPhase[k].timing
		cpu := "-"
		if c := r.cpu[k]; c[1] > 0 {
			cpu = fmt.Sprintf("%.0f%%", 100*float64(c[0])/float64(c[1]))
		}
		fmt.Fprintf(w, "%-20s %6d %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %6s\n", k, tm.cold,
			quantile(tm.init, 0.5), quantile(tm.init, 1), quantile(tm.coldOverhead, 1), quantile(tm.fn, 0.99),
			quantile(tm.warmOverhead, 0.5), quantile(tm.warmOverhead, 0.99), quantile(tm.warmOverhead, 1), cpu)
	}
}

// quantile is the p-quantile of ms (sorting it); 0 for none.
func quantile(ms []float32, p float64) float32 {
	if len(ms) == 0 {
		return 0
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
	return ms[min(int(p*float64(len(ms))), len(ms)-1)]
}

func phaseOrder(p string) int {
	for i, prefix := range []string{"steady", "building", "planned", "publishing", "shifting", "baking", "awaiting-approval", "promoting", "rolling-back"} {
		if strings.HasPrefix(p, prefix) {
			return i
		}
	}
	return 99
}

func versionOrder(v string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.Fields(v + " ")[0], "v"))
	if err != nil {
		return 1 << 30
	}
	return n
}
