package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// Histogram buckets, in seconds.
var (
	stepBuckets = []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600}
	gateBuckets = []float64{1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600}
	runBuckets  = []float64{30, 60, 120, 300, 600, 1200, 1800, 3600, 2 * 3600, 6 * 3600}
)

var (
	descStarted = prometheus.NewDesc("aviary_releases_started_total", "Releases started, by service and environment.", []string{"service", "environment"}, nil)
	descEnded   = prometheus.NewDesc("aviary_releases_total", "Releases that ended, by outcome (promoted, rolled-back, failed).", []string{"service", "environment", "outcome"}, nil)
	descLive    = prometheus.NewDesc("aviary_releases_live", "Releases under way, by phase.", []string{"service", "environment", "phase"}, nil)
	descSteps   = prometheus.NewDesc("aviary_step_duration_seconds", "How long each traffic step baked, from its weights being in place to its verdict.", []string{"service", "environment", "result"}, nil)
	descGates   = prometheus.NewDesc("aviary_gate_wait_seconds", "How long a gate waited for its decision.", []string{"service", "environment", "decision", "via"}, nil)
	descRuns    = prometheus.NewDesc("aviary_release_duration_seconds", "How long releases took, start to end.", []string{"service", "environment", "outcome"}, nil)
)

// collector reads the whole store at each scrape and reports what it holds.
//
// Why counters never fall. Every number comes from the store, not from this process's memory, so
// every server reading the same store (aviary serve, and every instance of the gate's Lambda,
// which Prometheus reaches at random behind one function URL) reports the same values, and a
// restart or a new instance starts from the store's totals rather than from zero. The store
// never deletes a release, a step's record or a gate's decision, and the collector reads all of
// them (no window of the newest releases, which made counts fall as old releases left it), so
// these counts only grow. A release reopened after it ended (`aviary rollback` of a promoted
// release) keeps its earlier end in the record ([release.Release.Earlier]), and it is counted
// under both, so every server, started before the reopening or after it, reports the same
// counts. As a last guard the collector also keeps, per series, the highest value it has
// reported (its high-water mark), so within a process a counter never falls whatever the store
// holds.
type collector struct {
	st  store.Store
	log *slog.Logger

	mu   sync.Mutex
	high map[string]float64 // highest value reported, by series and bucket
}

func newCollector(st store.Store, log *slog.Logger) *collector {
	return &collector{st: st, log: log, high: map[string]float64{}}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStarted, descEnded, descLive, descSteps, descGates, descRuns} {
		ch <- d
	}
}

// hist is one histogram series being counted.
type hist struct {
	labels []string
	bounds []float64
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

func (h *hist) observe(v float64) {
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += v
	h.n++
}

// series groups values by their label values.
type series[V any] struct {
	order []string
	m     map[string]V
	make  func(labels []string) V
}

func (s *series[V]) get(labels ...string) V {
	k := strings.Join(labels, "\x00")
	v, ok := s.m[k]
	if !ok {
		v = s.make(labels)
		s.m[k] = v
		s.order = append(s.order, k)
	}
	return v
}

type count struct {
	labels []string
	n      float64
}

func counts() *series[*count] {
	return &series[*count]{m: map[string]*count{}, make: func(l []string) *count { return &count{labels: l} }}
}

func hists(bounds []float64) *series[*hist] {
	return &series[*hist]{m: map[string]*hist{}, make: func(l []string) *hist {
		return &hist{labels: l, bounds: bounds, counts: make([]uint64, len(bounds))}
	}}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rs, err := c.st.ListReleases(ctx, store.Filter{}) // all of them: see the type's comment
	if err != nil {
		c.log.Error("metrics: read the store", "err", err)
		for _, d := range []*prometheus.Desc{descStarted, descEnded, descLive, descSteps, descGates, descRuns} {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	started, ended, live := counts(), counts(), counts()
	steps, gates, runs := hists(stepBuckets), hists(gateBuckets), hists(runBuckets)
	for _, rel := range rs {
		svc, env := rel.Service, rel.Environment
		started.get(svc, env).n++
		for _, end := range rel.Earlier { // ends undone by a reopening still count
			ended.get(svc, env, string(end.Phase)).n++
			if !end.At.IsZero() {
				runs.get(svc, env, string(end.Phase)).observe(end.At.Sub(rel.CreatedAt).Seconds())
			}
		}
		if rel.Phase.Final() {
			ended.get(svc, env, string(rel.Phase)).n++
			if !rel.EndedAt.IsZero() {
				runs.get(svc, env, string(rel.Phase)).observe(rel.EndedAt.Sub(rel.CreatedAt).Seconds())
			}
		} else {
			live.get(svc, env, string(rel.Phase)).n++
		}
		for _, st := range rel.Health.Steps {
			if st.Started.IsZero() || st.Ended.IsZero() {
				continue
			}
			result := "pass"
			if st.Verdict != nil {
				result = st.Verdict.Result.String()
			}
			steps.get(svc, env, result).observe(st.Ended.Sub(st.Started).Seconds())
		}
		for _, g := range rel.Gates {
			if g.Decision == nil {
				continue
			}
			gates.get(svc, env, string(g.Decision.Action), g.Decision.Via).observe(g.Decision.At.Sub(g.Opened).Seconds())
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range started.order {
		v := started.m[k]
		ch <- prometheus.MustNewConstMetric(descStarted, prometheus.CounterValue, c.atLeast("started\x00"+k, v.n), v.labels...)
	}
	for _, k := range ended.order {
		v := ended.m[k]
		ch <- prometheus.MustNewConstMetric(descEnded, prometheus.CounterValue, c.atLeast("ended\x00"+k, v.n), v.labels...)
	}
	for _, k := range live.order { // a gauge: it falls as releases end
		v := live.m[k]
		ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, v.n, v.labels...)
	}
	c.histograms(ch, descSteps, "steps", steps)
	c.histograms(ch, descGates, "gates", gates)
	c.histograms(ch, descRuns, "runs", runs)
}

func (c *collector) histograms(ch chan<- prometheus.Metric, d *prometheus.Desc, name string, s *series[*hist]) {
	for _, k := range s.order {
		h := s.m[k]
		key := name + "\x00" + k
		buckets := make(map[float64]uint64, len(h.bounds))
		var cum uint64
		for i, b := range h.bounds {
			cum += h.counts[i]
			buckets[b] = uint64(c.atLeast(key+"\x00"+formatBound(b), float64(cum)))
		}
		n := uint64(c.atLeast(key+"\x00count", float64(h.n)))
		sum := c.atLeast(key+"\x00sum", h.sum)
		ch <- prometheus.MustNewConstHistogram(d, n, sum, buckets, h.labels...)
	}
}

// atLeast returns v, or the highest value reported for key when that is higher, and remembers
// it. c.mu is held.
func (c *collector) atLeast(key string, v float64) float64 {
	if hv := c.high[key]; hv > v {
		return hv
	}
	c.high[key] = v
	return v
}

func formatBound(b float64) string { return time.Duration(b * float64(time.Second)).String() }

// metricsHandler serves the collector in Prometheus's exposition formats.
func metricsHandler(c *collector, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.HTTPErrorOnError, // a store that cannot be read answers 500, not partial numbers
	})
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
