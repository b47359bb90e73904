package augment

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/imaging"
)

// Norm is a per-channel mean and std in [0, 1] units (torchvision Normalize).
type Norm struct {
	Mean, Std [3]float32
}

// VOCNorm is the ImageNet normalization the reference uses for VOC.
func VOCNorm() Norm {
	return Norm{Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}
}

// COCONorm is the reference's COCO normalization.
func COCONorm() Norm {
	return Norm{Mean: [3]float32{0.471, 0.448, 0.408}, Std: [3]float32{0.234, 0.239, 0.242}}
}

func (n Norm) validate(field string) error {
	for c := range 3 {
		if !(n.Std[c] > 0) || math.IsInf(float64(n.Std[c]), 0) || math.IsNaN(float64(n.Mean[c])) {
			return badinput.New("", fmt.Sprintf("%s[%d]", field, c), "mean %v / std %v: std must be finite and > 0", n.Mean[c], n.Std[c])
		}
	}
	return nil
}

// ReferenceJitter is the reference's ColorJitter(0.3, 0.3, 0.3, 0.1).
func ReferenceJitter() imaging.ColorJitter {
	return imaging.ColorJitter{Brightness: 0.3, Contrast: 0.3, Saturation: 0.3, Hue: 0.1}
}

// Box is a crop window [X1, X2) × [Y1, Y2) in pixel coordinates.
type Box struct {
	X1, Y1, X2, Y2 int
}

// View is one global training view.
type View struct {
	Size  int       // side C of the square view
	Image []float32 // 3×C×C, CHW, normalized
	Sal   []float32 // C×C saliency in [0, 1] (÷ max+1e-10); nil without saliency
	// Box is the crop window in the resized image; with the reference quirk
	// it may extend past the image (that part is zero padded). For the COCO
	// view it is the whole C×C image.
	Box                Box
	ResizedW, ResizedH int
	Jitter             imaging.JitterParams
}

// Local returns the image (3×h×w) and saliency (h×w, nil without saliency)
// of box b sliced out of the view, as the reference slices local crops from
// the jittered, normalized global tensor.
func (v *View) Local(b Box) (img, sal []float32, err error) {
	if b.X1 < 0 || b.Y1 < 0 || b.X2 > v.Size || b.Y2 > v.Size || b.X1 >= b.X2 || b.Y1 >= b.Y2 {
		return nil, nil, fmt.Errorf("local box %+v outside the %dx%d view", b, v.Size, v.Size)
	}
	w, h := b.X2-b.X1, b.Y2-b.Y1
	n := v.Size * v.Size
	img = make([]float32, 0, 3*w*h)
	for c := range 3 {
		plane := v.Image[c*n : (c+1)*n]
		for y := b.Y1; y < b.Y2; y++ {
			img = append(img, plane[y*v.Size+b.X1:y*v.Size+b.X2]...)
		}
	}
	if v.Sal != nil {
		sal = make([]float32, 0, w*h)
		for y := b.Y1; y < b.Y2; y++ {
			sal = append(sal, v.Sal[y*v.Size+b.X1:y*v.Size+b.X2]...)
		}
	}
	return img, sal, nil
}

// VOCView is the VOC global view (spec §1, LoadData.VOCDataset_l2g_sal_crop):
// resize the short side to ShortSide (bicubic image, nearest saliency),
// crop Crop×Crop with the same box for both, ColorJitter, normalize.
type VOCView struct {
	ShortSide int // 512
	Crop      int // 448
	// ReferenceCropQuirk reproduces the reference's swapped crop axes: x
	// offset from [0, H−Crop], y from [0, W−Crop] (W×H the resized size),
	// so a non-square image is zero padded at the bottom (landscape) or
	// right (portrait). Off by default: offsets come from [0, W−Crop] and
	// [0, H−Crop] and the crop always lies inside the image.
	ReferenceCropQuirk bool
	Jitter             imaging.ColorJitter
	Norm               Norm
}

// DefaultVOCView returns the reference settings with the crop quirk fixed.
func DefaultVOCView() VOCView {
	return VOCView{ShortSide: 512, Crop: 448, Jitter: ReferenceJitter(), Norm: VOCNorm()}
}

// Validate reports bad settings as bad input naming the field.
func (c VOCView) Validate() error {
	if c.Crop < 1 {
		return badinput.New("", "crop", "crop size %d must be >= 1", c.Crop)
	}
	if c.ShortSide < c.Crop {
		// The reference's container offsets for a short side below the crop
		// would make views of different sizes; it never happens at 512/448.
		return badinput.New("", "short_side", "short side %d must be >= crop size %d", c.ShortSide, c.Crop)
	}
	if err := c.Jitter.Validate(); err != nil {
		return err
	}
	return c.Norm.validate("norm")
}

// ResizedSize is imutils.ResizeShort: the short side becomes ShortSide, the
// long side round(long·ShortSide/short) with Python's round (half to even).
func (c VOCView) ResizedSize(w, h int) (int, int) {
	if w < h {
		return c.ShortSide, PyRound(float64(h*c.ShortSide) / float64(w))
	}
	return PyRound(float64(w*c.ShortSide) / float64(h)), c.ShortSide
}

// OffsetRange returns the inclusive maxima of the crop offsets for a
// resized image of w×h: (w−Crop, h−Crop), or swapped with the quirk.
func (c VOCView) OffsetRange(w, h int) (xMax, yMax int) {
	xMax, yMax = max(w-c.Crop, 0), max(h-c.Crop, 0)
	if c.ReferenceCropQuirk {
		return yMax, xMax
	}
	return xMax, yMax
}

// VOCParams are the random choices of one VOC view.
type VOCParams struct {
	X0, Y0 int // crop offset in the resized image
	Jitter imaging.JitterParams
}

