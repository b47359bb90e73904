package crf

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// lattice is a permutohedral lattice (Adams, Baek & Davis 2010) built over
// one set of d-dimensional features, in the variant of densecrf's
// permutohedral.cpp that pydensecrf wraps. filter computes, for every point
// i, approximately c·Σ_j exp(−½‖f_i − f_j‖²)·v_j (self term included; c is a
// constant that symmetric normalisation cancels).
//
// densecrf splats by scattering into lattice points; here the splat is the
// transpose of the slice, stored as a gather list per lattice point, so every
// phase writes each output from one goroutine in a fixed order and results
// are bit-identical for any worker count.
type lattice struct {
	n, d, m int
	workers int

	// offset[i*(d+1)+r] is the lattice point (1-based; 0 is an all-zero
	// slot for missing neighbours) of vertex r of pixel i's simplex, and
	// bary the matching barycentric weight.
	offset []int32
	bary   []float32

	// Splat gather lists: lattice point p (1-based) receives
	// splatW[e]·in[splatPix[e]] for e in splatStart[p-1]:splatStart[p],
	// in increasing pixel order (densecrf's accumulation order).
	splatStart []int32
	splatPix   []int32
	splatW     []float32

	// blur[(j*m+p)*2+{0,1}] are the two neighbours (1-based, 0 = missing)
	// of lattice point p+1 along lattice axis j.
	blur []int32

	alpha float32
	buf   [2][]float32 // blur ping-pong, (m+1)·vd; not safe for concurrent use
}

// maxLatticeCoord bounds elevated coordinates so keys fit in int32 with room
// for the ±d neighbour offsets.
const maxLatticeCoord = 1 << 30

// newLattice embeds n feature vectors of dimension d (row-major, n×d).
func newLattice(ctx context.Context, feat []float32, n, d, workers int) (*lattice, error) {
	if d < 1 || n < 1 || len(feat) != n*d {
		return nil, fmt.Errorf("permutohedral lattice: %d features of dim %d in %d floats", n, d, len(feat))
	}
	if int64(n)*int64(d+1) >= math.MaxInt32 {
		return nil, fmt.Errorf("permutohedral lattice: %d points of dim %d exceed int32 indexing", n, d)
	}
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	l := &lattice{
		n: n, d: d, workers: workers,
		offset: make([]int32, n*(d+1)),
		bary:   make([]float32, n*(d+1)),
		alpha:  float32(1 / (1 + math.Pow(2, -float64(d)))),
	}

	// Phase 1 (parallel): the enclosing simplex of every point, as d+1
	// vertex keys (the last coordinate is implied: keys sum to zero) and
	// barycentric weights.
	keys := make([]int32, n*(d+1)*d)
	var bad sync.Once
	var badErr error
	parallelFor(n, workers, func(lo, hi int) {
		if err := l.embed(feat, keys, lo, hi); err != nil {
			bad.Do(func() { badErr = err })
		}
	})
	if badErr != nil {
		return nil, badErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("permutohedral lattice: %w", err)
	}

	// Phase 2 (sequential, so point numbering is deterministic): dedupe the
	// vertices through the hash table.
	ht := newHashTable(d, n)
	for e := range l.offset {
		l.offset[e] = ht.insert(keys[e*d:(e+1)*d]) + 1
	}
	l.m = ht.size()

	// Phase 3: splat gather lists (counting sort by lattice point, stable in
	// entry order, hence in pixel order).
	l.splatStart = make([]int32, l.m+1)
	for _, o := range l.offset {
		l.splatStart[o]++
	}
	for p := 1; p <= l.m; p++ {
		l.splatStart[p] += l.splatStart[p-1]
	}
	fill := make([]int32, l.m)
	copy(fill, l.splatStart[:l.m])
	l.splatPix = make([]int32, len(l.offset))
	l.splatW = make([]float32, len(l.offset))
	for e, o := range l.offset {
		k := fill[o-1]
		fill[o-1]++
		l.splatPix[k] = int32(e / (d + 1))
		l.splatW[k] = l.bary[e]
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("permutohedral lattice: %w", err)
	}

	// Phase 4 (parallel, read-only lookups): blur neighbours along each of
	// the d+1 lattice axes, ±(d+1)·e_j − 1 in elevated coordinates.
	l.blur = make([]int32, (d+1)*l.m*2)
	parallelFor(l.m, workers, func(lo, hi int) {
		n1 := make([]int32, d)
		n2 := make([]int32, d)
		for p := lo; p < hi; p++ {
			key := ht.key(int32(p))
			for j := 0; j <= d; j++ {
				for k := 0; k < d; k++ {
					n1[k] = key[k] - 1
					n2[k] = key[k] + 1
				}
				if j < d {
					n1[j] = key[j] + int32(d)
					n2[j] = key[j] - int32(d)
				}
				l.blur[(j*l.m+p)*2] = ht.find(n1) + 1
				l.blur[(j*l.m+p)*2+1] = ht.find(n2) + 1
			}
		}
	})
	return l, nil
}

