package mbd

import (
	"math"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/l2g/l2g/internal/imaging"
)

// blobScene draws an off-centre elliptical object on a textured, shaded
// background and returns the image and its object mask.
func blobScene(w, h int, seed uint64) (*imaging.RGB, []bool) {
	rng := rand.New(rand.NewPCG(seed, 99))
	img := imaging.NewRGB(w, h)
	fg := make([]bool, w*h)
	cx, cy := 0.62*float64(w), 0.45*float64(h)
	rx, ry := 0.18*float64(w), 0.22*float64(h)
	for y := range h {
		for x := range w {
			i := y*w + x
			dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
			n := float64(rng.IntN(41) - 20)
			var c [3]float64
			if dx*dx+dy*dy <= 1 {
				fg[i] = true
				c = [3]float64{200 + n/2, 60 + n/2, 50 + n/2}
			} else {
				shade := 40 * float64(y) / float64(h)
				c = [3]float64{70 + shade + n, 110 + shade + n, 80 + n}
			}
			for k := range 3 {
				img.Pix[3*i+k] = uint8(min(max(c[k], 0), 255))
			}
		}
	}
	return img, fg
}

func mae(s *imaging.Gray, fg []bool) float64 {
	var sum float64
	for i, v := range s.Pix {
		g := 0.0
		if fg[i] {
			g = 1
		}
		sum += math.Abs(float64(v)/255 - g)
	}
	return sum / float64(len(s.Pix))
}

func TestSaliencyFindsTheObject(t *testing.T) {
	img, fg := blobScene(200, 150, 1)
	s, err := Saliency(img, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if s.W != 200 || s.H != 150 {
		t.Fatalf("map is %dx%d, want 200x150", s.W, s.H)
	}
	var in, out float64
	var nin, nout int
	for i, v := range s.Pix {
		if fg[i] {
			in += float64(v)
			nin++
		} else {
			out += float64(v)
			nout++
		}
	}
	in, out = in/float64(nin)/255, out/float64(nout)/255
	if in < 0.8 || out > 0.1 {
		t.Errorf("mean saliency: object %.3f (want >= 0.8), background %.3f (want <= 0.1)", in, out)
	}
	// The centre prior alone (the same weights MB+ multiplies by) is far worse.
	got, base := mae(s, fg), mae(CentrePrior(200, 150), fg)
	if got > base/10 {
		t.Errorf("MAE %.3f, centre prior %.3f: want at most a tenth", got, base)
	}
	t.Logf("MAE %.4f, centre prior %.4f", got, base)
}

func TestSaliencyVariants(t *testing.T) {
	img, fg := blobScene(120, 90, 2)
	mb := DefaultOptions()
	mb.Backgroundness = false
	raw := Options{MaxDim: 300, Passes: 3, MedianSize: 1, MarginRatio: 0.1, CovReg: 50}
	for name, o := range map[string]Options{"MB": mb, "raw MBD": raw} {
		s, err := Saliency(img, o)
		if err != nil {
			t.Fatal(err)
		}
		if m := mae(s, fg); m > 0.25 {
			t.Errorf("%s: MAE %.3f, want <= 0.25", name, m)
		}
	}
	// Tiny and degenerate images still give a map of their size.
	for _, sz := range [][2]int{{1, 1}, {2, 7}, {3, 3}} {
		s, err := Saliency(imaging.NewRGB(sz[0], sz[1]), DefaultOptions())
		if err != nil || s.W != sz[0] || s.H != sz[1] {
			t.Errorf("%v: %v, %v", sz, s, err)
		}
	}
}

func TestSaliencyRejectsBadInput(t *testing.T) {
	if _, err := Saliency(&imaging.RGB{W: 4, H: 4, Pix: make([]uint8, 10)}, DefaultOptions()); err == nil {
		t.Error("short pixel buffer accepted")
	}
	o := DefaultOptions()
	o.MedianSize = 4
	_, err := Saliency(imaging.NewRGB(8, 8), o)
	if err == nil || !strings.Contains(err.Error(), "median_size") {
		t.Errorf("even median size: %v, want an error naming median_size", err)
	}
}

// BenchmarkSaliency500x375 measures one VOC-sized image on one goroutine;
// the stage runs one image per core. On a shared machine wall time
// overstates the cost, so the process CPU time per image is reported too
// (images/s per core = 1000 / cpu-ms/image).
func BenchmarkSaliency500x375(b *testing.B) {
	img, _ := blobScene(500, 375, 3)
	o := DefaultOptions()
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := Saliency(img, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/image")
}

// BenchmarkSaliencyParallel500x375 is the throughput with one image per
// core, as the stage runs it.
func BenchmarkSaliencyParallel500x375(b *testing.B) {
	img, _ := blobScene(500, 375, 3)
	o := DefaultOptions()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Saliency(img, o); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
