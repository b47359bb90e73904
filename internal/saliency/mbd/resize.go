package mbd

import (
	"math"

	"github.com/l2g/l2g/internal/imaging"
)

// fitMaxDim resizes img (Pillow bilinear, antialiased when shrinking) so
// that its longer side is maxDim, keeping the aspect ratio; the parameters
// of MB+ (smoothing width, border margins) are calibrated at that scale.
func fitMaxDim(img *imaging.RGB, maxDim int) (*imaging.RGB, error) {
	s := float64(maxDim) / float64(max(img.W, img.H))
	w := max(int(math.Round(float64(img.W)*s)), 1)
	h := max(int(math.Round(float64(img.H)*s)), 1)
	if w == img.W && h == img.H {
		return img, nil
	}
	return imaging.ResizeRGB(img, w, h, imaging.Bilinear)
}

// resizeMap resizes a one-channel float map bilinearly (half-pixel centres).
func resizeMap(s []float32, sw, sh, dw, dh int) ([]float32, error) {
	if sw == dw && sh == dh {
		return s, nil
	}
	r, err := imaging.ResizeLinearCV(&imaging.F32{W: sw, H: sh, C: 1, Pix: s}, dw, dh)
	if err != nil {
		return nil, err
	}
	return r.Pix, nil
}
