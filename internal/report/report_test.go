package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/internal/synth"
	"github.com/l2g/l2g/schemas"
)

// fixture writes a tiny synthetic dataset and, for two branches, CAMs
// (a map of 1 on the ground-truth object of each present class),
// pseudo-labels (the ground truth) and loss logs, plus a segmentation
// prediction Parquet on val.
func fixture(t *testing.T) Input {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	o := synth.DefaultOptions()
	o.Classes, o.Train, o.Val, o.Width, o.Height, o.Workers = 3, 6, 3, 32, 32, 1
	if _, err := synth.Generate(context.Background(), root, o); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	train, err := data.Open(ctx, data.Spec{Root: root, List: "train.txt"})
	if err != nil {
		t.Fatal(err)
	}
	val, err := data.Open(ctx, data.Spec{Root: root, List: "val.txt"})
	if err != nil {
		t.Fatal(err)
	}
	names := synth.ClassNames(3)
	writeLabels := func(path string, sp *data.Split) {
		w, err := labelio.Create(path, labelio.Meta(names))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range sp.Items {
			m, err := data.DecodeMask(it.MaskPath)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Append(labelio.Record{ID: it.ID, Split: "x", H: m.H, W: m.W, Mask: m.Pix, BgThreshold: 0.25}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	in := Input{RunID: "demo-1", Dir: dir, ClassNames: append([]string{"background"}, names...), DataRoot: root,
		EvalList: "train.txt", ValList: "val.txt", Images: 2}
	for bi, mode := range []string{"cam", "l2g"} {
		cams := filepath.Join(dir, mode+"-cams.parquet")
		w, err := camio.Create(cams, schemas.CAMMeta{DType: schemas.CAMUint8, ClassNames: names})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range train.Items {
			m, err := data.DecodeMask(it.MaskPath)
			if err != nil {
				t.Fatal(err)
			}
			var planes [][]float32
			for _, k := range it.Labels {
				p := make([]float32, m.W*m.H)
				for i, l := range m.Pix {
					if int(l) == k+1 {
						p[i] = 1
					}
				}
				planes = append(planes, p)
			}
			if err := w.Append(it.ID, "train", m.H, m.W, it.Labels, planes); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		labels := filepath.Join(dir, mode+"-labels.parquet")
		writeLabels(labels, train)
		log := filepath.Join(dir, mode+"-log.jsonl")
		var b strings.Builder
		for it := 1; it <= 50; it++ {
			fmt.Fprintf(&b, `{"iteration":%d,"losses":{"total":%g,"cls":0.5}}`+"\n", it, 2-float64(it)/50)
		}
		if err := os.WriteFile(log, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		in.Branches = append(in.Branches, Branch{Mode: mode, Label: strings.ToUpper(mode), TrainLog: log, CAMs: cams, Labels: labels,
			CAMMIoU: 0.4 + 0.1*float64(bi), Threshold: 0.25, LabelMIoU: 0.45 + 0.1*float64(bi), LabelIoU: []float64{0.9, 0.5, math.NaN(), 0.2}})
	}
	pred := filepath.Join(dir, "pred.parquet")
	writeLabels(pred, val)
	in.Seg = Seg{Mode: "l2g", Log: in.Branches[0].TrainLog, Pred: pred, MIoU: 0.612, IoU: []float64{0.95, 0.6, 0.5, 0.4}}
	return in
}

var dataURL = regexp.MustCompile(`src="data:image/png;base64,([A-Za-z0-9+/=]+)"`)

func TestReportContents(t *testing.T) {
	in := fixture(t)
	path := filepath.Join(in.Dir, "report.html")
	if err := Write(context.Background(), path, in); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"demo-1", "<td>CAM (cam)</td><td>40.0</td><td>0.25</td><td>45.0</td>", "<td>L2G (l2g)</td><td>50.0</td><td>0.25</td><td>55.0</td>", "val mIoU <b>61.2 %</b>"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Three loss charts (two branches, segmentation) and the IoU bars.
	if n := strings.Count(page, "<svg"); n != 4 {
		t.Errorf("%d charts, want 4", n)
	}
	// A series per loss term, and no link to anything outside the file.
	if n := strings.Count(page, "<polyline"); n != 6 {
		t.Errorf("%d loss lines, want 2 terms × 3 charts", n)
	}
	if strings.Contains(page, "http://") && strings.Count(page, "http://") != strings.Count(page, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("the report links outside itself")
	}
	// The NaN IoU is left out: 2 branches × 3 + 4 segmentation bars.
	if n := strings.Count(page, "><title>"); n != 10 {
		t.Errorf("%d IoU bars, want 10", n)
	}
	// Overlays: 2 images × (image, GT, 2 × (CAM, label)) + 2 val images × 3.
	// Attribute values are HTML-escaped ('+' is &#43;).
	imgs := dataURL.FindAllStringSubmatch(html.UnescapeString(page), -1)
	if len(imgs) != 2*6+2*3 {
		t.Fatalf("%d overlay images, want 18", len(imgs))
	}
	for _, m := range imgs {
		raw, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if s := img.Bounds().Size(); s.X != 32 || s.Y != 32 {
			t.Fatalf("overlay of %v, want the 32×32 image", s)
		}
	}
}

func TestColourMaps(t *testing.T) {
	if r, g, b := jet(0); r != 0 || g != 0 || b < 120 {
		t.Errorf("jet(0) = %d %d %d, want dark blue", r, g, b)
	}
	if r, g, b := jet(1); r < 120 || g != 0 || b != 0 {
		t.Errorf("jet(1) = %d %d %d, want dark red", r, g, b)
	}
	if r, g, b := jet(0.5); g != 255 || r != b {
		t.Errorf("jet(0.5) = %d %d %d, want green in the middle", r, g, b)
	}
}

func TestSmoothAndTicks(t *testing.T) {
	got := smooth([]float64{1, 3, 5, 7}, 2)
	want := []float64{1, 2, 4, 6}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("smooth = %v, want %v", got, want)
		}
	}
	if tk := niceTicks(0, 1000, 5); len(tk) < 3 || tk[0] != 0 || tk[len(tk)-1] != 1000 {
		t.Errorf("ticks %v", tk)
	}
}
