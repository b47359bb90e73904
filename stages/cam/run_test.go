package cam_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/safetensors"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/schemas"
	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/stages/cam"
)

// testImage is one image of the test dataset.
type testImage struct {
	id     string
	w, h   int
	labels string
}

// Three 23×17 images, then a 20×14 one, then 23×17 again (batches of equal
// size break there), one without labels.
var testImages = []testImage{
	{"img1", 23, 17, "0 2"},
	{"img2", 23, 17, "1"},
	{"img3", 20, 14, "0 1 2"},
	{"img4", 23, 17, ""},
	{"img5", 23, 17, "2"},
}

// writeDataset writes a 3-class VOC-layout dataset (images stored as PNG
// under .jpg names, which the decoder accepts, so pixels are exact) and
// opens its list.
func writeDataset(t *testing.T) (root string, split *data.Split) {
	t.Helper()
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, data.DirImages), 0o755); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	for i, ti := range testImages {
		img := randomImage(ti.w, ti.h, uint64(10+i))
		rgba := image.NewRGBA(image.Rect(0, 0, ti.w, ti.h))
		for p := range ti.w * ti.h {
			copy(rgba.Pix[4*p:], img.Pix[3*p:3*p+3])
			rgba.Pix[4*p+3] = 255
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, rgba); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, data.DirImages, ti.id+".jpg"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		list.WriteString(ti.id + " " + ti.labels + "\n")
	}
	if err := os.WriteFile(filepath.Join(root, "train_cls.txt"), []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, data.ClassesFile), []byte("cat\ndog\ncow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	split, err := data.Open(context.Background(), data.Spec{Root: root, Kind: data.VOC, List: "train_cls.txt"})
	if err != nil {
		t.Fatal(err)
	}
	return root, split
}

func testConfig() cam.Config {
	cfg := cam.DefaultConfig()
	cfg.Device = "cpu"
	cfg.Workers = 2
	return cfg
}

