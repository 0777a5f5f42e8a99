package health

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// What the checker persists of a release, through the engine, in the release's record
// (HealthRecord.JudgeState): what a new process could not learn again from AWS. It is written
// with every verdict (release.Verdict.State) and read back by a checker that has no watch of the
// release in memory, or an older one than the record's.
//
//   - smoke: the step whose smoke invocations ran, their failure if they failed, and each
//     function's smoke request IDs (until the logs have been read past them);
//   - firingBefore: the alarms in ALARM before traffic, and when each last changed;
//   - each function's logs: the cursor (every platform line before it is counted, none after),
//     the invocations still open at the cursor (at most maxOpen), and the counts: per step for
//     the periods that can no longer change (see fold), per version and period for the others.
//
// Not persisted, since they are read again at once: the metrics (each read recounts every settled
// period), the alarms' states, and when each source was last read.
//
// Its size does not grow with traffic, nor with the length of the bake: periods that can no
// longer change are folded into their step's totals (see fold), so what is kept per function is
// a few numbers per step and the counts of the last few periods, as columns per version (see
// series); a state larger than gzipAbove is gzipped.
//
// Nor does it grow past maxStateBytes with the fleet (the store keeps the whole release in one
// item: DynamoDB's are at most 400 KB). A state that would is made to fit by fit, which drops
// the least useful detail first, and says in the verdict's notes what precision was lost:
//
//  1. the invocations open at the cursors, fewer per function (down to none): after a restart,
//     an error line of one that was dropped is not counted by the logs (the metrics, whose count
//     each period takes when they have one, still count it);
//  2. the logs' recent counts and cursors: each function's cursor goes back to its fold point,
//     and a restarted checker reads those minutes of logs again (counted alike: nothing is lost
//     but the calls it takes);
//  3. everything: a restarted checker starts afresh, as before state was persisted (it may run
//     a step's smoke invocations again and count the logs from the first shift).
//
// Between 2 and 3, the smoke request IDs go (a restarted checker counts the smoke invocations
// after the cursor as traffic), then the state of the functions that do not fit, last by name
// (a restarted checker counts them afresh, from the first shift).
//
// # Which record is newer
//
// The hosts that judge a release do not share a clock, so states are ordered by a sequence
// number: a state's Seq is one more than that of the record its watch built on (restored from,
// or found written), and By names the watch that made it. A record made by another watch with a
// higher Seq than the one this watch built on was written by a judge that built on it, or on a
// later record: it is newer.

// stateVersion is the encoding's version: a record of another is ignored (the checker starts
// afresh, as it did before state was persisted).
const stateVersion = 1

// gzipAbove is the encoded size above which the state is stored gzipped (and base64'd, since the
// record is JSON).
const gzipAbove = 4 << 10

// maxStateBytes bounds the state as the record keeps it, whatever the fleet's size (see fit):
// DynamoDB items are at most 400 KB, and the release's record holds more than its judge's state.
const maxStateBytes = 64 << 10

type state struct {
	V int `json:"v"`
	// Seq and By order the records (see "Which record is newer"): a watch in memory is replaced
	// by a newer record (another process judged the release since).
	Seq int64  `json:"seq,omitempty"`
	By  string `json:"by,omitempty"`
	// At is the checker's time at the judgement that made it, for people: clocks differ.
	At           time.Time            `json:"at"`
	SmokeFor     time.Time            `json:"smokeFor,omitzero"`
	SmokeVerdict *release.Verdict     `json:"smokeVerdict,omitempty"`
	FiringBefore map[string]time.Time `json:"firingBefore,omitempty"`
	Fns          map[string]*fnState  `json:"fns,omitempty"` // by FunctionName
}

