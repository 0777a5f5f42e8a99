package health

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/release"
)

// A world is one copy of the fakes AWS answers from. Two worlds get the same traffic, line for
// line, so that one checker judging continuously and fresh checkers judging at ticks can be
// compared; each world's Lambda writes its own smoke invocations to its own logs.
type world struct {
	clock  *fakeClock
	lc     *fakeLambda
	cw     *fakeCloudWatch
	logs   *fakeLogs
	mu     sync.Mutex
	smokes map[string]int // by function
}

func newWorld(now time.Time) *world {
	w := &world{clock: &fakeClock{now: now}, cw: &fakeCloudWatch{}, logs: &fakeLogs{}, smokes: map[string]int{}}
	w.lc = &fakeLambda{invoke: func(_ context.Context, in *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.smokes[*in.FunctionName]++
		id := requestID(9+len(*in.FunctionName), w.smokes[*in.FunctionName])
		w.logs.invocation("/aws/lambda/"+*in.FunctionName, *in.Qualifier, id, w.clock.Now(), false)
		return answer(id, `{}`, ""), nil
	}}
	w.cw.setAlarm("quiet", cwtypes.StateValueOk, t0.Add(-time.Hour), "")
	// Already firing before the release, its state change timestamped by CloudWatch's clock, a
	// little ahead of ours: only what the read before traffic saw of it tells that it is not new.
	w.cw.setAlarm("old", cwtypes.StateValueAlarm, t0.Add(3*time.Second), "Threshold Crossed")
	return w
}

// checker is a new checker (a new process) on the world.
func (w *world) checker() *Checker {
	return &Checker{Lambda: w.lc, CloudWatch: w.cw, Logs: w.logs, Clock: w.clock, AlarmsEvery: time.Second, FoldAfter: time.Second}
}

// traffic is a deterministic stream of invocations of a release's functions: perSecond each
// second, shared between the versions by the step's weight, every canaryEvery-th invocation of the
// canary failing (0: none) and every 100th of the baseline. Each invocation's lines reach the
// logs lag seconds after it ran (0–4 s), within the checker's overlap.
type traffic struct {
	perSecond   int
	canaryEvery int
	queue       []invocation
	sent        int
	byPeriod    map[string]map[string]map[int64]*counts // function → version → period → true counts
	canary      map[string]*counts                      // function → true counts of the canary
	put         map[int64]bool
	period      time.Duration
	acc         map[string]float64
	n           map[string]int
}

type invocation struct {
	fn, version, id string
	at, visible     time.Time
	failed          bool
}

func (tr *traffic) run(fns []release.Function, from time.Time, weight float64) {
	for i := range tr.perSecond {
		at := from.Add(time.Duration(i) * time.Second / time.Duration(tr.perSecond)).Add(7 * time.Millisecond)
		for _, fn := range fns {
			tr.n[fn.FunctionName]++
			n := tr.n[fn.FunctionName]
			tr.acc[fn.FunctionName] += weight
			version, failed := fn.Previous, n%97 == 0
			if tr.acc[fn.FunctionName] >= 1 {
				tr.acc[fn.FunctionName]--
				version = fn.New
				c := tr.canary[fn.FunctionName]
				c.n++
				failed = tr.canaryEvery > 0 && int(c.n)%tr.canaryEvery == 0
				if failed {
					c.errors++
				}
			}
			inv := invocation{fn: fn.FunctionName, version: version, id: requestID(1, len(tr.queue)+tr.sent+1), at: at,
				visible: at.Add(time.Duration(n%5) * time.Second), failed: failed}
			tr.queue = append(tr.queue, inv)
			b := bucket(tr.byPeriod[fn.FunctionName], version, periodOf(at, tr.period))
			b.n++
			if failed {
				b.errors++
			}
		}
	}
}

// deliver writes to every world what has reached the logs by now, and the metrics of the periods
// that ended.
func (tr *traffic) deliver(now time.Time, worlds ...*world) {
	var later []invocation
	for _, inv := range tr.queue {
		if inv.visible.After(now) {
			later = append(later, inv)
			continue
		}
		for _, w := range worlds {
			w.logs.invocation("/aws/lambda/"+inv.fn, inv.version, inv.id, inv.at, inv.failed)
		}
		tr.sent++
	}
	tr.queue = later
	for fn, byVersion := range tr.byPeriod {
		for version, byPeriod := range byVersion {
			for p, c := range byPeriod {
				if time.UnixMilli(p).Add(tr.period).After(now) {
					continue
				}
				for _, w := range worlds {
					w.cw.put(fn, "Invocations", version, time.UnixMilli(p), c.n)
					w.cw.put(fn, "Errors", version, time.UnixMilli(p), c.errors)
				}
			}
		}
	}
}

