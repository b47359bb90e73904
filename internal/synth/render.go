package synth

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/l2g/l2g/internal/imaging"
)

// Shape is the outline of a class's part.
type Shape int

// The part shapes; the first five, with the first five colours, are v3's
// (0 red square, 1 green disc, 2 blue triangle, 3 yellow cross, 4 magenta
// diamond).
const (
	Square Shape = iota
	Disc
	Triangle
	Cross
	Diamond
	Ring
	numShapes
)

func (s Shape) String() string {
	if s < 0 || s >= numShapes {
		return fmt.Sprintf("Shape(%d)", int(s))
	}
	return [...]string{"square", "disc", "triangle", "cross", "diamond", "ring"}[s]
}

type namedColor struct {
	name string
	rgb  [3]uint8
}

func partColors() []namedColor {
	return []namedColor{
		{"red", [3]uint8{220, 30, 30}},
		{"green", [3]uint8{30, 190, 40}},
		{"blue", [3]uint8{40, 60, 230}},
		{"yellow", [3]uint8{235, 215, 30}},
		{"magenta", [3]uint8{215, 40, 215}},
		{"cyan", [3]uint8{30, 200, 210}},
		{"orange", [3]uint8{245, 130, 20}},
		{"white", [3]uint8{245, 245, 245}},
	}
}

// MaxClasses is the number of distinct (shape, colour) parts: class k has
// shape k mod 6 and colour (k + k/6) mod 8, a pair that first repeats at
// k = 48.
const MaxClasses = 48

// PartStyle is what makes a class recognisable.
type PartStyle struct {
	Shape Shape
	Color [3]uint8
	Name  string // e.g. "red_square"; the class name in classes.txt
}

// Style returns the part style of class k (0-based, k < MaxClasses).
func Style(k int) PartStyle {
	cols := partColors()
	c := cols[(k+k/int(numShapes))%len(cols)]
	s := Shape(k % int(numShapes))
	return PartStyle{Shape: s, Color: c.rgb, Name: c.name + "_" + s.String()}
}

// inside reports whether offset (dx, dy) from the centre lies in shape s of
// radius r. Sizes are chosen so the shapes cover similar areas (2.2–3.1 r²).
func (s Shape) inside(dx, dy, r float64) bool {
	ax, ay := math.Abs(dx), math.Abs(dy)
	switch s {
	case Square:
		return ax <= 0.8*r && ay <= 0.8*r
	case Disc:
		return dx*dx+dy*dy <= r*r
	case Triangle:
		// Upward equilateral triangle of circumradius R = 1.3r: inside the
		// three edges whose normals point at 90°, 210° and 330° (y down).
		R := 1.3 * r
		return dy <= R/2 && -0.8660254*dx-0.5*dy <= R/2 && 0.8660254*dx-0.5*dy <= R/2
	case Cross:
		return (ax <= r && ay <= 0.35*r) || (ay <= r && ax <= 0.35*r)
	case Diamond:
		return ax+ay <= 1.2*r
	case Ring:
		d2 := dx*dx + dy*dy
		return d2 <= 1.05*1.05*r*r && d2 >= 0.5*0.5*r*r
	}
	return false
}

// object is one drawn object, kept for tests.
type object struct {
	class        int
	cx, cy, a, b float64
	theta        float64
	px, py       float64 // part centre
}

// Sample is one rendered image.
type Sample struct {
	Image  *imaging.RGB
	Mask   *imaging.Gray // 0 background, 1..K classes, 255 ignore band
	Labels []int         // zero-based classes visible in Mask, sorted
	Sal    *imaging.Gray // nil unless saliency was asked for
}

// renderer holds what is shared by all images of a dataset.
type renderer struct {
	g       Geometry
	w, h, k int
	styles  []PartStyle
	bandOff [][2]int // neighbour offsets within Band/2
}