// readCAMs reads every record of a CAM dataset.
func readCAMs(t *testing.T, path string) (schemas.CAMMeta, []*camio.Record) {
	t.Helper()
	r, err := camio.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []*camio.Record
	for {
		rec, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return r.Meta(), recs
}

// inferAll runs Infer on every image of split, one at a time.
func inferAll(t *testing.T, net nn.Classifier, split *data.Split, o cam.Options) [][][]float32 {
	t.Helper()
	out := make([][][]float32, len(split.Items))
	for i, it := range split.Items {
		img, err := data.DecodeImage(it.ImagePath)
		if err != nil {
			t.Fatal(err)
		}
		labels := it.Labels
		if labels == nil {
			labels = []int{}
		}
		if out[i], err = cam.Infer(net, img, labels, o); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestRunNetWritesInferOutput(t *testing.T) {
	root, split := writeDataset(t)
	net := newTinyNet(t, 3, 8)
	cfg := testConfig()
	cfg.WritePNG = true
	want := inferAll(t, net, split, cfg.Options(data.VOC))

	// The same planes through camio's own quantizer: RunNet must store the
	// identical bytes.
	ref := filepath.Join(t.TempDir(), "ref.parquet")
	rw, err := camio.Create(ref, schemas.CAMMeta{DType: schemas.CAMUint8, ClassNames: split.Classes})
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range split.Items {
		if err := rw.Append(it.ID, "train", testImages[i].h, testImages[i].w, it.Labels, want[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	_, refRecs := readCAMs(t, ref)

	var last stages.Progress
	outDir := filepath.Join(root, "out")
	out, err := cam.RunNet(context.Background(), cfg, net, split, cam.Inputs{OutDir: outDir, RunID: "r1"},
		func(p stages.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if out.Images != len(testImages) || last.Iteration != len(testImages) || last.Total != len(testImages) || last.Stage != cam.StageName {
		t.Errorf("outputs %+v, last progress %+v: want %d images", out, last, len(testImages))
	}
	meta, recs := readCAMs(t, out.CAMs)
	if meta.DType != schemas.CAMUint8 || !slices.Equal(meta.ClassNames, split.Classes) ||
		!slices.Equal(meta.Scales, cfg.Scales) || meta.RunID != "r1" || len(meta.ConfigHash) != 64 {
		t.Errorf("metadata %+v", meta)
	}
	if len(recs) != len(testImages) {
		t.Fatalf("%d records, want %d", len(recs), len(testImages))
	}
	for i, rec := range recs {
		ti, it := testImages[i], split.Items[i]
		if rec.ID != ti.id || rec.Split != "train" || rec.W != ti.w || rec.H != ti.h || !slices.Equal(rec.ClassIDs, it.Labels) {
			t.Errorf("record %d: %s %q %dx%d classes %v, want %s train %dx%d %v", i, rec.ID, rec.Split, rec.W, rec.H, rec.ClassIDs, ti.id, ti.w, ti.h, it.Labels)
			continue
		}
		if !bytes.Equal(rec.Data, refRecs[i].Data) {
			t.Errorf("%s: stored codes differ from camio.Writer.Append of Infer's maps", rec.ID)
		}
		// The reference's PNGs hold the same codes.
		if len(it.Labels) > 0 {
			pngRec, err := camio.ReadPNGs(out.PNGDir, it.ID, it.Labels)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pngRec.Data, rec.Data) {
				t.Errorf("%s: PNG codes differ from the Parquet codes", rec.ID)
			}
		}
	}
	if _, err := os.Stat(camio.PNGPath(out.PNGDir, "img4", 0)); !os.IsNotExist(err) {
		t.Errorf("unlabelled image img4 has a PNG (stat: %v)", err)
	}
	assertOnly(t, outDir, cam.CAMFile, cam.PNGDir)

	// Batches of three equal-size images give the same maps (up to float
	// rounding, so codes may move by one at a rounding tie), stored as
	// float16 this time.
	cfg.Batch.Images = 3
	cfg.DType = schemas.CAMFloat16
	cfg.WritePNG = false
	out16, err := cam.RunNet(context.Background(), cfg, net, split, cam.Inputs{OutDir: filepath.Join(root, "out16")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	meta16, recs16 := readCAMs(t, out16.CAMs)
	if meta16.DType != schemas.CAMFloat16 || meta16.ConfigHash == meta.ConfigHash {
		t.Errorf("float16 metadata %+v (uint8 hash %s)", meta16, meta.ConfigHash)
	}
	var plane []float32
	for i, rec := range recs16 {
		for p := range rec.ClassIDs {
			plane = rec.Plane(p, plane)
			for j, v := range plane {
				// float16 keeps 11 significant bits: error ≤ 2⁻¹² for v ≤ 1.
				if d := math.Abs(float64(v - want[i][p][j])); d > 1.0/4096+1e-6 {
					t.Fatalf("%s class %d pixel %d: float16 %v, Infer %v", rec.ID, rec.ClassIDs[p], j, v, want[i][p][j])
				}
			}
		}
	}
}

// assertOnly checks that dir holds exactly names (no temporary files).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func TestRunNetFailuresLeaveNothing(t *testing.T) {
	_, split := writeDataset(t)
	net := newTinyNet(t, 3, 9)
	cfg := testConfig()
	cfg.WritePNG = true

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		outDir := filepath.Join(t.TempDir(), "out")
		_, err := cam.RunNet(ctx, cfg, net, split, cam.Inputs{OutDir: outDir}, func(p stages.Progress) {
			if p.Iteration == 2 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		assertOnly(t, outDir)
	})

	t.Run("corrupt image", func(t *testing.T) {
		bad := split.Items[2].ImagePath
		orig, err := os.ReadFile(bad)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bad, orig[:40], 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(bad, orig, 0o644)
		outDir := filepath.Join(t.TempDir(), "out")
		_, err = cam.RunNet(context.Background(), cfg, net, split, cam.Inputs{OutDir: outDir}, nil)
		var be *badinput.Error
		if !errors.As(err, &be) || be.Path != bad {
			t.Fatalf("err %v, want a bad-input error naming %s", err, bad)
		}
		assertOnly(t, outDir)
	})

	t.Run("class count", func(t *testing.T) {
		_, err := cam.RunNet(context.Background(), cfg, newTinyNet(t, 2, 1), split, cam.Inputs{OutDir: t.TempDir()}, nil)
		var be *badinput.Error
		if !errors.As(err, &be) || be.Field != "classes" {
			t.Errorf("2-class net on a 3-class dataset: err %v, want bad input on classes", err)
		}
	})

}

func TestConfigValidateNamesField(t *testing.T) {
	for field, mod := range map[string]func(*cam.Config){
		"cam.scales":           func(c *cam.Config) { c.Scales = nil },
		"cam.scales[1]":        func(c *cam.Config) { c.Scales = []float64{1, -2} },
		"cam.norm":             func(c *cam.Config) { c.Norm = "imagenet" },
		"cam.dtype":            func(c *cam.Config) { c.DType = "float32" },
		"cam.batch.images":     func(c *cam.Config) { c.Batch.Images = 0 },
		"cam.batch.max_pixels": func(c *cam.Config) { c.Batch.MaxPixels = -1 },
		"cam.device":           func(c *cam.Config) { c.Device = "tpu" },
	} {
		c := cam.DefaultConfig()
		mod(&c)
		var be *badinput.Error
		if err := c.Validate(); !errors.As(err, &be) || be.Field != field {
			t.Errorf("%s: err %v, want bad input on %s", field, err, field)
		}
	}
	if err := cam.DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	if o := cam.DefaultConfig().Options(data.COCO); o.Norm.Mean[0] != 0.471 {
		t.Errorf("COCO dataset with an empty norm: mean %v, want the COCO preset", o.Norm.Mean)
	}
}

func TestRunLoadsCheckpoint(t *testing.T) {
	root, split := writeDataset(t)
	net, err := nn.NewClassifier(nn.ArchSmall, 3, torch.CPU())
	if err != nil {
		t.Fatal(err)
	}
	defer net.Store().Close()
	ckpt := filepath.Join(t.TempDir(), "global.safetensors")
	if err := net.Store().Save(ckpt, map[string]string{cam.MetaArch: nn.ArchSmall, cam.MetaNumClasses: "3"}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.DType = schemas.CAMFloat16
	in := cam.Inputs{Checkpoint: ckpt, DataRoot: root, Kind: data.VOC, List: "train_cls.txt", OutDir: filepath.Join(root, "out"), Device: "cpu"}
	out, err := cam.Run(context.Background(), cfg, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := readCAMs(t, out.CAMs)
	want := inferAll(t, net, split, cfg.Options(data.VOC))
	var plane []float32
	for i, rec := range recs {
		for p := range rec.ClassIDs {
			plane = rec.Plane(p, plane)
			for j, v := range plane {
				if d := math.Abs(float64(v - want[i][p][j])); d > 1.0/4096+1e-6 {
					t.Fatalf("%s class %d pixel %d: Run %v, Infer with the saved net %v", rec.ID, rec.ClassIDs[p], j, v, want[i][p][j])
				}
			}
		}
	}

	// A checkpoint without its architecture is refused, naming the key.
	bare := filepath.Join(t.TempDir(), "bare.safetensors")
	if err := net.Store().Save(bare, map[string]string{cam.MetaNumClasses: "3"}); err != nil {
		t.Fatal(err)
	}
	in.Checkpoint = bare
	_, err = cam.Run(context.Background(), cfg, in, nil)
	var be *badinput.Error
	if !errors.As(err, &be) || be.Path != bare || be.Field != "__metadata__.arch" {
		t.Errorf("checkpoint without arch: err %v, want bad input naming the file and __metadata__.arch", err)
	}
}

func TestLoadCheckpointLayouts(t *testing.T) {
	// A reduced-width ResNet-38 (metadata "width") as the final weight file
	// and inside a training checkpoint next to a local net and optimizer
	// state: both give the saved net's CAMs exactly.
	global, err := nn.NewClassifier(nn.ArchResNet38, 3, torch.CPU(), nn.WithWidth(4))
	if err != nil {
		t.Fatal(err)
	}
	defer global.Store().Close()
	local, err := nn.NewClassifier(nn.ArchResNet38, 3, torch.CPU(), nn.WithWidth(4))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Store().Close()
	meta := map[string]string{cam.MetaArch: nn.ArchResNet38, cam.MetaNumClasses: "3", cam.MetaWidth: "4"}
	dir := t.TempDir()
	final := filepath.Join(dir, "global.safetensors")
	if err := global.Store().Save(final, meta); err != nil {
		t.Fatal(err)
	}
	named := map[string]*torch.Tensor{}
	for n, x := range global.Store().Tensors() {
		named["global/"+n] = x
	}
	for n, x := range local.Store().Tensors() {
		named["local/"+n] = x
		named["optim/momentum."+n] = x
	}
	host, err := nn.ToSafetensors(named)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "iter_00000010.safetensors")
	if err := safetensors.Write(ckpt, host, meta); err != nil {
		t.Fatal(err)
	}

	img := randomImage(21, 18, 5)
	o := cam.DefaultOptions()
	o.Scales = []float64{0.75, 1}
	want, err := cam.Infer(global, img, []int{1, 3}, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{final, ckpt} {
		net, err := cam.LoadCheckpoint(path, torch.CPU())
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(path), err)
		}
		got, err := cam.Infer(net, img, []int{1, 3}, o)
		net.Store().Close()
		if err != nil {
			t.Fatal(err)
		}
		for p := range want {
			if !slices.Equal(got[p], want[p]) {
				t.Errorf("%s: channel %d differs from the saved net's", filepath.Base(path), []int{1, 3}[p])
			}
		}
	}

	// Refused, naming the file and key: a local net's weights, a bad width,
	// the wrong width for the tensors (the first mismatching tensor is named).
	for field, m := range map[string]map[string]string{
		"__metadata__.net":   {cam.MetaArch: nn.ArchResNet38, cam.MetaNumClasses: "3", cam.MetaWidth: "4", cam.MetaNet: "local"},
		"__metadata__.width": {cam.MetaArch: nn.ArchResNet38, cam.MetaNumClasses: "3", cam.MetaWidth: "four"},
		"":                   {cam.MetaArch: nn.ArchResNet38, cam.MetaNumClasses: "3", cam.MetaWidth: "8"},
	} {
		path := filepath.Join(dir, "bad.safetensors")
		if err := global.Store().Save(path, m); err != nil {
			t.Fatal(err)
		}
		_, err := cam.LoadCheckpoint(path, torch.CPU())
		var be *badinput.Error
		if !errors.As(err, &be) || be.Path != path || be.Field != field && (field != "" || be.Field == "") {
			t.Errorf("metadata %v: err %v, want bad input naming %s", m, err, field)
		}
	}
}
