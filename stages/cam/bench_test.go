package cam_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/stages/cam"
)

// benchInfer measures Infer (4 scales × flip, one present class) on a
// side×side image.
func benchInfer(b *testing.B, net nn.Classifier, side int) {
	img := randomImage(side, side, 1)
	o := cam.DefaultOptions()
	if _, err := cam.Infer(net, img, []int{0}, o); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := cam.Infer(net, img, []int{0}, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkInferSmall is the synthetic demo's classifier on its 96×96
// images.
func BenchmarkInferSmall(b *testing.B) {
	net, err := nn.NewClassifier(nn.ArchSmall, 5, torch.CPU())
	if err != nil {
		b.Fatal(err)
	}
	defer net.Store().Close()
	benchInfer(b, net, 96)
}

// BenchmarkInferResNet38 is the paper's network (ResNet-38 + PCM, 20
// classes) on 64×64 images, at full width and at a quarter of it.
func BenchmarkInferResNet38(b *testing.B) {
	for _, width := range []int64{16, 64} {
		b.Run(fmt.Sprintf("width%d", width), func(b *testing.B) {
			net, err := nn.NewClassifier(nn.ArchResNet38, 20, torch.CPU(), nn.WithWidth(width))
			if err != nil {
				b.Fatal(err)
			}
			defer net.Store().Close()
			benchInfer(b, net, 64)
		})
	}
}

// BenchmarkRunNetSmall is the whole stage on 16 images of 96×96 (decode,
// resize on workers, inference, uint8 Parquet), one flip pair per forward
// and 8 images per forward.
func BenchmarkRunNetSmall(b *testing.B) {
	root := b.TempDir()
	if err := os.MkdirAll(filepath.Join(root, data.DirImages), 0o755); err != nil {
		b.Fatal(err)
	}
	var list strings.Builder
	for i := range 16 {
		img := randomImage(96, 96, uint64(i))
		rgba := image.NewRGBA(image.Rect(0, 0, 96, 96))
		for p := range 96 * 96 {
			copy(rgba.Pix[4*p:], img.Pix[3*p:3*p+3])
			rgba.Pix[4*p+3] = 255
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, rgba); err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("im%02d", i)
		if err := os.WriteFile(filepath.Join(root, data.DirImages, id+".jpg"), buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&list, "%s %d\n", id, i%5)
	}
	if err := os.WriteFile(filepath.Join(root, "train_cls.txt"), []byte(list.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, data.ClassesFile), []byte("a\nb\nc\nd\ne\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	split, err := data.Open(context.Background(), data.Spec{Root: root, Kind: data.VOC, List: "train_cls.txt"})
	if err != nil {
		b.Fatal(err)
	}
	net, err := nn.NewClassifier(nn.ArchSmall, 5, torch.CPU())
	if err != nil {
		b.Fatal(err)
	}
	defer net.Store().Close()
	for _, images := range []int{1, 8} {
		b.Run(fmt.Sprintf("batch%d", images), func(b *testing.B) {
			cfg := cam.DefaultConfig()
			cfg.Device = "cpu"
			cfg.Batch.Images = images
			out := b.TempDir()
			n := 0
			for b.Loop() {
				res, err := cam.RunNet(context.Background(), cfg, net, split, cam.Inputs{OutDir: out}, nil)
				if err != nil {
					b.Fatal(err)
				}
				n += res.Images
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