func newRenderer(g Geometry, w, h, k int) *renderer {
	r := &renderer{g: g, w: w, h: h, k: k}
	for c := range k {
		r.styles = append(r.styles, Style(c))
	}
	if g.Band > 0 {
		rad := max(g.Band/2, 1)
		n := int(rad)
		for dy := -n; dy <= n; dy++ {
			for dx := -n; dx <= n; dx++ {
				if (dx != 0 || dy != 0) && float64(dx*dx+dy*dy) <= rad*rad {
					r.bandOff = append(r.bandOff, [2]int{dx, dy})
				}
			}
		}
	}
	return r
}

func uniform(rng *rand.Rand, r Range) float64 { return r.Min + (r.Max-r.Min)*rng.Float64() }

// valueNoise is a g×g lattice of U[-1,1] values bilinearly interpolated
// over the image (lattice corners on the image corners).
func valueNoise(rng *rand.Rand, g, w, h int) []float32 {
	lat := make([]float64, g*g)
	for i := range lat {
		lat[i] = 2*rng.Float64() - 1
	}
	out := make([]float32, w*h)
	for y := range h {
		fy := float64(y) / float64(max(h-1, 1)) * float64(g-1)
		y0 := min(int(fy), g-2)
		ty := fy - float64(y0)
		for x := range w {
			fx := float64(x) / float64(max(w-1, 1)) * float64(g-1)
			x0 := min(int(fx), g-2)
			tx := fx - float64(x0)
			a := lat[y0*g+x0]*(1-tx) + lat[y0*g+x0+1]*tx
			b := lat[(y0+1)*g+x0]*(1-tx) + lat[(y0+1)*g+x0+1]*tx
			out[y*w+x] = float32(a*(1-ty) + b*ty)
		}
	}
	return out
}

// canvas is the float image being drawn and its label map.
type canvas struct {
	w, h int
	pix  []float32 // RGB, 0..255 before clipping
	lab  []uint8
}

// fill paints the pixels whose centres lie in inside, within the box
// [x0,x1]×[y0,y1], with colour col and label lab (lab < 0 leaves labels).
// It returns the number of pixels painted.
func (c *canvas) fill(x0, y0, x1, y1 float64, inside func(fx, fy float64) bool, col func(fx, fy float64) [3]float32, lab int) int {
	xa, xb := max(int(math.Floor(x0)), 0), min(int(math.Ceil(x1)), c.w-1)
	ya, yb := max(int(math.Floor(y0)), 0), min(int(math.Ceil(y1)), c.h-1)
	n := 0
	for y := ya; y <= yb; y++ {
		fy := float64(y) + 0.5
		for x := xa; x <= xb; x++ {
			fx := float64(x) + 0.5
			if !inside(fx, fy) {
				continue
			}
			v := col(fx, fy)
			o := y*c.w + x
			c.pix[3*o], c.pix[3*o+1], c.pix[3*o+2] = v[0], v[1], v[2]
			if lab >= 0 {
				c.lab[o] = uint8(lab)
			}
			n++
		}
	}
	return n
}

func hsvToRGB(h, s, v float64) [3]float64 {
	h = h - math.Floor(h)
	i := math.Floor(h * 6)
	f := h*6 - i
	p, q, t := v*(1-s), v*(1-f*s), v*(1-(1-f)*s)
	switch int(i) % 6 {
	case 0:
		return [3]float64{v, t, p}
	case 1:
		return [3]float64{q, v, p}
	case 2:
		return [3]float64{p, v, t}
	case 3:
		return [3]float64{p, q, v}
	case 4:
		return [3]float64{t, p, v}
	}
	return [3]float64{v, p, q}
}

