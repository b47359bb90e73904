package imaging

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/l2g/l2g/internal/badinput"
)

// This file reproduces torchvision-0.x ColorJitter on PIL images, which is
// what the reference uses (utils/transforms: ImageEnhance.Brightness,
// Contrast, Color and an HSV hue shift), down to Pillow's float32 blend
// arithmetic and its RGB↔HSV conversions.

// AdjustBrightness returns PIL ImageEnhance.Brightness(img).enhance(f):
// a blend with black.
func AdjustBrightness(img *RGB, f float64) (*RGB, error) {
	return adjusted(img, func(p []uint8) { brightness(p, f) })
}

// AdjustContrast returns PIL ImageEnhance.Contrast(img).enhance(f): a blend
// with a flat gray at the rounded mean of the image's "L" conversion.
func AdjustContrast(img *RGB, f float64) (*RGB, error) {
	return adjusted(img, func(p []uint8) { contrast(p, f) })
}

// AdjustSaturation returns PIL ImageEnhance.Color(img).enhance(f): a blend
// with the image's own grayscale ("L" then back to RGB).
func AdjustSaturation(img *RGB, f float64) (*RGB, error) {
	return adjusted(img, func(p []uint8) { saturation(p, f) })
}

// AdjustHue returns torchvision's adjust_hue(img, h): convert to PIL HSV,
// add uint8(h·255) to the hue byte with wrap-around, convert back.
// h must lie in [−0.5, 0.5].
func AdjustHue(img *RGB, h float64) (*RGB, error) {
	if !(h >= -0.5 && h <= 0.5) {
		return nil, fmt.Errorf("adjust hue: factor %v outside [-0.5, 0.5]", h)
	}
	return adjusted(img, func(p []uint8) { hue(p, h) })
}

func adjusted(img *RGB, op func([]uint8)) (*RGB, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("color adjust: %w", err)
	}
	out := &RGB{W: img.W, H: img.H, Pix: append([]uint8(nil), img.Pix...)}
	op(out.Pix)
	return out, nil
}

// blend is one channel of Pillow's ImagingBlend(degenerate, image, alpha):
// alpha is a C float, the sum is formed in float32 and truncated; outside
// [0, 1] the result is clipped first.
func blend(deg, im uint8, alpha float32, extrapolate bool) uint8 {
	t := float32(deg) + float32(alpha*float32(int32(im)-int32(deg)))
	if !extrapolate {
		return uint8(t)
	}
	if t <= 0 {
		return 0
	}
	if t >= 255 {
		return 255
	}
	return uint8(t)
}

func blendAlpha(f float64) (alpha float32, extrapolate bool) {
	a := float32(f)
	return a, !(a >= 0 && a <= 1)
}

func brightness(p []uint8, f float64) {
	a, ex := blendAlpha(f)
	var lut [256]uint8
	for v := range lut {
		lut[v] = blend(0, uint8(v), a, ex)
	}
	for i, v := range p {
		p[i] = lut[v]
	}
}

// luma is Pillow's RGB→L conversion (ITU-R 601-2 in 16-bit fixed point).
func luma(r, g, b uint8) uint8 {
	return uint8((uint32(r)*19595 + uint32(g)*38470 + uint32(b)*7471 + 0x8000) >> 16)
}

// grayMean is int(ImageStat.Stat(img.convert("L")).mean[0] + 0.5).
func grayMean(p []uint8) uint8 {
	var sum uint64
	for i := 0; i < len(p); i += 3 {
		sum += uint64(luma(p[i], p[i+1], p[i+2]))
	}
	return uint8(float64(sum)/float64(len(p)/3) + 0.5)
}

func contrast(p []uint8, f float64) {
	m := grayMean(p)
	a, ex := blendAlpha(f)
	var lut [256]uint8
	for v := range lut {
		lut[v] = blend(m, uint8(v), a, ex)
	}
	for i, v := range p {
		p[i] = lut[v]
	}
}