// embed computes the simplex vertices and barycentric weights of points
// lo..hi-1, following densecrf's (SSE) Permutohedral::init in float32.
func (l *lattice) embed(feat []float32, keys []int32, lo, hi int) error {
	d := l.d
	d1 := float32(d + 1)
	// Diagonal of the elevation matrix E, scaled so that the blur below
	// approximates a unit-variance Gaussian (Adams et al. 2010, p. 5–6).
	invStd := float32(math.Sqrt(2.0/3.0)) * d1
	scale := make([]float32, d)
	for i := range scale {
		scale[i] = float32(1/math.Sqrt(float64((i+2)*(i+1)))) * invStd
	}
	canonical := make([]int32, (d+1)*(d+1))
	for i := 0; i <= d; i++ {
		for j := 0; j <= d; j++ {
			if j <= d-i {
				canonical[i*(d+1)+j] = int32(i)
			} else {
				canonical[i*(d+1)+j] = int32(i - (d + 1))
			}
		}
	}
	elev := make([]float32, d+1)
	rem0 := make([]float32, d+1)
	rank := make([]int, d+1)
	bary := make([]float32, d+2)
	for k := lo; k < hi; k++ {
		f := feat[k*d : (k+1)*d]
		var sm float32
		for j := d; j > 0; j-- {
			cf := f[j-1] * scale[j-1]
			elev[j] = sm - float32(j)*cf
			sm += cf
		}
		elev[0] = sm
		// Closest remainder-0 point: round each coordinate to a multiple of
		// d+1 (round half to even, as SSE cvtps2dq does).
		sum := 0
		for i := 0; i <= d; i++ {
			if e := elev[i]; !(e > -maxLatticeCoord && e < maxLatticeCoord) {
				return fmt.Errorf("permutohedral lattice: feature %d has elevated coordinate %g (σ too small or feature not finite)", k, e)
			}
			v := float32(math.RoundToEven(float64(elev[i] / d1)))
			rem0[i] = v * d1
			sum += int(v)
		}
		// Rank of each coordinate's residual among the d+1 residuals.
		for i := range rank {
			rank[i] = 0
		}
		for i := 0; i < d; i++ {
			di := elev[i] - rem0[i]
			for j := i + 1; j <= d; j++ {
				if di < elev[j]-rem0[j] {
					rank[i]++
				} else {
					rank[j]++
				}
			}
		}
		// Bring the point back onto the hyperplane if the rounding left it.
		for i := 0; i <= d; i++ {
			rank[i] += sum
			if rank[i] < 0 {
				rank[i] += d + 1
				rem0[i] += d1
			} else if rank[i] > d {
				rank[i] -= d + 1
				rem0[i] -= d1
			}
		}
		for i := range bary {
			bary[i] = 0
		}
		for i := 0; i <= d; i++ {
			v := (elev[i] - rem0[i]) / d1
			bary[d-rank[i]] += v
			bary[d-rank[i]+1] -= v
		}
		bary[0] += 1 + bary[d+1]
		for r := 0; r <= d; r++ {
			e := k*(d+1) + r
			key := keys[e*d : (e+1)*d]
			for i := 0; i < d; i++ {
				key[i] = int32(rem0[i]) + canonical[r*(d+1)+rank[i]]
			}
			l.bary[e] = bary[r]
		}
	}
	return nil
}

