package labelio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time: on a shared, overloaded
// machine the wall-clock MB/s of go test measures the queue, so the
// benchmarks also report MB per CPU-second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, bytesPerOp int) {
	if cpu := (cpuTime() - start).Seconds(); cpu > 0 {
		b.ReportMetric(float64(b.N*bytesPerOp)/1e6/cpu, "MB/cpu-s")
	}
}

// vocLikeMask is a 500×375 mask with two elliptical objects and a 255
// boundary band a few pixels wide, as in VOC's SegmentationClass.
func vocLikeMask(i int) []uint8 {
	const w, h = 500, 375
	m := make([]uint8, w*h)
	objs := []struct{ cx, cy, a, b float64 }{
		{150 + float64(i%50), 180, 110, 80},
		{360, 150 + float64(i%40), 70, 120},
	}
	for y := range h {
		for x := range w {
			for k, o := range objs {
				d := math.Hypot((float64(x)-o.cx)/o.a, (float64(y)-o.cy)/o.b)
				switch {
				case d < 0.97:
					m[y*w+x] = uint8(1 + (i+k)%3)
				case d < 1.03 && m[y*w+x] == 0:
					m[y*w+x] = 255
				}
			}
		}
	}
	return m
}

const benchImages = 2 * 64

func benchMasks() [][]uint8 {
	out := make([][]uint8, 8)
	for i := range out {
		out[i] = vocLikeMask(i)
	}
	return out
}

// BenchmarkWrite reports MB/s of mask bytes written (ZSTD, 64-row groups).
func BenchmarkWrite(b *testing.B) {
	masks := benchMasks()
	dir := b.TempDir()
	b.SetBytes(int64(benchImages * len(masks[0])))
	b.ResetTimer()
	start := cpuTime()
	defer func() { reportCPU(b, start, benchImages*len(masks[0])) }()
	for n := range b.N {
		w, err := Create(filepath.Join(dir, fmt.Sprintf("l%d.parquet", n)), Meta(classes))
		if err != nil {
			b.Fatal(err)
		}
		for i := range benchImages {
			if err := w.Append(Record{ID: fmt.Sprint(i), H: 375, W: 500, Mask: masks[i%len(masks)], BgThreshold: 0.25}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead reports MB/s of mask bytes read back in file order.
func BenchmarkRead(b *testing.B) {
	masks := benchMasks()
	path := filepath.Join(b.TempDir(), "l.parquet")
	w, err := Create(path, Meta(classes))
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchImages {
		if err := w.Append(Record{ID: fmt.Sprint(i), H: 375, W: 500, Mask: masks[i%len(masks)]}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(benchImages * len(masks[0])))
	b.ResetTimer()
	start := cpuTime()
	defer func() { reportCPU(b, start, benchImages*len(masks[0])) }()
	for range b.N {
		r, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		r.Close()
		if n != benchImages {
			b.Fatalf("read %d", n)
		}
	}
}
