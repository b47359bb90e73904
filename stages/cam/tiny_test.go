package cam_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
)

// tinyNet is a fixed classifier small enough to recompute by hand: one 3×3
// convolution, stride 2, padding 1, with bias, from the image to the C+1
// CAM channels; featmap = that conv, logits = the mean of its first C
// channels (the reference's head without the backbone and PCM).
type tinyNet struct {
	st   *nn.Store
	w, b *torch.Tensor
	c    int
	// The same weights in Go: wv[((k*3+ch)*3+dy)*3+dx], bv[k].
	wv, bv []float32
}

func newTinyNet(t testing.TB, c int, seed uint64) *tinyNet {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	k := c + 1
	n := &tinyNet{c: c, wv: make([]float32, k*27), bv: make([]float32, k)}
	for i := range n.wv {
		n.wv[i] = float32(r.Float64()*0.6 - 0.3)
	}
	for i := range n.bv {
		n.bv[i] = float32(r.Float64()*0.2 - 0.1)
	}
	set := func(v []float32, shape ...int64) func(*torch.Tensor) error {
		return func(dst *torch.Tensor) error {
			s := torch.NewScope()
			defer s.Close()
			src := s.FromFloat32(v, shape...)
			if err := s.Err(); err != nil {
				return err
			}
			return dst.CopyFrom(src)
		}
	}
	n.st = nn.NewStore(torch.CPU())
	n.w = n.st.Param("conv.weight", []int64{int64(k), 3, 3, 3}, nn.GroupNew, set(n.wv, int64(k), 3, 3, 3))
	n.b = n.st.Param("conv.bias", []int64{int64(k)}, nn.GroupNew, set(n.bv, int64(k)))
	if err := n.st.Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.st.Close)
	return n
}

func (n *tinyNet) Forward(s *torch.Scope, x *torch.Tensor, _ bool) (featmap, logits *torch.Tensor) {
	featmap = s.Conv2d(x, n.w, n.b, torch.Conv2dOpts{Stride: torch.P(2), Padding: torch.P(1)})
	logits = s.Mean(s.Narrow(featmap, 1, 0, int64(n.c)), []int64{2, 3}, false)
	return featmap, logits
}

func (n *tinyNet) Store() *nn.Store { return n.st }
func (n *tinyNet) NumClasses() int  { return n.c }
func (n *tinyNet) Stride() int      { return 2 }

// randomImage is a w×h image of smoothed noise (neighbouring pixels
// correlate, so resizing and upsampling matter, and it is not symmetric, so
// flips matter).
func randomImage(w, h int, seed uint64) *imaging.RGB {
	r := rand.New(rand.NewPCG(seed, 3))
	img := imaging.NewRGB(w, h)
	for y := range h {
		for x := range w {
			for c := range 3 {
				v := 128 + 90*math.Sin(float64(x*(c+1))/5+float64(y)/3+float64(c)) + r.Float64()*60 - 30
				img.Pix[(y*w+x)*3+c] = uint8(min(max(v, 0), 255))
			}
		}
	}
	return img
}

// variant selects deliberate mistakes, to show the comparison would catch
// them.
type variant struct {
	a            float64 // cubic coefficient; the reference's is −0.75
	alignCorners bool
	noFlipBack   bool
	nearestInput bool // PIL nearest instead of bicubic for the input resize
}

var reference = variant{a: -0.75}

// expectedCAMs is spec §5 written out in float64 without the binding: for
// every scale, PIL bicubic resize (internal/imaging) to Python-rounded
// sizes, ToTensor+Normalize, the tiny net's conv as loops, and for the
// image and its flip, bicubic upsampling to the image size, the flipped map
// flipped back; then the mean of the raw maps, ReLU, and division by each
// channel's max + 1e-8. It returns the maps of classes and, for checking
// the fixture, the smallest mean value before ReLU.
func expectedCAMs(t testing.TB, n *tinyNet, img *imaging.RGB, classes []int, scales []float64, flip bool, norm augment.Norm, v variant) ([][]float64, float64) {
	t.Helper()
	W, H := img.W, img.H
	k := n.c + 1
	acc := make([][]float64, k)
	for c := range acc {
		acc[c] = make([]float64, W*H)
	}
	passes := 0
	for _, s := range scales {
		w, h := int(math.RoundToEven(float64(W)*s)), int(math.RoundToEven(float64(H)*s))
		filter := imaging.Bicubic
		if v.nearestInput {
			filter = imaging.Nearest
		}
		r, err := imaging.ResizeRGB(img, w, h, filter)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float64, 3*w*h) // CHW
		for i := range w * h {
			for c := range 3 {
				x[c*w*h+i] = float64((float32(r.Pix[3*i+c])/255 - norm.Mean[c]) / norm.Std[c])
			}
		}
		flips := []bool{false}
		if flip {
			flips = append(flips, true)
		}
		for _, f := range flips {
			in := x
			if f {
				in = flipRows(x, w, 3*h)
			}
			fm, fh, fw := conv(n, in, w, h)
			for c := range k {
				up := upsample(fm[c*fh*fw:(c+1)*fh*fw], fh, fw, H, W, v)
				if f && !v.noFlipBack {
					up = flipRows(up, W, H)
				}
				for i, u := range up {
					acc[c][i] += u
				}
			}
			passes++
		}
	}
	lowest := math.Inf(1)
	out := make([][]float64, len(classes))
	for j, c := range classes {
		m := make([]float64, W*H)
		mx := 0.0
		for i, a := range acc[c] {
			a /= float64(passes)
			lowest = min(lowest, a)
			m[i] = max(a, 0)
			mx = max(mx, m[i])
		}
		for i := range m {
			m[i] /= mx + 1e-8
		}
		out[j] = m
	}
	return out, lowest
}