// judged is what a judgement said, without the state it carries.
type judged struct {
	At        string
	Result    release.Result
	Check     string
	Reason    string
	Notes     []string
	Functions map[string]map[string]float64
}

func summary(at time.Time, v release.Verdict) judged {
	return judged{at.Sub(t0).String(), v.Result, v.Check, v.Reason, v.Notes, v.Functions}
}

// body is a state without its time, as restored and re-encoded.
func body(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	s, ok := decodeState(raw)
	if !ok {
		t.Fatalf("state %.200s does not decode", raw)
	}
	s.At, s.Seq, s.By = time.Time{}, 0, "" // who wrote it, and when
	return string(marshalState(s))
}

// The split test is anytime-valid, so judging at ticks is the same test as judging continuously
// — provided each tick's fresh checker goes on from where the last stopped. The same traffic is
// judged (a) by one checker every second and (b) at every tick by a new checker that knows only
// the release's record (the verdict before traffic and each verdict's state, as the engine
// writes them): both say the same at every tick, keep the same state, run each step's smoke
// invocations once, never count them as traffic, and never blame the alarm that was firing
// before the release.
func TestJudgedAtTicksAsContinuously(t *testing.T) {
	const tick = 5 * time.Second
	for _, tc := range []struct {
		name        string
		metrics     bool
		perSecond   int
		canaryEvery int
		want        release.Result
	}{
		{"a healthy canary passes", true, 40, 100, release.Pass},
		{"a failing canary fails", false, 20, 8, release.Fail},
		{"too little traffic is inconclusive", true, 1, 0, release.Inconclusive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := newWorld(t0), newWorld(t0)
			fns := []release.Function{{Name: "api", FunctionName: "api", Previous: "1", New: "2", Timeout: 1},
				{Name: "orders", FunctionName: "orders", Previous: "4", New: "5", Timeout: 1}}
			steps := []release.Step{{Weight: 0.25, Bake: 30 * time.Second}, {Weight: 0.5, Bake: 30 * time.Second}}
			newRelease := func() *release.Release {
				return &release.Release{ID: "r", Alias: "live", Steps: steps, Functions: fns,
					Checks: &release.Checks{Logs: true, Metrics: tc.metrics, MetricsPeriod: 10 * time.Second, Alpha: 0.01, Detect: 5, MinRate: 0.02,
						MaxErrorRate: 0.9, MaxThrottleRate: 0.9, Alarms: []string{"old", "quiet"}, Smoke: []release.Smoke{{Payload: `{}`}}}}
			}
			ra, rb := newRelease(), newRelease()
			tr := &traffic{perSecond: tc.perSecond, canaryEvery: tc.canaryEvery, period: grid(ra.Checks), put: map[int64]bool{},
				byPeriod: map[string]map[string]map[int64]*counts{}, canary: map[string]*counts{}, acc: map[string]float64{}, n: map[string]int{}}
			for _, fn := range fns {
				tr.byPeriod[fn.FunctionName] = map[string]map[int64]*counts{}
				tr.canary[fn.FunctionName] = &counts{}
			}

			// Before traffic: the engine records the verdict and the state.
			continuous := a.checker()
			now := t0.Add(time.Second)
			for _, x := range []struct {
				w *world
				c *Checker
				r *release.Release
			}{{a, continuous, ra}, {b, b.checker(), rb}} {
				x.w.clock.set(now)
				pre, err := x.c.BeforeTraffic(ctx, x.r)
				if err != nil || pre.Verdict.Result != release.Pass {
					t.Fatalf("before traffic: %+v, %v", pre.Verdict, err)
				}
				v := pre.Verdict
				v.At = now
				x.r.Health.PreTraffic, x.r.Health.PreexistingAlarms, x.r.Health.JudgeState = &v, pre.PreexistingAlarms, pre.State
			}

			var seqA, seqB []judged
			var last release.Verdict
			end := false
			for i, step := range steps {
				start := t0.Add(10*time.Second + time.Duration(i)*(step.Bake+tick)) // a shift takes a while
				for _, r := range []*release.Release{ra, rb} {
					r.Phase, r.Step, r.StepStarted = release.Shifting, i, start
					r.Health.Steps = append(r.Health.Steps, release.StepRecord{Step: i, Weight: step.Weight, Shifted: start, Started: start})
				}
				for at := start; !at.After(start.Add(step.Bake)); at = at.Add(time.Second) {
					tr.run(fns, at, step.Weight)
					tr.deliver(at, a, b)
					over := !at.Before(start.Add(step.Bake))
					a.clock.set(at)
					va, errA := continuous.Judge(ctx, ra, over)
					if at.Sub(start)%tick != 0 {
						continue
					}
					b.clock.set(at)
					vb, errB := b.checker().Judge(ctx, rb, over)
					if errA != nil || errB != nil {
						t.Fatalf("at %s: %v; %v", at.Sub(t0), errA, errB)
					}
					rb.Health.JudgeState = vb.State // as the engine writes it
					seqA, seqB = append(seqA, summary(at, va)), append(seqB, summary(at, vb))
					if got, want := body(t, vb.State), body(t, va.State); got != want {
						t.Fatalf("at %s, the state restored tick by tick:\n%s\nwant (continuously):\n%s", at.Sub(t0), got, want)
					}
					last = va
					if va.Result == release.Fail || over && va.Result == release.Inconclusive {
						end = true
						break
					}
				}
				if end {
					break
				}
			}
			if !reflect.DeepEqual(seqB, seqA) {
				t.Errorf("verdicts at ticks:\n%s\nwant (judged continuously):\n%s", showJudged(seqB), showJudged(seqA))
			}
			if last.Result != tc.want {
				t.Errorf("the release ends %s (%s), want %s", last.Result, last.Reason, tc.want)
			}
			// Smoke invocations: once before traffic and once at each step reached, per function.
			stepsReached := len(ra.Health.Steps)
			if got, want := len(b.lc.invoked()), len(fns)*(1+stepsReached); got != want {
				t.Errorf("fresh checkers at ticks made %d smoke invocations, want %d (%d functions, before traffic and at %d steps)", got, want, len(fns), stepsReached)
			}
			if got, want := len(a.lc.invoked()), len(fns)*(1+stepsReached); got != want {
				t.Errorf("the continuous checker made %d smoke invocations, want %d", got, want)
			}
			// Nothing but the traffic is counted (once metrics and logs have caught up).
			for _, fn := range fns {
				if got, want := last.Functions[fn.FunctionName]["canaryInvocations"], tr.canary[fn.FunctionName].n; got > want {
					t.Errorf("%s: %v canary invocations counted, of %v: a smoke invocation counted as traffic?", fn.FunctionName, got, want)
				}
			}
			// Periods that could no longer change were folded into their steps' totals.
			if s, ok := decodeState(rb.Health.JudgeState); !ok || len(s.Fns) != len(fns) {
				t.Errorf("the last state: %s", rb.Health.JudgeState)
			} else {
				for name, fs := range s.Fns {
					if fs.FoldedTo == 0 || len(fs.Folded) == 0 {
						t.Errorf("%s: nothing folded by the end", name)
					}
				}
			}
			for _, v := range seqB {
				if v.Check == "alarm" {
					t.Errorf("at %s: the alarm already firing before the release is blamed: %s", v.At, v.Reason)
				}
			}
		})
	}
}

