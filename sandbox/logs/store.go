package logs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/aviary-deploy/aviary/internal/atomicfile"
)

// event is one stored log event. Events of a stream are kept sorted by (ts, seq); seq is unique
// across the service and grows with ingestion, which orders events of equal timestamps as
// CloudWatch Logs does (by ingestion).
type event struct {
	ts     int64 // the event's timestamp, epoch milliseconds
	ingest int64 // when it was ingested, epoch milliseconds
	seq    uint64
	msg    string
}

func (e *event) before(ts int64, seq uint64) bool {
	return e.ts < ts || e.ts == ts && e.seq < seq
}

type stream struct {
	name       string
	created    int64
	lastIngest int64
	uploads    uint64 // PutLogEvents calls, for the (ignored) sequence token
	events     []event
}

type group struct {
	name      string
	created   int64
	retention int // days; 0 keeps events forever
	kms       string
	class     string
	tags      map[string]string
	streams   map[string]*stream
	bytes     int64
}

// Event is a log event written by an in-process writer.
type Event struct {
	Time    time.Time
	Message string
}

// Write appends events to a log stream, creating the log group and the stream when they are
// missing, as Lambda does for its functions. It never fails: empty messages are skipped, and events
// of any age are kept (the group's retention still applies).
func (s *Service) Write(groupName, streamName string, events []Event) {
	if groupName == "" || streamName == "" || len(events) == 0 {
		return
	}
	now := s.cfg.Now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[groupName]
	if g == nil {
		g = s.newGroup(groupName, now)
	}
	st := g.streams[streamName]
	if st == nil {
		st = g.newStream(s, streamName, now)
	}
	evs := make([]event, 0, len(events))
	for _, e := range events {
		if e.Message != "" {
			evs = append(evs, event{ts: e.Time.UnixMilli(), msg: e.Message})
		}
	}
	s.add(g, st, evs, now)
}

// add stores events in a stream, numbering them, and queues them for the journal; the caller
// holds s.mu.
func (s *Service) add(g *group, st *stream, evs []event, now int64) {
	if len(evs) == 0 {
		return
	}
	for i := range evs {
		s.seq++
		evs[i].seq, evs[i].ingest = s.seq, now
		g.insert(st, evs[i])
	}
	st.lastIngest = now
	if s.cfg.DataDir != "" {
		s.pending = append(s.pending, journalEntry{G: g.name, GC: g.created, S: st.name, SC: st.created, E: savedEvents(evs)})
	}
}

// newGroup adds a group; the caller holds s.mu.
func (s *Service) newGroup(name string, now int64) *group {
	g := &group{name: name, created: s.after(name, "", now), class: "STANDARD", tags: map[string]string{}, streams: map[string]*stream{}}
	s.groups[name] = g
	s.metaDirty = true
	return g
}

// newStream adds a stream; the caller holds s.mu.
func (g *group) newStream(s *Service, name string, now int64) *stream {
	st := &stream{name: name, created: s.after(g.name, name, now)}
	g.streams[name] = st
	s.metaDirty = true
	return st
}

// after is a creation time for a group (stream "") or stream no later than now unless one of the
// same name was deleted in the same millisecond: the journal tells them apart by creation time.
func (s *Service) after(group, stream string, now int64) int64 {
	for _, t := range s.tombstones {
		if t.G != group || t.S != stream {
			continue
		}
		created := t.GC
		if stream != "" {
			created = t.SC
		}
		now = max(now, created+1)
	}
	return now
}

// insert adds e in (ts, seq) order; nearly every event belongs at the end.
func (g *group) insert(st *stream, e event) {
	n := len(st.events)
	if n == 0 || !e.before(st.events[n-1].ts, st.events[n-1].seq) {
		st.events = append(st.events, e)
	} else {
		i := sort.Search(n, func(i int) bool { return !st.events[i].before(e.ts, e.seq) })
		st.events = append(st.events, event{})
		copy(st.events[i+1:], st.events[i:])
		st.events[i] = e
	}
	g.bytes += int64(len(e.msg))
}

// cutoff is the oldest timestamp a group's retention keeps, or the lowest int64.
func (g *group) cutoff(now time.Time) int64 {
	if g.retention <= 0 {
		return -1 << 63
	}
	return now.Add(-time.Duration(g.retention) * 24 * time.Hour).UnixMilli()
}

