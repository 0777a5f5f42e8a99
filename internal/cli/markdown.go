package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// reportFlags choose the output of the commands that also write Markdown (plan and status): a
// report for people on a web page, such as GitHub's step summary
// (`aviary plan -e production -o markdown >> "$GITHUB_STEP_SUMMARY"`). Other commands keep
// outputFlags, whose enum has no markdown: their result is a progress narrative, not a report.
type reportFlags struct {
	Output string `short:"o" enum:"text,json,markdown" default:"text" help:"text; json for machines (a document whose \"schema\" is \"aviary/v1\"); or markdown, for a pull request or GitHub's $GITHUB_STEP_SUMMARY (the narrative goes to stderr)."`
}

func (r reportFlags) json() bool     { return r.Output == "json" }
func (r reportFlags) markdown() bool { return r.Output == "markdown" }

// log is where the command's narrative goes: as for outputFlags, and to stderr with markdown too,
// so that stdout is the report alone.
func (r reportFlags) log(e *env) io.Writer {
	if r.markdown() && !e.quiet {
		return e.stderr
	}
	return logWriter(e, outputFlags{Output: r.Output})
}

// md makes text from outside (names, reasons, messages) safe in Markdown: terminal controls
// removed as everywhere (safe), then what Markdown or the HTML it allows would act on escaped,
// and line breaks folded, so that a value stays text in its table cell.
func md(s string) string {
	s = safe(s)
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '\\', '`', '*', '_', '{', '}', '[', ']', '<', '>', '(', ')', '#', '+', '!', '|', '~', '&':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '\n', '\r':
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// code is a value shown as code: in backticks, which nothing inside can close.
func code(s string) string {
	s = strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(safe(s))
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// markdownPlan is printPlan for a web page.
func markdownPlan(w io.Writer, p *prepared) {
	changed := 0
	for _, r := range p.rows {
		if r.Change && r.Problem == "" {
			changed++
		}
	}
	fmt.Fprintf(w, "### Aviary plan: %s → %s\n\n", md(p.m.Service), md(p.env.Name))
	fmt.Fprintf(w, "Alias %s, %s.\n\n", code(p.m.Alias), md(p.env.Strategy.Describe()))
	fmt.Fprintln(w, "| Function | Lambda | Alias version | Current code | New code | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range p.rows {
		aliasV, cur := code(r.Current.AliasVersion), code(short(r.Current.AliasCodeSha256))
		if !r.Current.AliasExists {
			aliasV, cur = "(none)", "-"
		}
		what := "unchanged"
		switch {
		case r.Problem != "":
			what = "**problem**: " + md(r.Problem)
		case r.Change:
			what = "**changes**"
		}
		if r.ImageUri != "" {
			what += "<br>image " + code(r.ImageUri)
		}
		for _, c := range r.ConfigChanges {
			what += "<br>" + md(c.String())
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", md(r.Name), code(r.FunctionName), aliasV, cur, code(short(r.CodeSha256)), what)
	}
	verb := "change"
	if changed == 1 {
		verb = "changes"
	}
	fmt.Fprintf(w, "\n**%s %s**, %d unchanged.\n\n", plural(changed, "function", "functions"), verb, len(p.rows)-changed)
	fmt.Fprintf(w, "- Checks: %s\n", md(describeChecks(p.checks)))
	fmt.Fprintf(w, "- Gate: %s\n", md(describeGate(p.env)))
	markdownTraffic(w, p, trafficOf(p))
}

// markdownTraffic is printTraffic for a web page: whether each step's bake can judge at the
// traffic the alias served lately.
func markdownTraffic(w io.Writer, p *prepared, ts []planTrafficOutput) {
	if p.checks == nil || len(ts) == 0 {
		return
	}
	fmt.Fprintf(w, "\n| Function | Window | Requests/s | Step | Can the bake see a %g× rise in errors? |\n|---|---|---|---|---|\n", p.checks.Detect)
	for _, t := range ts {
		for _, s := range t.Steps {
			need := "no bake would do at this traffic"
			if s.NeededInvocations != nil {
				need = fmt.Sprintf("%d canary invocations needed, a %s bake", *s.NeededInvocations, s.NeededBake)
			}
			verdict := "yes"
			switch s.Outcome {
			case "extended":
				verdict = "yes, once extended"
			case "judged":
			default:
				verdict = "**no**: " + md("inconclusive, then "+strings.ReplaceAll(s.Then, "promote-unjudged", "promote as UNJUDGED"))
			}
			fmt.Fprintf(w, "| %s | %s | %.2f | %d (%s for %s) | %s (%s) |\n", md(t.Function), md(windowName(t.Window)), t.Rate, s.Step,
				md(manifest.Percent(s.Weight)), md(s.Bake), verdict, md(need))
		}
	}
}

// markdownStatus is printStatus for a web page: where the release is, its functions and the
// latest maxEvents entries of its audit trail (0: all).
func markdownStatus(w io.Writer, r *release.Release, evs []release.Event, maxEvents int) {
	fmt.Fprintf(w, "### Aviary release %s: %s\n\n", code(r.ID), md(string(r.Phase)))
	if d := r.Describe(); d != string(r.Phase) && r.Reason == "" {
		fmt.Fprintf(w, "%s.\n\n", md(d))
	}
	fmt.Fprintf(w, "%s → %s, alias %s, region %s; %s (%s).\n\n", md(r.Service), md(r.Environment), code(r.Alias), md(orNone(r.Region)), md(r.Strategy), md(describeSteps(r.Steps)))
	fmt.Fprintf(w, "Started %s by %s", r.CreatedAt.UTC().Format(time.DateTime+" MST"), md(r.CreatedBy))
	if !r.EndedAt.IsZero() {
		fmt.Fprintf(w, ", ended %s (%s)", r.EndedAt.UTC().Format(time.DateTime+" MST"), r.EndedAt.Sub(r.CreatedAt).Round(time.Second))
	}
	fmt.Fprint(w, ".\n\n")
	if r.Reason != "" {
		fmt.Fprintf(w, "Reason: %s\n\n", md(r.Reason))
	}
	fmt.Fprintln(w, "| Function | Lambda | Previous | New | Alias |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, f := range r.Functions {
		where := "untouched"
		switch {
		case f.RolledBack:
			where = "rolled back"
		case f.Promoted:
			where = "100% on new"
		case f.Weight > 0:
			where = md(manifest.Percent(f.Weight) + " on new")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", md(f.Name), code(f.FunctionName), code(orNone(f.Previous)), code(f.New), where)
	}
	shown := evs
	if maxEvents > 0 && len(evs) > maxEvents {
		shown = evs[len(evs)-maxEvents:]
	}
	if len(shown) == 0 {
		return
	}
	fmt.Fprintf(w, "\n<details><summary>Audit trail (%d of %d entries)</summary>\n\n", len(shown), len(evs))
	for _, ev := range shown {
		fmt.Fprintf(w, "- %d %s %s: %s\n", ev.Seq, ev.Time.UTC().Format("15:04:05.000"), md(ev.Actor), md(ev.Message))
	}
	fmt.Fprint(w, "\n</details>\n")
}
