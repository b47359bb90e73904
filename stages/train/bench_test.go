package train

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/torch"
)

// BenchmarkStep times one L2G training step (forward of both nets, target,
// RoIAlign, losses, backward, SGD) of full-width ResNet-38 at global 224,
// crop 160, batch 1, N = 6, 20 classes, on 1 CPU thread. Data loading is
// left out: the loader runs ahead on other cores. It reports ms/step and
// images/s. Run it alone, it needs about 5 GB:
//
//	go test -run '^$' -bench BenchmarkStep -benchtime 3x ./stages/train
func BenchmarkStep(b *testing.B) {
	cfg := DefaultConfig()
	cfg.View.Size, cfg.View.ShortSide = 224, 224
	cfg.Local.Crop = 160
	cfg.BatchSize = 1
	cfg.Threads = 1
	benchStep(b, cfg)
}

// BenchmarkStepSmall is the same step for the synthetic demo's small net
// (96-px views, 4 crops of 64, batch 16), on 1 thread.
func BenchmarkStepSmall(b *testing.B) {
	cfg, err := LoadConfig("../../configs/demo.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Threads = 1
	benchStep(b, cfg)
}

func benchStep(b *testing.B, cfg Config) {
	if err := torch.SetNumThreads(cfg.Threads); err != nil {
		b.Fatal(err)
	}
	split := &data.Split{Items: make([]data.Item, cfg.BatchSize)}
	t, err := newTrainer(cfg, split, torch.CPU())
	if err != nil {
		b.Fatal(err)
	}
	defer t.close()
	r := rand.New(rand.NewPCG(1, 1))
	boxes := cfg.localBoxes()
	exs := make([]*example, cfg.BatchSize)
	for i := range exs {
		ex := &example{label: make([]float32, cfg.NumClasses)}
		ex.label[r.IntN(cfg.NumClasses)] = 1
		ex.view = randFloats(r, 3*cfg.View.Size*cfg.View.Size)
		if ex.boxes, err = boxes.Sample(r); err != nil {
			b.Fatal(err)
		}
		v := &augment.View{Size: cfg.View.Size, Image: ex.view, Sal: randFloats(r, cfg.View.Size*cfg.View.Size)}
		for _, bx := range ex.boxes {
			img, sal, err := v.Local(bx)
			if err != nil {
				b.Fatal(err)
			}
			ex.crops = append(ex.crops, img...)
			ex.sal = append(ex.sal, sal...)
		}
		exs[i] = ex
	}
	if _, err := t.step(exs, cfg.Optim.LR); err != nil { // warm-up: allocator, first-call costs
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := t.step(exs, cfg.Optim.LR); err != nil {
			b.Fatal(err)
		}
	}
	sec := time.Since(start).Seconds() / float64(b.N)
	b.ReportMetric(sec*1000, "ms/step")
	b.ReportMetric(float64(cfg.BatchSize)/sec, "images/s")
}

func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}
