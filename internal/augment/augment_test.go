package augment

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/imaging"
)

func randRGB(r *rand.Rand, w, h int) *imaging.RGB {
	m := imaging.NewRGB(w, h)
	for i := range m.Pix {
		m.Pix[i] = uint8(r.IntN(256))
	}
	return m
}

func randGray(r *rand.Rand, w, h int) *imaging.Gray {
	m := imaging.NewGray(w, h)
	for i := range m.Pix {
		m.Pix[i] = uint8(r.IntN(256))
	}
	return m
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var bi *badinput.Error
	if !errors.As(err, &bi) || bi.Field != field {
		t.Errorf("error %v: want bad input on field %q", err, field)
	}
}

func TestCropOffsetRanges(t *testing.T) {
	fixed := DefaultVOCView()
	quirk := fixed
	quirk.ReferenceCropQuirk = true
	// 500×375 → 683×512: the fixed ranges follow the axes, the quirk swaps them.
	if w, h := fixed.ResizedSize(500, 375); w != 683 || h != 512 {
		t.Fatalf("resized size %dx%d, want 683x512", w, h)
	}
	if x, y := fixed.OffsetRange(683, 512); x != 235 || y != 64 {
		t.Errorf("fixed range (%d, %d), want (235, 64)", x, y)
	}
	if x, y := quirk.OffsetRange(683, 512); x != 64 || y != 235 {
		t.Errorf("quirk range (%d, %d), want (64, 235)", x, y)
	}
	// Enumerate draws: the reachable offsets are exactly [0, max] on each axis.
	for _, c := range []struct {
		name       string
		cfg        VOCView
		w, h       int
		xMax, yMax int
	}{
		{"fixed landscape", fixed, 500, 375, 235, 64},
		{"quirk landscape", quirk, 500, 375, 64, 235},
		{"quirk portrait", quirk, 375, 500, 235, 64},
		{"fixed portrait", fixed, 375, 500, 64, 235},
	} {
		xs, ys := map[int]bool{}, map[int]bool{}
		s := Sampler{Seed: 3}
		for i := range 6000 {
			p := c.cfg.Sample(c.w, c.h, s.Rand(0, i, StreamView))
			if p.X0 < 0 || p.X0 > c.xMax || p.Y0 < 0 || p.Y0 > c.yMax {
				t.Fatalf("%s: offset (%d, %d) outside [0,%d]x[0,%d]", c.name, p.X0, p.Y0, c.xMax, c.yMax)
			}
			xs[p.X0], ys[p.Y0] = true, true
		}
		if len(xs) != c.xMax+1 || len(ys) != c.yMax+1 {
			t.Errorf("%s: reached %d x and %d y offsets, want all %d and %d", c.name, len(xs), len(ys), c.xMax+1, c.yMax+1)
		}
	}
}