type fnState struct {
	// From, Newest (Unix ms): the logs' cursor and the newest line seen.
	From   int64 `json:"from,omitempty"`
	Newest int64 `json:"newest,omitempty"`
	// Failed and Current are the cursor's open invocations (see logCursor).
	Failed  map[string]int64  `json:"failed,omitempty"`
	Current map[string]string `json:"current,omitempty"`
	// Smoke: smoke request IDs → when invoked (Unix ms).
	Smoke map[string]int64 `json:"smoke,omitempty"`
	// FoldedTo (Unix ms) and Folded: each step's totals of the periods before FoldedTo, as
	// [canary n, errors, slow, baseline n, errors, slow, alias throttles] (see fold).
	FoldedTo int64      `json:"foldedTo,omitempty"`
	Folded   [][7]int64 `json:"folded,omitempty"`
	// Grid is the period (ms); Logs holds each version's counts (see series).
	Grid int64              `json:"grid,omitempty"`
	Logs map[string]*series `json:"logs,omitempty"`
}

// series is a version's counts in consecutive periods, as columns (which compress well): N, Errors
// and Slow of periods First, First+1, … (period indexes: the period starts at index × Grid, Unix
// ms). A column of zeros is left out; a trailing run of zeros too.
type series struct {
	First  int64   `json:"first"`
	N      []int64 `json:"n,omitempty"`
	Errors []int64 `json:"errors,omitempty"`
	Slow   []int64 `json:"slow,omitempty"`
}

