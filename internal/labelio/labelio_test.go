package labelio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/schemas"
)

var classes = []string{"aeroplane", "bicycle", "bird"}

// mask i is a deterministic pattern over labels 0..3 and 255.
func mask(i, h, w int) []uint8 {
	m := make([]uint8, h*w)
	for j := range m {
		switch v := (i + j) % 7; {
		case v < 4:
			m[j] = uint8(v)
		case v == 6:
			m[j] = 255
		default:
			m[j] = 0
		}
	}
	return m
}

func writeN(t *testing.T, path string, n int) {
	t.Helper()
	w, err := Create(path, Meta(classes))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		h, wd := 4+i%3, 5
		if err := w.Append(Record{ID: fmt.Sprintf("id%03d", i), Split: "train_aug", H: h, W: wd, Mask: mask(i, h, wd),
			BgThreshold: 0.25, SourceRunID: "run-1", ConfigHash: "cafe"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStats(t *testing.T) {
	m := []uint8{0, 0, 2, 255, 2, 2, 0, 3}
	ids, fr, ign, bad := Stats(m, 4)
	if bad != -1 || fmt.Sprint(ids) != "[0 2 3]" || fmt.Sprint(fr) != "[0.375 0.375 0.125]" || ign != 0.125 {
		t.Errorf("Stats = %v %v %v %d", ids, fr, ign, bad)
	}
	if _, _, _, bad := Stats([]uint8{0, 255, 9, 4}, 4); bad != 2 {
		t.Errorf("first label ≥ C+1 at %d, want 2", bad)
	}
}

func TestRoundTripIterateAndRandomAccess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "labels.parquet")
	const n = schemas.RowGroupRows + 10
	writeN(t, path, n)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := r.Meta()
	if len(m.ClassNames) != 4 || m.ClassNames[0] != "background" || m.ClassNames[3] != "bird" {
		t.Errorf("class names %v", m.ClassNames)
	}
	if m.Palette[1] != [3]uint8{128, 0, 0} || m.Palette[255] != [3]uint8{224, 224, 192} {
		t.Errorf("palette 1 = %v, 255 = %v", m.Palette[1], m.Palette[255])
	}
	if r.NumRows() != n || r.NumRowGroups() != 2 {
		t.Fatalf("%d rows, %d row groups", r.NumRows(), r.NumRowGroups())
	}
	for i := 0; ; i++ {
		rec, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			if i != n {
				t.Fatalf("EOF after %d", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h := 4 + i%3
		want := mask(i, h, 5)
		ids, fr, ign, _ := Stats(want, 4)
		if rec.ID != fmt.Sprintf("id%03d", i) || rec.H != h || rec.W != 5 || string(rec.Mask) != string(want) ||
			rec.BgThreshold != 0.25 || rec.SourceRunID != "run-1" || rec.ConfigHash != "cafe" || rec.Split != "train_aug" {
			t.Fatalf("record %d = %+v", i, rec)
		}
		if fmt.Sprint(rec.ClassIDs) != fmt.Sprint(ids) || fmt.Sprint(rec.ClassFractions) != fmt.Sprint(fr) || rec.IgnoreFraction != ign {
			t.Fatalf("record %d stats %v %v %v, want %v %v %v", i, rec.ClassIDs, rec.ClassFractions, rec.IgnoreFraction, ids, fr, ign)
		}
	}
	idx, err := r.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l := idx["id070"]; l != (Loc{RowGroup: 1, Row: 70 - schemas.RowGroupRows}) || len(idx) != n {
		t.Errorf("index id070 = %+v (%d ids)", l, len(idx))
	}
	for _, i := range []int{70, 3, 71, 3} {
		rec, err := r.Get(ctx, fmt.Sprintf("id%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		if string(rec.Mask) != string(mask(i, 4+i%3, 5)) {
			t.Errorf("Get(id%03d) mask differs", i)
		}
		rec.Mask[0] = 99 // the caller owns it: must not leak into the cache
	}
	if rec, _ := r.Get(ctx, "id003"); rec.Mask[0] == 99 {
		t.Error("Get returned the cached mask")
	}
	if _, err := r.Get(ctx, "nope"); !badinput.Is(err) {
		t.Errorf("Get(unknown) = %v", err)
	}
}

func TestWriterBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "labels.parquet")
	w, err := Create(path, Meta(classes))
	if err != nil {
		t.Fatal(err)
	}
	ok := Record{ID: "a", H: 2, W: 2, Mask: []uint8{0, 1, 2, 255}}
	if err := w.Append(ok); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, field string
		r           Record
	}{
		{"mask size ≠ image size", schemas.ColMask, Record{ID: "b", H: 3, W: 2, Mask: []uint8{0, 1, 2, 3}}},
		{"class id ≥ C+1", schemas.ColMask, Record{ID: "b", H: 2, W: 2, Mask: []uint8{0, 4, 2, 3}}},
		{"duplicate id", schemas.ColImageID, ok},
		{"empty id", schemas.ColImageID, Record{H: 2, W: 2, Mask: []uint8{0, 1, 2, 3}}},
	}
	for _, c := range cases {
		err := w.Append(c.r)
		var bad *badinput.Error
		if !errors.As(err, &bad) || bad.Path != path || bad.Field != c.field {
			t.Errorf("%s: %v, want bad input at %s field %s", c.name, err, path, c.field)
		}
	}
	if err := w.Append(ok); err == nil {
		t.Error("writer forgot the ids written")
	}
	w.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Abort left %v", ents)
	}
}

func TestOpenRejectsACAMFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.parquet")
	writeN(t, path, 1)
	// A pseudo-label file is not a CAM file and vice versa: the schema
	// check names the column.
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	_, err = schemas.ParseCAM(r.pq.Schema())
	var se *schemas.Error
	if !errors.As(err, &se) || se.Field == "" {
		t.Errorf("ParseCAM(pseudo-label schema) = %v", err)
	}
}