// expire deletes the events every group's retention no longer keeps.
func (s *Service) expire() {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		s.expireGroup(g, now)
	}
}

// expireGroup applies a group's retention; the caller holds s.mu.
func (s *Service) expireGroup(g *group, now time.Time) {
	if g.retention <= 0 {
		return
	}
	cut := g.cutoff(now)
	for _, st := range g.streams {
		i := sort.Search(len(st.events), func(i int) bool { return st.events[i].ts >= cut })
		if i == 0 {
			continue
		}
		for _, e := range st.events[:i] {
			g.bytes -= int64(len(e.msg))
		}
		st.events = append([]event(nil), st.events[i:]...)
	}
}

// ---- persistence ----
//
// With a data directory, CloudWatch Logs keeps two files in DataDir/logs: meta.json, the log
// groups and streams without their events, rewritten when they change; and events.jsonl, a
// journal to which each batch of new events is appended (every SaveInterval), so that the cost of
// saving follows what was written, not what is stored. Deleted groups and streams leave
// tombstones in meta.json until the journal is compacted, at start and at Close.

type savedEvent struct {
	T int64  `json:"t"`
	I int64  `json:"i"`
	S uint64 `json:"s"`
	M string `json:"m"`
}

func savedEvents(evs []event) []savedEvent {
	out := make([]savedEvent, len(evs))
	for i, e := range evs {
		out[i] = savedEvent{T: e.ts, I: e.ingest, S: e.seq, M: e.msg}
	}
	return out
}

// journalEntry is one batch of events of a stream, named with its group's and its own creation
// times, so that a journal entry of a deleted and re-created stream is told apart.
type journalEntry struct {
	G  string       `json:"g"`
	GC int64        `json:"gc"`
	S  string       `json:"s"`
	SC int64        `json:"sc"`
	E  []savedEvent `json:"e"`
}

type savedStream struct {
	Name       string `json:"name"`
	Created    int64  `json:"created"`
	LastIngest int64  `json:"lastIngest,omitempty"`
	Uploads    uint64 `json:"uploads,omitempty"`
}

