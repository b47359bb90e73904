// Package crf is the fully connected CRF that DeepLab-v2 applies at test
// time (deeplab-pytorch libs/utils/crf.py over pydensecrf; Krähenbühl &
// Koltun, NIPS 2011), with pydensecrf's mean-field semantics:
//
//	Q⁰ = softmax(−U)
//	Qᵗ⁺¹ = softmax(−U + Σ_k w_k · N_k K_k N_k Qᵗ)
//
// per pixel over labels. K_k is the Gaussian kernel matrix of the features
// (x/sxy, y/sxy) or (x/sxy, y/sxy, r/srgb, g/srgb, b/srgb), computed by a
// permutohedral lattice, with its diagonal (the self term) included, as in
// densecrf: nothing subtracts it. N_k = diag(1/√(K_k·1)) is densecrf's
// NORMALIZE_SYMMETRIC, the pydensecrf default, so the lattice's arbitrary
// scale cancels. The +w·KQ sign is densecrf's PottsCompatibility(w), which
// returns −w·KQ as an energy; it differs from the textbook Potts
// w·Σ_{l'≠l} KQ_{l'} only by a per-pixel constant that softmax removes.
//
// Deviation from the reference: DeepLab's crf() passes the mean-subtracted
// BGR float image cast to uint8 (negative values wrap around), which gives
// the bilateral kernel meaningless colours. This package takes the original
// 0–255 RGB image. Channel order does not matter: all three colour σ are
// equal.
package crf

import (
	"context"
	"fmt"
	"math"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/imaging"
)

// Params are the CRF settings (names from the DeepLab config's CRF block).
type Params struct {
	PosXYStd float32 // Gaussian (smoothness) kernel σ in pixels, POS_XY_STD
	PosW     float32 // its Potts weight, POS_W
	BiXYStd  float32 // bilateral (appearance) kernel spatial σ, BI_XY_STD
	BiRGBStd float32 // its colour σ in 0–255 units, BI_RGB_STD
	BiW      float32 // its Potts weight, BI_W
	Iters    int     // mean-field iterations, ITER_MAX
	// Workers bounds the goroutines used; 0 means GOMAXPROCS. Results do
	// not depend on it.
	Workers int
}

// DefaultParams returns configs/voc12_resnet_dplv2.yaml's CRF block.
func DefaultParams() Params {
	return Params{PosXYStd: 1, PosW: 3, BiXYStd: 67, BiRGBStd: 3, BiW: 4, Iters: 10}
}

// Field is a per-label, per-pixel float map laid out (C, H, W): element
// (c, y, x) is Data[(c*H+y)*W+x].
type Field struct {
	C, H, W int
	Data    []float32
}

// Validate checks that the buffer matches the shape.
func (f Field) Validate() error {
	if f.C < 1 || f.H < 1 || f.W < 1 || len(f.Data) != f.C*f.H*f.W {
		return fmt.Errorf("field %dx%dx%d has %d values, want C,H,W ≥ 1 and C·H·W", f.C, f.H, f.W, len(f.Data))
	}
	return nil
}

// unaryClip is pydensecrf.utils.unary_from_softmax's default clip.
const unaryClip = 1e-5

// UnaryFromProb returns −log(clip(p, 1e-5, 1)), pydensecrf's
// unary_from_softmax as the reference calls it.
func UnaryFromProb(prob Field) (Field, error) {
	if err := prob.Validate(); err != nil {
		return Field{}, badinput.Wrap("", "prob", err)
	}
	u := Field{C: prob.C, H: prob.H, W: prob.W, Data: make([]float32, len(prob.Data))}
	for i, p := range prob.Data {
		u.Data[i] = float32(-math.Log(float64(min(max(p, unaryClip), 1))))
	}
	return u, nil
}

// Argmax returns the per-pixel label with the highest value (the first on
// ties) as a label map. C must be ≤ 255, since 255 means "ignore".
func (f Field) Argmax() (*imaging.Gray, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("argmax: %w", err)
	}
	if f.C > 255 {
		return nil, fmt.Errorf("argmax: %d labels do not fit a label map (max 255)", f.C)
	}
	hw := f.H * f.W
	g := imaging.NewGray(f.W, f.H)
	for i := range hw {
		best, bl := f.Data[i], 0
		for c := 1; c < f.C; c++ {
			if v := f.Data[c*hw+i]; v > best {
				best, bl = v, c
			}
		}
		g.Pix[i] = uint8(bl)
	}
	return g, nil
}

// kernel is one pairwise term: its lattice, the symmetric normalisation
// 1/√(K·1) per pixel, and its Potts weight.
type kernel struct {
	lat  *lattice
	norm []float32
	w    float32
}

// Infer runs mean-field inference and returns the marginals Q (C, H, W).
// unary is −log p per label (see UnaryFromProb); img must have the unary's
// H×W size. Bad shapes or parameters are *badinput.Error.
func Infer(ctx context.Context, unary Field, img *imaging.RGB, p Params) (Field, error) {
	if err := unary.Validate(); err != nil {
		return Field{}, badinput.Wrap("", "unary", err)
	}
	if img == nil {
		return Field{}, badinput.New("", "image", "crf: no image")
	}
	if err := img.Validate(); err != nil {
		return Field{}, badinput.Wrap("", "image", err)
	}
	if img.W != unary.W || img.H != unary.H {
		return Field{}, badinput.New("", "image", "crf: image is %dx%d, unary is %dx%d", img.W, img.H, unary.W, unary.H)
	}
	if err := p.validate(); err != nil {
		return Field{}, err
	}
	for i, v := range unary.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return Field{}, badinput.New("", "unary", "crf: unary value %d is %v", i, v)
		}
	}

	kernels, err := buildKernels(ctx, img, p)
	if err != nil {
		return Field{}, err
	}
	q, err := meanField(ctx, toPixelMajor(unary), unary.C, kernels, p.Iters, p.Workers)
	if err != nil {
		return Field{}, err
	}
	return fromPixelMajor(q, unary.C, unary.H, unary.W), nil
}

