package segtrain

import (
	"context"
	"testing"

	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/torch"
)

// BenchmarkTrainStep measures training throughput on the CPU at reduced
// sizes: one update (forward of the four MSC outputs, loss, backward, SGD)
// over batch 4 × ITER_SIZE 1, data loading excluded (it runs ahead on the
// workers). Reported as images/s.
//
//	go test ./stages/segtrain -run '^$' -bench TrainStep -benchtime 10x
func BenchmarkTrainStep(b *testing.B) {
	for _, bc := range []struct {
		name  string
		model ModelConfig
		crop  int
	}{
		{"small/crop64", smallConfig().Model, 64},
		// The ResNet-101 layout (3, 4, 23, 3 blocks, ASPP 6–24) at a
		// quarter of the width and half the crop.
		{"deeplabv2_resnet101/width16/crop161", ModelConfig{Arch: "deeplabv2_resnet101", NumClasses: synthClasses + 1, Width: 16}, 161},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := smallConfig()
			cfg.Model, cfg.Augment.Crop = bc.model, bc.crop
			cfg.BatchSize, cfg.IterSize = 4, 1
			cfg.Augment.InputScale = 1
			cfg.Optim.LR = 2.5e-4
			tr := newTestTrainer(b, cfg)
			subs := [][]*example{examples(b, 4, bc.crop)}
			if _, err := tr.step(subs, cfg.Optim.LR); err != nil { // warm-up
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := tr.step(subs, cfg.Optim.LR); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(4*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkPredict measures test-time throughput on the 64×64 validation
// images with the small net: the network alone, and with the dense CRF
// (spec parameters, 10 mean-field iterations). Reported as images/s.
//
//	go test ./stages/segtrain -run '^$' -bench Predict -benchtime 20x
func BenchmarkPredict(b *testing.B) {
	cfg := smallConfig()
	tr := newTestTrainer(b, cfg)
	sp, err := openSplit(context.Background(), cfg, synthDir, "val.txt")
	if err != nil {
		b.Fatal(err)
	}
	img, err := data.DecodeImage(sp.Items[0].ImagePath)
	if err != nil {
		b.Fatal(err)
	}
	for _, withCRF := range []bool{false, true} {
		name := "raw"
		if withCRF {
			name = "crf"
		}
		b.Run(name, func(b *testing.B) {
			c := cfg
			c.Test.CRF = withCRF
			p := &predictor{ctx: context.Background(), cfg: c, net: tr.net, dev: torch.CPU(), split: sp}
			for b.Loop() {
				if _, err := p.predict(testItem{img: img}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
