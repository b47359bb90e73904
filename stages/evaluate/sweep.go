package evaluate

import (
	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/schemas"
)

// sweep scores the reference's argmax labels (spec §6) at every background
// threshold in one pass. Per pixel the label is either the top class
// (value > threshold) or the background, so it is enough to count, per
// (ground truth, top class), how many thresholds the top value exceeds:
// cnt[(g·K + label)·(T+1) + bins]. With ascending thresholds, threshold t
// keeps the class iff bins > t.
type sweep struct {
	k, t  int
	cnt   []int64
	bins8 [256]uint8 // uint8 code → thresholds exceeded
	bin16 []uint8    // float16 code (0..1.0) → thresholds exceeded
	best  []uint8
	top   []uint16
}

// newSweep: thr ascending, at most 255 thresholds.
func newSweep(k int, thr []float64) *sweep {
	s := &sweep{k: k, t: len(thr), cnt: make([]int64, k*k*(len(thr)+1)), bin16: make([]uint8, 0x3c01)}
	count := func(v float64) uint8 {
		n := 0
		for _, t := range thr {
			if v > t { // ties stay background, as argmax picks index 0
				n++
			}
		}
		return uint8(n)
	}
	for c := range s.bins8 {
		s.bins8[c] = count(camio.Value(schemas.CAMUint8, uint16(c)))
	}
	for c := range s.bin16 {
		s.bin16[c] = count(camio.Value(schemas.CAMFloat16, uint16(c)))
	}
	return s
}

// add accumulates one image; gt must have the record's size. A ground-truth
// value that is not a label is a *segmetrics.ValueError.
func (s *sweep) add(rec *camio.Record, gt []uint8) error {
	n := rec.NumPixels()
	if cap(s.best) < n {
		s.best, s.top = make([]uint8, n), make([]uint16, n)
	}
	best, top := s.best[:n], s.top[:n]
	rec.Top(best, top, nil)
	var labels [256]uint8 // plane → label; all 0 when no class (top is 0 then)
	for p, k := range rec.ClassIDs {
		labels[p] = uint8(k + 1)
	}
	bins := s.bins8[:]
	if rec.DType == schemas.CAMFloat16 {
		bins = s.bin16
	}
	k, stride := s.k, s.t+1
	cnt := s.cnt
	gt = gt[:n]
	for i, g := range gt {
		if g == segmetrics.Ignore {
			continue
		}
		if int(g) >= k {
			return &segmetrics.ValueError{Index: i, Value: g, K: k}
		}
		cnt[(int(g)*k+int(labels[best[i]]))*stride+int(bins[top[i]])]++
	}
	return nil
}

func (s *sweep) merge(o *sweep) {
	for i, v := range o.cnt {
		s.cnt[i] += v
	}
}

// confusions returns one matrix per threshold, in threshold order.
func (s *sweep) confusions() []*segmetrics.Confusion {
	k, stride := s.k, s.t+1
	out := make([]*segmetrics.Confusion, s.t)
	for t := range out {
		c := segmetrics.New(k)
		for g := range k {
			for l := range k {
				base := (g*k + l) * stride
				for b := 0; b <= s.t; b++ {
					v := s.cnt[base+b]
					if b > t {
						c.M[g*k+l] += v
					} else {
						c.M[g*k] += v
					}
				}
			}
		}
		out[t] = c
	}
	return out
}
