package cam_test

import (
	"errors"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/stages/cam"
)

// tol bounds |Infer − expectedCAMs| on maps normalized to [0, 1]: float32
// convolution, resampling and the flip pair summed before upsampling give
// differences of a few 1e-7; each deliberate mistake below moves the maps
// by more than 100× this.
const tol = 1e-5

func TestInferMatchesExplicitComputation(t *testing.T) {
	net := newTinyNet(t, 3, 1)
	// 23×17 makes every default scale hit Python's round-half-even:
	// 11.5→12 and 8.5→8 at 0.5, 34.5→34 and 25.5→26 at 1.5.
	img := randomImage(23, 17, 2)
	o := cam.DefaultOptions()
	classes := []int{2, 0}
	got, err := cam.Infer(net, img, classes, o)
	if err != nil {
		t.Fatal(err)
	}
	want, lowest := expectedCAMs(t, net, img, classes, o.Scales, true, o.Norm, reference)
	if lowest >= 0 {
		t.Fatalf("fixture: smallest mean value %v, want some negative values so the ReLU matters", lowest)
	}
	if d := maxDiff(t, got, want); d > tol {
		t.Fatalf("max |Infer − explicit| = %.3g, want ≤ %g", d, tol)
	}
	for p, plane := range got {
		mx := float32(0)
		for _, v := range plane {
			mx = max(mx, v)
		}
		if mx < 0.999999 || mx > 1 {
			t.Errorf("plane %d (class %d): max %v, want 1 (normalized)", p, classes[p], mx)
		}
	}

	// The comparison is sharp: each of these mistakes is caught by far.
	for name, v := range map[string]variant{
		"cubic A = −0.5":           {a: -0.5},
		"align_corners=True":       {a: -0.75, alignCorners: true},
		"flipped maps not flipped": {a: -0.75, noFlipBack: true},
		"nearest input resize":     {a: -0.75, nearestInput: true},
	} {
		wrong, _ := expectedCAMs(t, net, img, classes, o.Scales, true, o.Norm, v)
		if d := maxDiff64(wrong, want); d < 100*tol {
			t.Errorf("%s changes the maps by only %.3g: the tolerance would not catch it", name, d)
		}
	}
}

func TestInferOptions(t *testing.T) {
	net := newTinyNet(t, 2, 3)
	img := randomImage(19, 26, 4)
	o := cam.DefaultOptions()
	o.Scales = []float64{0.7, 1.3}
	o.Flip = false
	o.Norm.Mean = [3]float32{0.5, 0.5, 0.5}
	got, err := cam.Infer(net, img, nil, o) // nil: every channel, background last
	if err != nil {
		t.Fatal(err)
	}
	want, _ := expectedCAMs(t, net, img, []int{0, 1, 2}, o.Scales, false, o.Norm, reference)
	if d := maxDiff(t, got, want); d > tol {
		t.Fatalf("no flip, scales %v: max diff %.3g, want ≤ %g", o.Scales, d, tol)
	}

	// Batching is exact: every pass alone gives the same maps.
	o.Flip = true
	batched, err := cam.Infer(net, img, []int{1}, o)
	if err != nil {
		t.Fatal(err)
	}
	o.MaxPixels = 1
	single, err := cam.Infer(net, img, []int{1}, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range batched[0] {
		if d := batched[0][i] - single[0][i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("pixel %d: flip pair batched %v, passes alone %v", i, batched[0][i], single[0][i])
		}
	}
}

func TestInferBadInput(t *testing.T) {
	net := newTinyNet(t, 2, 5)
	img := randomImage(9, 7, 6)
	o := cam.DefaultOptions()
	o.Scales = []float64{0.05}
	_, err := cam.Infer(net, img, []int{0}, o)
	var bad *badinput.Error
	if !errors.As(err, &bad) || bad.Field != "scales[0]" {
		t.Errorf("scale 0.05 of a 9x7 image: err %v, want a bad-input error on scales[0]", err)
	}
	if _, err := cam.Infer(net, img, []int{3}, cam.DefaultOptions()); err == nil {
		t.Error("class 3 of a 2-class net (channels 0..2): no error")
	}
	if _, err := cam.Infer(net, &imaging.RGB{W: 4, H: 4}, []int{0}, cam.DefaultOptions()); !badinput.Is(err) {
		t.Errorf("image without pixels: err %v, want bad input", err)
	}
}
