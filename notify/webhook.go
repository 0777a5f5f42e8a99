package notify

import "time"

// WebhookMessage is the notice as generic JSON, for any receiver that takes a POST:
//
//	{"kind", "service", "environment", "release", "alias", "phase", "step", "steps", "headline",
//	 "message", "reason",
//	 "functions": [{"name", "functionName", "previous", "new", "weight", "promoted", "rolledBack"}],
//	 "approveUrl", "rollbackUrl", "releaseUrl", "health", "time"}
//
// Every key is always there (empty when it does not apply) so that receivers see one shape.
// "step" is the step the release reached, 1-based as in the audit trail (0: none yet), of
// "steps". "health" is the judgement that turned the release back if one did, else the latest
// one, else null: {"stage", "result", "check", "function", "reason", "numbers", "at"}. A notice
// of waiting has "awaiting" (why) and "deadline"; a release whose gate was decided has
// "decision" {"action", "by", "via", "at", "reason"}.
func WebhookMessage(n Notice) map[string]any {
	r := n.Release
	fns := make([]any, 0, len(r.Functions))
	for _, fn := range r.Functions {
		fns = append(fns, map[string]any{
			"name": fn.Name, "functionName": fn.FunctionName, "previous": fn.Previous, "new": fn.New,
			"weight": fn.Weight, "promoted": fn.Promoted, "rolledBack": fn.RolledBack,
		})
	}
	m := map[string]any{
		"kind":        string(n.Kind),
		"service":     r.Service,
		"environment": r.Environment,
		"release":     r.ID,
		"alias":       r.Alias,
		"phase":       string(r.Phase),
		"step":        stepNumber(r),
		"steps":       len(r.Steps),
		"headline":    n.Headline(),
		"message":     n.message(),
		"reason":      r.Reason,
		"functions":   fns,
		"approveUrl":  n.ApproveURL,
		"rollbackUrl": n.RollbackURL,
		"releaseUrl":  n.ReleaseURL,
		"health":      nil,
		"time":        nil,
	}
	if st, ok := latest(r.Health); ok {
		v := st.verdict
		h := map[string]any{
			"stage": st.name, "result": v.Result.String(), "check": v.Check, "function": v.Function,
			"reason": v.Reason, "numbers": v.Numbers(),
		}
		if !v.At.IsZero() {
			h["at"] = v.At.UTC().Format(time.RFC3339)
		}
		m["health"] = h
	}
	if !n.Time.IsZero() {
		m["time"] = n.Time.UTC().Format(time.RFC3339Nano)
	}
	g := r.LastGate()
	if n.Kind == Awaiting {
		why := r.Awaiting
		if why == "" && g != nil {
			why = g.Why
		}
		m["awaiting"] = why
		if g != nil && !g.Deadline.IsZero() {
			m["deadline"] = g.Deadline.UTC().Format(time.RFC3339)
		}
	}
	if g != nil && g.Decision != nil {
		d := g.Decision
		m["decision"] = map[string]any{
			"action": string(d.Action), "by": d.By, "via": d.Via, "at": d.At.UTC().Format(time.RFC3339), "reason": d.Reason,
		}
	}
	return m
}