func showJudged(js []judged) string {
	var b strings.Builder
	for _, j := range js {
		fmt.Fprintf(&b, "  %s %s %s: %s %q\n", j.At, j.Result, j.Check, j.Reason, j.Notes)
	}
	return b.String()
}

// The state grows with functions and steps, not with traffic nor with the bake's length: a fleet
// judged from logs and metrics (1-minute periods) for an hour over 5 steps, each function with a
// smoke invocation at each step and a few invocations open at the cursor, keeps the counts of
// the last few periods only, the rest folded into the steps' totals. 100 functions stay well
// under DynamoDB's 400 KB item; 1000 do not (nor does the rest of their release's record).
func TestStateSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	end := t0.Add(time.Hour)
	size := func(functions, periods, streams, failed int) (unfolded, folded int, lost string) {
		r := &release.Release{ID: "r", Checks: &release.Checks{Logs: true, Metrics: true, MetricsPeriod: time.Minute}}
		for s := range 5 {
			at := t0.Add(time.Duration(s) * 12 * time.Minute)
			r.Health.Steps = append(r.Health.Steps, release.StepRecord{Step: s, Weight: 0.1 * float64(s+1), Shifted: at, Started: at})
		}
		w := &watch{fns: map[string]*fnWatch{}, firingBefore: map[string]time.Time{"api-errors": t0}, metricsAt: end}
		for f := range functions {
			fw := &fnWatch{fromLogs: map[string]map[int64]*counts{}, fromMetrics: map[string]map[int64]*counts{}, smokeIDs: map[string]int64{}}
			name := fmt.Sprintf("shop-function-%04d", f)
			for p := range periods {
				at := t0.Add(time.Duration(p) * time.Minute).UnixMilli()
				// Noisy, as traffic is: 5400 ± 300 invocations a minute on the baseline, 600 ± 100
				// on the canary, a few errors and slow ones.
				base := counts{n: float64(5100 + rng.IntN(600)), errors: float64(rng.IntN(12)), slow: float64(200 + rng.IntN(100))}
				canary := counts{n: float64(500 + rng.IntN(200)), errors: float64(rng.IntN(4)), slow: float64(20 + rng.IntN(20))}
				*bucket(fw.fromLogs, "41", at), *bucket(fw.fromLogs, "42", at) = base, canary
				*bucket(fw.fromMetrics, "41", at), *bucket(fw.fromMetrics, "42", at) = base, canary
			}
			// The last step's smoke invocation (earlier ones are forgotten once the cursor
			// passed them), error lines whose REPORT has not come, streams mid-invocation.
			uuid := func() string {
				return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Uint64()>>16)
			}
			fw.smokeIDs[uuid()] = t0.Add(48 * time.Minute).UnixMilli()
			fw.logs = logCursor{from: end.Add(-overlap).UnixMilli(), newest: end.UnixMilli(), seen: map[string]bool{},
				failed: map[string]int64{}, current: map[string]string{}}
			for range failed {
				fw.logs.failed[uuid()] = end.UnixMilli()
			}
			for range streams {
				fw.logs.current[fmt.Sprintf("2026/11/23/[42]%016x%016x", rng.Uint64(), rng.Uint64())] = uuid()
			}
			r.Functions = append(r.Functions, release.Function{FunctionName: name, Previous: "41", New: "42", Timeout: 30})
			w.fns[name] = fw
		}
		raw0, _ := w.state(r, end)
		unfolded = len(raw0)
		before := (&Checker{}).verdict(r, w, true, nil)
		(&Checker{}).fold(r, w, end)
		if after := (&Checker{}).verdict(r, w, true, nil); !reflect.DeepEqual(after, before) {
			t.Fatalf("%d functions: folding changed the verdict:\n%+v\nwant\n%+v", functions, after, before)
		}
		raw, lost := w.state(r, end)
		if len(raw) > maxStateBytes {
			t.Errorf("%d functions, %d streams and %d failed IDs open each: %d bytes stored, want at most %d", functions, streams, failed, len(raw), maxStateBytes)
		}
		// It reads back as it was (when it was kept whole).
		s, ok := decodeState(raw)
		if !ok {
			t.Fatalf("%d functions: the state does not decode", functions)
		}
		back := &watch{fns: map[string]*fnWatch{}}
		for _, fn := range r.Functions {
			back.fns[fn.FunctionName] = &fnWatch{fromLogs: map[string]map[int64]*counts{}, smokeIDs: map[string]int64{}}
		}
		back.restore(r, s, raw)
		if got, want := string(marshalState(back.snapshot(r))), string(marshalState(w.snapshot(r))); lost == "" && got != want {
			t.Fatalf("%d functions: restored, the state is not what was saved", functions)
		}
		t.Logf("%d functions × %d periods, %d streams, %d failed open: %d bytes stored (%d unfolded; %d before gzip); lost: %q",
			functions, periods, streams, failed, len(raw), unfolded, len(marshalState(w.snapshot(r))), lost)
		return unfolded, len(raw), lost
	}
	// About 0.4 KB a function, most of it request IDs and stream names, which do not compress:
	// a small fleet's state is kept whole.
	if _, got, lost := size(100, 60, 3, 1); got > 48<<10 || lost != "" {
		t.Errorf("100 functions × 60 periods: %d bytes (lost %q), want at most 48 KB, kept whole", got, lost)
	}
	// The worst case: every function with maxOpen streams mid-invocation and maxOpen error
	// lines waiting for their REPORT. It fits the budget, and says what it lost.
	for _, n := range []int{100, 1000} {
		if _, _, lost := size(n, 60, maxOpen, maxOpen); lost == "" {
			t.Errorf("%d functions at their worst: the state says it lost nothing", n)
		}
	}
}

