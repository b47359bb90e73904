package saliency

import (
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
)

// The models in testdata are written by testdata/make_models.py: tiny
// scores 2·x0 + x1 − x2 + 0.5 per pixel of the normalized input, half the
// same at half resolution as (N, h, w), wrong returns its 3-channel input.

func modelConfig(file string) Config {
	cfg := DefaultConfig()
	cfg.Model.Path = filepath.Join("testdata", file)
	cfg.Model.Device = "cpu"
	return cfg
}

// rawScore is the tiny model's output for pixel p under mc.
func rawScore(mc ModelConfig, p []uint8) float64 {
	var x [3]float64
	for c := range 3 {
		src := c
		if mc.BGR {
			src = 2 - c
		}
		x[c] = (float64(p[src])*mc.Scale - mc.Mean[c]) / mc.Std[c]
	}
	return 2*x[0] + x[1] - x[2] + 0.5
}

// tinyScore is rawScore activated and clamped as the stage does.
func tinyScore(mc ModelConfig, p []uint8) float64 {
	v := rawScore(mc, p)
	if mc.Activation == ActSigmoid {
		v = 1 / (1 + math.Exp(-v))
	}
	return min(max(v, 0), 1)
}

func TestModelMatchesHandComputedScores(t *testing.T) {
	f := newFixtureSizes(t, [][2]int{{64, 48}, {64, 48}, {80, 40}, {64, 48}, {64, 48}})
	cfg := modelConfig("tiny_saliency.pt")
	cfg.Model.BatchSize = 3
	out := t.TempDir()
	res, err := Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != MethodModel || len(res.Maps) != 5 {
		t.Fatalf("outputs %+v", res)
	}
	for i, it := range f.items {
		img, err := data.DecodeImage(it.ImagePath)
		if err != nil {
			t.Fatal(err)
		}
		s, err := data.DecodeSaliency(res.Maps[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		if s.W != img.W || s.H != img.H {
			t.Fatalf("%s: map %dx%d, image %dx%d", it.ID, s.W, s.H, img.W, img.H)
		}
		for p := range s.Pix {
			want := tinyScore(cfg.Model, img.Pix[3*p:3*p+3]) * 255
			if math.Abs(float64(s.Pix[p])-want) > 0.51 {
				t.Fatalf("%s pixel %d: %d, want %.2f", it.ID, p, s.Pix[p], want)
			}
		}
	}
	noTemp(t, out)

	// Min-max activation: the raw scores rescaled to [0, 1] per image.
	cfg.Model.Activation = ActMinMax
	mm, err := Run(context.Background(), cfg, Inputs{Items: f.items[:1], OutDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := data.DecodeImage(f.items[0].ImagePath)
	s, err := data.DecodeSaliency(mm.Maps[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for p := range s.Pix {
		v := rawScore(cfg.Model, img.Pix[3*p:3*p+3])
		lo, hi = min(lo, v), max(hi, v)
	}
	for p := range s.Pix {
		want := (rawScore(cfg.Model, img.Pix[3*p:3*p+3]) - lo) / (hi - lo) * 255
		if math.Abs(float64(s.Pix[p])-want) > 0.51 {
			t.Fatalf("minmax pixel %d: %d, want %.2f", p, s.Pix[p], want)
		}
	}
	cfg.Model.Activation = ActSigmoid

	// Batching must not change a single pixel: batch 1 gives the same files.
	cfg.Model.BatchSize = 1
	one, err := Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range one.Maps {
		if one.Maps[i].SHA256 != res.Maps[i].SHA256 {
			t.Errorf("%s: batch 1 and batch 3 maps differ", f.items[i].ID)
		}
	}
}

func TestModelResizesInputAndOutputAndHonoursBGR(t *testing.T) {
	// Constant-colour images: every resize is exact, so the map is the hand
	// score everywhere.
	root := t.TempDir()
	colours := [][3]uint8{{200, 40, 90}, {10, 220, 30}, {128, 128, 128}}
	var items []data.Item
	for k, c := range colours {
		img := imaging.NewRGB(50+10*k, 30)
		for i := 0; i < len(img.Pix); i += 3 {
			copy(img.Pix[i:], c[:])
		}
		it := data.Item{ID: string(rune('a' + k)), ImagePath: filepath.Join(root, string(rune('a'+k))+".png")}
		f, err := os.Create(it.ImagePath)
		if err != nil {
			t.Fatal(err)
		}
		// PNG keeps the colour exact (JPEG would not).
		if err := encodeRGBPNG(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		items = append(items, it)
	}
	cfg := modelConfig("half_saliency.pt")
	cfg.Model.InputSize = []int{32, 24}
	cfg.Model.BGR = true
	cfg.Model.Scale = 1
	// Scores stay inside (0, 1), and BGR changes them: (200, 40, 90) gives
	// 0.69 as RGB but 0.03 as BGR.
	cfg.Model.Mean = []float64{128, 128, 128}
	cfg.Model.Std = []float64{500, 500, 500}
	cfg.Model.Activation = ActNone
	res, err := Run(context.Background(), cfg, Inputs{Items: items, OutDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range colours {
		s, err := data.DecodeSaliency(res.Maps[k].Path)
		if err != nil {
			t.Fatal(err)
		}
		want := math.Round(tinyScore(cfg.Model, c[:]) * 255)
		if s.W != 50+10*k || s.H != 30 {
			t.Errorf("map %d is %dx%d", k, s.W, s.H)
		}
		for p, v := range s.Pix {
			if math.Abs(float64(v)-want) > 1 {
				t.Fatalf("colour %v pixel %d: %d, want %.0f", c, p, v, want)
			}
		}
	}
}

func encodeRGBPNG(w io.Writer, img *imaging.RGB) error {
	m := image.NewNRGBA(image.Rect(0, 0, img.W, img.H))
	for i := range img.W * img.H {
		copy(m.Pix[4*i:], img.Pix[3*i:3*i+3])
		m.Pix[4*i+3] = 255
	}
	return png.Encode(w, m)
}

func TestModelBadInputsNameTheFile(t *testing.T) {
	f := newFixture(t, 2)
	cfg := modelConfig("wrong_saliency.pt")
	_, err := Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: t.TempDir()}, nil)
	var bad *badinput.Error
	if !errors.As(err, &bad) || bad.Path != cfg.Model.Path || !strings.Contains(err.Error(), "output shape") {
		t.Errorf("3-channel output: %v", err)
	}
	cfg = modelConfig("missing.pt")
	_, err = Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: t.TempDir()}, nil)
	if !errors.As(err, &bad) || bad.Path != cfg.Model.Path {
		t.Errorf("missing model: %v", err)
	}
	notModel := filepath.Join(t.TempDir(), "x.pt")
	writeFile(t, notModel, []byte("not a zip"))
	cfg.Model.Path = notModel
	_, err = Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: t.TempDir()}, nil)
	if !errors.As(err, &bad) || bad.Path != notModel {
		t.Errorf("corrupt model: %v", err)
	}
	cfg = modelConfig("tiny_saliency.pt")
	cfg.Model.Std = []float64{1, 0, 1}
	_, err = Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: t.TempDir()}, nil)
	if !errors.As(err, &bad) || bad.Field != "saliency.model.std" {
		t.Errorf("zero std: %v", err)
	}
	// A missing image among good ones is reported by name; the others are written.
	cfg = modelConfig("tiny_saliency.pt")
	os.Remove(f.items[1].ImagePath)
	out := t.TempDir()
	_, err = Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: out}, nil)
	if !errors.As(err, &bad) || bad.Path != f.items[1].ImagePath {
		t.Errorf("missing image: %v", err)
	}
	if _, err := os.Stat(mapPath(out, f.items[0].ID)); err != nil {
		t.Errorf("good image's map not written: %v", err)
	}
}
