package augment

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/imaging"
)

// DeepLab is the segmentation training augmentation (spec §8,
// deeplab-pytorch libs/datasets/base.py:_augmentation): random scale,
// pad to the crop size, random crop, random horizontal flip, then BGR mean
// subtraction.
type DeepLab struct {
	Scales  []float64  // {0.5, 0.75, 1.0, 1.25, 1.5}
	Crop    int        // 321
	MeanBGR [3]float64 // (104.008, 116.669, 122.675)
	Ignore  uint8      // label of padded pixels, 255
	Flip    bool       // flip with probability 0.5
}

// DefaultDeepLab returns the reference VOC settings.
func DefaultDeepLab() DeepLab {
	return DeepLab{
		Scales:  []float64{0.5, 0.75, 1.0, 1.25, 1.5},
		Crop:    321,
		MeanBGR: DeepLabMeanBGR(),
		Ignore:  255,
		Flip:    true,
	}
}

// DeepLabMeanBGR is the Caffe ImageNet mean the reference subtracts.
func DeepLabMeanBGR() [3]float64 { return [3]float64{104.008, 116.669, 122.675} }

// Validate reports bad settings as bad input naming the field.
func (d DeepLab) Validate() error {
	if len(d.Scales) == 0 {
		return badinput.New("", "scales", "need at least one scale")
	}
	for i, s := range d.Scales {
		if !(s > 0) || math.IsInf(s, 0) {
			return badinput.New("", fmt.Sprintf("scales[%d]", i), "scale %v must be finite and > 0", s)
		}
	}
	if d.Crop < 1 {
		return badinput.New("", "crop", "crop size %d must be >= 1", d.Crop)
	}
	return nil
}

// ScaledSize is the reference's (int(w·s), int(h·s)): truncation, not
// rounding.
func (d DeepLab) ScaledSize(w, h int, s float64) (int, int) {
	return int(float64(w) * s), int(float64(h) * s)
}

// DeepLabParams are the random choices of one sample.
type DeepLabParams struct {
	Scale  float64
	X0, Y0 int // crop offset in the scaled, padded image
	Flip   bool
}

// DeepLabSample is one augmented training pair.
type DeepLabSample struct {
	Size   int       // crop side
	Image  []float32 // 3×Size×Size, CHW, BGR minus MeanBGR
	Label  []uint8   // Size×Size, Ignore where padded
	Params DeepLabParams
}

// Sample draws the parameters for a w×h image in the reference's order:
// scale (random.choice), y offset, x offset (random.randint, inclusive),
// flip (random() < 0.5).
func (d DeepLab) Sample(w, h int, r *rand.Rand) (DeepLabParams, error) {
	if err := d.Validate(); err != nil {
		return DeepLabParams{}, err
	}
	var p DeepLabParams
	p.Scale = d.Scales[r.IntN(len(d.Scales))]
	sw, sh := d.ScaledSize(w, h, p.Scale)
	pw, ph := max(sw, d.Crop), max(sh, d.Crop)
	p.Y0 = r.IntN(ph - d.Crop + 1)
	p.X0 = r.IntN(pw - d.Crop + 1)
	if d.Flip {
		p.Flip = r.Float64() < 0.5
	}
	return p, nil
}

// Apply draws the parameters from r and renders the sample.
func (d DeepLab) Apply(img *imaging.RGB, label *imaging.Gray, r *rand.Rand) (*DeepLabSample, error) {
	if err := checkLabel(img, label); err != nil {
		return nil, err
	}
	p, err := d.Sample(img.W, img.H, r)
	if err != nil {
		return nil, err
	}
	return d.Render(img, label, p)
}

func checkLabel(img *imaging.RGB, label *imaging.Gray) error {
	if err := img.Validate(); err != nil {
		return badinput.Wrap("", "image", err)
	}
	if label == nil {
		return badinput.New("", "label", "missing label")
	}
	if err := label.Validate(); err != nil {
		return badinput.Wrap("", "label", err)
	}
	if label.W != img.W || label.H != img.H {
		return badinput.New("", "label", "size %dx%d differs from the image's %dx%d", label.W, label.H, img.W, img.H)
	}
	return nil
}