func newSeries(byPeriod map[int64]*counts, period int64) *series {
	var idx []int64
	for p, c := range byPeriod {
		if c.n != 0 || c.errors != 0 || c.slow != 0 {
			idx = append(idx, p/period)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	slices.Sort(idx)
	first, last := idx[0], idx[len(idx)-1]
	s := &series{First: first}
	n, e, sl := make([]int64, last-first+1), make([]int64, last-first+1), make([]int64, last-first+1)
	for _, i := range idx {
		c := byPeriod[i*period]
		n[i-first], e[i-first], sl[i-first] = int64(c.n), int64(c.errors), int64(c.slow)
	}
	s.N, s.Errors, s.Slow = trimZeros(n), trimZeros(e), trimZeros(sl)
	return s
}

func trimZeros(xs []int64) []int64 {
	for len(xs) > 0 && xs[len(xs)-1] == 0 {
		xs = xs[:len(xs)-1]
	}
	if len(xs) == 0 {
		return nil
	}
	return xs
}

// each calls f with every period's counts.
func (s *series) each(grid int64, f func(period int64, c counts)) {
	for i := range max(len(s.N), len(s.Errors), len(s.Slow)) {
		var c counts
		if i < len(s.N) {
			c.n = float64(s.N[i])
		}
		if i < len(s.Errors) {
			c.errors = float64(s.Errors[i])
		}
		if i < len(s.Slow) {
			c.slow = float64(s.Slow[i])
		}
		if c != (counts{}) {
			f((s.First+int64(i))*grid, c)
		}
	}
}

// state is the watch as the record keeps it, at the checker's time now: the record it came from
// (or last returned) when nothing changed since, so that the engine has nothing to write. lost
// says what precision fitting it in maxStateBytes cost ("": none). The caller holds w.mu.
func (w *watch) state(r *release.Release, now time.Time) (raw json.RawMessage, lost string) {
	s := w.snapshot(r)
	body := marshalState(s)
	if w.lastState != nil && bytes.Equal(body, w.lastBody) {
		return w.lastState, w.lastLost
	}
	if w.id == "" {
		w.id = newWatchID()
	}
	s.At, s.Seq, s.By = now, w.seq+1, w.id
	w.lastBody, w.lastSeq = body, s.Seq
	w.lastState, w.lastLost = fit(s)
	return w.lastState, w.lastLost
}

// newWatchID names a watch among all the processes that may judge a release.
func newWatchID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// fit encodes s within maxStateBytes, dropping detail in the order the comment at the top of
// this file gives; lost says what was dropped ("": nothing). s is changed.
func fit(s *state) (raw json.RawMessage, lost string) {
	if raw = compress(marshalState(s)); len(raw) <= maxStateBytes {
		return raw, ""
	}
	open := 0
	for _, fs := range s.Fns {
		open = max(open, len(fs.Failed), len(fs.Current))
	}
	// Each try encodes the whole state: start near what a fleet can keep (maxOpenFleet).
	for per := min(open/2, maxOpenFleet/max(len(s.Fns), 1)); ; per /= 2 {
		for _, fs := range s.Fns {
			fs.Failed, fs.Current = cappedTo(fs.Failed, per), cappedTo(fs.Current, per)
		}
		if raw = compress(marshalState(s)); len(raw) <= maxStateBytes {
			return raw, fmt.Sprintf("the judge's state was too large to keep whole (%d KB at most): it keeps %d open invocations per function; after a restart, "+
				"the error lines of the others that do not name their request are counted by the metrics alone", maxStateBytes>>10, per)
		}
		if per == 0 {
			break
		}
	}
	for _, fs := range s.Fns {
		fs.From, fs.Newest, fs.Grid, fs.Logs = fs.FoldedTo, fs.FoldedTo, 0, nil
	}
	if raw = compress(marshalState(s)); len(raw) <= maxStateBytes {
		return raw, fmt.Sprintf("the judge's state was too large to keep whole (%d KB at most): it keeps no open invocations and no recent log counts; "+
			"after a restart the logs since each function's last folded period are read again, and the error lines that do not name their request "+
			"are counted by the metrics alone", maxStateBytes>>10)
	}
	for _, fs := range s.Fns {
		fs.Smoke = nil
	}
	if raw = compress(marshalState(s)); len(raw) <= maxStateBytes {
		return raw, fmt.Sprintf("the judge's state was too large to keep whole (%d KB at most): it keeps only each step's folded counts; "+
			"after a restart the logs since each function's last folded period are read again, the step's smoke invocations among them counted as traffic, "+
			"and the error lines that do not name their request are counted by the metrics alone", maxStateBytes>>10)
	}
	// The folded counts of as many functions as fit (by name); the others start afresh.
	names := slices.Sorted(maps.Keys(s.Fns))
	all := s.Fns
	for keep := len(names) * maxStateBytes / len(raw); keep > 0; keep = keep * 9 / 10 {
		s.Fns = map[string]*fnState{}
		for _, n := range names[:keep] {
			s.Fns[n] = all[n]
		}
		if raw = compress(marshalState(s)); len(raw) <= maxStateBytes {
			return raw, fmt.Sprintf("the judge's state was too large to keep whole (%d KB at most): it keeps only the folded counts of %d of %d functions; "+
				"after a restart the logs since their last folded period are read again, the step's smoke invocations among them counted as traffic, "+
				"the error lines that do not name their request are counted by the metrics alone, and the other functions are counted afresh from the first shift",
				maxStateBytes>>10, keep, len(names))
		}
	}
	raw = marshalState(&state{V: stateVersion, Seq: s.Seq, By: s.By, At: s.At})
	return raw, fmt.Sprintf("the judge's state was too large to keep even in part (%d KB at most): a restarted checker starts afresh "+
		"(it runs the step's smoke invocations again and counts the logs from the first shift)", maxStateBytes>>10)
}

// snapshot is the watch's state, its time left zero. The caller holds w.mu.
func (w *watch) snapshot(r *release.Release) *state {
	s := &state{V: stateVersion, SmokeFor: w.smokeFor, SmokeVerdict: w.smokeVerdict, FiringBefore: w.firingBefore}
	period := int64(1)
	if r.Checks != nil {
		period = grid(r.Checks).Milliseconds()
	}
	for name, fw := range w.fns {
		fs := &fnState{From: fw.logs.from, Newest: fw.logs.newest, Failed: capped(fw.logs.failed), Current: capped(fw.logs.current), Smoke: fw.smokeIDs}
		for v, byPeriod := range fw.fromLogs {
			if sr := newSeries(byPeriod, period); sr != nil {
				if fs.Logs == nil {
					fs.Logs, fs.Grid = map[string]*series{}, period
				}
				fs.Logs[v] = sr
			}
		}
		fs.FoldedTo = fw.foldedTo
		for _, f := range fw.folded {
			fs.Folded = append(fs.Folded, [7]int64{int64(f.canary.n), int64(f.canary.errors), int64(f.canary.slow),
				int64(f.base.n), int64(f.base.errors), int64(f.base.slow), int64(f.throttles)})
		}
		if fs.From == 0 && fs.Newest == 0 && len(fs.Smoke) == 0 && fs.Logs == nil && fs.FoldedTo == 0 {
			continue
		}
		if s.Fns == nil {
			s.Fns = map[string]*fnState{}
		}
		s.Fns[name] = fs
	}
	return s
}

func marshalState(s *state) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("encode the judge's state: %v", err)) // plain data: cannot happen
	}
	return b
}