type savedGroup struct {
	Name      string            `json:"name"`
	Created   int64             `json:"created"`
	Retention int               `json:"retention,omitempty"`
	KMS       string            `json:"kms,omitempty"`
	Class     string            `json:"class,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	Streams   []savedStream     `json:"streams,omitempty"`
}

// tombstone marks a deleted group (S empty) or stream whose events may still be in the journal.
type tombstone struct {
	G  string `json:"g"`
	GC int64  `json:"gc"`
	S  string `json:"s,omitempty"`
	SC int64  `json:"sc,omitempty"`
}

type savedMeta struct {
	Seq        uint64       `json:"seq"`
	Groups     []savedGroup `json:"groups"`
	Tombstones []tombstone  `json:"tombstones,omitempty"`
}

func (s *Service) dir() string         { return filepath.Join(s.cfg.DataDir, "logs") }
func (s *Service) metaPath() string    { return filepath.Join(s.dir(), "meta.json") }
func (s *Service) journalPath() string { return filepath.Join(s.dir(), "events.jsonl") }

// bury records a deletion for the journal's replay; the caller holds s.mu.
func (s *Service) bury(g *group, st *stream) {
	s.metaDirty = true
	if s.cfg.DataDir == "" {
		return
	}
	t := tombstone{G: g.name, GC: g.created}
	if st != nil {
		t.S, t.SC = st.name, st.created
	}
	s.tombstones = append(s.tombstones, t)
}

// meta captures groups and streams; the caller holds s.mu.
func (s *Service) meta() savedMeta {
	m := savedMeta{Seq: s.seq, Groups: []savedGroup{}, Tombstones: slices.Clone(s.tombstones)}
	for _, g := range s.groups {
		sg := savedGroup{Name: g.name, Created: g.created, Retention: g.retention, KMS: g.kms, Class: g.class, Tags: maps.Clone(g.tags)}
		for _, st := range g.streams {
			sg.Streams = append(sg.Streams, savedStream{Name: st.name, Created: st.created, LastIngest: st.lastIngest, Uploads: st.uploads})
		}
		m.Groups = append(m.Groups, sg)
	}
	return m
}

// save writes what changed since the last save: meta.json if groups or streams changed, and the
// new events to the journal.
func (s *Service) save() error {
	if s.cfg.DataDir == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	pending := s.pending
	s.pending = nil
	var meta *savedMeta
	if s.metaDirty {
		m := s.meta()
		meta, s.metaDirty = &m, false
	}
	s.mu.Unlock()
	if meta != nil {
		b, err := json.Marshal(meta)
		if err == nil {
			err = atomicfile.Write(s.metaPath(), b)
		}
		if err != nil {
			s.mu.Lock()
			s.metaDirty = true
			s.mu.Unlock()
			return err
		}
	}
	if len(pending) == 0 {
		return nil
	}
	f, err := os.OpenFile(s.journalPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	enc := json.NewEncoder(w)
	for _, e := range pending {
		if err := enc.Encode(e); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// compact rewrites the journal with what is stored now and forgets the tombstones.
func (s *Service) compact() error {
	if s.cfg.DataDir == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if err := os.MkdirAll(s.dir(), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir(), "events.jsonl.tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	enc := json.NewEncoder(w)
	s.mu.Lock()
	for _, g := range s.groups {
		for _, st := range g.streams {
			for i := 0; i < len(st.events); i += 1000 {
				chunk := st.events[i:min(i+1000, len(st.events))]
				if err := enc.Encode(journalEntry{G: g.name, GC: g.created, S: st.name, SC: st.created, E: savedEvents(chunk)}); err != nil {
					s.mu.Unlock()
					tmp.Close()
					return err
				}
			}
		}
	}
	s.tombstones, s.pending, s.metaDirty = nil, nil, false
	meta := s.meta()
	s.mu.Unlock()
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), s.journalPath()); err != nil {
		return err
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	return atomicfile.Write(s.metaPath(), b)
}

func (s *Service) load() error {
	if s.cfg.DataDir == "" {
		return nil
	}
	b, err := os.ReadFile(s.metaPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var m savedMeta
	if err == nil {
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("read %s: %w", s.metaPath(), err)
		}
	}
	s.seq = m.Seq
	for _, sg := range m.Groups {
		g := &group{name: sg.Name, created: sg.Created, retention: sg.Retention, kms: sg.KMS, class: sg.Class, tags: sg.Tags, streams: map[string]*stream{}}
		if g.tags == nil {
			g.tags = map[string]string{}
		}
		if g.class == "" {
			g.class = "STANDARD"
		}
		for _, ss := range sg.Streams {
			g.streams[ss.Name] = &stream{name: ss.Name, created: ss.Created, lastIngest: ss.LastIngest, uploads: ss.Uploads}
		}
		s.groups[sg.Name] = g
	}
	if err := s.replay(m.Tombstones); err != nil {
		return err
	}
	s.expire()
	return s.compact()
}

// replay applies the journal to the groups and streams meta.json named. An entry of a group or
// stream meta.json does not know is one created after its last save: it is re-created; one of a
// tombstone, or of another generation of its group or stream, is dropped. A torn last line (a
// crash while appending) is ignored.
func (s *Service) replay(tombs []tombstone) error {
	f, err := os.Open(s.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	dead := map[tombstone]bool{}
	for _, t := range tombs {
		dead[t] = true
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var e journalEntry
			if json.Unmarshal(line, &e) == nil {
				s.replayEntry(e, dead)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *Service) replayEntry(e journalEntry, dead map[tombstone]bool) {
	if dead[tombstone{G: e.G, GC: e.GC}] || dead[tombstone{G: e.G, GC: e.GC, S: e.S, SC: e.SC}] {
		return
	}
	g := s.groups[e.G]
	if g == nil {
		g = s.newGroup(e.G, e.GC)
	}
	if g.created != e.GC {
		return
	}
	st := g.streams[e.S]
	if st == nil {
		st = &stream{name: e.S, created: e.SC}
		g.streams[e.S] = st
	}
	if st.created != e.SC {
		return
	}
	for _, se := range e.E {
		g.insert(st, event{ts: se.T, ingest: se.I, seq: se.S, msg: se.M})
		st.lastIngest = max(st.lastIngest, se.I)
		s.seq = max(s.seq, se.S)
	}
}