// render draws one image from rng; salRng, when not nil, draws the saliency
// noise (a separate stream, so asking for saliency leaves the image as is).
func (r *renderer) render(rng, salRng *rand.Rand) (Sample, []object) {
	g, w, h := &r.g, r.w, r.h
	c := &canvas{w: w, h: h, pix: make([]float32, 3*w*h), lab: make([]uint8, w*h)}

	// Background: base colour plus two octaves of smooth value noise.
	var base, gain [3]float64
	for ch := range 3 {
		base[ch] = uniform(rng, g.BaseColor)
	}
	for ch := range 3 {
		gain[ch] = uniform(rng, g.Gain)
	}
	coarse := valueNoise(rng, g.CoarseGrid, w, h)
	fine := valueNoise(rng, g.FineGrid, w, h)
	for i := range w * h {
		n := g.CoarseAmp*float64(coarse[i]) + g.FineAmp*float64(fine[i])
		for ch := range 3 {
			c.pix[3*i+ch] = float32(base[ch] + gain[ch]*n)
		}
	}

	// Low-saturation clutter near the base colour.
	for range g.Clutter {
		var col [3]float32
		shade := g.ClutterShade * (2*rng.Float64() - 1)
		for ch := range 3 {
			col[ch] = float32(base[ch] + shade + g.ClutterTint*(2*rng.Float64()-1))
		}
		flat := func(_, _ float64) [3]float32 { return col }
		cx, cy := rng.Float64()*float64(w), rng.Float64()*float64(h)
		switch rng.IntN(3) {
		case 0:
			l, hw := uniform(rng, g.LineLength)/2, uniform(rng, g.LineHalfWidth)
			t := rng.Float64() * math.Pi
			ct, st := math.Cos(t), math.Sin(t)
			c.fill(cx-l-hw, cy-l-hw, cx+l+hw, cy+l+hw, func(fx, fy float64) bool {
				dx, dy := fx-cx, fy-cy
				return math.Abs(dx*ct+dy*st) <= l && math.Abs(-dx*st+dy*ct) <= hw
			}, flat, -1)
		case 1:
			rad := uniform(rng, g.DiscRadius)
			c.fill(cx-rad, cy-rad, cx+rad, cy+rad, func(fx, fy float64) bool {
				return (fx-cx)*(fx-cx)+(fy-cy)*(fy-cy) <= rad*rad
			}, flat, -1)
		default:
			hx := uniform(rng, g.BoxHalfSide)
			hy := hx * uniform(rng, g.BoxAspect)
			c.fill(cx-hx, cy-hy, cx+hx, cy+hy, func(fx, fy float64) bool {
				return math.Abs(fx-cx) <= hx && math.Abs(fy-cy) <= hy
			}, flat, -1)
		}
	}

	// Objects: centres spaced by rejection sampling; later objects
	// overwrite earlier ones (occlusion).
	n := g.MinObjects + rng.IntN(g.MaxObjects-g.MinObjects+1)
	objs := make([]object, 0, n)
	for range n {
		o := object{class: rng.IntN(r.k)}
		for try := 0; try < g.PlaceTries; try++ {
			o.cx = g.Margin + rng.Float64()*(float64(w)-2*g.Margin)
			o.cy = g.Margin + rng.Float64()*(float64(h)-2*g.Margin)
			ok := true
			for _, p := range objs {
				if math.Hypot(o.cx-p.cx, o.cy-p.cy) < g.CenterSpacing {
					ok = false
					break
				}
			}
			if ok {
				break
			}
		}
		scale := 1.0
		if g.ObjectScale != (Range{}) {
			scale = math.Exp(uniform(rng, Range{math.Log(g.ObjectScale.Min), math.Log(g.ObjectScale.Max)}))
		}
		period, partR := g.StripePeriod*scale, g.PartRadius*scale
		o.a = scale * uniform(rng, g.BodyAxis)
		o.b = o.a * uniform(rng, g.BodyAspect)
		o.theta = rng.Float64() * math.Pi
		hue := float64(o.class)/float64(r.k) + g.HueSpread*rng.NormFloat64()
		bc := hsvToRGB(hue, g.BodySat, g.BodyVal)
		phase := rng.Float64() * period
		ct, st := math.Cos(o.theta), math.Sin(o.theta)
		lab := o.class + 1
		c.fill(o.cx-o.a, o.cy-o.a, o.cx+o.a, o.cy+o.a, func(fx, fy float64) bool {
			dx, dy := fx-o.cx, fy-o.cy
			u, v := dx*ct+dy*st, -dx*st+dy*ct
			return (u*u)/(o.a*o.a)+(v*v)/(o.b*o.b) <= 1
		}, func(fx, fy float64) [3]float32 {
			// Stripes run across the major axis of the body frame.
			u := (fx-o.cx)*ct + (fy-o.cy)*st
			stripe := g.StripeAmp
			m := u + phase
			if m-period*math.Floor(m/period) >= period/2 {
				stripe = -stripe
			}
			var out [3]float32
			for ch := range 3 {
				out[ch] = float32(255*bc[ch] + stripe + g.BodyNoise*rng.NormFloat64())
			}
			return out
		}, lab)

		phi := rng.Float64() * 2 * math.Pi
		lu, lv := g.PartOffset*o.a*math.Cos(phi), g.PartOffset*o.b*math.Sin(phi)
		o.px, o.py = o.cx+lu*ct-lv*st, o.cy+lu*st+lv*ct
		style := r.styles[o.class]
		pc := [3]float32{float32(style.Color[0]), float32(style.Color[1]), float32(style.Color[2])}
		pr := partR * 1.3 // the triangle's circumradius is the widest extent
		c.fill(o.px-pr, o.py-pr, o.px+pr, o.py+pr, func(fx, fy float64) bool {
			return style.Shape.inside(fx-o.px, fy-o.py, partR)
		}, func(_, _ float64) [3]float32 { return pc }, lab)
		objs = append(objs, o)
	}

	// Whole-image pixel noise, then 8-bit.
	img := imaging.NewRGB(w, h)
	for i, v := range c.pix {
		img.Pix[i] = clip8(float64(v) + g.PixelNoise*rng.NormFloat64())
	}

	mask := imaging.NewGray(w, h)
	copy(mask.Pix, c.lab)
	if len(r.bandOff) > 0 {
		for y := range h {
			for x := range w {
				l := c.lab[y*w+x]
				for _, d := range r.bandOff {
					nx, ny := x+d[0], y+d[1]
					if nx >= 0 && nx < w && ny >= 0 && ny < h && c.lab[ny*w+nx] != l {
						mask.Pix[y*w+x] = 255
						break
					}
				}
			}
		}
	}
	var present [256]bool
	for _, v := range mask.Pix {
		present[v] = true
	}
	var labels []int
	for k := 1; k <= r.k; k++ {
		if present[k] {
			labels = append(labels, k-1)
		}
	}
	s := Sample{Image: img, Mask: mask, Labels: labels}
	if salRng != nil {
		s.Sal = r.saliency(c.lab, salRng)
	}
	return s, objs
}