func (p Params) validate() error {
	if p.Iters < 0 {
		return badinput.New("", "crf.iters", "crf: %d iterations", p.Iters)
	}
	if p.Workers < 0 {
		return badinput.New("", "crf.workers", "crf: %d workers", p.Workers)
	}
	for _, f := range []struct {
		name string
		v    float32
		pos  bool // a σ: must be > 0 when its weight is non-zero
		used bool
	}{
		{"crf.pos_w", p.PosW, false, true},
		{"crf.bi_w", p.BiW, false, true},
		{"crf.pos_xy_std", p.PosXYStd, true, p.PosW != 0},
		{"crf.bi_xy_std", p.BiXYStd, true, p.BiW != 0},
		{"crf.bi_rgb_std", p.BiRGBStd, true, p.BiW != 0},
	} {
		v := float64(f.v)
		if math.IsNaN(v) || math.IsInf(v, 0) || (f.pos && f.used && v <= 0) {
			return badinput.New("", f.name, "crf: invalid value %v", f.v)
		}
	}
	return nil
}

// buildKernels embeds the pixel features in lattices; a zero-weight term is
// skipped.
func buildKernels(ctx context.Context, img *imaging.RGB, p Params) ([]kernel, error) {
	w, h := img.W, img.H
	n := w * h
	var ks []kernel
	if p.PosW != 0 {
		f := make([]float32, n*2)
		for y := range h {
			for x := range w {
				i := y*w + x
				f[i*2] = float32(x) / p.PosXYStd
				f[i*2+1] = float32(y) / p.PosXYStd
			}
		}
		k, err := newKernel(ctx, f, n, 2, p.PosW, p.Workers)
		if err != nil {
			return nil, fmt.Errorf("crf: gaussian kernel: %w", err)
		}
		ks = append(ks, k)
	}
	if p.BiW != 0 {
		f := make([]float32, n*5)
		for y := range h {
			for x := range w {
				i := y*w + x
				f[i*5] = float32(x) / p.BiXYStd
				f[i*5+1] = float32(y) / p.BiXYStd
				for c := range 3 {
					f[i*5+2+c] = float32(img.Pix[i*3+c]) / p.BiRGBStd
				}
			}
		}
		k, err := newKernel(ctx, f, n, 5, p.BiW, p.Workers)
		if err != nil {
			return nil, fmt.Errorf("crf: bilateral kernel: %w", err)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

func newKernel(ctx context.Context, feat []float32, n, d int, w float32, workers int) (kernel, error) {
	lat, err := newLattice(ctx, feat, n, d, workers)
	if err != nil {
		return kernel{}, err
	}
	norm := make([]float32, n)
	for i := range norm {
		norm[i] = 1
	}
	lat.filter(norm, norm, 1)
	for i, v := range norm {
		norm[i] = float32(1 / math.Sqrt(float64(v)+1e-20))
	}
	return kernel{lat: lat, norm: norm, w: w}, nil
}

// meanField runs densecrf's DenseCRF::inference on a pixel-major (N×C)
// unary and returns Q in the same layout.
func meanField(ctx context.Context, unary []float32, c int, ks []kernel, iters, workers int) ([]float32, error) {
	n := len(unary) / c
	q := make([]float32, len(unary))
	logit := make([]float32, len(unary))
	for i, u := range unary {
		logit[i] = -u
	}
	softmaxRows(q, logit, c, workers)
	scaled := make([]float32, len(unary))
	msg := make([]float32, len(unary))
	for it := range iters {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("crf: iteration %d: %w", it, err)
		}
		for i, u := range unary {
			logit[i] = -u
		}
		for _, k := range ks {
			parallelFor(n, workers, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					s := k.norm[i]
					for l := i * c; l < (i+1)*c; l++ {
						scaled[l] = q[l] * s
					}
				}
			})
			k.lat.filter(msg, scaled, c)
			parallelFor(n, workers, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					s := k.w * k.norm[i]
					for l := i * c; l < (i+1)*c; l++ {
						logit[l] += s * msg[l]
					}
				}
			})
		}
		softmaxRows(q, logit, c, workers)
	}
	return q, nil
}

// softmaxRows writes the per-pixel softmax of x (N×C) into q, subtracting
// the row maximum first (densecrf's expAndNormalize).
func softmaxRows(q, x []float32, c, workers int) {
	parallelFor(len(x)/c, workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := x[i*c : (i+1)*c]
			out := q[i*c : (i+1)*c]
			m := row[0]
			for _, v := range row[1:] {
				m = max(m, v)
			}
			var s float32
			for l, v := range row {
				e := exp32(v - m)
				out[l] = e
				s += e
			}
			inv := 1 / s
			for l := range out {
				out[l] *= inv
			}
		}
	})
}

// toPixelMajor transposes (C, H·W) to (H·W, C), densecrf's column layout,
// so the lattice moves one contiguous label vector per pixel.
func toPixelMajor(f Field) []float32 {
	hw := f.H * f.W
	out := make([]float32, len(f.Data))
	for c := range f.C {
		for i, v := range f.Data[c*hw : (c+1)*hw] {
			out[i*f.C+c] = v
		}
	}
	return out
}

func fromPixelMajor(q []float32, c, h, w int) Field {
	hw := h * w
	f := Field{C: c, H: h, W: w, Data: make([]float32, len(q))}
	for i := range hw {
		for l := range c {
			f.Data[l*hw+i] = q[i*c+l]
		}
	}
	return f
}