// A checker that still has a release in memory goes on from its memory while the record is
// older (the engine writes the state only now and then), and from the record once another
// process judged the release since: it does not run that process's smoke invocations again.
func TestNewerRecordReplacesMemory(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t0)
	fns := []release.Function{{Name: "api", FunctionName: "api", Previous: "1", New: "2", Timeout: 1}}
	r := &release.Release{ID: "r", Alias: "live", Steps: []release.Step{{Weight: 0.5}, {Weight: 1}}, Functions: fns,
		Checks: &release.Checks{Logs: true, Alpha: 0.01, Detect: 5, MaxErrorRate: 0.9, MaxThrottleRate: 0.9, Smoke: []release.Smoke{{Payload: `{}`}}}}
	step := func(i int, at time.Time) {
		r.Step, r.StepStarted = i, at
		r.Health.Steps = append(r.Health.Steps, release.StepRecord{Step: i, Weight: r.Steps[i].Weight, Shifted: at, Started: at})
	}
	judge := func(c *Checker, at time.Time) release.Verdict {
		t.Helper()
		w.clock.set(at)
		v, err := c.Judge(ctx, r, false)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first, second := w.checker(), w.checker()
	step(0, t0)
	r.Health.JudgeState = judge(first, t0).State
	w.logs.invocation("/aws/lambda/api", "2", requestID(1, 1), t0.Add(time.Second), false)
	judge(first, t0.Add(2*time.Second)) // not written: the record is older than first's memory
	if got := len(w.lc.invoked()); got != 1 {
		t.Fatalf("%d smoke invocations at step 1, want 1", got)
	}
	if v := judge(first, t0.Add(3*time.Second)); v.Functions["api"]["canaryInvocations"] != 1 {
		t.Fatalf("going on from an older record: %v, want the one invocation counted", v.Functions["api"])
	}
	// Another process judges step 2 and its state is written.
	step(1, t0.Add(20*time.Second))
	r.Health.JudgeState = judge(second, t0.Add(20*time.Second)).State
	if got := len(w.lc.invoked()); got != 2 {
		t.Fatalf("%d smoke invocations by step 2, want 2", got)
	}
	v := judge(first, t0.Add(21*time.Second))
	if got := len(w.lc.invoked()); got != 2 {
		t.Errorf("%d smoke invocations by step 2, want 2: the first checker ran step 2's again", got)
	}
	if n := v.Functions["api"]; n["canaryInvocations"] != 1 {
		t.Errorf("counted %v; want one invocation, smoke invocations not counted", n)
	}
}

