package release

import (
	"context"
	"errors"
	"testing"
)

var allPhases = []Phase{Planned, Publishing, Shifting, AwaitingApproval, Promoting, Promoted, RollingBack, RolledBack, Failed}
var allMoves = []Move{MovePublish, MoveShift, MoveGate, MovePromote, MoveRollback, MoveDone, MoveFail, MoveReopen}

// The table is a function of phase and move, and Next refuses every pair it does not list.
func TestTransitionTable(t *testing.T) {
	rows := map[[2]string]Phase{}
	for _, tr := range Transitions {
		k := [2]string{string(tr.From), string(tr.Move)}
		if _, dup := rows[k]; dup {
			t.Errorf("%s on %s is listed twice", tr.From, tr.Move)
		}
		rows[k] = tr.To
		if tr.When == "" {
			t.Errorf("%s on %s does not say when", tr.From, tr.Move)
		}
	}
	for _, from := range allPhases {
		for _, m := range allMoves {
			to, err := Next(from, m)
			want, ok := rows[[2]string{string(from), string(m)}]
			var te *TransitionError
			switch {
			case ok && (err != nil || to != want):
				t.Errorf("Next(%s, %s) = %s, %v; want %s", from, m, to, err, want)
			case !ok && !errors.As(err, &te):
				t.Errorf("Next(%s, %s) = %s, %v; want a *TransitionError", from, m, to, err)
			}
		}
	}
	// Nothing leaves a final phase but an operator's reopening, and RolledBack not even that.
	for _, tr := range Transitions {
		if tr.From.Final() && tr.Move != MoveReopen || tr.From == RolledBack {
			t.Errorf("a final release moves: %+v", tr)
		}
	}
}

// memStore keeps one release in memory: enough for the engine's writes.
type memStore struct {
	Store  // the rest is not used here
	r      *Release
	events []Event
}

func (s *memStore) GetRelease(_ context.Context, id string) (*Release, error) {
	if s.r == nil || s.r.ID != id {
		return nil, ErrNotFound
	}
	return clone(s.r), nil
}

func (s *memStore) UpdateRelease(_ context.Context, r *Release) error {
	if r.Revision != s.r.Revision {
		return ErrConflict
	}
	r.Revision++
	s.r = clone(r)
	return nil
}

func (s *memStore) AppendEvent(_ context.Context, e *Event) error {
	s.events = append(s.events, *e)
	return nil
}

// The engine refuses a move the table does not list, and writes nothing.
func TestEngineRefusesMovesNotInTheTable(t *testing.T) {
	for _, from := range allPhases {
		for _, m := range allMoves {
			if _, err := Next(from, m); err == nil {
				continue
			}
			st := &memStore{r: &Release{ID: "rel-1", Phase: from, Revision: 4}}
			e := &Engine{Store: st, Clock: RealClock{}}
			r, _ := st.GetRelease(context.Background(), "rel-1")
			err := e.transition(context.Background(), r, m, "test", nil)
			var te *TransitionError
			if !errors.As(err, &te) || te.From != from || te.Move != m {
				t.Errorf("%s on %s: %v, want a *TransitionError", from, m, err)
			}
			if st.r.Revision != 4 || st.r.Phase != from || len(st.events) != 0 {
				t.Errorf("%s on %s was written: %+v, %v", from, m, st.r, st.events)
			}
		}
	}
	// And a move it lists is written with its audit entry, naming the move.
	st := &memStore{r: &Release{ID: "rel-1", Phase: Planned}}
	e := &Engine{Store: st, Clock: RealClock{}}
	r, _ := st.GetRelease(context.Background(), "rel-1")
	if err := e.transition(context.Background(), r, MovePublish, "go", nil); err != nil {
		t.Fatal(err)
	}
	if st.r.Phase != Publishing || len(st.events) != 1 || st.events[0].Data["move"] != "publish" {
		t.Errorf("after publish: %s, %+v", st.r.Phase, st.events)
	}
}
