package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/schemas"
	"github.com/l2g/l2g/stages/evaluate"
)

// One 4×1 image, classes a and b. Ground truth [bg a a b]; CAM a =
// [0.1 0.5 0.3 0], CAM b = [0 0 0 0.9]. At 0.25 the labels are exact; at
// 0.4 pixel 2 falls to the background: IoU bg 1/2, a 1/2, b 1.
func TestEvalCAMsTable(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "classes.txt"), []byte("a\nb\n"), 0o644)
	os.WriteFile(filepath.Join(root, "train_cls.txt"), []byte("img 0 1\n"), 0o644)
	gt := &imaging.Gray{W: 4, H: 1, Pix: []uint8{0, 1, 1, 2}}
	if err := artifacts.WriteWith(filepath.Join(root, data.DirMasksAug, "img.png"), func(w io.Writer) error {
		return data.EncodeIndexPNG(w, gt)
	}); err != nil {
		t.Fatal(err)
	}
	cams := filepath.Join(t.TempDir(), "cams.parquet")
	w, err := camio.Create(cams, schemas.CAMMeta{DType: schemas.CAMFloat16, ClassNames: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append("img", "train", 1, 4, []int{0, 1}, [][]float32{{0.1, 0.5, 0.3, 0}, {0, 0, 0, 0.9}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(io.Discard)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("l2g %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	outDir := t.TempDir()
	table := run("eval", "cams", "--cams", cams, "--gt", root, "--thresholds", "0.25,0.4", "--out", outDir)
	for _, want := range []string{"* cams       0.25              100.00", "cams       0.40               66.67", "per class (cams, threshold 0.25)"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	var res evaluate.Outputs
	if err := json.Unmarshal([]byte(run("eval", "cams", "--cams", cams, "--gt", root, "--thresholds", "0.4", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 1 || float64(res.Results[0].IoU[1]) != 0.5 || float64(res.Results[0].IoU[2]) != 1 {
		t.Errorf("JSON results %+v", res.Results)
	}
	if _, err := os.Stat(filepath.Join(outDir, evaluate.ParquetName)); err != nil {
		t.Error(err)
	}
}
