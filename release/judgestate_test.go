package release_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// The engine keeps the health judge's state in the record: what BeforeTraffic returns, a changed
// state at once the first time in a bake (a controller's tick that judges once leaves it
// written), then at most every JudgeStateEvery, at once when the verdict says it must, even
// when the judgement is an error, and with the verdict that ends the step. Health reads it back
// from the record it is given.
func TestEngineKeepsTheJudgeState(t *testing.T) {
	fx := setupChecked(t, release.Checks{MaxBake: time.Hour}, release.Step{Weight: 0.1, Bake: 10 * time.Second})
	e := fx.engine(nil)
	e.Poll, e.JudgeStateEvery = time.Second, 3*time.Second
	var seen []string
	n := 0
	e.Health = &scriptedHealth{
		before: func(*release.Release) release.PreTraffic {
			return release.PreTraffic{Verdict: release.Verdict{Result: release.Pass, Reason: "smoke passed"}, State: json.RawMessage(`"before"`)}
		},
		judge: func(r *release.Release, over bool) (release.Verdict, error) {
			n++
			seen = append(seen, string(r.Health.JudgeState))
			v := release.Verdict{Result: release.Pass, Reason: "no regression so far", State: json.RawMessage(fmt.Sprint(n)), StateNow: n == 5}
			if n == 8 {
				return v, errors.New("alarms unreadable")
			}
			return v, nil
		},
	}
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted {
		t.Fatalf("phase %s: %s", r.Phase, r.Reason)
	}
	// One judgement a second for 10 s: 1 is written at once, 4 three seconds later, 5 at once
	// (StateNow), 8 three seconds later (with an error), 11 with the step's verdict.
	want := []string{`"before"`, "1", "1", "1", "4", "5", "5", "5", "8", "8", "8"}
	if !slices.Equal(seen, want) {
		t.Errorf("Judge saw the states %q in the record, want %q", seen, want)
	}
	if got := string(r.Health.JudgeState); got != "11" {
		t.Errorf("the record ends with the state %s, want the last verdict's, 11", got)
	}
	stored, err := fx.st.GetRelease(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(stored.Health.JudgeState); got != "11" {
		t.Errorf("the store holds the state %s, want 11", got)
	}
	if b, _ := json.Marshal(stored.Health.Steps[0].Verdict); strings.Contains(strings.ToLower(string(b)), "state") {
		t.Errorf("the verdict's record carries the state: %s", b)
	}
}

// At a gate the canary keeps its weight and is judged on: the judge's state is kept there too,
// and the verdict that rolls the release back records it.
func TestEngineKeepsTheJudgeStateAtAGate(t *testing.T) {
	var seen []string
	n := 0
	h := &scriptedHealth{judge: func(r *release.Release, over bool) (release.Verdict, error) {
		n++
		seen = append(seen, string(r.Health.JudgeState))
		if n == 6 {
			v, err := failing(r, over)
			v.State = json.RawMessage(fmt.Sprint(n))
			return v, err
		}
		return release.Verdict{Result: release.Pass, Reason: "no regression", State: json.RawMessage(fmt.Sprint(n))}, nil
	}}
	fx := setupGated(t, release.Approval{AtStep: 1}, &release.Checks{MaxBake: time.Millisecond, OnInconclusive: "rollback"}, release.Step{Weight: 0.1})
	e := fx.engine(nil)
	e.Health, e.JudgeStateEvery = h, time.Hour
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "while waiting at the gate") {
		t.Fatalf("ended %s", r.Describe())
	}
	// 1 is the step's verdict's; 2, the first at the gate, is written at once; 6 rolls back.
	if want := []string{"", "1", "2", "2", "2", "2"}; !slices.Equal(seen, want) {
		t.Errorf("Judge saw the states %q in the record, want %q", seen, want)
	}
	if got := string(r.Health.JudgeState); got != "6" {
		t.Errorf("the record ends with the state %s, want the failing verdict's, 6", got)
	}
}