// Sample draws the crop offset (x, then y, like random.randrange in the
// reference) and the jitter for an image of w×h before resizing.
func (c VOCView) Sample(w, h int, r *rand.Rand) VOCParams {
	xMax, yMax := c.OffsetRange(c.ResizedSize(w, h))
	var p VOCParams
	p.X0 = r.IntN(xMax + 1)
	p.Y0 = r.IntN(yMax + 1)
	p.Jitter = c.Jitter.Sample(r)
	return p
}

// Apply draws the parameters from r and renders the view. sal may be nil.
func (c VOCView) Apply(img *imaging.RGB, sal *imaging.Gray, r *rand.Rand) (*View, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkPair(img, sal); err != nil {
		return nil, err
	}
	return c.Render(img, sal, c.Sample(img.W, img.H, r))
}

// Render builds the view for fixed parameters. sal, when not nil, must
// have the image's size.
func (c VOCView) Render(img *imaging.RGB, sal *imaging.Gray, p VOCParams) (*View, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkPair(img, sal); err != nil {
		return nil, err
	}
	rw, rh := c.ResizedSize(img.W, img.H)
	resized, err := imaging.ResizeRGB(img, rw, rh, imaging.Bicubic)
	if err != nil {
		return nil, fmt.Errorf("voc view: %w", err)
	}
	crop, err := imaging.CropRGB(resized, p.X0, p.Y0, c.Crop, c.Crop)
	if err != nil {
		return nil, fmt.Errorf("voc view: %w", err)
	}
	v := &View{
		Size:     c.Crop,
		Box:      Box{X1: p.X0, Y1: p.Y0, X2: p.X0 + c.Crop, Y2: p.Y0 + c.Crop},
		ResizedW: rw, ResizedH: rh,
		Jitter: p.Jitter,
	}
	if err := finish(v, crop, c.Norm); err != nil {
		return nil, fmt.Errorf("voc view: %w", err)
	}
	if sal != nil {
		rs, err := imaging.ResizeGray(sal, rw, rh, imaging.Nearest)
		if err != nil {
			return nil, fmt.Errorf("voc view saliency: %w", err)
		}
		sc, err := imaging.CropGray(rs, p.X0, p.Y0, c.Crop, c.Crop)
		if err != nil {
			return nil, fmt.Errorf("voc view saliency: %w", err)
		}
		if v.Sal, err = imaging.SaliencyFloat(sc); err != nil {
			return nil, fmt.Errorf("voc view saliency: %w", err)
		}
	}
	return v, nil
}

// finish jitters crop in place and stores its normalized tensor in v.
func finish(v *View, crop *imaging.RGB, n Norm) error {
	if err := v.Jitter.ApplyInPlace(crop); err != nil {
		return err
	}
	var err error
	v.Image, err = imaging.NormalizeCHW(crop, n.Mean, n.Std)
	return err
}

func checkPair(img *imaging.RGB, sal *imaging.Gray) error {
	if err := img.Validate(); err != nil {
		return badinput.Wrap("", "image", err)
	}
	if sal == nil {
		return nil
	}
	if err := sal.Validate(); err != nil {
		return badinput.Wrap("", "saliency", err)
	}
	if sal.W != img.W || sal.H != img.H {
		return badinput.New("", "saliency", "size %dx%d differs from the image's %dx%d", sal.W, sal.H, img.W, img.H)
	}
	return nil
}

// COCOView is the COCO global view (spec §1, LoadData.VOCDataset_l2g_sal):
// image and saliency resized to a Size×Size square with PIL bilinear (the
// aspect ratio is not kept), ColorJitter, normalize. No crop, no flip.
type COCOView struct {
	Size   int // 448
	Jitter imaging.ColorJitter
	Norm   Norm
}

// DefaultCOCOView returns the reference settings.
func DefaultCOCOView() COCOView {
	return COCOView{Size: 448, Jitter: ReferenceJitter(), Norm: COCONorm()}
}

// Validate reports bad settings as bad input naming the field.
func (c COCOView) Validate() error {
	if c.Size < 1 {
		return badinput.New("", "size", "view size %d must be >= 1", c.Size)
	}
	if err := c.Jitter.Validate(); err != nil {
		return err
	}
	return c.Norm.validate("norm")
}

// Apply draws the jitter from r and renders the view. sal may be nil.
func (c COCOView) Apply(img *imaging.RGB, sal *imaging.Gray, r *rand.Rand) (*View, error) {
	return c.Render(img, sal, c.Jitter.Sample(r))
}

// Render builds the view for a fixed jitter draw.
func (c COCOView) Render(img *imaging.RGB, sal *imaging.Gray, jp imaging.JitterParams) (*View, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkPair(img, sal); err != nil {
		return nil, err
	}
	resized, err := imaging.ResizeRGB(img, c.Size, c.Size, imaging.Bilinear)
	if err != nil {
		return nil, fmt.Errorf("coco view: %w", err)
	}
	v := &View{
		Size:     c.Size,
		Box:      Box{X2: c.Size, Y2: c.Size},
		ResizedW: c.Size, ResizedH: c.Size,
		Jitter: jp,
	}
	if err := finish(v, resized, c.Norm); err != nil {
		return nil, fmt.Errorf("coco view: %w", err)
	}
	if sal != nil {
		rs, err := imaging.ResizeGray(sal, c.Size, c.Size, imaging.Bilinear)
		if err != nil {
			return nil, fmt.Errorf("coco view saliency: %w", err)
		}
		if v.Sal, err = imaging.SaliencyFloat(rs); err != nil {
			return nil, fmt.Errorf("coco view saliency: %w", err)
		}
	}
	return v, nil
}
