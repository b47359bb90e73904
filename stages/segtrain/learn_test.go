package segtrain

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/internal/segmetrics"
)

// allBackground scores predicting background everywhere on the validation
// list, the chance level a net that learned nothing reaches.
func allBackground(t *testing.T) float64 {
	t.Helper()
	sp, err := data.Open(context.Background(), data.Spec{Root: synthDir, List: "val.txt"})
	if err != nil {
		t.Fatal(err)
	}
	c := segmetrics.New(synthClasses + 1)
	for _, it := range sp.Items {
		gt, err := data.DecodeMask(it.MaskPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Add(gt.Pix, make([]uint8, len(gt.Pix))); err != nil {
			t.Fatal(err)
		}
	}
	return float64(c.Scores().MIoUSeg)
}

// TestLearnsSyntheticFromPseudoLabels trains the small net on blocky
// pseudo-labels read from the Parquet export and scores the validation
// images against their true masks.
func TestLearnsSyntheticFromPseudoLabels(t *testing.T) {
	cfg := smallConfig()
	ctx := context.Background()
	out, err := Run(ctx, cfg, Inputs{DataRoot: synthDir, Labels: labelParquet, ValList: "val.txt", OutDir: t.TempDir(), RunID: "r1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := out.Metrics
	if m == nil || m.CRF == nil {
		t.Fatalf("no metrics: %+v", out)
	}
	chance := allBackground(t)
	t.Logf("final loss %.3f; val mIoU raw %.3f, CRF %.3f (all-background %.3f); IoU raw %v", out.FinalLoss,
		m.Raw.MIoUSeg, m.CRF.MIoUSeg, chance, m.Raw.IoU)
	if m.Images != synthVal || m.MIoU != m.CRF.MIoUSeg {
		t.Errorf("metrics cover %d images, miou %v", m.Images, m.MIoU)
	}
	if float64(m.Raw.MIoUSeg) < 0.5 || float64(m.Raw.MIoUSeg) < chance+0.25 {
		t.Errorf("val mIoU %.3f, want >= 0.5 and >= all-background %.3f + 0.25", m.Raw.MIoUSeg, chance)
	}
	checkPredictions(t, out.PredParquet, out.PredDir, m)

	// The saved model predicts the same without the CRF.
	cfg.Test.CRF, cfg.Test.WritePNG = false, false
	tout, err := Test(ctx, cfg, TestInputs{Model: out.Checkpoint, DataRoot: synthDir, OutDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tout.PredDir != "" || tout.Metrics.CRF != nil || !reflect.DeepEqual(tout.Metrics.Raw.Confusion, m.Raw.Confusion) {
		t.Errorf("segtest of the model file: confusion %v, want %v", tout.Metrics.Raw.Confusion, m.Raw.Confusion)
	}
}

// checkPredictions compares the Parquet output, the palette PNGs and the
// metrics: every validation image once, PNG = Parquet mask, and the CRF
// confusion matrix recomputed from the files.
func checkPredictions(t *testing.T, parquet, dir string, m *Metrics) {
	t.Helper()
	ctx := context.Background()
	r, err := labelio.Open(parquet)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if names := r.Meta().ClassNames; len(names) != 4 || names[0] != "background" {
		t.Errorf("class names %v", names)
	}
	sp, err := data.Open(ctx, data.Spec{Root: synthDir, List: "val.txt"})
	if err != nil {
		t.Fatal(err)
	}
	c := segmetrics.New(synthClasses + 1)
	n := 0
	for {
		rec, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != sp.Items[n].ID || rec.Split != "val" || rec.SourceRunID != "r1" || rec.W != synthSide || len(rec.ConfigHash) != 64 {
			t.Fatalf("row %d: %s %s %s %d", n, rec.ID, rec.Split, rec.SourceRunID, rec.W)
		}
		png, err := data.DecodeMask(filepath.Join(dir, rec.ID+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(png.Pix, rec.Mask) {
			t.Errorf("%s: PNG and Parquet masks differ", rec.ID)
		}
		gt, err := data.DecodeMask(sp.Items[n].MaskPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Add(gt.Pix, rec.Mask); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != synthVal || !reflect.DeepEqual(c.M, m.CRF.Confusion) {
		t.Errorf("%d rows; confusion from the files %v, metrics say %v", n, c.M, m.CRF.Confusion)
	}
}
