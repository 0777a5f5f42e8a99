package release_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// on_inconclusive: auto (the default) never rolls a release back for want of traffic. Without an
// approval gate, every step bakes on to max_bake, then the release goes on and is promoted,
// recorded as unjudged: in the release, in each step's record and in the audit trail.
func TestInconclusiveAutoPromotesUnjudged(t *testing.T) {
	fx := setupChecked(t, release.Checks{MaxBake: 3 * time.Minute, OnInconclusive: release.OnInconclusiveAuto},
		release.Step{Weight: 0.1, Bake: time.Minute}, release.Step{Weight: 0.5, Bake: time.Minute})
	e := fx.engine(nil)
	e.Health = &scriptedHealth{judge: inconclusive}
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted {
		t.Fatalf("ended %s; a healthy release with too little traffic must not be rolled back", r.Describe())
	}
	if got := transitions(t, fx.st, "rel-1"); got != "publishing shifting shifting promoting promoted" {
		t.Errorf("transitions %q", got)
	}
	if !strings.Contains(r.Unjudged, "step 1 was inconclusive") || !strings.Contains(r.Unjudged, "step 2 was inconclusive") ||
		!strings.Contains(r.Unjudged, "no approval gate") {
		t.Errorf("unjudged %q", r.Unjudged)
	}
	for _, s := range r.Health.Steps {
		// Each step baked its longest bake before going on.
		if !s.Unjudged || !s.Extended || s.Ended.Sub(s.Started) < 3*time.Minute {
			t.Errorf("step record %+v: want unjudged after baking max_bake (3m)", s)
		}
	}
	var loud int
	for _, ev := range healthEvents(t, fx.st, "rel-1") {
		if strings.HasPrefix(ev.Message, "UNJUDGED: ") && ev.Data["unjudged"] == true {
			loud++
		}
	}
	if loud != 2 {
		t.Errorf("%d UNJUDGED entries in the audit trail; want one per step", loud)
	}
}

// With an approval gate a person decides: auto gates at the inconclusive step (as gate does),
// and an approval there records the step, and the release, as unjudged.
func TestInconclusiveAutoGatesWhereAPersonDecides(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1}, &release.Checks{MaxBake: 2 * time.Minute, OnInconclusive: release.OnInconclusiveAuto},
		release.Step{Weight: 0.1, Bake: time.Minute})
	e := fx.engine(nil)
	e.Health = &scriptedHealth{judge: inconclusive}
	done := runAsync(t, e)
	r := waitGate(t, fx)
	if g := r.OpenGate(); g.Kind != release.GateInconclusive || g.Step != 1 || !strings.Contains(g.Why, "inconclusive after its longest bake") {
		t.Errorf("gate %+v", g)
	}
	if _, err := release.Decide(context.Background(), fx.st, "rel-1", release.Decision{Action: release.Approve, By: "alice", Via: release.ViaCLI}); err != nil {
		t.Fatal(err)
	}
	r = <-done
	if r.Phase != release.Promoted {
		t.Fatalf("ended %s", r.Describe())
	}
	if !strings.Contains(r.Unjudged, "approved at the gate by alice") || !r.Health.Steps[0].Unjudged {
		t.Errorf("unjudged %q, step %+v", r.Unjudged, r.Health.Steps[0])
	}
	// The inconclusive gate's approval is the environment's approval after step 1: one gate, not two.
	if len(r.Gates) != 1 {
		t.Errorf("gates %+v", r.Gates)
	}
}

// A pre-approved gate has no person behind it: auto promotes, unjudged, instead of waiting for
// someone who will not come.
func TestInconclusiveAutoWithPreApprovalPromotes(t *testing.T) {
	fx := setupGated(t, release.Approval{AtStep: 1, PreApprove: true, PreApprovedBy: "the manifest"},
		&release.Checks{MaxBake: 2 * time.Minute, OnInconclusive: release.OnInconclusiveAuto}, release.Step{Weight: 0.1, Bake: time.Minute})
	e := fx.engine(nil)
	e.Health = &scriptedHealth{judge: inconclusive}
	r := <-runAsync(t, e)
	if r.Phase != release.Promoted || r.Unjudged == "" {
		t.Fatalf("ended %s, unjudged %q", r.Describe(), r.Unjudged)
	}
	for _, g := range r.Gates {
		if g.Kind == release.GateInconclusive {
			t.Errorf("waited at an inconclusive gate %+v with nobody to decide", g)
		}
	}
}

// The policies, each as the manifest says: an explicit rollback still rolls back; promote
// promotes, also recorded as unjudged; a record from before auto existed (no policy) rolls back,
// as it was planned to.
func TestInconclusivePolicies(t *testing.T) {
	for _, tc := range []struct {
		policy   string
		approval *release.Approval
		want     string
	}{
		{release.OnInconclusiveAuto, nil, release.OnInconclusivePromote},
		{release.OnInconclusiveAuto, &release.Approval{AtStep: 1}, release.OnInconclusiveGate},
		{release.OnInconclusiveAuto, &release.Approval{AtStep: 1, PreApprove: true}, release.OnInconclusivePromote},
		{release.OnInconclusiveRollback, nil, release.OnInconclusiveRollback},
		{release.OnInconclusiveGate, nil, release.OnInconclusiveGate},
		{release.OnInconclusivePromote, &release.Approval{}, release.OnInconclusivePromote},
		{"", nil, release.OnInconclusiveRollback},
	} {
		r := release.Release{Checks: &release.Checks{OnInconclusive: tc.policy}, Approval: tc.approval}
		if got := r.InconclusivePolicy(); got != tc.want {
			t.Errorf("%q with approval %+v: %s, want %s", tc.policy, tc.approval, got, tc.want)
		}
	}
	fx := setupChecked(t, release.Checks{MaxBake: 2 * time.Minute, OnInconclusive: release.OnInconclusivePromote}, release.Step{Weight: 0.1, Bake: time.Minute})
	e := fx.engine(nil)
	e.Health = &scriptedHealth{judge: inconclusive}
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted || !strings.Contains(r.Unjudged, "on_inconclusive: promote says") {
		t.Fatalf("ended %s, unjudged %q", r.Describe(), r.Unjudged)
	}
}