// compress gzips a state larger than gzipAbove.
func compress(b []byte) json.RawMessage {
	if len(b) <= gzipAbove {
		return b
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	out, _ := json.Marshal(map[string]string{"gzip": base64.StdEncoding.EncodeToString(z.Bytes())})
	return out
}

// decodeState reads a record's state; ok is false for none or one this checker cannot read.
func decodeState(raw json.RawMessage) (*state, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	var wrapped struct {
		Gzip string `json:"gzip"`
	}
	if json.Unmarshal(raw, &wrapped) == nil && wrapped.Gzip != "" {
		z, err := base64.StdEncoding.DecodeString(wrapped.Gzip)
		if err != nil {
			return nil, false
		}
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			return nil, false
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, false
		}
	}
	var s state
	if err := json.Unmarshal(raw, &s); err != nil || s.V != stateVersion {
		return nil, false
	}
	return &s, true
}

// restore fills a new watch from a record's state (raw, as the record holds it).
func (w *watch) restore(r *release.Release, s *state, raw json.RawMessage) {
	defer func() { w.lastBody, w.lastState, w.lastSeq = marshalState(w.snapshot(r)), raw, s.Seq }()
	w.seq, w.smokeFor, w.smokeVerdict, w.firingBefore = s.Seq, s.SmokeFor, s.SmokeVerdict, s.FiringBefore
	for name, fs := range s.Fns {
		fw := w.fns[name]
		if fw == nil {
			continue
		}
		if fs.From != 0 || fs.Newest != 0 {
			fw.logs.from, fw.logs.newest = fs.From, fs.Newest
			fw.logs.failed, fw.logs.current = orEmpty(fs.Failed), orEmpty(fs.Current)
			fw.logs.seen = map[string]bool{}
		}
		for id, at := range fs.Smoke {
			fw.smokeIDs[id] = at
		}
		fw.foldedTo = fs.FoldedTo
		for _, f := range fs.Folded {
			fw.folded = append(fw.folded, stepTotals{canary: counts{float64(f[0]), float64(f[1]), float64(f[2])},
				base: counts{float64(f[3]), float64(f[4]), float64(f[5])}, throttles: float64(f[6])})
		}
		for v, sr := range fs.Logs {
			sr.each(fs.Grid, func(p int64, c counts) { *bucket(fw.fromLogs, v, p) = c })
		}
	}
}

// maxOpen bounds the invocations open at the cursor that the record keeps per function: a
// function with more in flight loses, after a restart, the error lines of the others that do
// not name their request (aws-lambda-go's), which only its metrics then count.
const maxOpen = 64

// maxOpenFleet is about as many open invocations as a state of maxStateBytes can keep across the
// fleet (request IDs and stream names do not compress): fit starts there.
const maxOpenFleet = 512

// capped is m, or maxOpen of its entries (those of the smallest keys) if it has more.
func capped[V any](m map[string]V) map[string]V { return cappedTo(m, maxOpen) }

// cappedTo is m, or n of its entries (those of the smallest keys) if it has more.
func cappedTo[V any](m map[string]V, n int) map[string]V {
	if len(m) <= n {
		return m
	}
	if n == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(m))
	out := make(map[string]V, n)
	for _, k := range keys[:n] {
		out[k] = m[k]
	}
	return out
}

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}
