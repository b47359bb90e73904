package imaging

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
)

// seq3 is a w×h RGB image whose pixel (x, y) is (10y+x, 100+10y+x, 200+x).
func seq3(w, h int) *RGB {
	m := NewRGB(w, h)
	for y := range h {
		for x := range w {
			copy(m.Pix[(y*w+x)*3:], []uint8{uint8(10*y + x), uint8(100 + 10*y + x), uint8(200 + x)})
		}
	}
	return m
}

func TestCropZeroPads(t *testing.T) {
	m := seq3(4, 3)
	// Window from (-1, 1), 4×3: column 0 and row 2 of the window lie outside.
	c, err := CropRGB(m, -1, 1, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{
		0, 0, 0, 10, 110, 200, 11, 111, 201, 12, 112, 202,
		0, 0, 0, 20, 120, 200, 21, 121, 201, 22, 122, 202,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	}
	if !slices.Equal(c.Pix, want) {
		t.Errorf("crop = %v\nwant %v", c.Pix, want)
	}
	// Window entirely outside: all zero.
	c, err = CropRGB(m, 10, -7, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Pix, make([]uint8, 12)) {
		t.Errorf("outside crop = %v, want zeros", c.Pix)
	}
	g := &Gray{W: 3, H: 2, Pix: []uint8{1, 2, 3, 4, 5, 6}}
	cg, err := CropGray(g, 1, 1, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{5, 6, 0, 0, 0, 0}; !slices.Equal(cg.Pix, want) {
		t.Errorf("gray crop = %v, want %v", cg.Pix, want)
	}
	if _, err := CropGray(g, 0, 0, 0, 2); err == nil {
		t.Error("empty crop: want error")
	}
}

func TestFlip(t *testing.T) {
	f, err := FlipRGB(seq3(3, 2))
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{2, 102, 202, 1, 101, 201, 0, 100, 200, 12, 112, 202, 11, 111, 201, 10, 110, 200}
	if !slices.Equal(f.Pix, want) {
		t.Errorf("flip = %v, want %v", f.Pix, want)
	}
	g, err := FlipGray(&Gray{W: 3, H: 2, Pix: []uint8{1, 2, 3, 4, 5, 6}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{3, 2, 1, 6, 5, 4}; !slices.Equal(g.Pix, want) {
		t.Errorf("gray flip = %v, want %v", g.Pix, want)
	}
}

func TestNormalizeCHW(t *testing.T) {
	m := &RGB{W: 2, H: 1, Pix: []uint8{0, 128, 255, 51, 0, 10}}
	mean := [3]float32{0.485, 0.456, 0.406}
	std := [3]float32{0.229, 0.224, 0.225}
	got, err := NormalizeCHW(m, mean, std)
	if err != nil {
		t.Fatal(err)
	}
	// CHW: R of both pixels, then G, then B; each (v/255 − mean)/std in float32.
	f := func(v uint8, c int) float32 { return (float32(v)/255 - mean[c]) / std[c] }
	want := []float32{f(0, 0), f(51, 0), f(128, 1), f(0, 1), f(255, 2), f(10, 2)}
	if !slices.Equal(got, want) {
		t.Errorf("normalize = %v, want %v", got, want)
	}
	if want0 := float32(-0.485) / 0.229; got[0] != want0 {
		t.Errorf("black R = %v, want %v", got[0], want0)
	}
	if _, err := NormalizeCHW(m, mean, [3]float32{1, 0, 1}); err == nil {
		t.Error("zero std: want error")
	}
}

func TestSaliencyFloat(t *testing.T) {
	got, err := SaliencyFloat(&Gray{W: 3, H: 1, Pix: []uint8{0, 51, 204}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 0 || got[2] != 1 || got[1] != (float32(51)/255)/(float32(204)/255) {
		t.Errorf("saliency = %v, want [0, 0.25, 1]", got)
	}
	if got[1] < 0.2499999 || got[1] > 0.2500001 {
		t.Errorf("saliency[1] = %v, want 0.25", got[1])
	}
	zero, err := SaliencyFloat(NewGray(2, 2))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(zero, make([]float32, 4)) {
		t.Errorf("all-zero saliency = %v, want zeros", zero)
	}
}

func TestResizeRejectsBadSizes(t *testing.T) {
	if _, err := ResizeRGB(seq3(4, 3), 0, 3, Bicubic); err == nil {
		t.Error("width 0: want error")
	}
	if _, err := ResizeGray(&Gray{W: 3, H: 3, Pix: make([]uint8, 8)}, 2, 2, Nearest); err == nil {
		t.Error("short buffer: want error")
	}
	if _, err := ResizeRGB(seq3(4, 3), 2, 2, Filter(9)); err == nil {
		t.Error("unknown filter: want error")
	}
	same, err := ResizeRGB(seq3(4, 3), 4, 3, Bicubic)
	if err != nil || !slices.Equal(same.Pix, seq3(4, 3).Pix) {
		t.Errorf("same-size resize must copy: %v", err)
	}
	if _, err := ResizeLinearCV(&F32{W: 2, H: 2, C: 3, Pix: make([]float32, 12)}, 3, 0); err == nil {
		t.Error("cv height 0: want error")
	}
}

// TestNearestCentreRule pins PIL's nearest rule: output pixel i reads source
// floor((i+0.5)·in/out).
func TestNearestCentreRule(t *testing.T) {
	g := &Gray{W: 5, H: 1, Pix: []uint8{0, 1, 2, 3, 4}}
	up, err := ResizeGray(g, 8, 1, Nearest)
	if err != nil {
		t.Fatal(err)
	}
	// (i+0.5)·5/8 = 0.31, 0.94, 1.56, 2.19, 2.81, 3.44, 4.06, 4.69
	if want := []uint8{0, 0, 1, 2, 2, 3, 4, 4}; !slices.Equal(up.Pix, want) {
		t.Errorf("nearest 5→8 = %v, want %v", up.Pix, want)
	}
	down, err := ResizeGray(g, 2, 1, Nearest)
	if err != nil {
		t.Fatal(err)
	}
	// 1.25, 3.75
	if want := []uint8{1, 3}; !slices.Equal(down.Pix, want) {
		t.Errorf("nearest 5→2 = %v, want %v", down.Pix, want)
	}
}

func TestHueShiftWrapsLikeNumpy(t *testing.T) {
	// np.uint8(h*255): truncate toward zero, then wrap.
	for _, c := range []struct {
		h    float64
		want uint8
	}{{0.1, 25}, {-0.1, 231}, {-0.003, 0}, {0.5, 127}, {-0.5, 129}, {-0.0765, 237}} {
		if got := hueShift(c.h); got != c.want {
			t.Errorf("hueShift(%v) = %d, want %d", c.h, got, c.want)
		}
	}
	if _, err := AdjustHue(seq3(2, 2), 0.6); err == nil {
		t.Error("hue 0.6: want error")
	}
}

func TestColorJitterSample(t *testing.T) {
	j := ColorJitter{Brightness: 0.3, Contrast: 0.3, Saturation: 0.3, Hue: 0.1}
	seen := map[[4]JitterOp]bool{}
	for i := range 400 {
		p := j.Sample(rand.New(rand.NewPCG(uint64(i), 7)))
		if len(p.Order) != 4 {
			t.Fatalf("order %v: want all 4 ops", p.Order)
		}
		sorted := slices.Clone(p.Order)
		slices.Sort(sorted)
		if !slices.Equal(sorted, []JitterOp{OpBrightness, OpContrast, OpSaturation, OpHue}) {
			t.Fatalf("order %v is not a permutation of the 4 ops", p.Order)
		}
		seen[[4]JitterOp(p.Order)] = true
		for _, f := range []float64{p.Brightness, p.Contrast, p.Saturation} {
			if f < 0.7 || f > 1.3 {
				t.Fatalf("factor %v outside [0.7, 1.3]", f)
			}
		}
		if p.Hue < -0.1 || p.Hue > 0.1 {
			t.Fatalf("hue %v outside [-0.1, 0.1]", p.Hue)
		}
	}
	if len(seen) != 24 {
		t.Errorf("saw %d of 24 orders in 400 draws", len(seen))
	}
	a := j.Sample(rand.New(rand.NewPCG(5, 5)))
	b := j.Sample(rand.New(rand.NewPCG(5, 5)))
	if !slices.Equal(a.Order, b.Order) || a.Hue != b.Hue || a.Contrast != b.Contrast {
		t.Error("same seed gave different draws")
	}
	// Disabled ops are not drawn and brightness > 1 keeps its lower bound at 0.
	p := ColorJitter{Brightness: 1.5}.Sample(rand.New(rand.NewPCG(1, 2)))
	if len(p.Order) != 1 || p.Order[0] != OpBrightness || p.Brightness < 0 || p.Brightness > 2.5 {
		t.Errorf("brightness-only draw = %+v", p)
	}
	if p := (ColorJitter{}).Sample(rand.New(rand.NewPCG(1, 2))); len(p.Order) != 0 {
		t.Errorf("zero jitter drew ops %v", p.Order)
	}
}

func TestColorJitterValidate(t *testing.T) {
	if err := (ColorJitter{0.3, 0.3, 0.3, 0.1}).Validate(); err != nil {
		t.Fatal(err)
	}
	for field, j := range map[string]ColorJitter{
		"color_jitter.contrast": {Contrast: -0.1},
		"color_jitter.hue":      {Hue: 0.6},
	} {
		err := j.Validate()
		var bi *badinput.Error
		if !errors.As(err, &bi) || bi.Field != field {
			t.Errorf("%+v: error %v, want bad input on %s", j, err, field)
		}
	}
}

func BenchmarkResizeBicubic500x375ToShort512(b *testing.B) {
	src := synthRGB(500, 375)
	b.SetBytes(int64(len(src.Pix)))
	for b.Loop() {
		if _, err := ResizeRGB(src, 683, 512, Bicubic); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkColorJitter448(b *testing.B) {
	src := synthRGB(448, 448)
	p := JitterParams{
		Order:      []JitterOp{OpHue, OpContrast, OpBrightness, OpSaturation},
		Brightness: 1.2, Contrast: 0.8, Saturation: 1.1, Hue: 0.05,
	}
	b.SetBytes(int64(len(src.Pix)))
	for b.Loop() {
		if _, err := p.Apply(src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResizeLinearCV500x375x1_25(b *testing.B) {
	src := synthF32(500, 375)
	for b.Loop() {
		if _, err := ResizeLinearCV(src, 625, 468); err != nil {
			b.Fatal(err)
		}
	}
}
