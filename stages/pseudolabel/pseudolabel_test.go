package pseudolabel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/schemas"
)

// rec8 builds a uint8 record from byte planes.
func rec8(w int, classes []int, planes ...[]uint8) *camio.Record {
	r := &camio.Record{ID: "x", H: len(planes[0]) / w, W: w, ClassIDs: classes, DType: schemas.CAMUint8}
	for _, p := range planes {
		r.Data = append(r.Data, p...)
	}
	return r
}

func label(t *testing.T, cfg Config, r *camio.Record, sal *imaging.Gray) []uint8 {
	t.Helper()
	m, err := NewLabeler(cfg).Label(r, sal, "sal.png", nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestArgmaxTiesGoToBackgroundThenLowerClass(t *testing.T) {
	// thr 0.2 = 51/255 exactly (as numpy computes 51/255.): a tie, so
	// background; 52 wins. Between classes 1 and 4 (labels 2 and 5) the
	// lower class wins a tie.
	r := rec8(5, []int{1, 4},
		[]uint8{51, 52, 100, 0, 255},
		[]uint8{0, 52, 100, 101, 255})
	got := label(t, Config{BgThreshold: 0.2, Background: BackgroundThreshold}, r, nil)
	if want := []uint8{0, 2, 2, 5, 2}; string(got) != string(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	// 64/255 = 0.25098 > 0.25; 63/255 < 0.25.
	r = rec8(2, []int{0}, []uint8{63, 64})
	if got := label(t, DefaultConfig(), r, nil); string(got) != string([]uint8{0, 1}) {
		t.Errorf("0.25: %v", got)
	}
	// float16: 0.25 is exact, a tie with the threshold.
	f := &camio.Record{ID: "f", H: 1, W: 2, ClassIDs: []int{2}, DType: schemas.CAMFloat16, Data: []byte{0x00, 0x34, 0x01, 0x34}}
	if got := label(t, DefaultConfig(), f, nil); string(got) != string([]uint8{0, 3}) {
		t.Errorf("float16 0.25 / 0.25+ulp: %v", got)
	}
	// No class in the label: all background.
	e := &camio.Record{ID: "e", H: 1, W: 3, DType: schemas.CAMUint8}
	if got := label(t, DefaultConfig(), e, nil); string(got) != "\x00\x00\x00" {
		t.Errorf("no class: %v", got)
	}
}

func TestIgnoreBand(t *testing.T) {
	// margin 0.1 around thr 0.25: scores [bg 0.25, c0, c1].
	r := rec8(5, []int{0, 1},
		[]uint8{70, 100, 200, 40, 0}, // 0.275 0.392 0.784 0.157 0
		[]uint8{0, 90, 170, 0, 0})    // 0     0.353 0.667 0     0
	got := label(t, Config{BgThreshold: 0.25, Background: BackgroundThreshold, IgnoreMargin: 0.1}, r, nil)
	// px0: c0 0.275 vs bg 0.25 → close → 255; px1: 0.392 vs 0.353 → 255;
	// px2: 0.784 vs 0.667 → class 1; px3: bg 0.25 vs 0.157 → 255; px4 → bg.
	if want := []uint8{255, 255, 1, 255, 0}; string(got) != string(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

func TestSaliencyBackground(t *testing.T) {
	// bg = max(0.25, 1 − s/255).
	r := rec8(4, []int{3}, []uint8{100, 100, 200, 255})
	sal := &imaging.Gray{W: 4, H: 1, Pix: []uint8{255, 0, 100, 0}} // bg 0.25, 1, 0.608, 1
	got := label(t, Config{BgThreshold: 0.25, Background: BackgroundSaliency}, r, sal)
	if want := []uint8{4, 0, 4, 0}; string(got) != string(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	_, err := NewLabeler(Config{BgThreshold: 0.25, Background: BackgroundSaliency}).Label(r, &imaging.Gray{W: 2, H: 2, Pix: make([]uint8, 4)}, "s.png", nil)
	var bad *badinput.Error
	if !errors.As(err, &bad) || bad.Path != "s.png" || bad.Field != "size" {
		t.Errorf("size mismatch: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{BgThreshold: -0.1, Background: BackgroundThreshold}, "bg_threshold"},
		{Config{BgThreshold: 0.2, Background: "crf"}, "background"},
		{Config{BgThreshold: 0.2, Background: BackgroundThreshold, IgnoreMargin: 2}, "ignore_margin"},
	} {
		var bad *badinput.Error
		if err := c.cfg.Validate(); !errors.As(err, &bad) || bad.Field != c.field {
			t.Errorf("%+v: %v", c.cfg, err)
		}
	}
	if DefaultConfig().Hash() == (Config{BgThreshold: 0.3, Background: BackgroundThreshold}).Hash() {
		t.Error("hash ignores the threshold")
	}
	a, b := DefaultConfig(), DefaultConfig()
	b.Workers, b.WritePNG = 7, false
	if a.Hash() != b.Hash() {
		t.Error("hash depends on settings that do not change labels")
	}
}

// writeCAMs writes n images of h×w with classes {i%3, 3} and returns the path.
func writeCAMs(t testing.TB, dir string, n, h, w int) string {
	t.Helper()
	path := filepath.Join(dir, "cams.parquet")
	cw, err := camio.Create(path, schemas.CAMMeta{DType: schemas.CAMUint8, ClassNames: []string{"a", "b", "c", "d"}, RunID: "cam-run"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		cls := []int{i % 3, 3}
		planes := make([][]float32, 2)
		for p := range planes {
			planes[p] = make([]float32, h*w)
			for j := range planes[p] {
				planes[p][j] = float32((j*(p+1)+i*5)%97) / 96
			}
		}
		if err := cw.Append(fmt.Sprintf("img%03d", i), "train_aug", h, w, cls, planes); err != nil {
			t.Fatal(err)
		}
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunWritesParquetAndPNGs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cams := writeCAMs(t, dir, 70, 6, 9)
	out := filepath.Join(dir, "out")
	cfg := DefaultConfig()
	cfg.Workers = 3
	o, err := Run(ctx, cfg, Inputs{CAMs: cams, OutDir: out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Images != 70 || o.SourceRunID != "cam-run" || o.ConfigHash != cfg.Hash() || len(o.LabelFractions) != 5 {
		t.Fatalf("outputs %+v", o)
	}
	lr, err := labelio.Open(o.Parquet)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	cr, _ := camio.Open(cams)
	defer cr.Close()
	l := NewLabeler(cfg)
	var sum float64
	for i := range 70 {
		rec, err := lr.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := cr.Next(ctx)
		want, _ := l.Label(c, nil, "", nil)
		if rec.ID != c.ID || string(rec.Mask) != string(want) || rec.BgThreshold != 0.25 || rec.SourceRunID != "cam-run" {
			t.Fatalf("row %d: %s differs from labelling %s directly", i, rec.ID, c.ID)
		}
		png, err := data.DecodeMask(filepath.Join(o.PNGDir, rec.ID+".png"))
		if err != nil || string(png.Pix) != string(want) {
			t.Fatalf("PNG of %s: %v", rec.ID, err)
		}
		for j, k := range rec.ClassIDs {
			if k == 0 {
				sum += float64(rec.ClassFractions[j])
			}
		}
	}
	if d := sum/70 - o.LabelFractions[0]; d > 1e-6 || d < -1e-6 {
		t.Errorf("background fraction %v, mean of rows %v", o.LabelFractions[0], sum/70)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 2 {
		t.Errorf("out dir holds %v, want the Parquet file and png/", ents)
	}
}

func TestRunFailsWithoutPartialOutput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cams := writeCAMs(t, dir, 5, 4, 4)
	salDir := filepath.Join(dir, "sal")
	for i := range 5 {
		w := 4
		if i == 3 {
			w = 5 // saliency map of the wrong size
		}
		g := imaging.NewGray(w, 4)
		if err := artifacts.WriteWith(filepath.Join(salDir, fmt.Sprintf("img%03d.png", i)), func(wr io.Writer) error {
			return data.EncodeGrayPNG(wr, g)
		}); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	cfg := DefaultConfig()
	cfg.Background = BackgroundSaliency
	_, err := Run(ctx, cfg, Inputs{CAMs: cams, SalDir: salDir, OutDir: out}, nil)
	var bad *badinput.Error
	if !errors.As(err, &bad) || !strings.HasSuffix(bad.Path, "img003.png") || bad.Field != "size" {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("failed run left %v", ents)
	}
	// Saliency background without a saliency directory is a config error.
	if _, err := Run(ctx, cfg, Inputs{CAMs: cams, OutDir: out}, nil); !badinput.Is(err) {
		t.Errorf("no sal dir: %v", err)
	}
}
