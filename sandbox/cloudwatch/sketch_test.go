package cloudwatch

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// The sketch's percentiles stay within its relative error of the exact nearest-rank percentile.
func TestSketchQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s sketch
	var vals []float64
	for range 20000 {
		v := math.Exp(rng.NormFloat64()*1.5 + 3) // a long-tailed latency distribution
		if rng.IntN(50) == 0 {
			v = -v
		}
		if rng.IntN(100) == 0 {
			v = 0
		}
		s.add(v, 1)
		vals = append(vals, v)
	}
	sort.Float64s(vals)
	for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := s.quantile(q)
		if math.Abs(got-exact) > math.Abs(exact)*sketchAlpha*1.01+1e-12 {
			t.Errorf("q%.3f = %v, exact %v: beyond %.1f%%", q, got, exact, sketchAlpha*100)
		}
	}
	var empty sketch
	if !math.IsNaN(empty.quantile(0.5)) {
		t.Error("an empty sketch answered a quantile")
	}
}

func TestStatisticNames(t *testing.T) {
	for stat, ok := range map[string]bool{"Sum": true, "p99": true, "p99.9": true, "p100": true, "p101": false, "tm99": false, "": false, "P99": false} {
		if validStatistic(stat) != ok {
			t.Errorf("validStatistic(%q) = %v", stat, !ok)
		}
	}
}
