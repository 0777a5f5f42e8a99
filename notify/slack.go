package notify

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aviary-deploy/aviary/release"
)

// Block Kit's limits (https://api.slack.com/reference/block-kit/blocks), counted here in bytes,
// which is never fewer than Slack's characters.
const (
	headerLimit  = 150
	sectionLimit = 3000
	fieldLimit   = 2000
	maxFields    = 10
	buttonLimit  = 75
	contextLimit = 3000
)

// SlackMessage is the notice as a Slack incoming webhook's payload: {"text": a fallback for
// notifications, "blocks": [...]}. The blocks are a header with the headline, the message, for a
// notice of waiting the approve and roll back buttons (links to the confirmation pages: opening
// one decides nothing), for a rollback or failure the reason and the health numbers that decided
// it, the functions with their versions and weights, and a link to the release's page.
func SlackMessage(n Notice) map[string]any {
	r := n.Release
	headline := n.Headline()
	msg := n.message()
	blocks := []any{
		map[string]any{"type": "header", "text": plainText(clip(headline, headerLimit))},
		section(msg),
	}
	switch n.Kind {
	case Awaiting:
		if s := waitingText(r, msg); s != "" {
			blocks = append(blocks, map[string]any{"type": "section", "text": mrkdwnText(clipMrkdwn(s, sectionLimit))})
		}
	case RolledBack, Failed:
		if r.Reason != "" && r.Reason != msg {
			blocks = append(blocks, map[string]any{"type": "section", "text": mrkdwnText(clipMrkdwn("*Reason:* "+escape(r.Reason), sectionLimit))})
		}
		if st, ok := decisive(r.Health); ok {
			if s := healthText(r, st); s != "" {
				blocks = append(blocks, map[string]any{"type": "section", "text": mrkdwnText(clipMrkdwn(s, sectionLimit))})
			}
		}
	}
	if f := functionFields(r.Functions); len(f) > 0 {
		blocks = append(blocks, map[string]any{"type": "section", "fields": f})
	}
	if n.Kind == Awaiting {
		var buttons []any
		if n.ApproveURL != "" {
			buttons = append(buttons, button("approve", "Approve", "primary", n.ApproveURL))
		}
		if n.RollbackURL != "" {
			buttons = append(buttons, button("rollback", "Roll back", "danger", n.RollbackURL))
		}
		if len(buttons) > 0 {
			blocks = append(blocks, map[string]any{"type": "actions", "elements": buttons})
		}
	}
	var context []any
	if d := decisionText(r, n.Kind); d != "" {
		context = append(context, mrkdwnText(clipMrkdwn(d, contextLimit)))
	}
	if n.ReleaseURL != "" {
		context = append(context, mrkdwnText(fmt.Sprintf("<%s|Open release %s in the dashboard>", linkURL(n.ReleaseURL), escape(clip(r.ID, 200)))))
	}
	if len(context) > 0 {
		blocks = append(blocks, map[string]any{"type": "context", "elements": context})
	}
	return map[string]any{
		"text":   clipMrkdwn(escape(headline)+": "+escape(msg), sectionLimit),
		"blocks": blocks,
	}
}

// section is a section block showing s, escaped, as mrkdwn.
func section(s string) map[string]any {
	return map[string]any{"type": "section", "text": mrkdwnText(clipMrkdwn(escape(s), sectionLimit))}
}

func plainText(s string) map[string]any { return map[string]any{"type": "plain_text", "text": s} }

func mrkdwnText(s string) map[string]any { return map[string]any{"type": "mrkdwn", "text": s} }

func button(id, label, style, url string) map[string]any {
	return map[string]any{
		"type": "button", "action_id": id, "text": plainText(clip(label, buttonLimit)), "style": style, "url": url,
	}
}

// waitingText says why a person must decide and what happens if nobody does.
func waitingText(r release.Release, msg string) string {
	var parts []string
	g := r.LastGate()
	why := r.Awaiting
	if why == "" && g != nil {
		why = g.Why
	}
	if why != "" && why != msg {
		// Cut short enough that the deadline's date link after it is never cut.
		parts = append(parts, "*Why a person must decide:* "+clipMrkdwn(escape(why), sectionLimit-300))
	}
	if g != nil && !g.Deadline.IsZero() {
		// As the engine decides at the deadline: approve only when on_timeout says so.
		then := "be rolled back"
		if r.Approval != nil && r.Approval.OnTimeout == string(release.Approve) {
			then = "be promoted"
		}
		parts = append(parts, fmt.Sprintf("If nobody decides by %s, the release will %s.", slackDate(g.Deadline), then))
	}
	return strings.Join(parts, "\n")
}