// TestQuirkPaddingIsZero renders quirk crops that run past the bottom
// (landscape) and right (portrait) edge with jitter off: the padded pixels
// must be 0 before normalization, i.e. exactly (0 − mean)/std after it, and
// saliency 0.
func TestQuirkPaddingIsZero(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	cfg := VOCView{ShortSide: 24, Crop: 20, ReferenceCropQuirk: true, Norm: VOCNorm()}
	var black [3]float32
	for c := range 3 {
		black[c] = (0 - cfg.Norm.Mean[c]) / cfg.Norm.Std[c]
	}
	for _, c := range []struct {
		w, h, x0, y0 int
		inside       func(x, y int) bool // crop pixel lies in the resized image
	}{
		// 40×24 resized: y0 = 10 puts crop rows 14..19 below the image.
		{50, 30, 2, 10, func(x, y int) bool { return 10+y < 24 }},
		// 24×40 resized: x0 = 12 puts crop columns 12..19 right of it.
		{30, 50, 12, 3, func(x, y int) bool { return 12+x < 24 }},
	} {
		img := randRGB(r, c.w, c.h)
		for i := range img.Pix {
			img.Pix[i] |= 1 // no black pixels inside the image
		}
		sal := randGray(r, c.w, c.h)
		for i := range sal.Pix {
			sal.Pix[i] |= 1
		}
		xMax, yMax := cfg.OffsetRange(cfg.ResizedSize(c.w, c.h))
		if c.x0 > xMax || c.y0 > yMax {
			t.Fatalf("offset (%d,%d) not reachable in quirk range (%d,%d)", c.x0, c.y0, xMax, yMax)
		}
		v, err := cfg.Render(img, sal, VOCParams{X0: c.x0, Y0: c.y0})
		if err != nil {
			t.Fatal(err)
		}
		padded := 0
		for y := range 20 {
			for x := range 20 {
				i := y*20 + x
				isBlack := v.Image[i] == black[0] && v.Image[400+i] == black[1] && v.Image[800+i] == black[2]
				if c.inside(x, y) {
					if isBlack || v.Sal[i] == 0 {
						t.Fatalf("%dx%d: pixel (%d,%d) inside the image reads as padding", c.w, c.h, x, y)
					}
					continue
				}
				padded++
				if !isBlack || v.Sal[i] != 0 {
					t.Fatalf("%dx%d: padded pixel (%d,%d) = (%v,%v,%v) sal %v, want black and 0",
						c.w, c.h, x, y, v.Image[i], v.Image[400+i], v.Image[800+i], v.Sal[i])
				}
			}
		}
		if padded != 120 && padded != 160 {
			t.Errorf("%dx%d: %d padded pixels, want 120 or 160", c.w, c.h, padded)
		}
	}
}

