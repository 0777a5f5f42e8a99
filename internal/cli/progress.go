package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// view shows a release as it moves. On a terminal it keeps a live block (step, weight, functions
// done, per-function state, bake time left) under the log of what happened; elsewhere it writes
// plain lines, fit for CI logs.
type view struct {
	w     io.Writer
	tty   bool
	color bool // colour phases (a terminal, and neither NO_COLOR nor --no-color)

	mu       sync.Mutex
	r        release.Release
	bakeLeft time.Duration
	health   string
	verdict  *release.Verdict
	awaiting string
	drawn    int
	lastDraw time.Time
	lastBake time.Time
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newView(w io.Writer, color bool) *view {
	return &view{w: w, tty: isTerminal(w) && os.Getenv("TERM") != "dumb", color: color}
}

// paint colours s with an SGR code (32 green, 31 red, 33 yellow) when color allows it and w is a
// terminal; as it is otherwise (NO_COLOR, --no-color, a pipe, TERM=dumb).
func paint(color bool, w io.Writer, code, s string) string {
	if code == "" || !color || !isTerminal(w) || os.Getenv("TERM") == "dumb" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// phaseColor is the colour of a phase: green promoted, red rolled back or failed, yellow at a
// gate; "" for the others.
func phaseColor(p release.Phase) string {
	switch p {
	case release.Promoted:
		return "32"
	case release.RolledBack, release.RollingBack, release.Failed:
		return "31"
	case release.AwaitingApproval:
		return "33"
	}
	return ""
}

// logf writes a line to the log, above the live block.
func (v *view) logf(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
	fmt.Fprintf(v.w, format+"\n", args...)
	v.draw(true)
}

func (v *view) observe(p release.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.r = p.Release
	switch p.Kind {
	case release.ProgressPhase:
		v.bakeLeft, v.health, v.verdict = 0, "", nil
		v.clear()
		phase := string(p.Release.Phase)
		if v.tty {
			phase = paint(v.color, v.w, phaseColor(p.Release.Phase), phase)
		}
		fmt.Fprintf(v.w, "%s  %s: %s\n", time.Now().Format("15:04:05"), phase, safe(p.Message))
		v.draw(true)
	case release.ProgressFunction:
		if !v.tty {
			fmt.Fprintf(v.w, "%s    %s: %s\n", time.Now().Format("15:04:05"), safe(p.Function), safe(p.Message))
			return
		}
		v.draw(false)
	case release.ProgressBake:
		v.bakeLeft, v.health, v.verdict = p.BakeLeft, p.Message, p.Verdict
		if !v.tty {
			if time.Since(v.lastBake) >= 15*time.Second {
				v.lastBake = time.Now()
				fmt.Fprintf(v.w, "%s    baking step %d: %s left; %s\n", time.Now().Format("15:04:05"), p.Release.Step+1, p.BakeLeft.Round(time.Second), safe(p.Message))
			}
			return
		}
		v.draw(false)
	case release.ProgressHealth:
		v.clear()
		if p.Verdict != nil {
			fmt.Fprintf(v.w, "%s    health: ", time.Now().Format("15:04:05"))
			printVerdict(v.w, "", p.Verdict)
		} else {
			fmt.Fprintf(v.w, "%s    health: %s\n", time.Now().Format("15:04:05"), safe(p.Message))
		}
		v.draw(true)
	case release.ProgressAwaiting:
		if p.Message != v.awaiting {
			v.awaiting = p.Message
			v.clear()
			fmt.Fprintf(v.w, "%s  waiting for a decision: %s\n          `aviary approve %s` goes on, `aviary rollback %s` ends it\n", time.Now().Format("15:04:05"), safe(p.Message), safe(p.Release.ID), safe(p.Release.ID))
			v.draw(true)
		}
	}
}

// clear erases the live block (terminal only).
func (v *view) clear() {
	if v.tty && v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA\x1b[J", v.drawn)
		v.drawn = 0
	}
}

// draw redraws the live block, at most ten times a second unless forced.
func (v *view) draw(force bool) {
	if !v.tty || v.r.ID == "" || v.r.Phase.Final() {
		return
	}
	if !force && time.Since(v.lastDraw) < 100*time.Millisecond {
		return
	}
	v.clear()
	v.lastDraw = time.Now()
	lines := liveLines(&v.r, v.bakeLeft, v.verdict)
	for _, l := range lines {
		fmt.Fprintln(v.w, l)
	}
	v.drawn = len(lines)
}

func (v *view) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
}

const maxLiveFunctions = 12

func liveLines(r *release.Release, bakeLeft time.Duration, verdict *release.Verdict) []string {
	done, state := 0, ""
	switch r.Phase {
	case release.Publishing:
		state = "publishing"
		for _, f := range r.Functions {
			if f.New != "" {
				done++
			}
		}
	case release.Shifting:
		w := r.Steps[r.Step].Weight
		state = fmt.Sprintf("step %d/%d · %s on the new versions", r.Step+1, len(r.Steps), manifest.Percent(w))
		for _, f := range r.Functions {
			if f.Weight == w || f.Previous == "" && f.Weight == 1 {
				done++
			}
		}
	case release.Promoting:
		state = "promoting"
		for _, f := range r.Functions {
			if f.Promoted {
				done++
			}
		}
	case release.RollingBack:
		state = "rolling back"
		for _, f := range r.Functions {
			if f.RolledBack || !f.Promoted && f.Weight == 0 {
				done++
			}
		}
	default:
		state = string(r.Phase)
	}
	head := fmt.Sprintf("  %s · %d/%d functions", state, done, len(r.Functions))
	if r.Phase == release.Shifting && !r.StepStarted.IsZero() {
		head += fmt.Sprintf(" · bake %s left", bakeLeft.Round(time.Second))
	}
	lines := []string{head}
	fns := append([]release.Function(nil), r.Functions...)
	sort.Slice(fns, func(i, j int) bool { return fns[i].Name < fns[j].Name })
	for i, f := range fns {
		if i == maxLiveFunctions {
			lines = append(lines, fmt.Sprintf("    … and %d more", len(fns)-maxLiveFunctions))
			break
		}
		line := "    " + functionLine(f)
		if verdict != nil && r.Phase == release.Shifting {
			if n, ok := verdict.Functions[f.FunctionName]; ok {
				line += fmt.Sprintf(" · canary %.0f/%.0f err, baseline %.0f/%.0f, evidence %s of %s",
					n["canaryErrors"], n["canaryInvocations"], n["baselineErrors"], n["baselineInvocations"], likelihood(n["logEvidence"]), likelihood(n["threshold"]))
			}
		}
		lines = append(lines, line)
	}
	if verdict != nil && r.Phase == release.Shifting {
		lines = append(lines, "    health: "+safe(verdict.Reason))
	}
	return lines
}

// functionLine is one function's state: its versions and where its alias sends traffic.
func functionLine(f release.Function) string {
	prev := f.Previous
	if prev == "" {
		prev = "(none)"
	}
	newV := f.New
	if newV == "" {
		newV = "…"
	}
	var where string
	switch {
	case f.RolledBack:
		where = "rolled back"
	case f.Promoted:
		where = "100% on new"
	case f.Weight > 0:
		where = manifest.Percent(f.Weight) + " on new"
	default:
		where = "untouched"
	}
	return fmt.Sprintf("%-16s %-36s %6s → %-6s %s", safe(f.Name), safe(f.FunctionName), safe(prev), safe(newV), where)
}

// functionTable lists a release's functions.
func functionTable(w io.Writer, fns []release.Function) {
	fmt.Fprintf(w, "    %-16s %-36s %6s   %-6s %s\n", "FUNCTION", "LAMBDA", "PREV", "NEW", "ALIAS")
	for _, f := range fns {
		fmt.Fprintln(w, "    "+functionLine(f))
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func describeSteps(steps []release.Step) string {
	if len(steps) == 0 {
		return "all at once"
	}
	var parts []string
	for _, s := range steps {
		parts = append(parts, fmt.Sprintf("%s for %s", manifest.Percent(s.Weight), s.Bake))
	}
	return strings.Join(append(parts, "then 100%"), ", ")
}
