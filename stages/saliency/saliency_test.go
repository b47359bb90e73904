package saliency

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/stages"
)

// scene draws an off-centre object of class 1 on a textured background,
// with a 2-pixel ignore (255) band on the object's edge as in VOC masks.
func scene(w, h int, seed uint64) (*imaging.RGB, *imaging.Gray) {
	rng := rand.New(rand.NewPCG(seed, 7))
	img := imaging.NewRGB(w, h)
	mask := imaging.NewGray(w, h)
	cx := (0.3 + 0.4*rng.Float64()) * float64(w)
	cy := (0.3 + 0.4*rng.Float64()) * float64(h)
	rx, ry := (0.12+0.1*rng.Float64())*float64(w), (0.15+0.1*rng.Float64())*float64(h)
	obj := [3]float64{150 + 100*rng.Float64(), 50 * rng.Float64(), 50 + 150*rng.Float64()}
	for y := range h {
		for x := range w {
			i := y*w + x
			dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
			r := math.Sqrt(dx*dx + dy*dy)
			n := float64(rng.IntN(31) - 15)
			c := [3]float64{60 + 30*float64(y)/float64(h) + n, 120 + n, 70 + n}
			if r <= 1 {
				c = [3]float64{obj[0] + n/2, obj[1] + n/2, obj[2] + n/2}
				mask.Pix[i] = 1
			}
			if math.Abs(r-1)*min(rx, ry) < 1 {
				mask.Pix[i] = 255
			}
			for k := range 3 {
				img.Pix[3*i+k] = uint8(min(max(c[k], 0), 255))
			}
		}
	}
	return img, mask
}

type fixture struct {
	root  string
	items []data.Item
}

// newFixture writes n JPEG images (96+8k)×72 and their palette masks.
func newFixture(t *testing.T, n int) fixture {
	t.Helper()
	sizes := make([][2]int, n)
	for k := range sizes {
		sizes[k] = [2]int{96 + 8*k, 72}
	}
	return newFixtureSizes(t, sizes)
}

