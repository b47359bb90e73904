package evaluate

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/schemas"
)

const benchW, benchH = 500, 375

// benchGT is a VOC-like 500×375 mask: two objects, a 255 boundary band.
func benchGT() []uint8 {
	m := make([]uint8, benchW*benchH)
	for y := range benchH {
		for x := range benchW {
			d1 := math.Hypot((float64(x)-160)/110, (float64(y)-180)/80)
			d2 := math.Hypot((float64(x)-360)/70, (float64(y)-160)/120)
			switch {
			case d1 < 0.97:
				m[y*benchW+x] = 8
			case d2 < 0.97:
				m[y*benchW+x] = 12
			case d1 < 1.03 || d2 < 1.03:
				m[y*benchW+x] = 255
			}
		}
	}
	return m
}

// cpuTime is the process's user+system CPU time: on a shared, overloaded
// machine wall-clock rates measure the queue, so the benchmarks also report
// images per CPU-second (they run on one goroutine).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func perImage(b *testing.B, cpuStart time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	if cpu := (cpuTime() - cpuStart).Seconds(); cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu, "images/cpu-s")
	}
}

// BenchmarkConfusionAdd: scoring one 500×375 label mask (21 classes).
func BenchmarkConfusionAdd(b *testing.B) {
	gt := benchGT()
	pred := make([]uint8, len(gt))
	for i := range pred {
		pred[i] = gt[(i+1500)%len(gt)] // shifted: a realistic mix of hits and misses
	}
	c := segmetrics.New(21)
	b.ResetTimer()
	start := cpuTime()
	for range b.N {
		if err := c.Add(gt, pred); err != nil {
			b.Fatal(err)
		}
	}
	perImage(b, start)
}

// BenchmarkSweep: one 500×375 image with 2 uint8 CAMs scored at the 5
// thresholds of evaluate_mthr_voc.py in one pass.
func BenchmarkSweep(b *testing.B) {
	gt := benchGT()
	rec := &camio.Record{H: benchH, W: benchW, ClassIDs: []int{7, 11}, DType: schemas.CAMUint8, Data: make([]byte, 2*benchW*benchH)}
	for i := range rec.Data {
		rec.Data[i] = uint8((i * 7) % 256)
	}
	s := newSweep(21, DefaultConfig().Thresholds)
	b.ResetTimer()
	start := cpuTime()
	for range b.N {
		if err := s.add(rec, gt); err != nil {
			b.Fatal(err)
		}
	}
	perImage(b, start)
}

// BenchmarkEvaluateLabelsPNG: the whole `l2g eval labels` path on one
// worker for 16 images: decode the predicted and ground-truth palette PNGs
// (500×375), check sizes, score.
func BenchmarkEvaluateLabelsPNG(b *testing.B) {
	const n = 16
	gt := &imaging.Gray{W: benchW, H: benchH, Pix: benchGT()}
	for i, v := range gt.Pix { // the test dataset has 4 classes
		gt.Pix[i] = map[uint8]uint8{0: 0, 8: 1, 12: 3, 255: 255}[v]
	}
	pred := &imaging.Gray{W: benchW, H: benchH, Pix: make([]uint8, len(gt.Pix))}
	for i := range pred.Pix {
		pred.Pix[i] = gt.Pix[(i+1500)%len(gt.Pix)]
	}
	gts, labels := map[string]*imaging.Gray{}, map[string][]int{}
	var order []string
	predDir := b.TempDir()
	for i := range n {
		id := fmt.Sprintf("im%02d", i)
		gts[id], labels[id], order = gt, []int{0, 3}, append(order, id)
		writePNG(b, filepath.Join(predDir, id+".png"), pred, true)
	}
	split, err := data.Open(context.Background(), dataset(b, gts, labels, order))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := cpuTime()
	for range b.N {
		if _, err := EvaluateLabels(context.Background(), predDir, split, 1, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
	if cpu := (cpuTime() - start).Seconds(); cpu > 0 {
		b.ReportMetric(float64(b.N*n)/cpu, "images/cpu-s")
	}
}
