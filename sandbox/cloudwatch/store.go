package cloudwatch

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Dimension is a CloudWatch dimension.
type Dimension struct {
	Name  string `json:"Name" xml:"Name"`
	Value string `json:"Value" xml:"Value"`
}

// series is one metric: namespace, name and an exact set of dimensions, with its datapoints
// aggregated into buckets of its storage resolution.
type series struct {
	Namespace  string
	Name       string
	Dims       []Dimension // sorted by name
	Unit       string
	Resolution time.Duration
	mu         sync.Mutex
	buckets    map[int64]*bucket // by start, in Unix seconds
	lastWrite  time.Time
}

// bucket aggregates the samples of one resolution interval.
type bucket struct {
	count, sum, min, max float64
	sk                   sketch
}

func (b *bucket) add(v, n float64) {
	if b.count == 0 || v < b.min {
		b.min = v
	}
	if b.count == 0 || v > b.max {
		b.max = v
	}
	b.count += n
	b.sum += v * n
	b.sk.add(v, uint64(math.Max(1, math.Round(n))))
}

func (b *bucket) merge(o *bucket) {
	if o.count == 0 {
		return
	}
	if b.count == 0 || o.min < b.min {
		b.min = o.min
	}
	if b.count == 0 || o.max > b.max {
		b.max = o.max
	}
	b.count += o.count
	b.sum += o.sum
	b.sk.merge(&o.sk)
}

func seriesKey(namespace, name string, dims []Dimension) string {
	var b strings.Builder
	b.WriteString(namespace)
	b.WriteByte(0)
	b.WriteString(name)
	for _, d := range dims {
		b.WriteByte(0)
		b.WriteString(d.Name)
		b.WriteByte('=')
		b.WriteString(d.Value)
	}
	return b.String()
}

func sortDims(d []Dimension) []Dimension {
	d = slices.Clone(d)
	sort.Slice(d, func(i, j int) bool { return d[i].Name < d[j].Name })
	return d
}

// metrics holds every series.
type metrics struct {
	mu        sync.RWMutex
	series    map[string]*series
	retention time.Duration
}

func newMetrics(retention time.Duration) *metrics {
	return &metrics{series: map[string]*series{}, retention: retention}
}