// saturation blends each channel with the pixel's luma through a
// 256×256 table: building it costs 64K blends, a 448² image needs 600K.
func saturation(p []uint8, f float64) {
	a, ex := blendAlpha(f)
	lut := make([]uint8, 256*256)
	for d := range 256 {
		row := lut[d*256 : d*256+256]
		for v := range row {
			row[v] = blend(uint8(d), uint8(v), a, ex)
		}
	}
	for i := 0; i+2 < len(p); i += 3 {
		row := lut[int(luma(p[i], p[i+1], p[i+2]))*256:]
		row = row[:256]
		p[i], p[i+1], p[i+2] = row[p[i]], row[p[i+1]], row[p[i+2]]
	}
}

// hueShift is np.uint8(h·255): C truncation toward zero, then wrap modulo
// 256 (np.uint8(-25.5) == 231 on the platforms the reference ran on).
func hueShift(h float64) uint8 {
	return uint8(int64(h * 255))
}

// hue shifts the HSV hue byte. Pillow's HSV round trip is not the
// identity, so pixels change even when the shift truncates to 0.
func hue(p []uint8, h float64) {
	shift := hueShift(h)
	t := newHSVTables()
	for i := 0; i+2 < len(p); i += 3 {
		hh, s, v := rgbToHSV(p[i], p[i+1], p[i+2])
		p[i], p[i+1], p[i+2] = t.toRGB(hh+shift, s, v)
	}
}

func clipInt8(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// rgbToHSV is Pillow's rgb2hsv_row with its exact mix of float and double
// arithmetic.
func rgbToHSV(r, g, b uint8) (h, s, v uint8) {
	maxc := max(r, g, b)
	minc := min(r, g, b)
	if maxc == minc {
		return 0, 0, maxc
	}
	cr := float32(maxc - minc)
	sf := cr / float32(maxc)
	rc := float32(maxc-r) / cr
	gc := float32(maxc-g) / cr
	bc := float32(maxc-b) / cr
	var hf float32
	switch {
	case r == maxc:
		hf = bc - gc
	case g == maxc:
		hf = float32(2.0 + float64(rc) - float64(bc))
	default:
		hf = float32(4.0 + float64(gc) - float64(rc))
	}
	// fmod(hf/6 + 1, 1): the argument lies in [5/6, 11/6], where fmod is
	// an exact subtraction of 1 (Sterbenz), so skip the slow math.Mod.
	x := float64(hf)/6.0 + 1.0
	if x >= 1 {
		x -= 1
	}
	hf = float32(x)
	return clipInt8(int(float64(hf) * 255.0)), clipInt8(int(float64(sf) * 255.0)), maxc
}

// hsvTables hold the per-hue sector and fraction and the per-saturation
// factor of Pillow's hsv2rgb, which depend on one byte each.
type hsvTables struct {
	sector [256]int
	frac   [256]float32
	fs     [256]float32
}

func newHSVTables() *hsvTables {
	t := new(hsvTables)
	for h := range 256 {
		hd := float64(float32(h)) * 6.0 / 255.0
		i := int(math.Floor(hd))
		t.sector[h] = i % 6
		t.frac[h] = float32(hd - float64(float32(i)))
	}
	for s := range 256 {
		t.fs[s] = float32(float64(float32(s)) / 255.0)
	}
	return t
}

// toRGB follows Pillow's hsv2rgb with its mix of float and double
// arithmetic; C's round() rounds half away from zero, as math.Round does.
// The explicit conversions keep Go from fusing multiply-adds.
func (t *hsvTables) toRGB(h, s, v uint8) (r, g, b uint8) {
	if s == 0 {
		return v, v, v
	}
	f := t.frac[h]
	fs := t.fs[s]
	vf := float64(v)
	p := clipInt8(int(math.Round(vf * (1.0 - float64(fs)))))
	q := clipInt8(int(math.Round(vf * (1.0 - float64(fs*f)))))
	u := clipInt8(int(math.Round(vf * (1.0 - float64(float64(fs)*(1.0-float64(f)))))))
	switch t.sector[h] {
	case 0:
		return v, u, p
	case 1:
		return q, v, p
	case 2:
		return p, v, u
	case 3:
		return p, q, v
	case 4:
		return u, p, v
	default:
		return v, p, q
	}
}

// JitterOp names one colour adjustment of ColorJitter.
type JitterOp uint8

const (
	OpBrightness JitterOp = iota
	OpContrast
	OpSaturation
	OpHue
)

func (o JitterOp) String() string {
	switch o {
	case OpBrightness:
		return "brightness"
	case OpContrast:
		return "contrast"
	case OpSaturation:
		return "saturation"
	case OpHue:
		return "hue"
	}
	return fmt.Sprintf("JitterOp(%d)", uint8(o))
}

// ColorJitter holds the jitter strengths: brightness, contrast and
// saturation factors are drawn from U[max(0, 1−x), 1+x], the hue shift from
// U[−Hue, Hue]; a zero strength disables that op. The reference uses
// ColorJitter{0.3, 0.3, 0.3, 0.1}. The zero value does nothing.
type ColorJitter struct {
	Brightness, Contrast, Saturation, Hue float64
}

// Validate reports a negative strength or a hue strength above 0.5 as bad
// input naming the field.
func (j ColorJitter) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"brightness", j.Brightness}, {"contrast", j.Contrast}, {"saturation", j.Saturation}, {"hue", j.Hue}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			return badinput.New("", "color_jitter."+f.name, "strength %v must be a finite number >= 0", f.v)
		}
	}
	if j.Hue > 0.5 {
		return badinput.New("", "color_jitter.hue", "strength %v must be <= 0.5", j.Hue)
	}
	return nil
}

