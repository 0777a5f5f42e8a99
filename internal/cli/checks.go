package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/analysis"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// releaseChecks turns an environment's checks into a release's (nil: bake only).
func releaseChecks(c *manifest.Checks) *release.Checks {
	if c == nil {
		return nil
	}
	out := &release.Checks{
		Alpha: c.Alpha, Detect: c.Detect, MinRate: c.MinRate, Latency: c.Latency, LatencyDetect: c.LatencyDetect,
		MaxErrorRate: c.MaxErrorRate, MaxThrottleRate: c.MaxThrottleRate,
		MetricsPeriod: c.MetricsPeriod, MetricsDelay: c.MetricsDelay, Metrics: c.Metrics, Logs: c.Logs,
		Alarms: c.Alarms, BlockPreexisting: c.BlockPreexisting,
		PreTraffic: c.PreTraffic, PostTraffic: c.PostTraffic, HookTimeout: c.HookTimeout,
		MaxBake: c.MaxBake, OnInconclusive: c.OnInconclusive,
	}
	for _, s := range c.Smoke {
		out.Smoke = append(out.Smoke, release.Smoke{Function: s.Function, Payload: s.Payload, Expect: s.Expect})
	}
	return out
}

// describeChecks says in a line how a release will be judged.
func describeChecks(c *release.Checks) string {
	if c == nil {
		return "none (a step passes when its bake ends; add checks: to the environment)"
	}
	var parts []string
	var src []string
	if c.Logs {
		src = append(src, "log streams")
	}
	if c.Metrics {
		src = append(src, fmt.Sprintf("%s metrics", c.MetricsPeriod))
	}
	parts = append(parts, fmt.Sprintf("errors split test (α %s, sees a %g× regression) from %s", manifest.Percent(c.Alpha), c.Detect, strings.Join(src, " and ")))
	if c.Latency != "" {
		parts = append(parts, "latency against the baseline's "+c.Latency)
	}
	if len(c.Alarms) > 0 {
		parts = append(parts, plural(len(c.Alarms), "alarm", "alarms"))
	}
	if len(c.Smoke) > 0 {
		parts = append(parts, plural(len(c.Smoke), "smoke payload", "smoke payloads"))
	}
	if c.PreTraffic != "" {
		parts = append(parts, "pre-traffic hook "+c.PreTraffic)
	}
	if c.PostTraffic != "" {
		parts = append(parts, "post-traffic hook "+c.PostTraffic)
	}
	then := c.OnInconclusive
	switch then {
	case release.OnInconclusiveAuto:
		then = "wait for a person where the environment has an approval gate, else promote recorded as UNJUDGED (on_inconclusive: auto)"
	case release.OnInconclusivePromote:
		then = "promote, recorded as UNJUDGED"
	}
	parts = append(parts, fmt.Sprintf("inconclusive steps bake up to %s, then %s", c.MaxBake, then))
	return safe(strings.Join(parts, "; "))
}

// verdictLine is a verdict in a line.
func verdictLine(v *release.Verdict) string {
	return fmt.Sprintf("%s: %s", strings.ToUpper(v.Result.String()), safe(v.Reason))
}

// printVerdict writes a verdict with every function's numbers.
func printVerdict(w io.Writer, indent string, v *release.Verdict) {
	fmt.Fprintf(w, "%s%s\n", indent, verdictLine(v))
	if len(v.Functions) > 0 {
		names := make([]string, 0, len(v.Functions))
		for n := range v.Functions {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(w, "%s  %-32s %15s %15s %17s %9s\n", indent, "FUNCTION", "CANARY err/inv", "BASELINE err/inv", "EVIDENCE/NEEDED", "ρ ≤")
		for _, n := range names {
			fmt.Fprintf(w, "%s  %s\n", indent, numbersLine(n, v.Functions[n]))
		}
	}
	for _, note := range v.Notes {
		fmt.Fprintf(w, "%s  note: %s\n", indent, safe(note))
	}
}

// numbersLine is one function's numbers: errors and invocations of canary and baseline, the
// evidence against the threshold (as likelihood ratios), and the upper bound on the ratio of
// error rates.
func numbersLine(name string, n map[string]float64) string {
	rho := "-"
	if up, ok := n["rhoUpper"]; ok {
		rho = fmt.Sprintf("%.1f×", up)
	}
	return fmt.Sprintf("%-32s %15s %15s %17s %9s", safe(name),
		fmt.Sprintf("%.0f/%.0f", n["canaryErrors"], n["canaryInvocations"]),
		fmt.Sprintf("%.0f/%.0f", n["baselineErrors"], n["baselineInvocations"]),
		fmt.Sprintf("%s/%s", likelihood(n["logEvidence"]), likelihood(n["threshold"])), rho)
}

// likelihood writes a log likelihood ratio as the ratio.
func likelihood(l float64) string { return analysis.Ratio(l) }

// printHealth writes what a release's checks found.
func printHealth(w io.Writer, r *release.Release) {
	fmt.Fprintf(w, "  checks    %s\n", describeChecks(r.Checks))
	if r.Checks == nil {
		return
	}
	h := r.Health
	if h.PreTraffic != nil {
		fmt.Fprintln(w, "  before traffic:")
		printVerdict(w, "    ", h.PreTraffic)
	}
	for _, ref := range sortedRefs(h.Reference) {
		fmt.Fprintf(w, "    baseline %s of %s: %.1f ms from %d invocations (%s)\n", ref.r.Percentile, safe(ref.name), ref.r.Millis, ref.r.Samples, safe(ref.r.Source))
	}
	for _, s := range h.Steps {
		head := fmt.Sprintf("  step %d (%s on the new versions)", s.Step+1, manifest.Percent(s.Weight))
		if !s.Started.IsZero() && !s.Ended.IsZero() {
			head += fmt.Sprintf(", baked %s", s.Ended.Sub(s.Started).Round(time.Second))
		}
		if s.Extended {
			head += ", extended for want of traffic"
		}
		if s.Unjudged {
			head += ", UNJUDGED (went on without a verdict)"
		}
		fmt.Fprintln(w, head+":")
		if s.Verdict != nil {
			printVerdict(w, "    ", s.Verdict)
		} else {
			fmt.Fprintln(w, "    (being judged)")
		}
	}
	if h.PostTraffic != nil {
		fmt.Fprintln(w, "  after traffic:")
		printVerdict(w, "    ", h.PostTraffic)
	}
}

type namedRef struct {
	name string
	r    release.Reference
}

func sortedRefs(m map[string]release.Reference) []namedRef {
	out := make([]namedRef, 0, len(m))
	for n, r := range m {
		out = append(out, namedRef{n, r})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
