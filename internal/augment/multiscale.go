package augment

import (
	"fmt"
	"math"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/imaging"
)

// PyRound is Python 3's round(x) for a float: nearest integer, ties to
// even (round(2.5) == 2, round(3.5) == 4). The reference sizes images with it.
func PyRound(x float64) int {
	return int(math.RoundToEven(x))
}

// DefaultTestScales are the reference's CAM inference scales.
func DefaultTestScales() []float64 { return []float64{0.5, 1.0, 1.5, 2.0} }

// ScaledSize is the test-time size of a w×h image at scale s:
// (round(w·s), round(h·s)) with Python's round (LoadData.VOCDatasetMSF_l2g).
func ScaledSize(w, h int, s float64) (int, int) {
	return PyRound(float64(w) * s), PyRound(float64(h) * s)
}

// ScaledInput is one forward pass of multi-scale inference.
type ScaledInput struct {
	Scale   float64
	Flipped bool
	W, H    int
	Image   []float32 // 3×H×W, CHW, normalized
}

// MultiScale returns the inputs of multi-scale CAM inference (spec §5): for
// each scale the image resized with PIL bicubic to ScaledSize and
// normalized, followed by its horizontal flip, in that order.
func MultiScale(img *imaging.RGB, scales []float64, n Norm) ([]ScaledInput, error) {
	if err := img.Validate(); err != nil {
		return nil, badinput.Wrap("", "image", err)
	}
	if err := n.validate("norm"); err != nil {
		return nil, err
	}
	out := make([]ScaledInput, 0, 2*len(scales))
	for i, s := range scales {
		w, h := ScaledSize(img.W, img.H, s)
		if !(s > 0) || w < 1 || h < 1 {
			return nil, badinput.New("", fmt.Sprintf("scales[%d]", i), "scale %v gives a %dx%d image from %dx%d", s, w, h, img.W, img.H)
		}
		r, err := imaging.ResizeRGB(img, w, h, imaging.Bicubic)
		if err != nil {
			return nil, fmt.Errorf("multi-scale %v: %w", s, err)
		}
		t, err := imaging.NormalizeCHW(r, n.Mean, n.Std)
		if err != nil {
			return nil, fmt.Errorf("multi-scale %v: %w", s, err)
		}
		out = append(out,
			ScaledInput{Scale: s, W: w, H: h, Image: t},
			ScaledInput{Scale: s, Flipped: true, W: w, H: h, Image: flipCHW(t, 3, w, h)})
	}
	return out, nil
}

// flipCHW mirrors each row of a c×h×w tensor (torch.flip(x, [-1])).
func flipCHW(t []float32, c, w, h int) []float32 {
	out := make([]float32, len(t))
	for r := range c * h {
		src := t[r*w : (r+1)*w]
		dst := out[r*w : (r+1)*w]
		for x, v := range src {
			dst[w-1-x] = v
		}
	}
	return out
}
