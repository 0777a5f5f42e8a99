package logs

import (
	"os"
	"sync"
	"testing"
	"time"
)

// clock is a time source that moves a millisecond at each reading, so that groups created one after
// the other have different creation times.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func messages(s *Service, group, stream string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[group]
	if g == nil || g.streams[stream] == nil {
		return nil
	}
	var out []string
	for _, e := range g.streams[stream].events {
		out = append(out, e.msg)
	}
	return out
}

// crash stops a service's background saving without the final compaction, as a killed sandbox
// would.
func crash(s *Service) {
	close(s.stop)
	<-s.done
}

func TestJournalSurvivesACrash(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Now()}
	cfg := Config{DataDir: dir, SaveInterval: time.Hour, Now: clk.now}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	s.Write("/aws/lambda/f", "2026/01/01/[1]a", []Event{{Time: at, Message: "START\n"}, {Time: at, Message: "END\n"}})
	s.Write("/gone", "s", []Event{{Time: at, Message: "deleted with its group"}})
	s.Write("/re", "s", []Event{{Time: at, Message: "before re-creation"}})
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	// Events written out of time order, a deleted group, a group deleted and created again.
	s.Write("/aws/lambda/f", "2026/01/01/[1]a", []Event{{Time: at.Add(-time.Second), Message: "earlier"}, {Time: at.Add(time.Second), Message: "REPORT\n"}})
	if _, e := s.deleteLogGroup(&logGroupNameInput{LogGroupName: ptr("/gone")}); e != nil {
		t.Fatal(e)
	}
	if _, e := s.deleteLogGroup(&logGroupNameInput{LogGroupName: ptr("/re")}); e != nil {
		t.Fatal(e)
	}
	s.Write("/re", "s", []Event{{Time: at, Message: "after re-creation"}})
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	s.Write("/aws/lambda/f", "2026/01/01/[1]a", []Event{{Time: at.Add(2 * time.Second), Message: "never saved"}})
	crash(s)
	// A crash while appending leaves a torn line.
	f, err := os.OpenFile(s.journalPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"g":"/aws/lambda/f","gc":`)
	f.Close()

	s2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := messages(s2, "/aws/lambda/f", "2026/01/01/[1]a")
	if len(got) != 4 || got[0] != "earlier" || got[1] != "START\n" || got[3] != "REPORT\n" {
		t.Errorf("events after the crash: %q", got)
	}
	if _, ok := s2.groups["/gone"]; ok {
		t.Error("a deleted group came back")
	}
	if got := messages(s2, "/re", "s"); len(got) != 1 || got[0] != "after re-creation" {
		t.Errorf("re-created group: %q", got)
	}
	// New events get new sequence numbers; a clean restart keeps everything.
	s2.Write("/aws/lambda/f", "2026/01/01/[1]a", []Event{{Time: at.Add(3 * time.Second), Message: "after restart"}})
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	got = messages(s3, "/aws/lambda/f", "2026/01/01/[1]a")
	if len(got) != 5 || got[4] != "after restart" {
		t.Errorf("events after a clean restart: %q", got)
	}
	seen := map[uint64]bool{}
	for _, e := range s3.groups["/aws/lambda/f"].streams["2026/01/01/[1]a"].events {
		if seen[e.seq] {
			t.Errorf("sequence number %d used twice", e.seq)
		}
		seen[e.seq] = true
	}
}

func ptr[T any](v T) *T { return &v }

// A group deleted and created again within the same millisecond is still told apart on replay.
func TestJournalRecreationInTheSameMillisecond(t *testing.T) {
	dir := t.TempDir()
	frozen := time.Now()
	cfg := Config{DataDir: dir, SaveInterval: time.Hour, Now: func() time.Time { return frozen }}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Write("/g", "s", []Event{{Time: frozen, Message: "old"}})
	s.save()
	s.deleteLogGroup(&logGroupNameInput{LogGroupName: ptr("/g")})
	s.Write("/g", "s", []Event{{Time: frozen, Message: "new"}})
	s.save()
	crash(s)
	s2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := messages(s2, "/g", "s"); len(got) != 1 || got[0] != "new" {
		t.Errorf("after replay: %q", got)
	}
}
