package evaluate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/pqio"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/schemas"
	"github.com/l2g/l2g/stages/pseudolabel"
)

var classes = []string{"cat", "dog", "cow", "owl"} // K = 5

func writePNG(t testing.TB, path string, g *imaging.Gray, index bool) {
	t.Helper()
	err := artifacts.WriteWith(path, func(w io.Writer) error {
		if index {
			return data.EncodeIndexPNG(w, g)
		}
		return data.EncodeGrayPNG(w, g)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dataset writes root/classes.txt, root/train_cls.txt and the GT masks.
func dataset(t testing.TB, gts map[string]*imaging.Gray, labels map[string][]int, order []string) data.Spec {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "classes.txt"), []byte(strings.Join(classes, "\n")+"\n"), 0o644)
	var list strings.Builder
	for _, id := range order {
		fmt.Fprint(&list, id)
		for _, k := range labels[id] {
			fmt.Fprintf(&list, " %d", k)
		}
		list.WriteString(" \n") // the reference's trailing space
		writePNG(t, filepath.Join(root, data.DirMasksAug, id+".png"), gts[id], true)
	}
	os.WriteFile(filepath.Join(root, "train_cls.txt"), []byte(list.String()), 0o644)
	return data.Spec{Root: root, List: "train_cls.txt"}
}

// handCase is segmetrics' hand-computed example as a 3×4 image.
func handCase() (gt, pred *imaging.Gray) {
	return &imaging.Gray{W: 4, H: 3, Pix: []uint8{0, 0, 0, 1, 1, 1, 1, 2, 2, 255, 0, 1}},
		&imaging.Gray{W: 4, H: 3, Pix: []uint8{0, 0, 3, 1, 1, 0, 2, 2, 2, 1, 255, 1}}
}

func TestEvaluateLabelsHandComputed(t *testing.T) {
	ctx := context.Background()
	gt, pred := handCase()
	spec := dataset(t, map[string]*imaging.Gray{"a": gt}, map[string][]int{"a": {0, 1}}, []string{"a"})
	predDir := t.TempDir()
	writePNG(t, filepath.Join(predDir, "a.png"), pred, true)
	outDir := t.TempDir()
	out, err := Run(ctx, Config{}, Inputs{Labels: predDir, Dataset: spec, OutDir: outDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 1 || out.Best != -1 {
		t.Fatalf("results %+v", out)
	}
	r := out.Results[0]
	want := []int64{2, 0, 0, 1, 0, 1, 3, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if fmt.Sprint(r.Confusion) != fmt.Sprint(want) || r.Unlabeled != 1 || r.Images != 1 {
		t.Fatalf("confusion %v unlabeled %d", r.Confusion, r.Unlabeled)
	}
	// Both protocols (see segmetrics' hand computation).
	if math.Abs(float64(r.MIoUCAM)-(0.5+0.6+2.0/3)/4) > 1e-12 || math.Abs(float64(r.MIoUSeg)-(0.5+0.6+2.0/3)/3) > 1e-12 {
		t.Errorf("mIoU cam %v seg %v", r.MIoUCAM, r.MIoUSeg)
	}
	// JSON: NaN IoU of the absent class is null; threshold of labels is null.
	b, err := os.ReadFile(out.JSON)
	if err != nil {
		t.Fatal(err)
	}
	var back Outputs
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(back.Results[0].IoU[4])) || back.Results[0].IoU[3] != 0 || back.ClassNames[0] != "background" {
		t.Errorf("JSON round trip: %+v", back.Results[0].IoU)
	}
	if !strings.Contains(string(b), `"threshold": null`) {
		t.Error("labels threshold is not null in JSON")
	}
	// Parquet: schema, nulls and values.
	pr, err := pqio.Open(out.Parquet)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	names, err := schemas.ParseEval(pr.Schema())
	if err != nil || len(names) != 5 {
		t.Fatalf("schema: %v %v", names, err)
	}
	rec, err := pr.ReadRowGroup(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if !rec.Column(3).IsNull(0) || rec.Column(9).(*array.Float64).Value(0) != float64(r.MIoUCAM) {
		t.Error("threshold not null or miou_cam differs")
	}
	iou := rec.Column(13).(*array.List)
	vals := iou.ListValues().(*array.Float64)
	if s, e := iou.ValueOffsets(0); e-s != 5 || !vals.IsNull(int(s)+4) || vals.Value(int(s)+1) != 0.6 {
		t.Error("iou list in Parquet wrong")
	}
}

// camRecords writes random CAMs with many exact ties for the images of
// gts and returns the path of the CAM file.
func camRecords(t testing.TB, dir, dtype string, gts map[string]*imaging.Gray, labels map[string][]int, order []string, seed uint64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	path := filepath.Join(dir, "cams-"+dtype+".parquet")
	w, err := camio.Create(path, schemas.CAMMeta{DType: dtype, ClassNames: classes})
	if err != nil {
		t.Fatal(err)
	}
	levels := []float32{0, 0.1, 0.15, 0.2, 51.0 / 255, 0.25, 64.0 / 255, 0.3, 0.5, 1}
	for _, id := range order {
		g := gts[id]
		planes := make([][]float32, len(labels[id]))
		for p := range planes {
			planes[p] = make([]float32, g.W*g.H)
			for i := range planes[p] {
				planes[p][i] = levels[rng.IntN(len(levels))]
			}
		}
		if err := w.Append(id, "train", g.H, g.W, labels[id], planes); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomSet(t testing.TB, n, w, h int, seed uint64) (map[string]*imaging.Gray, map[string][]int, []string) {
	rng := rand.New(rand.NewPCG(seed, 2))
	gts, labels := map[string]*imaging.Gray{}, map[string][]int{}
	var order []string
	for i := range n {
		id := fmt.Sprintf("im%02d", i)
		labels[id] = [][]int{{0}, {1, 3}, {0, 2, 3}, {}}[i%4]
		g := imaging.NewGray(w, h)
		for j := range g.Pix {
			switch r := rng.IntN(10); {
			case r == 0:
				g.Pix[j] = 255
			case r < 5:
				g.Pix[j] = 0
			default:
				g.Pix[j] = uint8(rng.IntN(len(classes)) + 1)
			}
		}
		gts[id], order = g, append(order, id)
	}
	return gts, labels, order
}

// The one-pass sweep equals labelling at each threshold separately, for
// both encodings, including exact ties (51/255 at 0.2, 0.25 in float16).
func TestSweepEqualsPerThresholdLabels(t *testing.T) {
	ctx := context.Background()
	gts, labels, order := randomSet(t, 9, 7, 5, 1)
	spec := dataset(t, gts, labels, order)
	split, err := data.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	thr := []float64{0.3, 0.1, 0.2, 0.25, 0.15} // unsorted on purpose
	for _, dt := range []string{schemas.CAMUint8, schemas.CAMFloat16} {
		path := camRecords(t, t.TempDir(), dt, gts, labels, order, 3)
		out, err := EvaluateCAMs(ctx, path, split, Config{Thresholds: thr, Workers: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Results) != 5 || out.Results[0].Threshold != 0.1 || out.Results[4].Threshold != 0.3 {
			t.Fatalf("%s: results not sorted by threshold", dt)
		}
		for _, r := range out.Results {
			want := segmetrics.New(len(classes) + 1)
			l := pseudolabel.NewLabeler(pseudolabel.Config{BgThreshold: float64(r.Threshold), Background: pseudolabel.BackgroundThreshold})
			cr, _ := camio.Open(path)
			for range order {
				rec, err := cr.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				m, err := l.Label(rec, nil, "", nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := want.Add(gts[rec.ID].Pix, m); err != nil {
					t.Fatal(err)
				}
			}
			cr.Close()
			if fmt.Sprint(r.Confusion) != fmt.Sprint(want.M) {
				t.Errorf("%s thr %v: sweep %v, direct %v", dt, r.Threshold, r.Confusion, want.M)
			}
		}
		if out.Best < 0 || out.Results[out.Best].MIoUCAM < out.Results[0].MIoUCAM {
			t.Errorf("best = %d", out.Best)
		}
	}
}

func TestCAMPNGDirEqualsParquet(t *testing.T) {
	ctx := context.Background()
	gts, labels, order := randomSet(t, 5, 6, 4, 7)
	spec := dataset(t, gts, labels, order)
	split, _ := data.Open(ctx, spec)
	path := camRecords(t, t.TempDir(), schemas.CAMUint8, gts, labels, order, 9)
	pngDir := t.TempDir()
	r, _ := camio.Open(path)
	for range order {
		rec, _ := r.Next(ctx)
		if err := camio.WritePNGs(pngDir, rec); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	cfg := Config{Thresholds: []float64{0.2, 0.25}, Workers: 2}
	a, err := EvaluateCAMs(ctx, path, split, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EvaluateCAMs(ctx, pngDir, split, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Results {
		if fmt.Sprint(a.Results[i].Confusion) != fmt.Sprint(b.Results[i].Confusion) {
			t.Errorf("threshold %v: Parquet and PNG CAMs disagree", a.Results[i].Threshold)
		}
	}
}

func TestVariantsScoredInTheSamePass(t *testing.T) {
	ctx := context.Background()
	gts, labels, order := randomSet(t, 4, 6, 4, 11)
	spec := dataset(t, gts, labels, order)
	for _, id := range order { // saliency maps next to the masks
		s := imaging.NewGray(6, 4)
		for i := range s.Pix {
			s.Pix[i] = uint8(i * 10)
		}
		writePNG(t, filepath.Join(spec.Root, data.DirSal, id+".png"), s, false)
	}
	split, _ := data.Open(ctx, spec)
	path := camRecords(t, t.TempDir(), schemas.CAMUint8, gts, labels, order, 5)
	out, err := EvaluateCAMs(ctx, path, split, Config{Thresholds: []float64{0.25}, Variants: pseudolabel.DefaultVariants(0.25)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 6 || out.Results[1].Variant != "reference" {
		t.Fatalf("%d results", len(out.Results))
	}
	// The reference variant is the sweep at the same threshold.
	if fmt.Sprint(out.Results[0].Confusion) != fmt.Sprint(out.Results[1].Confusion) {
		t.Error("reference variant differs from the sweep at 0.25")
	}
	// An ignore band labels fewer pixels.
	if out.Results[3].Unlabeled == 0 || out.Results[3].Pixels >= out.Results[1].Pixels {
		t.Errorf("ignore-0.10: %d scored, %d unlabeled; reference %d scored", out.Results[3].Pixels, out.Results[3].Unlabeled, out.Results[1].Pixels)
	}
}

func TestBadInputs(t *testing.T) {
	ctx := context.Background()
	gt, pred := handCase()
	spec := dataset(t, map[string]*imaging.Gray{"a": gt, "b": gt}, map[string][]int{"a": {0}, "b": {1}}, []string{"a", "b"})
	check := func(name string, in Inputs, path, field string) {
		t.Helper()
		in.Dataset = spec
		in.OutDir = t.TempDir()
		_, err := Run(ctx, Config{Thresholds: []float64{0.25}}, in, nil)
		var bad *badinput.Error
		if !errors.As(err, &bad) || bad.Path != path || !strings.HasPrefix(bad.Field, field) {
			t.Errorf("%s: %v, want bad input in %s field %s", name, err, path, field)
		}
		if ents, _ := os.ReadDir(in.OutDir); len(ents) != 0 {
			t.Errorf("%s: left %v", name, ents)
		}
	}
	predDir := func(a, b *imaging.Gray) string {
		d := t.TempDir()
		writePNG(t, filepath.Join(d, "a.png"), a, true)
		if b != nil {
			writePNG(t, filepath.Join(d, "b.png"), b, true)
		}
		return d
	}
	small := &imaging.Gray{W: 3, H: 3, Pix: make([]uint8, 9)}
	d := predDir(pred, small)
	check("mask size ≠ image size", Inputs{Labels: d}, filepath.Join(d, "b.png"), "size")
	bigID := &imaging.Gray{W: 4, H: 3, Pix: append([]uint8{9}, pred.Pix[1:]...)}
	d = predDir(pred, bigID)
	check("class id ≥ C", Inputs{Labels: d}, filepath.Join(d, "b.png"), "value")
	d = predDir(pred, nil)
	check("missing prediction", Inputs{Labels: d}, filepath.Join(d, "b.png"), "")

	// A CAM file of another size, and one with a different class count.
	cams := filepath.Join(t.TempDir(), "c.parquet")
	w, _ := camio.Create(cams, schemas.CAMMeta{DType: schemas.CAMUint8, ClassNames: classes})
	w.Append("a", "", 3, 4, []int{0}, [][]float32{make([]float32, 12)})
	w.Append("b", "", 4, 4, []int{1}, [][]float32{make([]float32, 16)})
	w.Close()
	check("CAM size ≠ mask size", Inputs{CAMs: cams}, cams, schemas.ColCAM)
	cams2 := filepath.Join(t.TempDir(), "c.parquet")
	w, _ = camio.Create(cams2, schemas.CAMMeta{DType: schemas.CAMUint8, ClassNames: classes[:2]})
	w.Close()
	check("class count", Inputs{CAMs: cams2}, cams2, schemas.KeyClassNames)

	// A ground-truth value ≥ C+1 names the ground-truth file.
	badGT := &imaging.Gray{W: 4, H: 3, Pix: append([]uint8{7}, gt.Pix[1:]...)}
	writePNG(t, filepath.Join(spec.Root, data.DirMasksAug, "b.png"), badGT, true)
	check("GT class id ≥ C", Inputs{Labels: predDir(pred, pred)}, filepath.Join(spec.Root, data.DirMasksAug, "b.png"), "value")
}
