// Package mbd computes class-agnostic saliency maps without training, with
// the MB+ method of J. Zhang, S. Sclaroff, Z. Lin, X. Shen, B. Price and
// R. Mech, "Minimum Barrier Salient Object Detection at 80 FPS", ICCV 2015.
//
// The image is resized so that its longer side is 300 pixels, converted to
// 8-bit CIE Lab and median filtered; on each channel the fast raster-scan
// Minimum Barrier Distance (MBD) transform is computed with the one-pixel
// image frame as seeds, and the three maps are summed. MB+ adds the
// backgroundness cue (colour contrast to the four image border regions, the
// most different one dropped), then post-processes: centre bias,
// morphological smoothing by reconstruction with a kernel width set from the
// map's mean, and sigmoid contrast enhancement. Defaults are the paper's
// (and its authors' release), including their order of the post-processing
// steps; the authors' artificial-frame removal is not done.
package mbd

import (
	"fmt"
	"math"

	"github.com/l2g/l2g/internal/imaging"
)

// Options are the MB+ parameters; DefaultOptions gives the paper's values.
type Options struct {
	MaxDim         int     `yaml:"max_dim"`        // longer side the image is resized to before computing
	Passes         int     `yaml:"passes"`         // raster scans of the fast MBD, alternating direction
	MedianSize     int     `yaml:"median_size"`    // odd median-filter width on each Lab channel; 1 = off
	Backgroundness bool    `yaml:"backgroundness"` // add the border-contrast cue (MB+); false = plain MB
	MarginRatio    float64 `yaml:"margin_ratio"`   // border region width as a fraction of the side
	CovReg         float64 `yaml:"cov_reg"`        // added to the border colour covariance diagonal (8-bit units²)
	CentreBias     bool    `yaml:"centre_bias"`    // multiply by 1 − normalized distance to the centre
	SmoothAlpha    float64 `yaml:"smooth_alpha"`   // smoothing kernel width δ = α·√mean(map); 0 = off
	ContrastB      float64 `yaml:"contrast_b"`     // slope of the contrast sigmoid; 0 = off
}

// DefaultOptions returns the published MB+ settings.
func DefaultOptions() Options {
	return Options{
		MaxDim:         300,
		Passes:         3,
		MedianSize:     5,
		Backgroundness: true,
		MarginRatio:    0.1,
		CovReg:         50,
		CentreBias:     true,
		SmoothAlpha:    50,
		ContrastB:      10,
	}
}

// Validate reports the first unusable field, named by its YAML key.
func (o Options) Validate() error {
	switch {
	case o.MaxDim < 3:
		return fmt.Errorf("max_dim: %d, want >= 3", o.MaxDim)
	case o.Passes < 1:
		return fmt.Errorf("passes: %d, want >= 1", o.Passes)
	case o.MedianSize < 1 || o.MedianSize%2 == 0:
		return fmt.Errorf("median_size: %d, want an odd number >= 1", o.MedianSize)
	case !(o.MarginRatio > 0 && o.MarginRatio <= 0.5):
		return fmt.Errorf("margin_ratio: %g, want in (0, 0.5]", o.MarginRatio)
	case !(o.CovReg > 0) || math.IsInf(o.CovReg, 0):
		return fmt.Errorf("cov_reg: %g, want > 0 (keeps the covariance invertible on flat borders)", o.CovReg)
	case !(o.SmoothAlpha >= 0) || math.IsInf(o.SmoothAlpha, 0):
		return fmt.Errorf("smooth_alpha: %g, want >= 0", o.SmoothAlpha)
	case !(o.ContrastB >= 0) || math.IsInf(o.ContrastB, 0):
		return fmt.Errorf("contrast_b: %g, want >= 0", o.ContrastB)
	}
	return nil
}

