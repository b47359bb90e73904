package mbd

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/l2g/l2g/internal/imaging"
)

func randomPlane(rng *rand.Rand, n, levels int) []uint8 {
	p := make([]uint8, n)
	for i := range p {
		p[i] = uint8(rng.IntN(levels) * (255 / (levels - 1)))
	}
	return p
}

func TestMedianFilterMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{3, 5, 7} {
		w, h := 13, 9
		src := randomPlane(rng, w*h, 256)
		got := medianFilter(src, w, h, size)
		r := size / 2
		for y := range h {
			for x := range w {
				var win []uint8
				for dy := -r; dy <= r; dy++ {
					for dx := -r; dx <= r; dx++ {
						xx, yy := min(max(x+dx, 0), w-1), min(max(y+dy, 0), h-1)
						win = append(win, src[yy*w+xx])
					}
				}
				slices.Sort(win)
				if want := win[len(win)/2]; got[y*w+x] != want {
					t.Fatalf("size %d (%d,%d): %d, want %d", size, x, y, got[y*w+x], want)
				}
			}
		}
	}
}

func TestRectFilterMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	w, h := 11, 8
	src := randomPlane(rng, w*h, 256)
	for _, c := range []struct {
		before, after int
		dilate        bool
	}{{1, 1, false}, {1, 2, false}, {2, 1, true}, {0, 3, true}, {4, 4, false}} {
		got := rectFilter(src, w, h, c.before, c.after, c.dilate)
		for y := range h {
			for x := range w {
				want := src[y*w+x]
				for yy := max(y-c.before, 0); yy <= min(y+c.after, h-1); yy++ {
					for xx := max(x-c.before, 0); xx <= min(x+c.after, w-1); xx++ {
						if c.dilate {
							want = max(want, src[yy*w+xx])
						} else {
							want = min(want, src[yy*w+xx])
						}
					}
				}
				if got[y*w+x] != want {
					t.Fatalf("%+v (%d,%d): %d, want %d", c, x, y, got[y*w+x], want)
				}
			}
		}
	}
}

func TestReconstructMatchesIteratedGeodesicDilation(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 20 {
		w, h := 5+rng.IntN(12), 5+rng.IntN(12)
		mask := randomPlane(rng, w*h, 6) // few levels: long plateaus to propagate through
		marker := make([]uint8, w*h)
		for i := range marker {
			if rng.IntN(10) == 0 {
				marker[i] = mask[i]
			}
		}
		want := slices.Clone(marker)
		for changed := true; changed; {
			changed = false
			d := rectFilter(want, w, h, 1, 1, true)
			for i := range want {
				if v := min(d[i], mask[i]); v != want[i] {
					want[i], changed = v, true
				}
			}
		}
		got := slices.Clone(marker)
		reconstruct(got, mask, w, h)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (%dx%d): reconstruction differs from iterated geodesic dilation", trial, w, h)
		}
	}
}

func TestMorphSmoothRemovesSmallKeepsLarge(t *testing.T) {
	const w, h = 40, 40
	s := make([]uint8, w*h)
	for y := 10; y < 30; y++ { // 20×20 bright square
		for x := 10; x < 30; x++ {
			s[y*w+x] = 200
		}
	}
	s[3*w+3] = 255  // isolated bright speck
	s[20*w+20] = 0  // dark hole inside the square
	s[15*w+10] = 90 // dent in the square's edge
	got := morphSmooth(s, w, h, 5)
	if got[3*w+3] != 0 {
		t.Errorf("speck survived: %d", got[3*w+3])
	}
	if got[20*w+20] != 200 {
		t.Errorf("hole not filled: %d", got[20*w+20])
	}
	// Reconstruction keeps the square's exact contour.
	for y := range h {
		for x := range w {
			in := x >= 10 && x < 30 && y >= 10 && y < 30
			v := got[y*w+x]
			if in && v != 200 && !(x == 10 && y == 15) || !in && v != 0 {
				t.Fatalf("(%d,%d) = %d", x, y, v)
			}
		}
	}
}

func TestToLabMatchesOpenCV(t *testing.T) {
	// OpenCV cvtColor(COLOR_RGB2Lab) on 8-bit pixels.
	cases := []struct{ rgb, lab [3]uint8 }{
		{[3]uint8{255, 255, 255}, [3]uint8{255, 128, 128}},
		{[3]uint8{0, 0, 0}, [3]uint8{0, 128, 128}},
		{[3]uint8{255, 0, 0}, [3]uint8{136, 208, 195}},
		{[3]uint8{0, 255, 0}, [3]uint8{224, 42, 211}},
		{[3]uint8{0, 0, 255}, [3]uint8{82, 207, 20}},
	}
	img := imaging.NewRGB(len(cases), 1)
	for i, c := range cases {
		copy(img.Pix[3*i:], c.rgb[:])
	}
	got := toLab(img)
	for i, c := range cases {
		for k := range 3 {
			if d := int(got[k][i]) - int(c.lab[k]); d < -1 || d > 1 {
				t.Errorf("RGB %v: Lab channel %d = %d, want %d±1", c.rgb, k, got[k][i], c.lab[k])
			}
		}
	}
}

func TestBackgroundnessDropsTheMostContrastedBorder(t *testing.T) {
	// Grey background, a red object in the middle, and a red bar along the
	// left border: the left region's contrast map calls the grey
	// background salient, so it must be the one dropped.
	const w, h = 60, 40
	img := imaging.NewRGB(w, h)
	for y := range h {
		for x := range w {
			c := [3]uint8{120, 120, 120}
			if x >= 25 && x < 35 && y >= 15 && y < 25 || x < 3 {
				c = [3]uint8{220, 30, 30}
			}
			copy(img.Pix[3*(y*w+x):], c[:])
		}
	}
	bg := backgroundness(toLab(img), w, h, 0.1, 50)
	obj, back := bg[20*w+30], bg[5*w+50]
	if obj < 0.99 || back > 0.01 {
		t.Errorf("object %.3f (want ~1), grey background %.3f (want ~0)", obj, back)
	}
}

func TestCentreBiasAndContrast(t *testing.T) {
	const w, h = 4, 2
	s := []float32{1, 1, 1, 1, 1, 1, 1, 1}
	centreBias(s, w, h)
	// Pixel (0,0) centre is at (−1.5, −0.5) from the image centre (2, 1),
	// whose corner distance is √5.
	if want := float32(1 - math.Hypot(1.5, 0.5)/math.Sqrt(5)); math.Abs(float64(s[0]-want)) > 1e-6 {
		t.Errorf("corner weight %v, want %v", s[0], want)
	}
	if want := float32(1 - math.Hypot(0.5, 0.5)/math.Sqrt(5)); math.Abs(float64(s[1]-want)) > 1e-6 {
		t.Errorf("inner weight %v, want %v", s[1], want)
	}
	// Contrast: values {0, 0.2, 0.8, 1}; threshold 0.5 splits means 0.1 and
	// 0.9, so the sigmoid is centred on 0.5.
	c := []float32{0, 0.2, 0.8, 1}
	enhanceContrast(c, 10)
	for i, v := range []float64{0, 0.2, 0.8, 1} {
		want := 1 / (1 + math.Exp(-10*(v-0.5)))
		if math.Abs(float64(c[i])-want) > 1e-6 {
			t.Errorf("contrast(%v) = %v, want %v", v, c[i], want)
		}
	}
}
