// Package segmetrics scores label maps against ground truth with a
// confusion matrix, under both protocols of the reference (spec §7): the
// CAM / pseudo-label protocol of evaluate_mthr_voc.py (mIoU = NaN-mean of
// the IoU of all classes, background included) and the segmentation
// protocol of deeplab-pytorch metric.py (mIoU over the classes present in
// the ground truth). Label 255 is ignore in the ground truth and
// "unlabeled" in a prediction.
package segmetrics

import (
	"encoding/json"
	"fmt"
	"math"
)

// Ignore is the ignore / unlabeled value.
const Ignore = 255

// Confusion is a K×K confusion matrix: M[g*K+p] counts pixels with ground
// truth g and prediction p.
type Confusion struct {
	K int
	M []int64
	// Unlabeled counts pixels with a valid ground truth but prediction 255
	// (ignore band of a pseudo-label); they are not in M, as the reference
	// keeps only pred < K.
	Unlabeled int64
}

// New returns an empty K×K matrix.
func New(k int) *Confusion { return &Confusion{K: k, M: make([]int64, k*k)} }

// ValueError is a pixel that is neither a label 0..K-1 nor 255.
type ValueError struct {
	Pred  bool // in the prediction, else in the ground truth
	Index int  // pixel index, row-major
	Value uint8
	K     int
}

func (e *ValueError) Error() string {
	which := "ground truth"
	if e.Pred {
		which = "prediction"
	}
	return fmt.Sprintf("%s pixel %d has class id %d, want 0..%d or %d", which, e.Index, e.Value, e.K-1, Ignore)
}

// Add accumulates one image; gt and pred have the same length. It returns a
// *ValueError for the first value that is not a label (the matrix then
// holds the pixels before it: discard it).
func (c *Confusion) Add(gt, pred []uint8) error {
	if len(gt) != len(pred) {
		return fmt.Errorf("ground truth has %d pixels, prediction %d", len(gt), len(pred))
	}
	k := c.K
	m := c.M[:k*k]
	pred = pred[:len(gt)]
	for i, g := range gt {
		if g == Ignore {
			continue
		}
		p := pred[i]
		if int(g) >= k {
			return &ValueError{Index: i, Value: g, K: k}
		}
		if int(p) >= k {
			if p == Ignore {
				c.Unlabeled++
				continue
			}
			return &ValueError{Pred: true, Index: i, Value: p, K: k}
		}
		m[int(g)*k+int(p)]++
	}
	return nil
}

// Merge adds o into c.
func (c *Confusion) Merge(o *Confusion) {
	for i, v := range o.M {
		c.M[i] += v
	}
	c.Unlabeled += o.Unlabeled
}

// Metric is a score that may be undefined (NaN, from 0/0); JSON writes NaN
// as null and reads null back as NaN.
type Metric float64

// MarshalJSON implements json.Marshaler.
func (m Metric) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(m))
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Metric) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = Metric(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*m = Metric(f)
	return nil
}

// Scores are the metrics of a confusion matrix. Per-class slices have K
// entries; a ratio with a zero denominator is NaN.
type Scores struct {
	Pixels    int64 `json:"pixels"`    // pixels in M
	Unlabeled int64 `json:"unlabeled"` // valid ground truth, prediction 255
	// Coverage is Pixels / (Pixels + Unlabeled): the share of scored
	// ground-truth pixels that received a label.
	Coverage Metric `json:"coverage"`
	PixelAcc Metric `json:"pixel_acc"`
	// MeanClassAcc is the mean recall over classes present in the ground
	// truth (deeplab-pytorch "Mean Accuracy").
	MeanClassAcc Metric `json:"mean_class_acc"`
	// MIoUCAM is the NaN-mean of IoU over all K classes (evaluate_mthr_voc):
	// a class predicted but absent from the ground truth counts as 0.
	MIoUCAM Metric `json:"miou_cam"`
	// MIoUSeg is the mean IoU over classes with ground-truth pixels
	// (deeplab-pytorch metric.py).
	MIoUSeg    Metric   `json:"miou_seg"`
	FWIoU      Metric   `json:"fwiou"`
	IoU        []Metric `json:"iou"`
	Precision  []Metric `json:"precision"`
	Recall     []Metric `json:"recall"`
	GTPixels   []int64  `json:"gt_pixels"`
	PredPixels []int64  `json:"pred_pixels"`
}

func ratio(a, b int64) Metric {
	if b == 0 {
		return Metric(math.NaN())
	}
	return Metric(float64(a) / float64(b))
}

// Scores computes the metrics.
func (c *Confusion) Scores() Scores {
	k := c.K
	s := Scores{
		Unlabeled: c.Unlabeled,
		IoU:       make([]Metric, k), Precision: make([]Metric, k), Recall: make([]Metric, k),
		GTPixels: make([]int64, k), PredPixels: make([]int64, k),
	}
	var diag int64
	for g := range k {
		for p := range k {
			v := c.M[g*k+p]
			s.GTPixels[g] += v
			s.PredPixels[p] += v
			s.Pixels += v
		}
		diag += c.M[g*k+g]
	}
	s.PixelAcc = ratio(diag, s.Pixels)
	s.Coverage = ratio(s.Pixels, s.Pixels+s.Unlabeled)
	var sumAll, sumSeg, sumAcc, fw float64
	var nAll, nSeg int
	for i := range k {
		tp := c.M[i*k+i]
		s.IoU[i] = ratio(tp, s.GTPixels[i]+s.PredPixels[i]-tp)
		s.Precision[i] = ratio(tp, s.PredPixels[i])
		s.Recall[i] = ratio(tp, s.GTPixels[i])
		if iou := float64(s.IoU[i]); !math.IsNaN(iou) {
			sumAll += iou
			nAll++
			if s.GTPixels[i] > 0 {
				sumSeg += iou
				sumAcc += float64(s.Recall[i])
				nSeg++
				fw += float64(s.GTPixels[i]) / float64(s.Pixels) * iou
			}
		}
	}
	s.MIoUCAM, s.MIoUSeg, s.MeanClassAcc, s.FWIoU = mean(sumAll, nAll), mean(sumSeg, nSeg), mean(sumAcc, nSeg), Metric(math.NaN())
	if s.Pixels > 0 {
		s.FWIoU = Metric(fw)
	}
	return s
}

func mean(sum float64, n int) Metric {
	if n == 0 {
		return Metric(math.NaN())
	}
	return Metric(sum / float64(n))
}