// Records are ordered by their sequence, not by the judges' clocks: a first checker whose clock
// runs 30 s ahead still takes the record another process wrote after its own as newer.
func TestNewerRecordDespiteClocks(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t0)
	fns := []release.Function{{Name: "api", FunctionName: "api", Previous: "1", New: "2", Timeout: 1}}
	r := &release.Release{ID: "r", Alias: "live", Steps: []release.Step{{Weight: 0.5}, {Weight: 1}}, Functions: fns,
		Checks: &release.Checks{Logs: true, Alpha: 0.01, Detect: 5, MaxErrorRate: 0.9, MaxThrottleRate: 0.9, Smoke: []release.Smoke{{Payload: `{}`}}}}
	step := func(i int, at time.Time) {
		r.Step, r.StepStarted = i, at
		r.Health.Steps = append(r.Health.Steps, release.StepRecord{Step: i, Weight: r.Steps[i].Weight, Shifted: at, Started: at})
	}
	judge := func(c *Checker, at time.Time) release.Verdict {
		t.Helper()
		w.clock.set(at)
		v, err := c.Judge(ctx, r, false)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first, second := w.checker(), w.checker()
	step(0, t0)
	r.Health.JudgeState = judge(first, t0.Add(30*time.Second)).State
	judge(first, t0.Add(31*time.Second)) // not written
	// Another process, its clock 30 s behind the first's, judges step 2 and its state is written.
	step(1, t0.Add(20*time.Second))
	r.Health.JudgeState = judge(second, t0.Add(20*time.Second)).State
	if got := len(w.lc.invoked()); got != 2 {
		t.Fatalf("%d smoke invocations by step 2, want 2", got)
	}
	judge(first, t0.Add(52*time.Second))
	if got := len(w.lc.invoked()); got != 2 {
		t.Errorf("%d smoke invocations by step 2, want 2: the first checker, its clock ahead, kept its memory and ran step 2's again", got)
	}
}
