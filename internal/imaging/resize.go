package imaging

import (
	"fmt"
	"math"
)

// Filter selects the resampling kernel of ResizeRGB and ResizeGray. The
// values follow PIL's Image.resize filters.
type Filter int

const (
	// Nearest is PIL's NEAREST: the source pixel whose cell holds the
	// output pixel's centre.
	Nearest Filter = iota
	// Bilinear is PIL's BILINEAR: triangle kernel, antialiased when shrinking.
	Bilinear
	// Bicubic is PIL's BICUBIC: Keys kernel with a = −0.5, antialiased when
	// shrinking.
	Bicubic
)

func (f Filter) String() string {
	switch f {
	case Nearest:
		return "nearest"
	case Bilinear:
		return "bilinear"
	case Bicubic:
		return "bicubic"
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

// ResizeRGB resizes src to w×h exactly as Pillow's Image.resize((w, h), f)
// does for an 8-bit RGB image (Pillow 9.4, no reducing_gap).
func ResizeRGB(src *RGB, w, h int, f Filter) (*RGB, error) {
	if err := src.Validate(); err != nil {
		return nil, fmt.Errorf("resize %s: %w", f, err)
	}
	pix, err := resize8(src.Pix, src.W, src.H, 3, w, h, f)
	if err != nil {
		return nil, err
	}
	return &RGB{W: w, H: h, Pix: pix}, nil
}

// ResizeGray resizes src to w×h exactly as Pillow's Image.resize((w, h), f)
// does for an "L" image. Use Nearest for label masks.
func ResizeGray(src *Gray, w, h int, f Filter) (*Gray, error) {
	if err := src.Validate(); err != nil {
		return nil, fmt.Errorf("resize %s: %w", f, err)
	}
	pix, err := resize8(src.Pix, src.W, src.H, 1, w, h, f)
	if err != nil {
		return nil, err
	}
	return &Gray{W: w, H: h, Pix: pix}, nil
}

func resize8(pix []uint8, sw, sh, nc, dw, dh int, f Filter) ([]uint8, error) {
	if dw < 1 || dh < 1 {
		return nil, fmt.Errorf("resize %s: target size %dx%d must be positive", f, dw, dh)
	}
	if dw == sw && dh == sh {
		// Pillow copies (ImagingCrop of the whole image) for every filter.
		return append([]uint8(nil), pix...), nil
	}
	switch f {
	case Nearest:
		return nearest8(pix, sw, sh, nc, dw, dh), nil
	case Bilinear:
		return resample8(pix, sw, sh, nc, dw, dh, bilinearKernel), nil
	case Bicubic:
		return resample8(pix, sw, sh, nc, dw, dh, bicubicKernel), nil
	}
	return nil, fmt.Errorf("resize: unknown filter %v", f)
}

// nearest8 follows Pillow's ImagingScaleAffine: the source coordinate of
// each output column/row is accumulated step by step in float64 (so the
// rounding of the running sum is reproduced) and truncated.
func nearest8(pix []uint8, sw, sh, nc, dw, dh int) []uint8 {
	ax := float64(sw) / float64(dw)
	ay := float64(sh) / float64(dh)
	xin := make([]int, dw)
	xo := ax * 0.5
	for x := range dw {
		xin[x] = affineCoord(xo, sw)
		xo += ax
	}
	out := make([]uint8, dw*dh*nc)
	yo := ay * 0.5
	for y := range dh {
		yi := affineCoord(yo, sh)
		yo += ay
		if yi < 0 {
			continue // Pillow fills rows outside the source with 0
		}
		row := pix[yi*sw*nc : (yi+1)*sw*nc]
		o := out[y*dw*nc : (y+1)*dw*nc]
		for x, sx := range xin {
			if sx < 0 {
				continue
			}
			copy(o[x*nc:x*nc+nc], row[sx*nc:sx*nc+nc])
		}
	}
	return out
}

// affineCoord is Pillow's COORD macro plus its bounds check: -1 marks a
// position outside the source.
func affineCoord(v float64, n int) int {
	if v < 0 {
		return -1
	}
	i := int(v)
	if i >= n {
		return -1
	}
	return i
}

// kernel is one of Pillow's separable resampling filters.
type kernel struct {
	fn      func(float64) float64
	support float64
}

var (
	bilinearKernel = kernel{fn: bilinearFilter, support: 1}
	bicubicKernel  = kernel{fn: bicubicFilter, support: 2}
)

func bilinearFilter(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// bicubicFilter is Pillow's bicubic_filter with a = −0.5. The explicit
// float64 conversions keep the compiler from fusing multiply-adds, so the
// result is bit-identical to Pillow's C on every architecture.
func bicubicFilter(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		t := float64((a+2)*x) - (a + 3)
		t = float64(t * x)
		return float64(t*x) + 1
	}
	if x < 2 {
		t := float64((x-5)*x) + 8
		t = float64(t*x) - 4
		return t * a
	}
	return 0
}

// precisionBits is Pillow's PRECISION_BITS for 8-bit images: coefficients
// are fixed point with 22 fractional bits.
const precisionBits = 32 - 8 - 2

// coeffs are the fixed-point weights of one pass: output position i reads
// n[i] inputs starting at start[i] with weights k[i*ksize:].
type coeffs struct {
	start, n []int
	k        []int32
	ksize    int
}

// precomputeCoeffs is Pillow's precompute_coeffs + normalize_coeffs_8bpc
// for the box [0, inSize): the support grows with the downscale factor,
// which is what makes shrinking antialiased.
func precomputeCoeffs(inSize, outSize int, kf kernel) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1)
	support := kf.support * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{
		start: make([]int, outSize),
		n:     make([]int, outSize),
		k:     make([]int32, outSize*ksize),
		ksize: ksize,
	}
	w := make([]float64, ksize)
	ss := 1 / filterscale
	for xx := range outSize {
		center := (float64(xx) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		ww := 0.0
		for x := range xmax {
			w[x] = kf.fn(float64(float64(x+xmin)-center+0.5) * ss)
			ww += w[x]
		}
		k := c.k[xx*ksize : (xx+1)*ksize]
		for x := range xmax {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			// Round half away from zero, as normalize_coeffs_8bpc does.
			if v < 0 {
				k[x] = int32(-0.5 + float64(v*(1<<precisionBits)))
			} else {
				k[x] = int32(0.5 + float64(v*(1<<precisionBits)))
			}
		}
		c.start[xx] = xmin
		c.n[xx] = xmax
	}
	return c
}

// clip8 takes a fixed-point accumulator to 0..255 (Pillow's clip8 lookup).
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resample8 is Pillow's ImagingResampleInner for 8-bit images: a horizontal
// pass over the rows the vertical pass needs, then a vertical pass, each
// with 22-bit fixed-point weights and a rounding offset of half a unit.
func resample8(pix []uint8, sw, sh, nc, dw, dh int, kf kernel) []uint8 {
	hc := precomputeCoeffs(sw, dw, kf)
	vc := precomputeCoeffs(sh, dh, kf)
	in, inW := pix, sw
	if dw != sw {
		// Only rows [first, last) feed the vertical pass.
		first := vc.start[0]
		last := vc.start[dh-1] + vc.n[dh-1]
		for i := range vc.start {
			vc.start[i] -= first
		}
		tmp := make([]uint8, dw*(last-first)*nc)
		horizontalPass(tmp, pix[first*sw*nc:last*sw*nc], sw, dw, last-first, nc, hc)
		in, inW = tmp, dw
	}
	if dh == sh {
		return in
	}
	out := make([]uint8, dw*dh*nc)
	verticalPass(out, in, inW*nc, dh, vc)
	return out
}

func horizontalPass(dst, src []uint8, sw, dw, rows, nc int, c coeffs) {
	const half = 1 << (precisionBits - 1)
	for y := range rows {
		srow := src[y*sw*nc : (y+1)*sw*nc]
		drow := dst[y*dw*nc : (y+1)*dw*nc]
		for xx := range dw {
			k := c.k[xx*c.ksize : xx*c.ksize+c.n[xx]]
			s := srow[c.start[xx]*nc : (c.start[xx]+len(k))*nc]
			if nc == 3 {
				s0, s1, s2 := int32(half), int32(half), int32(half)
				for x, w := range k {
					p := s[x*3 : x*3+3]
					s0 += int32(p[0]) * w
					s1 += int32(p[1]) * w
					s2 += int32(p[2]) * w
				}
				drow[xx*3] = clip8(s0)
				drow[xx*3+1] = clip8(s1)
				drow[xx*3+2] = clip8(s2)
				continue
			}
			for ch := range nc {
				acc := int32(half)
				for x, w := range k {
					acc += int32(s[x*nc+ch]) * w
				}
				drow[xx*nc+ch] = clip8(acc)
			}
		}
	}
}

// verticalPass accumulates whole rows tap by tap; integer addition is
// exact, so the order does not change the result and rows stream through
// the cache.
func verticalPass(dst, src []uint8, stride, dh int, c coeffs) {
	const half = 1 << (precisionBits - 1)
	acc := make([]int32, stride)
	for yy := range dh {
		for i := range acc {
			acc[i] = half
		}
		k := c.k[yy*c.ksize : yy*c.ksize+c.n[yy]]
		for y, w := range k {
			row := src[(c.start[yy]+y)*stride : (c.start[yy]+y+1)*stride]
			for i, p := range row {
				acc[i] += int32(p) * w
			}
		}
		drow := dst[yy*stride : (yy+1)*stride]
		for i, a := range acc {
			drow[i] = clip8(a)
		}
	}
}