func TestViewShapesAndLocal(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	img, sal := randRGB(r, 500, 375), randGray(r, 500, 375)
	v, err := DefaultVOCView().Apply(img, sal, r)
	if err != nil {
		t.Fatal(err)
	}
	if v.Size != 448 || len(v.Image) != 3*448*448 || len(v.Sal) != 448*448 {
		t.Fatalf("view size %d, %d image values, %d saliency values", v.Size, len(v.Image), len(v.Sal))
	}
	if v.Box.X2-v.Box.X1 != 448 || v.Box.X2 > v.ResizedW || v.Box.Y2 > v.ResizedH {
		t.Errorf("fixed crop box %+v leaves the %dx%d image", v.Box, v.ResizedW, v.ResizedH)
	}
	if m := slices.Max(v.Sal); m != 1 {
		t.Errorf("saliency max %v, want 1", m)
	}
	b := Box{X1: 128, Y1: 0, X2: 448, Y2: 320}
	li, ls, err := v.Local(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(li) != 3*320*320 || len(ls) != 320*320 {
		t.Fatalf("local sizes %d, %d", len(li), len(ls))
	}
	// Channel 2, local (x=5, y=7) is global (133, 7).
	if li[2*320*320+7*320+5] != v.Image[2*448*448+7*448+133] || ls[7*320+5] != v.Sal[7*448+133] {
		t.Error("local crop is not a slice of the global view")
	}
	if _, _, err := v.Local(Box{X1: 200, X2: 500, Y2: 10}); err == nil {
		t.Error("box past the view: want error")
	}
	cv, err := DefaultCOCOView().Apply(img, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(cv.Image) != 3*448*448 || cv.Sal != nil {
		t.Errorf("coco view: %d values, saliency %v", len(cv.Image), cv.Sal != nil)
	}
}

func TestViewRejectsBadInput(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	img := randRGB(r, 40, 30)
	_, err := DefaultVOCView().Apply(img, randGray(r, 41, 30), r)
	wantField(t, err, "saliency")
	bad := DefaultVOCView()
	bad.ShortSide = 400
	_, err = bad.Apply(img, nil, r)
	wantField(t, err, "short_side")
	bad = DefaultVOCView()
	bad.Norm.Std[1] = 0
	wantField(t, bad.Validate(), "norm[1]")
	_, err = DefaultCOCOView().Apply(&imaging.RGB{W: 4, H: 4, Pix: make([]uint8, 5)}, nil, r)
	wantField(t, err, "image")
}

func TestLocalBoxSchemes(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	voc := DefaultVOCLocal()
	boxes, err := voc.Sample(r)
	if err != nil {
		t.Fatal(err)
	}
	corners := []Box{{0, 0, 320, 320}, {0, 128, 320, 448}, {128, 0, 448, 320}, {128, 128, 448, 448}}
	if len(boxes) != 6 || !slices.Equal(boxes[:4], corners) {
		t.Fatalf("voc boxes %v, want the corners %v then 2 random", boxes, corners)
	}
	// Random offsets: {0..127} as the reference, {0..128} with IncludeMax.
	for _, c := range []struct {
		l    LocalBoxes
		maxv int
	}{
		{voc, 127},
		{DefaultCOCOLocal(), 127},
		{LocalBoxes{Scheme: LocalVOC, N: 6, Crop: 320, View: 448, IncludeMax: true}, 128},
		{LocalBoxes{Scheme: LocalRandom, N: 4, Crop: 320, View: 448}, 128},
	} {
		seen := map[int]bool{}
		for range 2000 {
			bs, err := c.l.Sample(r)
			if err != nil {
				t.Fatal(err)
			}
			if len(bs) != c.l.N {
				t.Fatalf("%s: %d boxes, want %d", c.l.Scheme, len(bs), c.l.N)
			}
			start := 0
			if c.l.Scheme == LocalVOC {
				start = 4
			}
			for _, b := range bs[start:] {
				if b.X2-b.X1 != 320 || b.Y2-b.Y1 != 320 || b.X1 < 0 || b.X1 > c.maxv || b.Y1 < 0 || b.Y1 > c.maxv {
					t.Fatalf("%s: box %+v outside offsets [0,%d]", c.l.Scheme, b, c.maxv)
				}
				seen[b.X1], seen[b.Y1] = true, true
			}
		}
		if len(seen) != c.maxv+1 {
			t.Errorf("%s include_max=%v: reached %d offsets, want %d", c.l.Scheme, c.l.IncludeMax, len(seen), c.maxv+1)
		}
	}
	for _, c := range []struct {
		n      int
		xs, ys []int
	}{
		{4, []int{0, 128}, []int{0, 128}},
		{6, []int{0, 64, 128}, []int{0, 128}},
		{9, []int{0, 64, 128}, []int{0, 64, 128}},
	} {
		bs, err := LocalBoxes{Scheme: LocalGrid, N: c.n, Crop: 320, View: 448}.Sample(nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []Box
		for _, y := range c.ys {
			for _, x := range c.xs {
				want = append(want, Box{x, y, x + 320, y + 320})
			}
		}
		if !slices.Equal(bs, want) {
			t.Errorf("grid N=%d: %v, want %v", c.n, bs, want)
		}
	}
	_, err = LocalBoxes{Scheme: LocalGrid, N: 5, Crop: 320, View: 448}.Sample(r)
	wantField(t, err, "local.n")
	_, err = LocalBoxes{Scheme: LocalVOC, N: 3, Crop: 320, View: 448}.Sample(r)
	wantField(t, err, "local.n")
	_, err = LocalBoxes{Scheme: "tiles", N: 3, Crop: 320, View: 448}.Sample(r)
	wantField(t, err, "local.scheme")
	_, err = LocalBoxes{Scheme: LocalCOCO, N: 2, Crop: 448, View: 448}.Sample(r)
	wantField(t, err, "local.crop")
}

// item is everything drawn for one training image.
type item struct {
	view  *View
	boxes []Box
}

func makeItem(t *testing.T, s Sampler, epoch, idx int, img *imaging.RGB, sal *imaging.Gray) item {
	v, err := DefaultVOCView().Apply(img, sal, s.Rand(epoch, idx, StreamView))
	if err != nil {
		t.Error(err)
		return item{}
	}
	b, err := DefaultVOCLocal().Sample(s.Rand(epoch, idx, StreamBoxes))
	if err != nil {
		t.Error(err)
	}
	return item{v, b}
}

func sameItem(a, b item) bool {
	return a.view.Box == b.view.Box && slices.Equal(a.view.Image, b.view.Image) &&
		slices.Equal(a.view.Sal, b.view.Sal) && slices.Equal(a.boxes, b.boxes)
}

func TestSamplerReproducibleAndEpochDependent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	const n = 4
	imgs := make([]*imaging.RGB, n)
	sals := make([]*imaging.Gray, n)
	for i := range n {
		imgs[i], sals[i] = randRGB(r, 120, 90), randGray(r, 120, 90)
	}
	s := Sampler{Seed: 42}
	seq := make([]item, n)
	for i := range n {
		seq[i] = makeItem(t, s, 1, i, imgs[i], sals[i])
	}
	// The same items built concurrently in reverse order (as parallel
	// workers or a resumed run would) are identical.
	par := make([]item, n)
	var wg sync.WaitGroup
	for i := n - 1; i >= 0; i-- {
		wg.Go(func() { par[i] = makeItem(t, s, 1, i, imgs[i], sals[i]) })
	}
	wg.Wait()
	for i := range n {
		if !sameItem(seq[i], par[i]) {
			t.Errorf("item %d differs between sequential and parallel construction", i)
		}
	}
	// Another epoch, another index or another seed draws differently.
	if a, b := makeItem(t, s, 2, 0, imgs[0], sals[0]), seq[0]; sameItem(a, b) {
		t.Error("epoch 2 repeated epoch 1's draws")
	}
	if a := makeItem(t, Sampler{Seed: 43}, 1, 0, imgs[0], sals[0]); sameItem(a, seq[0]) {
		t.Error("seed 43 repeated seed 42's draws")
	}
	p0 := s.Rand(1, 0, StreamBoxes).Uint64()
	if p0 == s.Rand(1, 1, StreamBoxes).Uint64() || p0 == s.Rand(1, 0, StreamView).Uint64() {
		t.Error("streams for different indices or purposes coincide")
	}
}

func TestSamplerOrder(t *testing.T) {
	s := Sampler{Seed: 9}
	a, b := s.Order(0, 100), s.Order(0, 100)
	if !slices.Equal(a, b) {
		t.Fatal("order not reproducible")
	}
	sorted := slices.Sorted(slices.Values(a))
	for i, v := range sorted {
		if v != i {
			t.Fatalf("order is not a permutation: %v", sorted)
		}
	}
	if slices.Equal(a, s.Order(1, 100)) {
		t.Error("epochs 0 and 1 share an order")
	}
	if slices.Equal(a, sorted) {
		t.Error("order not shuffled")
	}
	if id := (Sampler{Seed: 9, NoShuffle: true}).Order(3, 5); !slices.Equal(id, []int{0, 1, 2, 3, 4}) {
		t.Errorf("NoShuffle order %v", id)
	}
}

func TestPyRoundTiesToEven(t *testing.T) {
	for _, c := range []struct {
		x    float64
		want int
	}{{2.5, 2}, {3.5, 4}, {0.5, 0}, {1.5, 2}, {187.5, 188}, {6.5, 6}, {2.4999, 2}, {2.5001, 3}, {-2.5, -2}} {
		if got := PyRound(c.x); got != c.want {
			t.Errorf("PyRound(%v) = %d, want %d", c.x, got, c.want)
		}
	}
	if w, h := ScaledSize(375, 13, 0.5); w != 188 || h != 6 {
		t.Errorf("ScaledSize(375, 13, 0.5) = %d, %d, want 188, 6", w, h)
	}
	if _, err := MultiScale(imaging.NewRGB(1, 1), []float64{0.25}, VOCNorm()); err == nil {
		t.Error("scale giving an empty image: want error")
	} else {
		wantField(t, err, "scales[0]")
	}
}

func TestDeepLabPadding(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	img, label := randRGB(r, 10, 8), randGray(r, 10, 8)
	for i := range label.Pix {
		label.Pix[i] %= 21
	}
	d := DefaultDeepLab()
	d.Crop = 12
	mean := d.MeanBGR
	for _, flip := range []bool{false, true} {
		s, err := d.Render(img, label, DeepLabParams{Scale: 1, Flip: flip})
		if err != nil {
			t.Fatal(err)
		}
		for y := range 12 {
			for x := range 12 {
				i := y*12 + x
				sx := x // source column before the flip
				if flip {
					sx = 11 - x
				}
				if sx >= 10 || y >= 8 {
					if s.Label[i] != 255 {
						t.Fatalf("flip %v: padded label (%d,%d) = %d, want 255", flip, x, y, s.Label[i])
					}
					for c := range 3 {
						v := s.Image[c*144+i]
						if want := float32(float64(float32(mean[c])) - mean[c]); v != want || math.Abs(float64(v)) > 1e-5 {
							t.Fatalf("padded pixel channel %d = %v, want %v (mean colour minus mean)", c, v, want)
						}
					}
					continue
				}
				if s.Label[i] != label.Pix[y*10+sx] {
					t.Fatalf("flip %v: label (%d,%d) = %d, want %d", flip, x, y, s.Label[i], label.Pix[y*10+sx])
				}
				// Channel 0 is blue.
				if want := float32(float64(img.Pix[(y*10+sx)*3+2]) - mean[0]); s.Image[i] != want {
					t.Fatalf("flip %v: B(%d,%d) = %v, want %v", flip, x, y, s.Image[i], want)
				}
			}
		}
	}
	if _, err := d.Render(img, label, DeepLabParams{Scale: 1, X0: 1}); err == nil {
		t.Error("crop past the padded image: want error")
	}
	_, err := d.Apply(img, randGray(r, 9, 8), r)
	wantField(t, err, "label")
}

func TestDeepLabSampleRanges(t *testing.T) {
	d := DefaultDeepLab()
	s := Sampler{Seed: 1}
	scales := map[float64]int{}
	flips := 0
	const n = 4000
	for i := range n {
		p, err := d.Sample(500, 375, s.Rand(0, i, StreamDeepLab))
		if err != nil {
			t.Fatal(err)
		}
		scales[p.Scale]++
		if p.Flip {
			flips++
		}
		w, h := d.ScaledSize(500, 375, p.Scale)
		if p.X0 < 0 || p.Y0 < 0 || p.X0 > max(w, 321)-321 || p.Y0 > max(h, 321)-321 {
			t.Fatalf("scale %v: offset (%d,%d) outside the %dx%d image", p.Scale, p.X0, p.Y0, w, h)
		}
	}
	if len(scales) != 5 {
		t.Errorf("drew scales %v, want all 5", scales)
	}
	if flips < n*45/100 || flips > n*55/100 {
		t.Errorf("%d flips in %d draws", flips, n)
	}
	if w, h := d.ScaledSize(333, 500, 0.75); w != 249 || h != 375 {
		t.Errorf("int(333*0.75), int(500*0.75) = %d, %d, want 249, 375", w, h)
	}
	in, err := DeepLabInput(&imaging.RGB{W: 1, H: 1, Pix: []uint8{10, 20, 30}}, d.MeanBGR)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{float32(30 - 104.008), float32(20 - 116.669), float32(10 - 122.675)}
	if !slices.Equal(in, want) {
		t.Errorf("DeepLabInput = %v, want %v (BGR minus mean)", in, want)
	}
}

func BenchmarkVOCGlobalView(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 7))
	img, sal := randRGB(r, 500, 375), randGray(r, 500, 375)
	cfg := DefaultVOCView()
	s := Sampler{Seed: 1}
	i := 0
	for b.Loop() {
		if _, err := cfg.Apply(img, sal, s.Rand(0, i, StreamView)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkDeepLabAugment(b *testing.B) {
	r := rand.New(rand.NewPCG(8, 8))
	img, label := randRGB(r, 500, 375), randGray(r, 500, 375)
	d := DefaultDeepLab()
	s := Sampler{Seed: 1}
	i := 0
	for b.Loop() {
		if _, err := d.Apply(img, label, s.Rand(0, i, StreamDeepLab)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
