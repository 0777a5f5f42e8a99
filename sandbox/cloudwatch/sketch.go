package cloudwatch

import (
	"math"
	"slices"
)

// sketch is a relative-error quantile sketch (as DDSketch): values fall in logarithmic bins whose
// width keeps any percentile within sketchAlpha of a true sample value, in bounded memory however
// many samples arrive. CloudWatch's own percentiles are approximations too.
type sketch struct {
	pos, neg map[int32]uint64
	zero     uint64
}

const sketchAlpha = 0.005

var (
	sketchGamma    = (1 + sketchAlpha) / (1 - sketchAlpha)
	sketchLogGamma = math.Log(sketchGamma)
)

func binOf(v float64) int32 { return int32(math.Ceil(math.Log(v) / sketchLogGamma)) }

func binValue(i int32) float64 { return 2 * math.Pow(sketchGamma, float64(i)) / (sketchGamma + 1) }

func (s *sketch) add(v float64, n uint64) {
	switch {
	case v > 0:
		if s.pos == nil {
			s.pos = map[int32]uint64{}
		}
		s.pos[binOf(v)] += n
	case v < 0:
		if s.neg == nil {
			s.neg = map[int32]uint64{}
		}
		s.neg[binOf(-v)] += n
	default:
		s.zero += n
	}
}

func (s *sketch) merge(o *sketch) {
	for k, n := range o.pos {
		if s.pos == nil {
			s.pos = map[int32]uint64{}
		}
		s.pos[k] += n
	}
	for k, n := range o.neg {
		if s.neg == nil {
			s.neg = map[int32]uint64{}
		}
		s.neg[k] += n
	}
	s.zero += o.zero
}

// quantile returns the q-quantile (0 ≤ q ≤ 1) by nearest rank.
func (s *sketch) quantile(q float64) float64 {
	var total uint64 = s.zero
	for _, n := range s.pos {
		total += n
	}
	for _, n := range s.neg {
		total += n
	}
	if total == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	negKeys := keysOf(s.neg)
	for i := len(negKeys) - 1; i >= 0; i-- { // most negative first
		if seen += s.neg[negKeys[i]]; seen >= rank {
			return -binValue(negKeys[i])
		}
	}
	if seen += s.zero; seen >= rank {
		return 0
	}
	for _, k := range keysOf(s.pos) {
		if seen += s.pos[k]; seen >= rank {
			return binValue(k)
		}
	}
	return math.NaN()
}

func keysOf(m map[int32]uint64) []int32 {
	keys := make([]int32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