// Render builds the sample for fixed parameters. The image is resized as
// float32 BGR with OpenCV's INTER_LINEAR (the reference casts to float32
// before cv2.resize), the label with PIL nearest; the padding is the mean
// colour (label Ignore); the mean is subtracted in float64 and the result
// rounded to float32, as numpy's in-place `image -= mean_bgr` does, so a
// padded pixel becomes float32(mean) − mean, below 1e-5 in magnitude.
func (d DeepLab) Render(img *imaging.RGB, label *imaging.Gray, p DeepLabParams) (*DeepLabSample, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if err := checkLabel(img, label); err != nil {
		return nil, err
	}
	sw, sh := d.ScaledSize(img.W, img.H, p.Scale)
	if sw < 1 || sh < 1 {
		return nil, badinput.New("", "image", "%dx%d image at scale %v is empty", img.W, img.H, p.Scale)
	}
	pw, ph := max(sw, d.Crop), max(sh, d.Crop)
	if p.X0 < 0 || p.Y0 < 0 || p.X0+d.Crop > pw || p.Y0+d.Crop > ph {
		return nil, fmt.Errorf("deeplab: crop at (%d, %d) outside the %dx%d padded image", p.X0, p.Y0, pw, ph)
	}
	scaled, err := imaging.ResizeLinearCV(bgrF32(img), sw, sh)
	if err != nil {
		return nil, fmt.Errorf("deeplab: %w", err)
	}
	lab, err := imaging.ResizeGray(label, sw, sh, imaging.Nearest)
	if err != nil {
		return nil, fmt.Errorf("deeplab label: %w", err)
	}
	c := d.Crop
	n := c * c
	out := &DeepLabSample{Size: c, Image: make([]float32, 3*n), Label: make([]uint8, n), Params: p}
	var pad [3]float32
	for ch := range 3 {
		pad[ch] = float32(d.MeanBGR[ch]) // cv2.copyMakeBorder stores the float32 mean
	}
	for y := range c {
		sy := p.Y0 + y
		for x := range c {
			ox := x
			if p.Flip {
				ox = c - 1 - x
			}
			sx := p.X0 + x
			i := y*c + ox
			if sy >= sh || sx >= sw {
				out.Label[i] = d.Ignore
				for ch := range 3 {
					out.Image[ch*n+i] = float32(float64(pad[ch]) - d.MeanBGR[ch])
				}
				continue
			}
			out.Label[i] = lab.Pix[sy*sw+sx]
			px := scaled.Pix[(sy*sw+sx)*3:]
			for ch := range 3 {
				out.Image[ch*n+i] = float32(float64(px[ch]) - d.MeanBGR[ch])
			}
		}
	}
	return out, nil
}

// bgrF32 converts an RGB image to the float32 BGR array cv2.imread(...)
// .astype(np.float32) gives.
func bgrF32(img *imaging.RGB) *imaging.F32 {
	out := &imaging.F32{W: img.W, H: img.H, C: 3, Pix: make([]float32, len(img.Pix))}
	for i := 0; i+2 < len(img.Pix); i += 3 {
		out.Pix[i] = float32(img.Pix[i+2])
		out.Pix[i+1] = float32(img.Pix[i+1])
		out.Pix[i+2] = float32(img.Pix[i])
	}
	return out
}

// DeepLabInput is the test-time input (main.py:test): the full-size image
// as BGR float32 CHW minus meanBGR, no resizing.
func DeepLabInput(img *imaging.RGB, meanBGR [3]float64) ([]float32, error) {
	if err := img.Validate(); err != nil {
		return nil, badinput.Wrap("", "image", err)
	}
	n := img.W * img.H
	out := make([]float32, 3*n)
	for i := range n {
		for ch := range 3 {
			out[ch*n+i] = float32(float64(img.Pix[i*3+2-ch]) - meanBGR[ch])
		}
	}
	return out, nil
}