// Saliency returns the MB+ map of img at img's size, 0 = background,
// 255 = most salient. It is safe for concurrent use.
func Saliency(img *imaging.RGB, o Options) (*imaging.Gray, error) {
	if err := img.Validate(); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("mbd options: %w", err)
	}
	small, err := fitMaxDim(img, o.MaxDim)
	if err != nil {
		return nil, fmt.Errorf("mbd: %w", err)
	}
	w, h := small.W, small.H
	lab := toLab(small)
	if o.MedianSize > 1 {
		for c := range lab {
			lab[c] = medianFilter(lab[c], w, h, o.MedianSize)
		}
	}
	s := make([]float32, w*h)
	d := make([]int32, w*h)
	for c := range lab {
		transform(lab[c], w, h, o.Passes, d)
		for i, v := range d {
			s[i] += float32(v)
		}
	}
	normalize(s)
	if o.Backgroundness {
		bg := backgroundness(lab, w, h, o.MarginRatio, o.CovReg)
		for i := range s {
			s[i] += bg[i]
		}
	}
	postProcess(s, w, h, o)
	full, err := resizeMap(s, w, h, img.W, img.H)
	if err != nil {
		return nil, fmt.Errorf("mbd: %w", err)
	}
	normalize(full)
	out := imaging.NewGray(img.W, img.H)
	for i, v := range full {
		out.Pix[i] = uint8(v*255 + 0.5)
	}
	return out, nil
}

// postProcess applies, in the authors' order, centre bias, smoothing by
// reconstruction and contrast enhancement; s ends in [0, 1].
func postProcess(s []float32, w, h int, o Options) {
	if o.CentreBias {
		centreBias(s, w, h)
	}
	normalize(s)
	if o.SmoothAlpha > 0 {
		var sum float64
		for _, v := range s {
			sum += float64(v)
		}
		// δ scales with the map's mean so the smoothing is scale invariant;
		// the authors floor it at 3 pixels.
		width := max(int(o.SmoothAlpha*math.Sqrt(sum/float64(len(s)))), 3)
		q := make([]uint8, len(s))
		for i, v := range s {
			q[i] = uint8(v*255 + 0.5)
		}
		q = morphSmooth(q, w, h, width)
		for i, v := range q {
			s[i] = float32(v)
		}
		normalize(s)
	}
	if o.ContrastB > 0 {
		enhanceContrast(s, float32(o.ContrastB))
	}
}

// centreBias multiplies s by 1 − ‖p − c‖ / ‖corner − c‖ (pixel centres).
func centreBias(s []float32, w, h int) {
	cx, cy := float64(w)/2, float64(h)/2
	r := math.Hypot(cx, cy)
	for y := range h {
		dy := float64(y) + 0.5 - cy
		for x := range w {
			dx := float64(x) + 0.5 - cx
			s[y*w+x] *= float32(1 - math.Hypot(dx, dy)/r)
		}
	}
}

// CentrePrior is the centre-bias weight map alone, 1 − ‖p − c‖ / ‖corner − c‖
// scaled to 0..255: saliency predicted from position only, the baseline a
// method must beat.
func CentrePrior(w, h int) *imaging.Gray {
	s := make([]float32, w*h)
	for i := range s {
		s[i] = 1
	}
	centreBias(s, w, h)
	g := imaging.NewGray(w, h)
	for i, v := range s {
		g.Pix[i] = uint8(v*255 + 0.5)
	}
	return g
}

// enhanceContrast maps s through a sigmoid centred between the mean of the
// pixels above and below half the maximum, which pushes a bimodal map to
// its two modes.
func enhanceContrast(s []float32, b float32) {
	var mx float32
	for _, v := range s {
		mx = max(mx, v)
	}
	t := mx / 2
	var hi, lo float64
	var nhi, nlo int
	for _, v := range s {
		if v >= t {
			hi += float64(v)
			nhi++
		} else {
			lo += float64(v)
			nlo++
		}
	}
	if nhi > 0 {
		hi /= float64(nhi)
	}
	if nlo > 0 {
		lo /= float64(nlo)
	}
	mid := float32((hi + lo) / 2)
	for i, v := range s {
		s[i] = float32(1 / (1 + math.Exp(float64(-b*(v-mid)))))
	}
}

// normalize rescales s to [0, 1] (min-max); a constant map becomes 0.
func normalize(s []float32) {
	if len(s) == 0 {
		return
	}
	lo, hi := s[0], s[0]
	for _, v := range s {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi <= lo {
		clear(s)
		return
	}
	k := 1 / (hi - lo)
	for i, v := range s {
		s[i] = (v - lo) * k
	}
}
