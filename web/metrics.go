package web

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// metricsWindow is how many of the newest releases /metrics counts.
const metricsWindow = 10000

var (
	stepBuckets = []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600}
	gateBuckets = []float64{1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600}
	runBuckets  = []float64{30, 60, 120, 300, 600, 1200, 1800, 3600, 2 * 3600, 6 * 3600}
)

// metrics writes what the store holds in Prometheus's text format: releases by outcome, live
// releases by phase, and histograms of step, gate and release durations.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	rs, err := s.cfg.Store.ListReleases(r.Context(), store.Filter{Limit: metricsWindow})
	if err != nil {
		s.log.Printf("metrics: %v", err)
		http.Error(w, "the store cannot be read", http.StatusServiceUnavailable)
		return
	}
	outcomes := map[string]float64{}
	live := map[string]float64{}
	steps := map[string]*histogram{}
	gates := map[string]*histogram{}
	runs := map[string]*histogram{}
	for _, rel := range rs {
		base := labels("service", rel.Service, "environment", rel.Environment)
		if rel.Phase.Final() {
			outcomes[base+","+labels("outcome", string(rel.Phase))]++
			if !rel.EndedAt.IsZero() {
				observe(runs, base+","+labels("outcome", string(rel.Phase)), runBuckets, rel.EndedAt.Sub(rel.CreatedAt).Seconds())
			}
		} else {
			live[base+","+labels("phase", string(rel.Phase))]++
		}
		for _, st := range rel.Health.Steps {
			if st.Started.IsZero() || st.Ended.IsZero() {
				continue
			}
			result := "pass"
			if st.Verdict != nil {
				result = st.Verdict.Result.String()
			}
			observe(steps, base+","+labels("result", result), stepBuckets, st.Ended.Sub(st.Started).Seconds())
		}
		for _, g := range rel.Gates {
			if g.Decision == nil {
				continue
			}
			observe(gates, base+","+labels("decision", string(g.Decision.Action), "via", g.Decision.Via), gateBuckets, g.Decision.At.Sub(g.Opened).Seconds())
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writeCounter(w, "aviary_releases_total", "Releases that ended, by outcome (promoted, rolled-back, failed).", "counter", outcomes)
	writeCounter(w, "aviary_releases_live", "Releases under way, by phase.", "gauge", live)
	writeHistograms(w, "aviary_step_duration_seconds", "How long each traffic step baked, from its weights being in place to its verdict.", steps)
	writeHistograms(w, "aviary_gate_wait_seconds", "How long a gate waited for its decision.", gates)
	writeHistograms(w, "aviary_release_duration_seconds", "How long releases took, start to end.", runs)
}

type histogram struct {
	bounds []float64
	counts []float64 // per bucket, not cumulative
	sum    float64
	n      float64
}

func observe(m map[string]*histogram, key string, bounds []float64, v float64) {
	h := m[key]
	if h == nil {
		h = &histogram{bounds: bounds, counts: make([]float64, len(bounds))}
		m[key] = h
	}
	for i, b := range bounds {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += v
	h.n++
}

func writeCounter(w io.Writer, name, help, kind string, m map[string]float64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(w, "%s{%s} %s\n", name, k, num(m[k]))
	}
}

func writeHistograms(w io.Writer, name, help string, m map[string]*histogram) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	for _, k := range sortedKeys(m) {
		h := m[k]
		cum := 0.0
		for i, b := range h.bounds {
			cum += h.counts[i]
			fmt.Fprintf(w, "%s_bucket{%s,le=\"%s\"} %s\n", name, k, num(b), num(cum))
		}
		fmt.Fprintf(w, "%s_bucket{%s,le=\"+Inf\"} %s\n", name, k, num(h.n))
		fmt.Fprintf(w, "%s_sum{%s} %s\n%s_count{%s} %s\n", name, k, num(h.sum), name, k, num(h.n))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// labels formats label pairs, escaped as the text format requires.
func labels(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		v := strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(kv[i+1])
		parts = append(parts, fmt.Sprintf(`%s="%s"`, kv[i], v))
	}
	return strings.Join(parts, ",")
}

func num(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%g", f)
}

// phaseClass is a CSS class for a phase.
func phaseClass(p release.Phase) string {
	switch p {
	case release.Promoted:
		return "ok"
	case release.RolledBack, release.Failed, release.RollingBack:
		return "bad"
	case release.AwaitingApproval:
		return "wait"
	}
	return "live"
}
