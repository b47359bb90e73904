package crf

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// exactGauss is the O(n²) filter the lattice approximates:
// out_i = Σ_j exp(−½‖(f_i − f_j)/s‖²)·in_j, self term included.
func exactGauss(feat []float32, n, d int, in []float32, vd int, s float64) []float64 {
	out := make([]float64, n*vd)
	for i := range n {
		for j := range n {
			var q float64
			for k := range d {
				t := float64(feat[i*d+k]-feat[j*d+k]) / s
				q += t * t
			}
			w := math.Exp(-0.5 * q)
			for k := range vd {
				out[i*vd+k] += w * float64(in[j*vd+k])
			}
		}
	}
	return out
}

// normalizedErr is ‖a − b‖ / ‖b − mean(b)‖: the error measured against how
// much the filtered signal varies, so a filter that merely returned the
// global mean would score 1.
func normalizedErr(a, b []float64) float64 {
	var m float64
	for _, v := range b {
		m += v
	}
	m /= float64(len(b))
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += (b[i] - m) * (b[i] - m)
	}
	return math.Sqrt(num / den)
}

// TestLatticeMatchesExactGaussian compares the normalised lattice filter
// (L·v / L·1, the classic bilateral filter) with the exact Gaussian one on
// random points and values. Measured over 8 seeds (3 run here), the error
// is 0.08–0.11 (d=2), 0.14–0.16 (d=3), 0.16–0.25 (d=5); the asserted bounds
// are 0.15, 0.22, 0.30. The same data filtered exactly with σ off by 20% (×0.8 or
// ×1.25) differs by 0.27–0.74, and the lattice must also be closer to σ=1
// than to either, so a lattice with the wrong width fails.
func TestLatticeMatchesExactGaussian(t *testing.T) {
	for _, tc := range []struct {
		d, n  int
		box   float64
		bound float64
	}{
		{2, 300, 8, 0.15},
		{3, 300, 5, 0.22},
		{5, 400, 3, 0.30},
	} {
		for seed := range uint64(3) {
			rng := rand.New(rand.NewPCG(seed, uint64(tc.d)))
			n, d, vd := tc.n, tc.d, 2
			feat := make([]float32, n*d)
			for i := range feat {
				feat[i] = float32(rng.Float64() * tc.box)
			}
			in := make([]float32, n*vd)
			for i := range in {
				in[i] = rng.Float32()
			}
			ones := make([]float32, n)
			for i := range ones {
				ones[i] = 1
			}
			lat, err := newLattice(context.Background(), feat, n, d, 2)
			if err != nil {
				t.Fatal(err)
			}
			l1 := make([]float32, n)
			lat.filter(l1, ones, 1)
			lv := make([]float32, n*vd)
			lat.filter(lv, in, vd)
			got := make([]float64, n*vd)
			for i := range got {
				got[i] = float64(lv[i]) / float64(l1[i/vd])
			}
			exact := func(s float64) []float64 {
				g1 := exactGauss(feat, n, d, ones, 1, s)
				gv := exactGauss(feat, n, d, in, vd, s)
				for i := range gv {
					gv[i] /= g1[i/vd]
				}
				return gv
			}
			want, narrow, wide := exact(1), exact(0.8), exact(1.25)
			e := normalizedErr(got, want)
			eN, eW := normalizedErr(got, narrow), normalizedErr(got, wide)
			t.Logf("d=%d seed=%d lattice points=%d: err %.3f (vs σ×0.8: %.3f, σ×1.25: %.3f)", d, seed, lat.m, e, eN, eW)
			if e > tc.bound {
				t.Errorf("d=%d seed=%d: error %.3f > %.2f", d, seed, e, tc.bound)
			}
			if e >= eN || e >= eW {
				t.Errorf("d=%d seed=%d: lattice is closer to a mis-scaled Gaussian (σ=1: %.3f, ×0.8: %.3f, ×1.25: %.3f)", d, seed, e, eN, eW)
			}
			if m := normalizedErr(narrow, want); m <= tc.bound {
				t.Errorf("d=%d seed=%d: bound %.2f does not separate a 20%% σ error (%.3f)", d, seed, tc.bound, m)
			}
		}
	}
}