// filter writes into out (n×vd) the lattice approximation of the Gaussian
// filter of in (n×vd). out may alias in.
func (l *lattice) filter(out, in []float32, vd int) {
	size := (l.m + 1) * vd
	for b := range l.buf {
		if cap(l.buf[b]) < size {
			l.buf[b] = make([]float32, size)
		}
		l.buf[b] = l.buf[b][:size]
		clear(l.buf[b][:vd]) // slot 0: missing neighbour
	}
	vals, next := l.buf[0], l.buf[1]

	// Splat: each lattice point gathers its weighted contributors.
	parallelFor(l.m, l.workers, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			// Every lattice point has at least one contributor: the
			// first assigns, so dst needs no clearing.
			dst := vals[(p+1)*vd : (p+2)*vd]
			e0, e1 := l.splatStart[p], l.splatStart[p+1]
			w, i := l.splatW[e0], int(l.splatPix[e0])
			src := in[i*vd : (i+1)*vd][:len(dst)] // drops bounds checks below
			for k, v := range src {
				dst[k] = w * v
			}
			for e := e0 + 1; e < e1; e++ {
				w, i := l.splatW[e], int(l.splatPix[e])
				src := in[i*vd : (i+1)*vd][:len(dst)]
				for k, v := range src {
					dst[k] += w * v
				}
			}
		}
	})

	// Blur with [½ 1 ½] along each lattice axis in turn.
	for j := 0; j <= l.d; j++ {
		nb := l.blur[j*l.m*2 : (j+1)*l.m*2]
		parallelFor(l.m, l.workers, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				a, b := int(nb[2*p]), int(nb[2*p+1])
				dst := next[(p+1)*vd : (p+2)*vd]
				old := vals[(p+1)*vd : (p+2)*vd][:len(dst)]
				n1 := vals[a*vd : (a+1)*vd][:len(dst)]
				n2 := vals[b*vd : (b+1)*vd][:len(dst)]
				for k := range dst {
					dst[k] = old[k] + 0.5*(n1[k]+n2[k])
				}
			}
		})
		vals, next = next, vals
	}

	// Slice: barycentric interpolation back at each input point. densecrf's
	// alpha rescales the result; kept so raw values match the reference.
	d1 := l.d + 1
	parallelFor(l.n, l.workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dst := out[i*vd : (i+1)*vd]
			o, w := int(l.offset[i*d1]), l.bary[i*d1]*l.alpha
			src := vals[o*vd : (o+1)*vd][:len(dst)]
			for k := range dst {
				dst[k] = w * src[k]
			}
			for r := 1; r < d1; r++ {
				o, w := int(l.offset[i*d1+r]), l.bary[i*d1+r]*l.alpha
				src := vals[o*vd : (o+1)*vd][:len(dst)]
				for k := range dst {
					dst[k] += w * src[k]
				}
			}
		}
	})
}

// parallelFor splits [0, n) into contiguous chunks run on up to workers
// goroutines. Callers write disjoint outputs, so the split never changes
// results.
func parallelFor(n, workers int, fn func(lo, hi int)) {
	const minChunk = 2048
	chunks := min(workers, (n+minChunk-1)/minChunk)
	if chunks <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for c := range chunks {
		lo, hi := n*c/chunks, n*(c+1)/chunks
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// hashTable maps d-dimensional integer lattice keys to dense indices with
// open addressing (densecrf's scheme, with int32 keys instead of int16 so
// large feature ranges cannot wrap).
type hashTable struct {
	d     int
	keys  []int32 // size()·d
	table []int32 // index+1, 0 = empty; len is a power of two
}

func newHashTable(d, expected int) *hashTable {
	c := 1
	for c < 2*expected {
		c <<= 1
	}
	return &hashTable{d: d, keys: make([]int32, 0, expected*d), table: make([]int32, c)}
}

func (h *hashTable) size() int { return len(h.keys) / h.d }

func (h *hashTable) key(i int32) []int32 { return h.keys[int(i)*h.d : (int(i)+1)*h.d] }

func hashKey(k []int32) uint64 {
	var s uint64
	for _, v := range k {
		s += uint64(uint32(v))
		s *= 1664525
	}
	return s ^ s>>29
}

// slot returns the table position holding k, or the empty one where it
// would go.
func (h *hashTable) slot(k []int32) int {
	mask := len(h.table) - 1
	s := int(hashKey(k)) & mask
	for {
		e := h.table[s]
		if e == 0 || equalKey(h.key(e-1), k) {
			return s
		}
		s = (s + 1) & mask
	}
}

func equalKey(a, b []int32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// find returns the index of k, or -1.
func (h *hashTable) find(k []int32) int32 { return h.table[h.slot(k)] - 1 }

// insert returns the index of k, adding it if absent.
func (h *hashTable) insert(k []int32) int32 {
	if 2*(h.size()+1) > len(h.table) {
		h.grow()
	}
	s := h.slot(k)
	if h.table[s] == 0 {
		h.keys = append(h.keys, k...)
		h.table[s] = int32(h.size())
	}
	return h.table[s] - 1
}

func (h *hashTable) grow() {
	h.table = make([]int32, 2*len(h.table))
	mask := len(h.table) - 1
	for i := range h.size() {
		s := int(hashKey(h.key(int32(i)))) & mask
		for h.table[s] != 0 {
			s = (s + 1) & mask
		}
		h.table[s] = int32(i) + 1
	}
}