func (m *metrics) get(namespace, name string, dims []Dimension, unit string, res time.Duration) *series {
	dims = sortDims(dims)
	key := seriesKey(namespace, name, dims)
	m.mu.RLock()
	s, ok := m.series[key]
	m.mu.RUnlock()
	if ok {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok = m.series[key]; ok {
		return s
	}
	s = &series{Namespace: namespace, Name: name, Dims: dims, Unit: unit, Resolution: res, buckets: map[int64]*bucket{}}
	m.series[key] = s
	return s
}

func (m *metrics) lookup(namespace, name string, dims []Dimension) *series {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.series[seriesKey(namespace, name, sortDims(dims))]
}

// add records n samples of value v at t.
func (s *series) add(t time.Time, v, n float64, retention time.Duration) {
	res := int64(s.Resolution / time.Second)
	if res < 1 {
		res = 1
	}
	start := t.Unix() / res * res
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[start]
	if !ok {
		b = &bucket{}
		s.buckets[start] = b
		// Forget what is older than the retention, as CloudWatch does for fine-grained data.
		cutoff := t.Add(-retention).Unix()
		for k := range s.buckets {
			if k < cutoff {
				delete(s.buckets, k)
			}
		}
	}
	b.add(v, n)
	if t.After(s.lastWrite) {
		s.lastWrite = t
	}
}

// aggregate merges the buckets in [start, end) into periods of the given length, aligned to
// multiples of the period since the epoch. Periods without data are left out.
func (s *series) aggregate(start, end time.Time, period time.Duration) map[int64]*bucket {
	p := int64(period / time.Second)
	out := map[int64]*bucket{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, b := range s.buckets {
		if t < start.Unix() || t >= end.Unix() {
			continue
		}
		k := t / p * p
		agg, ok := out[k]
		if !ok {
			agg = &bucket{}
			out[k] = agg
		}
		agg.merge(b)
	}
	return out
}

// statistic computes a CloudWatch statistic from an aggregated bucket.
func statistic(b *bucket, stat string) (float64, error) {
	switch stat {
	case "SampleCount":
		return b.count, nil
	case "Sum":
		return b.sum, nil
	case "Average":
		return b.sum / b.count, nil
	case "Minimum":
		return b.min, nil
	case "Maximum":
		return b.max, nil
	}
	if q, ok := percentile(stat); ok {
		v := b.sk.quantile(q)
		return math.Min(math.Max(v, b.min), b.max), nil
	}
	return 0, fmt.Errorf("the statistic %q is not supported: use SampleCount, Average, Sum, Minimum, Maximum or a percentile such as p99 or p99.9", stat)
}

// percentile parses "p99" or "p99.9".
func percentile(stat string) (float64, bool) {
	rest, ok := strings.CutPrefix(stat, "p")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(rest, 64)
	if err != nil || !(v >= 0 && v <= 100) { // NaN is neither
		return 0, false
	}
	return v / 100, true
}

func validStatistic(stat string) bool {
	switch stat {
	case "SampleCount", "Sum", "Average", "Minimum", "Maximum":
		return true
	}
	_, ok := percentile(stat)
	return ok
}

// matching lists the series of a namespace and metric name whose dimensions include all of
// filters (a filter without a value matches any value), for ListMetrics.
func (m *metrics) matching(namespace, name string, filters []Dimension, since time.Time) []*series {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*series
	for _, s := range m.series {
		if namespace != "" && s.Namespace != namespace || name != "" && s.Name != name {
			continue
		}
		ok := true
		for _, f := range filters {
			found := false
			for _, d := range s.Dims {
				if d.Name == f.Name && (f.Value == "" || d.Value == f.Value) {
					found = true
				}
			}
			if !found {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if !since.IsZero() {
			s.mu.Lock()
			recent := !s.lastWrite.Before(since)
			s.mu.Unlock()
			if !recent {
				continue
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		return seriesKey(out[i].Namespace, out[i].Name, out[i].Dims) < seriesKey(out[j].Namespace, out[j].Name, out[j].Dims)
	})
	return out
}

// snapshot is the persisted form of the metrics.
type snapshot struct {
	Series []seriesSnapshot
}

type seriesSnapshot struct {
	Namespace, Name, Unit string
	Dims                  []Dimension
	Resolution            time.Duration
	Buckets               map[int64]bucketSnapshot
}

type bucketSnapshot struct {
	Count, Sum, Min, Max float64
	Pos, Neg             map[int32]uint64
	Zero                 uint64
}

func (m *metrics) snapshot() snapshot {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out snapshot
	for _, s := range m.series {
		s.mu.Lock()
		ss := seriesSnapshot{Namespace: s.Namespace, Name: s.Name, Unit: s.Unit, Dims: s.Dims, Resolution: s.Resolution, Buckets: map[int64]bucketSnapshot{}}
		for t, b := range s.buckets {
			ss.Buckets[t] = bucketSnapshot{Count: b.count, Sum: b.sum, Min: b.min, Max: b.max, Pos: b.sk.pos, Neg: b.sk.neg, Zero: b.sk.zero}
		}
		s.mu.Unlock()
		out.Series = append(out.Series, ss)
	}
	return out
}

func (m *metrics) restore(snap snapshot, now time.Time) {
	cutoff := now.Add(-m.retention).Unix()
	for _, ss := range snap.Series {
		s := m.get(ss.Namespace, ss.Name, ss.Dims, ss.Unit, ss.Resolution)
		s.mu.Lock()
		for t, b := range ss.Buckets {
			if t < cutoff {
				continue
			}
			s.buckets[t] = &bucket{count: b.Count, sum: b.Sum, min: b.Min, max: b.Max, sk: sketch{pos: b.Pos, neg: b.Neg, zero: b.Zero}}
			if last := time.Unix(t, 0); last.After(s.lastWrite) {
				s.lastWrite = last
			}
		}
		s.mu.Unlock()
	}
}
