package health

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
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
//     the lines of invocations still open at the cursor, and the counts per version and period.
//
// Not persisted, since they are read again at once: the metrics (each read recounts every settled
// period), the alarms' states, and when each source was last read.
//
// Its size does not grow with traffic, only with functions × periods: counts are rows
// [period, invocations, errors, slow], and a state larger than gzipAbove is gzipped.

// stateVersion is the encoding's version: a record of another is ignored (the checker starts
// afresh, as it did before state was persisted).
const stateVersion = 1

// gzipAbove is the encoded size above which the state is stored gzipped (and base64'd, since the
// record is JSON).
const gzipAbove = 4 << 10

type state struct {
	V int `json:"v"`
	// At is the checker's time at the judgement that made it: a watch in memory older than this
	// record is replaced by it (another process judged the release since).
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
	// Grid is the period (ms); Logs holds per version rows [period index, n, errors, slow], the
	// period starting at index × Grid (Unix ms).
	Grid int64                 `json:"grid,omitempty"`
	Logs map[string][][4]int64 `json:"logs,omitempty"`
}

// state is the watch as the record keeps it, at the checker's time now: the record it came from
// (or last returned) when nothing changed since, so that the engine has nothing to write. The
// caller holds w.mu.
func (w *watch) state(r *release.Release, now time.Time) json.RawMessage {
	s := w.snapshot(r)
	body := marshalState(s)
	if w.lastState != nil && bytes.Equal(body, w.lastBody) {
		return w.lastState
	}
	w.at, s.At = now, now
	w.lastBody, w.lastState = body, compress(marshalState(s))
	return w.lastState
}

// snapshot is the watch's state, its time left zero. The caller holds w.mu.
func (w *watch) snapshot(r *release.Release) *state {
	s := &state{V: stateVersion, SmokeFor: w.smokeFor, SmokeVerdict: w.smokeVerdict, FiringBefore: w.firingBefore}
	period := int64(1)
	if r.Checks != nil {
		period = grid(r.Checks).Milliseconds()
	}
	for name, fw := range w.fns {
		fs := &fnState{From: fw.logs.from, Newest: fw.logs.newest, Failed: fw.logs.failed, Current: fw.logs.current, Smoke: fw.smokeIDs}
		for v, byPeriod := range fw.fromLogs {
			for p, c := range byPeriod {
				if c.n == 0 && c.errors == 0 && c.slow == 0 {
					continue
				}
				if fs.Logs == nil {
					fs.Logs, fs.Grid = map[string][][4]int64{}, period
				}
				fs.Logs[v] = append(fs.Logs[v], [4]int64{p / period, int64(c.n), int64(c.errors), int64(c.slow)})
			}
		}
		for _, rows := range fs.Logs {
			sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
		}
		if fs.From == 0 && fs.Newest == 0 && len(fs.Smoke) == 0 && fs.Logs == nil {
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
	defer func() { w.lastBody, w.lastState = marshalState(w.snapshot(r)), raw }()
	w.at, w.smokeFor, w.smokeVerdict, w.firingBefore = s.At, s.SmokeFor, s.SmokeVerdict, s.FiringBefore
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
		for v, rows := range fs.Logs {
			for _, row := range rows {
				c := bucket(fw.fromLogs, v, row[0]*fs.Grid)
				c.n, c.errors, c.slow = float64(row[1]), float64(row[2]), float64(row[3])
			}
		}
	}
}

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}
