package segtrain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/internal/synth"
	"github.com/l2g/l2g/schemas"
)

func TestRLERoundTrip(t *testing.T) {
	// Runs of 1, 127, 128 (two-byte varint) and 300 pixels.
	var pix []uint8
	for _, r := range []struct {
		v uint8
		n int
	}{{0, 1}, {3, 127}, {255, 128}, {1, 300}, {0, 44}} {
		for range r.n {
			pix = append(pix, r.v)
		}
	}
	e := encodeRLE(30, 20, pix)
	if want := 5*1 + 1 + 1 + 2 + 2 + 1; len(e.runs) != want {
		t.Errorf("%d bytes, want %d", len(e.runs), want)
	}
	g, err := e.decode()
	if err != nil || !reflect.DeepEqual(g.Pix, pix) || g.W != 30 || g.H != 20 {
		t.Fatalf("decode: %v", err)
	}
	e.runs = e.runs[:len(e.runs)-2] // drop the last run
	if _, err := e.decode(); err == nil {
		t.Error("truncated runs decoded")
	}
}

func trainSplit(t testing.TB) *data.Split {
	t.Helper()
	sp, err := openSplit(context.Background(), smallConfig(), synthDir, "train_aug.txt")
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// TestParquetAndPNGLabelsAgree loads the same examples from the Parquet
// export and from the PNG directory: the masks, and so the augmented
// samples, must be identical, and the mask must be the degraded ground
// truth.
func TestParquetAndPNGLabelsAgree(t *testing.T) {
	ctx := context.Background()
	sp := trainSplit(t)
	pq, err := openLabels(ctx, labelParquet, sp, synthClasses+1)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := openLabels(ctx, labelDir, sp, synthClasses+1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig()
	smp := augment.Sampler{Seed: 3}
	lp := &loader{aug: cfg.deepLab(), split: sp, labels: pq, sampler: smp}
	ld := &loader{aug: cfg.deepLab(), split: sp, labels: dir, sampler: smp}
	for _, code := range []int{0, 17, lp.code(2, 199)} {
		a, err := lp.load(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ld.load(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("code %d: Parquet and PNG examples differ", code)
		}
	}
	id := synth.ID(synth.Train, 5)
	m, where, err := pq.mask(id)
	if err != nil || where != labelParquet {
		t.Fatal(err, where)
	}
	gt, err := data.DecodeMask(filepath.Join(synthDir, data.DirMasksAug, id+".png"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Pix, blockDegrade(gt, degradeBlock).Pix) {
		t.Error("Parquet mask is not the degraded ground truth")
	}
}

func wantBad(t *testing.T, what string, err error, path, field string) {
	t.Helper()
	var be *badinput.Error
	if !errors.As(err, &be) || be.Path != path || be.Field != field {
		t.Errorf("%s: %v, want bad input at %s field %q", what, err, path, field)
	}
}

func TestLabelsBadInput(t *testing.T) {
	ctx := context.Background()
	sp := trainSplit(t)
	tmp := t.TempDir()

	// A Parquet file without the last training image.
	short := filepath.Join(tmp, "short.parquet")
	w, err := labelio.Create(short, labelio.Meta(synth.ClassNames(synthClasses)))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range sp.Items[:len(sp.Items)-1] {
		if err := w.Append(labelio.Record{ID: it.ID, H: 2, W: 2, Mask: []uint8{0, 1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = openLabels(ctx, short, sp, synthClasses+1)
	wantBad(t, "missing id", err, short, schemas.ColImageID)

	// Its class count differs from a 5-label model's.
	_, err = openLabels(ctx, short, sp, synthClasses+2)
	wantBad(t, "class count", err, short, schemas.KeyClassNames)

	// Its 2×2 masks do not fit the 64×64 images.
	sub := trainSplit(t)
	sub.Items = sub.Items[:3]
	small, err := openLabels(ctx, short, sub, synthClasses+1)
	if err != nil {
		t.Fatal(err)
	}
	l := &loader{aug: smallConfig().deepLab(), split: sub, labels: small}
	_, err = l.load(ctx, 0)
	wantBad(t, "size", err, short, "size")

	// A directory without one PNG, and a PNG with a value ≥ C+1.
	dir := filepath.Join(tmp, "pngs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, it := range sub.Items[:2] {
		g := imaging.NewGray(64, 64)
		if it.ID == sub.Items[1].ID {
			g.Pix[70] = 9
		}
		f, err := os.Create(filepath.Join(dir, it.ID+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := data.EncodeIndexPNG(f, g); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	_, err = openLabels(ctx, dir, sub, synthClasses+1)
	wantBad(t, "missing PNG", err, dir, "labels")
	sub.Items = sub.Items[:2]
	d, err := openLabels(ctx, dir, sub, synthClasses+1)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = d.mask(sub.Items[1].ID)
	wantBad(t, "bad value", err, filepath.Join(dir, sub.Items[1].ID+".png"), "value")

	_, err = openLabels(ctx, filepath.Join(tmp, "none.parquet"), sp, synthClasses+1)
	wantBad(t, "no file", err, filepath.Join(tmp, "none.parquet"), "labels")
}