func newFixtureSizes(t *testing.T, sizes [][2]int) fixture {
	t.Helper()
	root := t.TempDir()
	f := fixture{root: root}
	for k, sz := range sizes {
		id := "img" + string(rune('a'+k))
		w, h := sz[0], sz[1]
		img, mask := scene(w, h, uint64(k))
		it := data.Item{ID: id, ImagePath: filepath.Join(root, "JPEGImages", id+".jpg"), MaskPath: filepath.Join(root, "SegmentationClass", id+".png")}
		var b bytes.Buffer
		if err := data.EncodeJPEG(&b, img, 95); err != nil {
			t.Fatal(err)
		}
		writeFile(t, it.ImagePath, b.Bytes())
		b.Reset()
		if err := data.EncodeIndexPNG(&b, mask); err != nil {
			t.Fatal(err)
		}
		writeFile(t, it.MaskPath, b.Bytes())
		f.items = append(f.items, it)
	}
	return f
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func grayPNG(t *testing.T, w, h int, v uint8) []byte {
	t.Helper()
	g := imaging.NewGray(w, h)
	for i := range g.Pix {
		g.Pix[i] = v
	}
	var b bytes.Buffer
	if err := data.EncodeGrayPNG(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// noTemp fails if an atomic write left a temporary file in dir.
func noTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestComputeWritesMapsAndBeatsCentrePrior(t *testing.T) {
	f := newFixture(t, 4)
	out := filepath.Join(f.root, data.DirSal)
	var reports []stages.Progress
	res, err := Run(context.Background(), DefaultConfig(), Inputs{Items: f.items, OutDir: out, ManifestPath: filepath.Join(out, "manifest.json")},
		func(p stages.Progress) { reports = append(reports, p) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != MethodMBD || res.Dir != out || res.Copied || len(res.Maps) != 4 {
		t.Fatalf("outputs %+v", res)
	}
	for i, m := range res.Maps {
		it := f.items[i]
		if m.ID != it.ID || m.Path != filepath.Join(out, it.ID+".png") {
			t.Errorf("map %d: %+v for item %s", i, m, it.ID)
		}
		b, err := os.ReadFile(m.Path)
		if err != nil {
			t.Fatal(err)
		}
		if sha(b) != m.SHA256 || int64(len(b)) != m.Bytes {
			t.Errorf("%s: recorded hash/size do not match the file", m.Path)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.ColorModel != color.GrayModel || cfg.Width != 96+8*i || cfg.Height != 72 {
			t.Errorf("%s: %+v %v, want an 8-bit gray %dx72 PNG", m.Path, cfg, err, 96+8*i)
		}
	}
	if len(reports) != 4 || reports[3].Iteration != 4 || reports[3].Total != 4 || reports[3].Stage != StageName {
		t.Errorf("progress reports %+v", reports)
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
		t.Error(err)
	}
	noTemp(t, out)

	got, err := Evaluate(context.Background(), f.items, out, 0)
	if err != nil {
		t.Fatal(err)
	}
	base, err := EvaluateCentrePrior(context.Background(), f.items, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MB+: %+v\ncentre prior: %+v", got, base)
	if got.Images != 4 || got.MAE > base.MAE/3 || got.MaxF < base.MaxF+0.3 {
		t.Errorf("MB+ MAE %.3f maxF %.3f vs centre prior MAE %.3f maxF %.3f", got.MAE, got.MaxF, base.MAE, base.MaxF)
	}
}

func TestComputeResumeKeepsFinishedMaps(t *testing.T) {
	f := newFixture(t, 3)
	out := t.TempDir()
	in := Inputs{Items: f.items, OutDir: out}
	first, err := Run(context.Background(), DefaultConfig(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A marker value in one map shows whether it was recomputed; another
	// map is deleted, a third is truncated (not a valid PNG).
	keep := first.Maps[0].Path
	writeFile(t, keep, grayPNG(t, 96, 72, 77))
	os.Remove(first.Maps[1].Path)
	writeFile(t, first.Maps[2].Path, []byte("\x89PNG\r\n"))
	in.Resume = true
	second, err := Run(context.Background(), DefaultConfig(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := data.DecodeSaliency(keep); s == nil || s.Pix[0] != 77 {
		t.Error("resume recomputed a finished map")
	}
	for i := 1; i < 3; i++ {
		if second.Maps[i].SHA256 != first.Maps[i].SHA256 {
			t.Errorf("map %d: recomputed map differs from the first run (not deterministic)", i)
		}
	}
}

func TestComputeReportsEveryBadImage(t *testing.T) {
	f := newFixture(t, 3)
	os.Remove(f.items[0].ImagePath)
	writeFile(t, f.items[2].ImagePath, []byte("not an image"))
	out := t.TempDir()
	_, err := Run(context.Background(), DefaultConfig(), Inputs{Items: f.items, OutDir: out}, nil)
	var list *badinput.List
	if !errors.As(err, &list) || len(list.Errs) != 2 {
		t.Fatalf("error %v, want a list of 2 input problems", err)
	}
	for i, k := range []int{0, 2} {
		if list.Errs[i].Path != f.items[k].ImagePath {
			t.Errorf("problem %d names %q, want %q", i, list.Errs[i].Path, f.items[k].ImagePath)
		}
	}
	for _, k := range []int{0, 2} {
		if _, err := os.Stat(mapPath(out, f.items[k].ID)); err == nil {
			t.Errorf("map written for bad image %s", f.items[k].ID)
		}
	}
	noTemp(t, out)
}

func TestImportRegistersInPlace(t *testing.T) {
	f := newFixture(t, 3)
	src := t.TempDir()
	for i, it := range f.items {
		writeFile(t, mapPath(src, it.ID), grayPNG(t, 96+8*i, 72, uint8(10*i)))
	}
	out := t.TempDir()
	cfg := DefaultConfig()
	cfg.ImportDir = src
	res, err := Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != MethodImport || res.Dir != src || res.Copied {
		t.Errorf("outputs %+v, want maps registered in %s", res, src)
	}
	for i, m := range res.Maps {
		b, _ := os.ReadFile(mapPath(src, f.items[i].ID))
		if m.Path != mapPath(src, f.items[i].ID) || m.SHA256 != sha(b) || m.W != 96+8*i || m.H != 72 {
			t.Errorf("map %d: %+v", i, m)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("import without copy wrote %d files", len(ents))
	}

	cfg.Copy = true
	res, err = Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Copied || res.Dir != out {
		t.Errorf("copy: outputs %+v", res)
	}
	for i, m := range res.Maps {
		a, _ := os.ReadFile(mapPath(src, f.items[i].ID))
		b, _ := os.ReadFile(m.Path)
		if m.Path != mapPath(out, f.items[i].ID) || !bytes.Equal(a, b) || m.SHA256 != sha(b) {
			t.Errorf("copy %d: %+v", i, m)
		}
	}
	noTemp(t, out)
}

func TestImportReportsEveryProblemAtOnce(t *testing.T) {
	f := newFixture(t, 5)
	src := t.TempDir()
	// 0 good, 1 missing, 2 wrong size, 3 RGB, 4 corrupt.
	writeFile(t, mapPath(src, f.items[0].ID), grayPNG(t, 96, 72, 1))
	writeFile(t, mapPath(src, f.items[2].ID), grayPNG(t, 50, 72, 1))
	var b bytes.Buffer
	png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 120, 72)))
	writeFile(t, mapPath(src, f.items[3].ID), b.Bytes())
	writeFile(t, mapPath(src, f.items[4].ID), grayPNG(t, 128, 72, 1)[:40])
	out := t.TempDir()
	cfg := DefaultConfig()
	cfg.ImportDir, cfg.Copy = src, true
	_, err := Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: out}, nil)
	var list *badinput.List
	if !errors.As(err, &list) || len(list.Errs) != 4 {
		t.Fatalf("error %v, want 4 input problems", err)
	}
	for i, want := range []string{"missing", "size", "8-bit gray", ""} {
		e := list.Errs[i]
		if e.Path != mapPath(src, f.items[i+1].ID) || !strings.Contains(e.Error(), want) {
			t.Errorf("problem %d: %v, want %s named with %q", i, e, mapPath(src, f.items[i+1].ID), want)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("a failed import copied %d files", len(ents))
	}
	cfg.ImportDir = filepath.Join(src, "nope")
	_, err = Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: out}, nil)
	var bad *badinput.Error
	if !errors.As(err, &bad) || bad.Field != "import_dir" {
		t.Errorf("missing import dir: %v", err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	f := newFixture(t, 1)
	for field, cfg := range map[string]Config{
		"saliency.method":  {Method: "poolnet", MBD: DefaultConfig().MBD},
		"saliency.mbd":     {},
		"saliency.workers": {Workers: -1, MBD: DefaultConfig().MBD},
	} {
		_, err := Run(context.Background(), cfg, Inputs{Items: f.items, OutDir: t.TempDir()}, nil)
		var bad *badinput.Error
		if !errors.As(err, &bad) || bad.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	_, err := Run(context.Background(), DefaultConfig(), Inputs{Items: f.items}, nil)
	if !badinput.Is(err) || !strings.Contains(err.Error(), "out_dir") {
		t.Errorf("no output dir: %v", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	f := newFixture(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, DefaultConfig(), Inputs{Items: f.items, OutDir: t.TempDir()}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}