// flipRows mirrors every row of width w (rows of all planes in sequence).
func flipRows(a []float64, w, rows int) []float64 {
	out := make([]float64, len(a))
	for r := range rows {
		for x := range w {
			out[r*w+x] = a[r*w+w-1-x]
		}
	}
	return out
}

// conv is the tiny net's 3×3, stride 2, padding 1 convolution of a (3, h, w)
// input: (K, ⌈h/2⌉, ⌈w/2⌉).
func conv(n *tinyNet, x []float64, w, h int) ([]float64, int, int) {
	k := n.c + 1
	oh, ow := (h-1)/2+1, (w-1)/2+1
	out := make([]float64, k*oh*ow)
	for o := range k {
		for oy := range oh {
			for ox := range ow {
				sum := float64(n.bv[o])
				for c := range 3 {
					for dy := range 3 {
						iy := 2*oy + dy - 1
						if iy < 0 || iy >= h {
							continue
						}
						for dx := range 3 {
							ix := 2*ox + dx - 1
							if ix < 0 || ix >= w {
								continue
							}
							sum += float64(n.wv[((o*3+c)*3+dy)*3+dx]) * x[(c*h+iy)*w+ix]
						}
					}
				}
				out[(o*oh+oy)*ow+ox] = sum
			}
		}
	}
	return out, oh, ow
}

// upsample is PyTorch's bicubic interpolation (A = v.a, −0.75 for
// F.interpolate) of one (ih, iw) plane to (oh, ow): separable 4-tap
// convolution at source coordinate (d + 0.5)·in/out − 0.5 (align_corners
// False; no clamping of the coordinate), taps clamped to the border.
func upsample(src []float64, ih, iw, oh, ow int, v variant) []float64 {
	taps := func(d, in, out int) ([4]int, [4]float64) {
		var s float64
		switch {
		case !v.alignCorners:
			s = (float64(d)+0.5)*float64(in)/float64(out) - 0.5
		case out > 1:
			s = float64(d) * float64(in-1) / float64(out-1)
		}
		f := math.Floor(s)
		t := s - f
		a := v.a
		c1 := func(x float64) float64 { return ((a+2)*x-(a+3))*x*x + 1 }
		c2 := func(x float64) float64 { return ((a*x-5*a)*x+8*a)*x - 4*a }
		var idx [4]int
		for i := range idx {
			idx[i] = min(max(int(f)-1+i, 0), in-1)
		}
		return idx, [4]float64{c2(t + 1), c1(t), c1(1 - t), c2(2 - t)}
	}
	out := make([]float64, oh*ow)
	for y := range oh {
		ys, wy := taps(y, ih, oh)
		for x := range ow {
			xs, wx := taps(x, iw, ow)
			sum := 0.0
			for i := range 4 {
				row := 0.0
				for j := range 4 {
					row += wx[j] * src[ys[i]*iw+xs[j]]
				}
				sum += wy[i] * row
			}
			out[y*ow+x] = sum
		}
	}
	return out
}

// maxDiff is the largest absolute difference between got and want planes.
func maxDiff(t testing.TB, got [][]float32, want [][]float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d planes, want %d", len(got), len(want))
	}
	d := 0.0
	for p := range got {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("plane %d: %d values, want %d", p, len(got[p]), len(want[p]))
		}
		for i, g := range got[p] {
			d = max(d, math.Abs(float64(g)-want[p][i]))
		}
	}
	return d
}

func maxDiff64(a, b [][]float64) float64 {
	d := 0.0
	for p := range a {
		for i := range a[p] {
			d = max(d, math.Abs(a[p][i]-b[p][i]))
		}
	}
	return d
}