// JitterParams is one draw of ColorJitter: the factors and the order in
// which the enabled ops run. It is plain data so it can be logged or
// replayed.
type JitterParams struct {
	Order                                 []JitterOp
	Brightness, Contrast, Saturation, Hue float64
}

// Sample draws the factors in torchvision's order (brightness, contrast,
// saturation, hue), then shuffles the enabled ops.
func (j ColorJitter) Sample(r *rand.Rand) JitterParams {
	var p JitterParams
	uniform := func(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }
	if j.Brightness > 0 {
		p.Brightness = uniform(max(0, 1-j.Brightness), 1+j.Brightness)
		p.Order = append(p.Order, OpBrightness)
	}
	if j.Contrast > 0 {
		p.Contrast = uniform(max(0, 1-j.Contrast), 1+j.Contrast)
		p.Order = append(p.Order, OpContrast)
	}
	if j.Saturation > 0 {
		p.Saturation = uniform(max(0, 1-j.Saturation), 1+j.Saturation)
		p.Order = append(p.Order, OpSaturation)
	}
	if j.Hue > 0 {
		p.Hue = uniform(-j.Hue, j.Hue)
		p.Order = append(p.Order, OpHue)
	}
	r.Shuffle(len(p.Order), func(a, b int) { p.Order[a], p.Order[b] = p.Order[b], p.Order[a] })
	return p
}

// Apply returns img with the ops of p applied in p.Order.
func (p JitterParams) Apply(img *RGB) (*RGB, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("color jitter: %w", err)
	}
	out := &RGB{W: img.W, H: img.H, Pix: append([]uint8(nil), img.Pix...)}
	if err := p.ApplyInPlace(out); err != nil {
		return nil, err
	}
	return out, nil
}

// ApplyInPlace applies the ops of p to img's pixels in p.Order.
func (p JitterParams) ApplyInPlace(img *RGB) error {
	if err := img.Validate(); err != nil {
		return fmt.Errorf("color jitter: %w", err)
	}
	for _, op := range p.Order {
		switch op {
		case OpBrightness:
			brightness(img.Pix, p.Brightness)
		case OpContrast:
			contrast(img.Pix, p.Contrast)
		case OpSaturation:
			saturation(img.Pix, p.Saturation)
		case OpHue:
			if !(p.Hue >= -0.5 && p.Hue <= 0.5) {
				return fmt.Errorf("color jitter: hue factor %v outside [-0.5, 0.5]", p.Hue)
			}
			hue(img.Pix, p.Hue)
		default:
			return fmt.Errorf("color jitter: unknown op %v", op)
		}
	}
	return nil
}
