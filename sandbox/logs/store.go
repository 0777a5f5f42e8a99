package logs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
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
		st = &stream{name: streamName, created: now}
		g.streams[streamName] = st
	}
	for _, e := range events {
		if e.Message == "" {
			continue
		}
		s.seq++
		g.insert(st, event{ts: e.Time.UnixMilli(), ingest: now, seq: s.seq, msg: e.Message})
	}
	st.lastIngest = now
	s.dirty = true
}

// newGroup adds a group; the caller holds s.mu.
func (s *Service) newGroup(name string, now int64) *group {
	g := &group{name: name, created: now, class: "STANDARD", tags: map[string]string{}, streams: map[string]*stream{}}
	s.groups[name] = g
	return g
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
		s.dirty = true
	}
}

// ---- persistence ----

type savedEvent struct {
	T int64  `json:"t"`
	I int64  `json:"i"`
	S uint64 `json:"s"`
	M string `json:"m"`
}

type savedStream struct {
	Name       string       `json:"name"`
	Created    int64        `json:"created"`
	LastIngest int64        `json:"lastIngest,omitempty"`
	Uploads    uint64       `json:"uploads,omitempty"`
	Events     []savedEvent `json:"events,omitempty"`
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

type savedState struct {
	Seq    uint64       `json:"seq"`
	Groups []savedGroup `json:"groups"`
}

func (s *Service) statePath() string {
	return filepath.Join(s.cfg.DataDir, "logs", "logs.json")
}

// save writes the state when it changed since the last save (or always, if force).
func (s *Service) save(force bool) error {
	if s.cfg.DataDir == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	if !s.dirty && !force {
		s.mu.Unlock()
		return nil
	}
	st := savedState{Seq: s.seq}
	for _, g := range s.groups {
		sg := savedGroup{Name: g.name, Created: g.created, Retention: g.retention, KMS: g.kms, Class: g.class, Tags: g.tags}
		for _, str := range g.streams {
			ss := savedStream{Name: str.name, Created: str.created, LastIngest: str.lastIngest, Uploads: str.uploads, Events: make([]savedEvent, len(str.events))}
			for i, e := range str.events {
				ss.Events[i] = savedEvent{T: e.ts, I: e.ingest, S: e.seq, M: e.msg}
			}
			sg.Streams = append(sg.Streams, ss)
		}
		st.Groups = append(st.Groups, sg)
	}
	s.dirty = false
	s.mu.Unlock()
	b, err := json.Marshal(st)
	if err == nil {
		err = writeAtomic(s.statePath(), b)
	}
	if err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
	}
	return err
}

func (s *Service) load() error {
	if s.cfg.DataDir == "" {
		return nil
	}
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("read %s: %w", s.statePath(), err)
	}
	s.seq = st.Seq
	for _, sg := range st.Groups {
		g := &group{name: sg.Name, created: sg.Created, retention: sg.Retention, kms: sg.KMS, class: sg.Class, tags: sg.Tags, streams: map[string]*stream{}}
		if g.tags == nil {
			g.tags = map[string]string{}
		}
		if g.class == "" {
			g.class = "STANDARD"
		}
		for _, ss := range sg.Streams {
			str := &stream{name: ss.Name, created: ss.Created, lastIngest: ss.LastIngest, uploads: ss.Uploads, events: make([]event, len(ss.Events))}
			for i, e := range ss.Events {
				str.events[i] = event{ts: e.T, ingest: e.I, seq: e.S, msg: e.M}
				g.bytes += int64(len(e.M))
				s.seq = max(s.seq, e.S)
			}
			sort.Slice(str.events, func(i, j int) bool { return str.events[i].before(str.events[j].ts, str.events[j].seq) })
			g.streams[ss.Name] = str
		}
		s.groups[sg.Name] = g
	}
	s.expire()
	s.dirty = false
	return nil
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
