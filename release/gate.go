package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ErrNotWaiting: a decision came for a release that has not reached a gate.
var ErrNotWaiting = errors.New("is not waiting for a decision")

// TooLateError says a decision came after the gate was closed: by an earlier decision, or by the
// release ending. It was recorded in the audit trail and not applied.
type TooLateError struct {
	Release *Release
	// First is the decision that closed the gate; nil when the release ended otherwise.
	First *Decision
}

func (e *TooLateError) Error() string {
	if e.First != nil {
		return fmt.Sprintf("too late: release %s was already decided (%s by %s via %s at %s); this decision was recorded, not applied",
			e.Release.ID, e.First.Action, e.First.By, e.First.Via, e.First.At.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("too late: release %s is %s; this decision was recorded, not applied", e.Release.ID, e.Release.Describe())
}

// Decide closes the release's open gate with d, if nobody decided first: the decision is written
// with its audit entry in one update conditional on the revision it read, so of two decisions
// racing exactly one is applied. A decision that comes after the gate closed is appended to the
// audit trail marked too late and returned as a *TooLateError; one for a release that has not
// reached a gate changes nothing and returns ErrNotWaiting. Every decider (the CLI, the
// dashboard, signed links, pre-approval and the gate's timeout) goes through here.
func Decide(ctx context.Context, st Store, id string, d Decision) (*Release, error) {
	if d.Action != Approve && d.Action != DecideRollback {
		return nil, fmt.Errorf("unknown decision %q (approve or rollback)", d.Action)
	}
	if d.At.IsZero() {
		d.At = time.Now()
	}
	for {
		r, err := st.GetRelease(ctx, id)
		if err != nil {
			return nil, err
		}
		g := r.OpenGate()
		if g != nil && d.Gate != 0 && d.Gate != len(r.Gates) {
			// Meant for another gate: one that closed before this one opened.
			tl := &TooLateError{Release: r}
			if d.Gate >= 1 && d.Gate <= len(r.Gates) {
				tl.First = r.Gates[d.Gate-1].Decision
			}
			ev := decisionEvent(r, d, true)
			ev.Key = r.ID + "/late/" + nonce()
			if err := st.AppendEvent(ctx, &ev); err != nil {
				return r, fmt.Errorf("record the late decision: %w", err)
			}
			return r, tl
		}
		if g == nil {
			last := r.LastGate()
			if last == nil && !r.Phase.Final() {
				return r, fmt.Errorf("release %s %w: it is %s", r.ID, ErrNotWaiting, r.Describe())
			}
			tl := &TooLateError{Release: r}
			if last != nil {
				tl.First = last.Decision
			}
			ev := decisionEvent(r, d, true)
			ev.Key = r.ID + "/late/" + nonce()
			if err := st.AppendEvent(ctx, &ev); err != nil {
				return r, fmt.Errorf("record the late decision: %w", err)
			}
			return r, tl
		}
		// The last writer's entries go to the trail before its outbox is replaced.
		for i := range r.Outbox {
			ev := r.Outbox[i]
			if err := st.AppendEvent(ctx, &ev); err != nil {
				return r, fmt.Errorf("audit trail of %s: %w", r.ID, err)
			}
		}
		dd := d
		g.Decision = &dd
		ev := decisionEvent(r, d, false)
		ev.Key = fmt.Sprintf("%s/%d/0", r.ID, r.Revision)
		ev.Time = d.At
		r.Outbox = []Event{ev}
		r.UpdatedAt = time.Now()
		if err := st.UpdateRelease(ctx, r); err != nil {
			if errors.Is(err, ErrConflict) {
				continue // someone wrote first: read again and see whether the gate is still open
			}
			return nil, err
		}
		if err := st.AppendEvent(ctx, &r.Outbox[0]); err != nil {
			// The entry is in the release's outbox: whoever next loads it appends it.
			return r, nil
		}
		return r, nil
	}
}

func decisionEvent(r *Release, d Decision, late bool) Event {
	what := "approved"
	if d.Action == DecideRollback {
		what = "rollback decided"
	}
	msg := fmt.Sprintf("gate: %s by %s via %s", what, d.By, d.Via)
	if d.Reason != "" {
		msg += ": " + d.Reason
	}
	if late {
		msg = fmt.Sprintf("gate: too late, not applied: %s by %s via %s", d.Action, d.By, d.Via)
		if d.Gate >= 1 && d.Gate <= len(r.Gates) && r.Gates[d.Gate-1].Decision != nil && d.Gate != len(r.Gates) {
			first := r.Gates[d.Gate-1].Decision
			msg += fmt.Sprintf(" (gate %d was already decided: %s by %s)", d.Gate, first.Action, first.By)
		} else if last := r.LastGate(); last != nil && last.Decision != nil {
			msg += fmt.Sprintf(" (already decided: %s by %s)", last.Decision.Action, last.Decision.By)
		} else {
			msg += fmt.Sprintf(" (the release is %s)", r.Phase)
		}
	}
	data := map[string]any{"action": string(d.Action), "by": d.By, "via": d.Via, "tooLate": late}
	if d.Gate != 0 {
		data["gate"] = d.Gate
	}
	if d.Source != "" {
		data["source"] = d.Source
	}
	if d.UserAgent != "" {
		data["userAgent"] = d.UserAgent
	}
	if d.Reason != "" {
		data["reason"] = d.Reason
	}
	return Event{ReleaseID: r.ID, Time: d.At, Actor: d.By, Source: sourceOf(d), Kind: EventDecision, Phase: r.Phase, Message: msg, Data: data}
}

func sourceOf(d Decision) string {
	s := d.Via
	if d.Source != "" {
		s += " from " + d.Source
	}
	return s
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Change applies a request (or, for an ended release, its reopening) to a release: mutate sees
// the stored release and returns the audit entry of its change (nil: nothing to change). The
// change and its entry are written in one update conditional on the revision read, retried on
// conflict; entries the last writer did not get to append are appended first.
func Change(ctx context.Context, st Store, id, actor, source string, mutate func(r *Release) (*Event, error)) (*Release, error) {
	return change(ctx, st, id, actor, source, time.Now, mutate)
}

func change(ctx context.Context, st Store, id, actor, source string, clock func() time.Time, mutate func(r *Release) (*Event, error)) (*Release, error) {
	for {
		r, err := st.GetRelease(ctx, id)
		if err != nil {
			return nil, err
		}
		for i := range r.Outbox {
			ev := r.Outbox[i]
			if err := st.AppendEvent(ctx, &ev); err != nil {
				return nil, err
			}
		}
		ev, err := mutate(r)
		if err != nil || ev == nil {
			return r, err
		}
		now := clock()
		r.UpdatedAt = now
		ev.ReleaseID, ev.Key, ev.Time = r.ID, fmt.Sprintf("%s/%d/request", r.ID, r.Revision), now
		ev.Actor, ev.Source = actor, source
		r.Outbox = []Event{*ev}
		err = st.UpdateRelease(ctx, r)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := st.AppendEvent(ctx, ev); err != nil {
			return nil, err
		}
		return r, nil
	}
}