// healthText says which judgement turned the release back, and its numbers: "Step 2: the errors
// check on orders failed: canary 8 errors in 20 invocations (40%) against the baseline's 1 in
// 100 (1%)."
func healthText(r release.Release, st stage) string {
	v := st.verdict
	subject := "the checks"
	switch {
	case v.Check != "" && v.Function != "":
		subject = fmt.Sprintf("the %s check on %s", v.Check, functionName(r, v.Function))
	case v.Check != "":
		subject = fmt.Sprintf("the %s check", v.Check)
	case v.Function != "":
		subject = functionName(r, v.Function)
	}
	verb := "passed"
	switch v.Result {
	case release.Fail:
		verb = "failed"
	case release.Inconclusive:
		verb = "was inconclusive"
		if subject == "the checks" {
			verb = "were inconclusive"
		}
	}
	head := fmt.Sprintf("%s%s: %s %s", strings.ToUpper(st.name[:1]), st.name[1:], subject, verb)
	head = "*" + escape(head) + ":*"
	if nums := numbersLine(v); nums != "" {
		return head + " " + escape(nums) + "."
	}
	if v.Reason != "" && !strings.Contains(r.Reason, v.Reason) {
		return head + " " + escape(v.Reason)
	}
	return ""
}

// decisionText says who closed the release's gate, once the release moved on from it.
func decisionText(r release.Release, k Kind) string {
	g := r.LastGate()
	if g == nil || g.Decision == nil || (k != Promoted && k != RolledBack && k != Failed) {
		return ""
	}
	d := g.Decision
	verb := "Approved"
	if d.Action == release.DecideRollback {
		verb = "Rollback decided"
	}
	s := verb + " by " + escape(d.By)
	if d.Via != "" {
		s += " via " + escape(d.Via)
	}
	if !d.At.IsZero() {
		s += " on " + slackDate(d.At)
	}
	if d.Reason != "" {
		s += ": " + clipMrkdwn(escape(d.Reason), contextLimit-500)
	}
	return s
}

// functionFields are the functions as a section's fields, "name: previous → new, weight", the
// tenth and later summed up as "and N more" when there are more than ten.
func functionFields(fns []release.Function) []any {
	var out []any
	for i, fn := range fns {
		if i == maxFields-1 && len(fns) > maxFields {
			out = append(out, mrkdwnText(fmt.Sprintf("_and %d more_", len(fns)-i)))
			break
		}
		out = append(out, mrkdwnText(clipMrkdwn(functionText(fn), fieldLimit)))
	}
	return out
}

func functionText(fn release.Function) string {
	prev, next := fn.Previous, fn.New
	if prev == "" {
		prev = "none"
	}
	if next == "" {
		next = "not published yet"
	}
	s := fmt.Sprintf("*%s*: %s → %s", escape(fn.Name), escape(prev), escape(next))
	switch {
	case fn.RolledBack && fn.Previous != "":
		s += ", back on " + escape(fn.Previous)
	case fn.RolledBack:
		s += ", removed"
	case fn.Promoted:
		s += ", all traffic on " + escape(fn.New)
	case fn.New != "":
		s += ", " + percent(fn.Weight) + " on " + escape(fn.New)
	}
	return s
}

// slackDate shows a time in the reader's own time zone, UTC where Slack cannot.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} at {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// escape makes text safe as Slack mrkdwn: &, < and > are control characters there.
func escape(s string) string {
	return mrkdwnEscaper.Replace(s)
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// linkURL makes a URL safe inside a mrkdwn link <url|text>: & is escaped as anywhere, and the
// characters that would end the link are percent-encoded (a valid URL has none of them).
func linkURL(u string) string {
	return linkEscaper.Replace(u)
}

var linkEscaper = strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C")

// clip cuts s to at most limit bytes, on a character boundary, ending it with "…".
func clip(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// clipMrkdwn cuts escaped mrkdwn like clip, without cutting an entity (&amp;) in two.
func clipMrkdwn(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	c := strings.TrimSuffix(clip(s, limit), "…")
	if i := strings.LastIndexByte(c, '&'); i >= 0 && !strings.Contains(c[i:], ";") {
		c = c[:i]
	}
	return c + "…"
}
