package segmetrics

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// The matrix below was computed by hand; K = 5 with class 3 predicted but
// absent from the ground truth and class 4 absent from both.
//
//	gt \ pred  0  1  2  3  4
//	0          2  0  0  1  0
//	1          1  3  1  0  0
//	2          0  0  2  0  0
//	3, 4       0 ...
func handCase() ([]uint8, []uint8) {
	gt := []uint8{0, 0, 0, 1, 1, 1, 1, 2, 2, 255, 0, 1}
	pred := []uint8{0, 0, 3, 1, 1, 0, 2, 2, 2, 1, 255, 1}
	return gt, pred
}

func near(t *testing.T, name string, got Metric, want float64) {
	t.Helper()
	if math.IsNaN(want) {
		if !math.IsNaN(float64(got)) {
			t.Errorf("%s = %v, want NaN", name, got)
		}
		return
	}
	if math.Abs(float64(got)-want) > 1e-12 {
		t.Errorf("%s = %.15g, want %.15g", name, got, want)
	}
}

func TestHandComputedConfusion(t *testing.T) {
	gt, pred := handCase()
	c := New(5)
	if err := c.Add(gt, pred); err != nil {
		t.Fatal(err)
	}
	want := []int64{
		2, 0, 0, 1, 0,
		1, 3, 1, 0, 0,
		0, 0, 2, 0, 0,
		0, 0, 0, 0, 0,
		0, 0, 0, 0, 0,
	}
	for i := range want {
		if c.M[i] != want[i] {
			t.Fatalf("M = %v, want %v", c.M, want)
		}
	}
	s := c.Scores()
	if s.Pixels != 10 || s.Unlabeled != 1 {
		t.Errorf("pixels %d unlabeled %d, want 10 and 1", s.Pixels, s.Unlabeled)
	}
	nan := math.NaN()
	near(t, "pixel acc", s.PixelAcc, 0.7)
	near(t, "coverage", s.Coverage, 10.0/11)
	for i, w := range []float64{0.5, 0.6, 2.0 / 3, 0, nan} {
		near(t, "IoU", s.IoU[i], w)
	}
	for i, w := range []float64{2.0 / 3, 1, 2.0 / 3, 0, nan} {
		near(t, "precision", s.Precision[i], w)
	}
	for i, w := range []float64{2.0 / 3, 0.6, 1, nan, nan} {
		near(t, "recall", s.Recall[i], w)
	}
	// CAM protocol: NaN-mean over all classes, the absent-but-predicted
	// class 3 counts as 0. Segmentation protocol: classes 0..2 only.
	near(t, "mIoU CAM protocol", s.MIoUCAM, (0.5+0.6+2.0/3+0)/4)
	near(t, "mIoU seg protocol", s.MIoUSeg, (0.5+0.6+2.0/3)/3)
	near(t, "mean class acc", s.MeanClassAcc, (2.0/3+0.6+1)/3)
	near(t, "fwIoU", s.FWIoU, 0.3*0.5+0.5*0.6+0.2*2.0/3)
	if s.GTPixels[1] != 5 || s.PredPixels[0] != 3 || s.PredPixels[3] != 1 {
		t.Errorf("gt %v pred %v", s.GTPixels, s.PredPixels)
	}

	// Merge doubles everything but the ratios.
	c.Merge(c)
	if s2 := c.Scores(); s2.Pixels != 20 || s2.Unlabeled != 2 || s2.MIoUCAM != s.MIoUCAM {
		t.Errorf("merged: %d px, %d unlabeled, mIoU %v", s2.Pixels, s2.Unlabeled, s2.MIoUCAM)
	}
}

func TestInvalidValues(t *testing.T) {
	c := New(5)
	var ve *ValueError
	if err := c.Add([]uint8{0, 7}, []uint8{0, 0}); !errors.As(err, &ve) || ve.Pred || ve.Index != 1 || ve.Value != 7 {
		t.Errorf("gt 7: %v", err)
	}
	if err := c.Add([]uint8{0, 1}, []uint8{0, 5}); !errors.As(err, &ve) || !ve.Pred || ve.Value != 5 {
		t.Errorf("pred 5: %v", err)
	}
	// 255 in the ground truth hides any prediction, even an invalid one.
	if err := c.Add([]uint8{255}, []uint8{9}); err != nil {
		t.Errorf("ignored gt: %v", err)
	}
	if err := c.Add([]uint8{0}, []uint8{0, 0}); err == nil {
		t.Error("length mismatch accepted")
	}
}

func TestMetricJSON(t *testing.T) {
	b, err := json.Marshal([]Metric{0.5, Metric(math.NaN())})
	if err != nil || string(b) != "[0.5,null]" {
		t.Fatalf("%s %v", b, err)
	}
	var back []Metric
	if err := json.Unmarshal(b, &back); err != nil || back[0] != 0.5 || !math.IsNaN(float64(back[1])) {
		t.Errorf("%v %v", back, err)
	}
}