func clip8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// saliency is the recipe's crude saliency: foreground, box blur, noise,
// clipped and max-normalised.
func (r *renderer) saliency(lab []uint8, rng *rand.Rand) *imaging.Gray {
	w, h, rad := r.w, r.h, r.g.SalBlur/2
	fg := make([]float64, w*h)
	for i, l := range lab {
		if l != 0 {
			fg[i] = 1
		}
	}
	// Separable box blur; windows are clipped at the border and averaged
	// over the pixels they cover.
	tmp := make([]float64, w*h)
	for y := range h {
		for x := range w {
			s, n := 0.0, 0
			for xx := max(x-rad, 0); xx <= min(x+rad, w-1); xx++ {
				s += fg[y*w+xx]
				n++
			}
			tmp[y*w+x] = s / float64(n)
		}
	}
	mx := 0.0
	for y := range h {
		for x := range w {
			s, n := 0.0, 0
			for yy := max(y-rad, 0); yy <= min(y+rad, h-1); yy++ {
				s += tmp[yy*w+x]
				n++
			}
			v := min(max(s/float64(n)+r.g.SalNoise*rng.NormFloat64(), 0), 1)
			fg[y*w+x] = v
			mx = max(mx, v)
		}
	}
	out := imaging.NewGray(w, h)
	if mx > 0 {
		for i, v := range fg {
			out.Pix[i] = clip8(255 * v / mx)
		}
	}
	return out
}
