package mbd

import (
	"math"

	"github.com/l2g/l2g/internal/imaging"
)

// fitMaxDim resizes img so that its longer side is maxDim, keeping the
// aspect ratio; the parameters of MB+ (smoothing width, border margins) are
// calibrated at that scale.
func fitMaxDim(img *imaging.RGB, maxDim int) *imaging.RGB {
	s := float64(maxDim) / float64(max(img.W, img.H))
	w := max(int(math.Round(float64(img.W)*s)), 1)
	h := max(int(math.Round(float64(img.H)*s)), 1)
	if w == img.W && h == img.H {
		return img
	}
	src := make([]float32, len(img.Pix))
	for i, v := range img.Pix {
		src[i] = float32(v)
	}
	dst := resample(src, img.W, img.H, 3, w, h)
	out := imaging.NewRGB(w, h)
	for i, v := range dst {
		out.Pix[i] = sat8(v)
	}
	return out
}

// resizeBilinear resizes a one-channel map.
func resizeBilinear(s []float32, sw, sh, dw, dh int) []float32 {
	if sw == dw && sh == dh {
		return s
	}
	return resample(s, sw, sh, 1, dw, dh)
}

// resample is a separable triangle-filter resize with pixel centres at
// half-integers, widened by the scale factor when shrinking (antialiased,
// as PIL's bilinear), on interleaved float planes.
func resample(src []float32, sw, sh, ch, dw, dh int) []float32 {
	tmp := make([]float32, dw*sh*ch)
	kx := triangleWeights(sw, dw)
	for y := range sh {
		for x, k := range kx {
			for c := range ch {
				var acc float32
				for j, wt := range k.w {
					acc += wt * src[(y*sw+k.start+j)*ch+c]
				}
				tmp[(y*dw+x)*ch+c] = acc
			}
		}
	}
	dst := make([]float32, dw*dh*ch)
	ky := triangleWeights(sh, dh)
	for y, k := range ky {
		for x := range dw {
			for c := range ch {
				var acc float32
				for j, wt := range k.w {
					acc += wt * tmp[((k.start+j)*dw+x)*ch+c]
				}
				dst[(y*dw+x)*ch+c] = acc
			}
		}
	}
	return dst
}

type taps struct {
	start int
	w     []float32
}

func triangleWeights(in, out int) []taps {
	scale := float64(in) / float64(out)
	fs := max(scale, 1)
	res := make([]taps, out)
	for o := range res {
		centre := (float64(o) + 0.5) * scale
		lo := max(int(centre-fs+0.5), 0)
		hi := min(int(centre+fs+0.5), in)
		w := make([]float32, hi-lo)
		var sum float64
		wf := make([]float64, hi-lo)
		for i := range wf {
			t := math.Abs((float64(lo+i) - centre + 0.5) / fs)
			wf[i] = max(1-t, 0)
			sum += wf[i]
		}
		for i := range w {
			w[i] = float32(wf[i] / sum)
		}
		res[o] = taps{start: lo, w: w}
	}
	return res
}
