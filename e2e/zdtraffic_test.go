package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

	mu     sync.Mutex
	counts map[zdKey]*zdCount
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
	t := &zdTraffic{f: f, lc: lc, cancel: cancel, counts: map[zdKey]*zdCount{}, faulty: map[string]bool{}, start: time.Now()}
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
// none), "baking" for a shifting release whose step's weights are all in place.
func (t *zdTraffic) pollPhase(ctx context.Context) {
	steady := "steady"
	t.phase.Store(&steady)
	t.warming.Store(true)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for ctx.Err() == nil {
			if r, err := t.f.newest(); err == nil {
				p := phaseLabel(r)
				t.phase.Store(&p)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
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
	phase := *t.phase.Load()
	if t.warming.Load() {
		phase = "warm-up"
	}
	t.inflight.Add(1)
	defer t.inflight.Add(-1)
	start := time.Now()
	out, err := t.lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(target), Payload: []byte(`{}`)})
	took := float32(time.Since(start).Microseconds()) / 1000
	if ctx.Err() != nil {
		return // stopped mid-flight: not an answer
	}
	k := zdKey{fn: name, phase: phase}
	var (
		tooMany  *lambdatypes.TooManyRequestsException
		notFound *lambdatypes.ResourceNotFoundException
		conflict *lambdatypes.ResourceConflictException
		apiErr   smithy.APIError
	)
	switch {
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
}

type zdRow struct {
	n, errors, failed int
	millis            []float32
}

func (t *zdTraffic) report() *zdReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	end := t.end
	if end.IsZero() {
		end = time.Now()
	}
	r := &zdReport{Took: end.Sub(t.start), Lagged: t.lag.Load(), ByCause: map[string]int{}, Served: map[string]int{},
		byPhase: map[string]*zdRow{}, byVersion: map[string]*zdRow{}, Machinery: map[string]int{}, ErrorTypes: map[string]int{}, WarmUp: map[string]int{}}
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
			sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
			q := func(p float64) float32 {
				if len(ms) == 0 {
					return 0
				}
				return ms[min(int(p*float64(len(ms))), len(ms)-1)]
			}
			var top float32
			if len(ms) > 0 {
				top = ms[len(ms)-1]
			}
			fmt.Fprintf(w, "%-20s %12d %10d %10d %9.1f %9.1f %9.1f\n", k, row.n, row.errors, row.failed, q(0.5), q(0.99), top)
		}
	}
	table("PHASE", r.byPhase, func(a, b string) bool {
		return phaseOrder(a) < phaseOrder(b) || phaseOrder(a) == phaseOrder(b) && a < b
	})
	table("VERSION", r.byVersion, func(a, b string) bool {
		return versionOrder(a) < versionOrder(b) || versionOrder(a) == versionOrder(b) && a < b
	})
}

func phaseOrder(p string) int {
	for i, prefix := range []string{"steady", "planned", "publishing", "shifting", "baking", "awaiting-approval", "promoting", "rolling-back"} {
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