// TestLatticeSymmetricNormalizedOperator checks the operator the CRF
// actually applies, N·L·N·v with N = diag(1/√(L·1)), against its exact
// counterpart on an image grid: the Gaussian kernel at σ=1 and a bilateral
// one over a two-colour image with colour noise. Errors are normalisedErr;
// measured 0.107 (gaussian) and 0.173 (bilateral), asserted ≤ 0.13 and
// ≤ 0.22, and the lattice must be closer to σ than to σ×0.8 or σ×1.25.
func TestLatticeSymmetricNormalizedOperator(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	w, h := 20, 16
	n := w * h
	pos := make([]float32, n*2)
	bil := make([]float32, n*5)
	for y := range h {
		for x := range w {
			i := y*w + x
			pos[i*2], pos[i*2+1] = float32(x), float32(y)
			bil[i*5], bil[i*5+1] = float32(x)/67, float32(y)/67
			base := 100.0
			if x >= w/2 {
				base = 110
			}
			for c := range 3 {
				bil[i*5+2+c] = float32(base+rng.NormFloat64()*3) / 3
			}
		}
	}
	vd := 3
	in := make([]float32, n*vd)
	for i := range in {
		in[i] = rng.Float32()
	}
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	for _, tc := range []struct {
		name  string
		feat  []float32
		d     int
		bound float64
	}{{"gaussian", pos, 2, 0.13}, {"bilateral", bil, 5, 0.22}} {
		k, err := newKernel(context.Background(), tc.feat, n, tc.d, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		scaled := make([]float32, n*vd)
		for i := range scaled {
			scaled[i] = in[i] * k.norm[i/vd]
		}
		out := make([]float32, n*vd)
		k.lat.filter(out, scaled, vd)
		got := make([]float64, n*vd)
		for i := range got {
			got[i] = float64(out[i] * k.norm[i/vd])
		}
		exact := func(s float64) []float64 {
			g1 := exactGauss(tc.feat, n, tc.d, ones, 1, s)
			gs := make([]float32, n*vd)
			for i := range gs {
				gs[i] = float32(float64(in[i]) / math.Sqrt(g1[i/vd]))
			}
			r := exactGauss(tc.feat, n, tc.d, gs, vd, s)
			for i := range r {
				r[i] /= math.Sqrt(g1[i/vd])
			}
			return r
		}
		e, eN, eW := normalizedErr(got, exact(1)), normalizedErr(got, exact(0.8)), normalizedErr(got, exact(1.25))
		t.Logf("%s: err %.3f (vs σ×0.8: %.3f, σ×1.25: %.3f)", tc.name, e, eN, eW)
		if e > tc.bound || e >= eN || e >= eW {
			t.Errorf("%s: err %.3f (bound %.2f; vs σ×0.8: %.3f, σ×1.25: %.3f)", tc.name, e, tc.bound, eN, eW)
		}
	}
}

// TestLatticeEmbedding checks the exact geometry of the embedding: each
// point's d+1 barycentric weights are in [0, 1], sum to 1, and the weighted
// sum of its simplex's vertices (keys plus the implied last coordinate, so
// that coordinates sum to 0) reproduces the elevated point E·f.
func TestLatticeEmbedding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, d := range []int{1, 2, 5} {
		n := 200
		feat := make([]float32, n*d)
		for i := range feat {
			feat[i] = float32(rng.NormFloat64() * 10)
		}
		l := &lattice{n: n, d: d, bary: make([]float32, n*(d+1))}
		keys := make([]int32, n*(d+1)*d)
		if err := l.embed(feat, keys, 0, n); err != nil {
			t.Fatal(err)
		}
		invStd := math.Sqrt(2.0/3.0) * float64(d+1)
		for k := range n {
			// Elevation E·f (Adams et al. 2010, p. 5), independently of embed.
			elev := make([]float64, d+1)
			for j := 1; j <= d; j++ {
				cf := float64(feat[k*d+j-1]) * invStd / math.Sqrt(float64((j+1)*j))
				for i := range j {
					elev[i] += cf
				}
				elev[j] -= float64(j) * cf
			}
			rec := make([]float64, d+1)
			var wsum float64
			for r := 0; r <= d; r++ {
				b := float64(l.bary[k*(d+1)+r])
				if b < -1e-5 || b > 1+1e-5 {
					t.Fatalf("d=%d point %d: barycentric weight %d = %g", d, k, r, b)
				}
				wsum += b
				key := keys[(k*(d+1)+r)*d : (k*(d+1)+r+1)*d]
				var last int32
				for i, v := range key {
					rec[i] += b * float64(v)
					last -= v
					// Vertex r of the simplex has remainder r: every
					// coordinate is ≡ r mod d+1.
					if m := ((int(v)-r)%(d+1) + d + 1) % (d + 1); m != 0 {
						t.Fatalf("d=%d point %d: vertex %d coordinate %d = %d is not ≡ %d mod %d", d, k, r, i, v, r, d+1)
					}
				}
				rec[d] += b * float64(last)
			}
			if math.Abs(wsum-1) > 1e-5 {
				t.Fatalf("d=%d point %d: weights sum to %g", d, k, wsum)
			}
			for i := range rec {
				if math.Abs(rec[i]-elev[i]) > 1e-3*(1+math.Abs(elev[i])) {
					t.Fatalf("d=%d point %d: reconstructed coordinate %d = %g, elevated %g", d, k, i, rec[i], elev[i])
				}
			}
		}
	}
}
