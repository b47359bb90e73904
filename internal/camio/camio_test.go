package camio

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/schemas"
)

func TestQuantizeUint8MatchesOpenCV(t *testing.T) {
	// float32(v)·255 is exactly 2.5 and 3.5 here: OpenCV rounds half to even.
	in := []float32{0, 1, -0.3, 1.7, 0.25, 0.5, float32(2.5 / 255), float32(3.5 / 255), 0.2, float32(math.Inf(1))}
	want := []byte{0, 255, 0, 255, 64, 128, 2, 4, 51, 255}
	got := make([]byte, len(in))
	if err := quantize(got, in, schemas.CAMUint8); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("quantize(%v) = %d, want %d", in[i], got[i], want[i])
		}
	}
	if err := quantize(got[:1], []float32{float32(math.NaN())}, schemas.CAMUint8); err == nil {
		t.Error("NaN accepted")
	}
}

func TestQuantizeFloat16(t *testing.T) {
	// 1+2^-11 is the midpoint between 1 and the next half; clamped to 1 anyway.
	// 0.1 → 0x2e66 (nearest half 0.0999755859375); 2^-20 is subnormal 0x0010.
	in := []float32{0, 1, 0.1, 0.5, float32(math.Ldexp(1, -20)), -1, 3}
	want := []uint16{0, 0x3c00, 0x2e66, 0x3800, 0x0010, 0, 0x3c00}
	buf := make([]byte, 2*len(in))
	if err := quantize(buf, in, schemas.CAMFloat16); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got := binary.LittleEndian.Uint16(buf[2*i:]); got != want[i] {
			t.Errorf("float16(%v) = %#04x, want %#04x", in[i], got, want[i])
		}
	}
	// Every half in [0, 1] survives encode(decode(code)).
	for c := uint16(0); c <= 0x3c00; c++ {
		v := float32(Value(schemas.CAMFloat16, c))
		if err := quantize(buf[:2], []float32{v}, schemas.CAMFloat16); err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint16(buf); got != c {
			t.Fatalf("code %#04x → %v → %#04x", c, v, got)
		}
	}
}

func TestTopTiesGoToLowerClass(t *testing.T) {
	for _, dt := range []string{schemas.CAMUint8, schemas.CAMFloat16} {
		// 4 pixels, 3 planes.
		vals := [][]float32{
			{0.2, 0.6, 0.0, 1},
			{0.2, 0.4, 0.0, 0.8},
			{0.1, 0.6, 0.0, 0.9},
		}
		rec := &Record{H: 1, W: 4, ClassIDs: []int{2, 5, 7}, DType: dt, Data: make([]byte, 3*4*bytesPerValue(dt))}
		for p, v := range vals {
			if err := quantize(rec.Data[p*4*bytesPerValue(dt):], v, dt); err != nil {
				t.Fatal(err)
			}
		}
		best, t1, t2 := make([]uint8, 4), make([]uint16, 4), make([]uint16, 4)
		rec.Top(best, t1, t2)
		wantBest := []uint8{0, 0, 0, 0}
		want1 := []float64{0.2, 0.6, 0, 1}
		want2 := []float64{0.2, 0.6, 0, 0.9}
		for i := range best {
			if best[i] != wantBest[i] {
				t.Errorf("%s: best[%d] = %d, want %d", dt, i, best[i], wantBest[i])
			}
			if g := Value(dt, t1[i]); math.Abs(g-want1[i]) > 2e-3 {
				t.Errorf("%s: top1[%d] = %v, want %v", dt, i, g, want1[i])
			}
			if g := Value(dt, t2[i]); math.Abs(g-want2[i]) > 2e-3 {
				t.Errorf("%s: top2[%d] = %v, want %v", dt, i, g, want2[i])
			}
		}
		// A later plane strictly larger wins.
		rec.Data[2*4*bytesPerValue(dt)] = 0xff // plane 2, pixel 0: uint8 255 or float16 low byte
		if dt == schemas.CAMFloat16 {
			binary.LittleEndian.PutUint16(rec.Data[2*4*2:], 0x3a00) // 0.75
		}
		rec.Top(best, t1, nil)
		if best[0] != 2 {
			t.Errorf("%s: best[0] = %d after raising plane 2, want 2", dt, best[0])
		}
	}
}

func testMeta(dt string) schemas.CAMMeta {
	return schemas.CAMMeta{DType: dt, ClassNames: []string{"a", "b", "c", "d", "e"}, Scales: []float64{0.5, 1, 1.5, 2}, RunID: "run-7", ConfigHash: "abc"}
}

// synthPlanes is a deterministic CAM for image i, class k.
func synthPlanes(i, h, w int, classes []int) [][]float32 {
	out := make([][]float32, len(classes))
	for p, k := range classes {
		pl := make([]float32, h*w)
		for j := range pl {
			pl[j] = float32((i*7+k*13+j*3)%256) / 255
		}
		out[p] = pl
	}
	return out
}

func TestParquetRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, dt := range []string{schemas.CAMUint8, schemas.CAMFloat16} {
		path := filepath.Join(t.TempDir(), "cams.parquet")
		w, err := Create(path, testMeta(dt))
		if err != nil {
			t.Fatal(err)
		}
		const n = 2*schemas.RowGroupRows + 3
		classesOf := func(i int) []int { return [][]int{{3, 1}, {0}, {4, 2, 0}}[i%3] }
		for i := range n {
			h, wd := 3+i%2, 5
			if err := w.Append(idOf(i), "train", h, wd, classesOf(i), synthPlanes(i, h, wd, classesOf(i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("%s exists before Close", path)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if m := r.Meta(); m.DType != dt || len(m.ClassNames) != 5 || m.RunID != "run-7" || len(m.Scales) != 4 || m.Scales[2] != 1.5 {
			t.Errorf("meta = %+v", m)
		}
		if r.NumRows() != n || r.pq.NumRowGroups() != 3 {
			t.Errorf("%d rows in %d row groups, want %d in 3", r.NumRows(), r.pq.NumRowGroups(), n)
		}
		var plane []float32
		for i := 0; ; i++ {
			rec, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				if i != n {
					t.Fatalf("EOF after %d records, want %d", i, n)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			h := 3 + i%2
			if rec.ID != idOf(i) || rec.H != h || rec.W != 5 || rec.Split != "train" {
				t.Fatalf("record %d = %s %dx%d", i, rec.ID, rec.W, rec.H)
			}
			// Stored ascending, planes permuted with their classes.
			cls := append([]int(nil), classesOf(i)...)
			want := synthPlanes(i, h, 5, cls)
			for p, k := range rec.ClassIDs {
				if p > 0 && rec.ClassIDs[p-1] >= k {
					t.Fatalf("class ids %v not ascending", rec.ClassIDs)
				}
				src := -1
				for j, c := range cls {
					if c == k {
						src = j
					}
				}
				plane = rec.Plane(p, plane)
				for j, v := range plane {
					// Values are multiples of 1/255: exact for uint8, within
					// half a float16 ulp (2^-12 below 1) otherwise.
					if d := math.Abs(float64(v - want[src][j])); d > 1.0/4096 || (dt == schemas.CAMUint8 && d > 1e-7) {
						t.Fatalf("image %d class %d pixel %d = %v, want %v", i, k, j, v, want[src][j])
					}
				}
			}
		}
		r.Close()
	}
}

func idOf(i int) string { return "img_" + string(rune('a'+i/26%26)) + string(rune('a'+i%26)) }

func TestWriterRejectsBadInputAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cams.parquet")
	w, err := Create(path, testMeta(schemas.CAMUint8))
	if err != nil {
		t.Fatal(err)
	}
	good := synthPlanes(0, 2, 2, []int{1})
	if err := w.Append("x", "train", 2, 2, []int{1}, good); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, field string
		err         error
	}{
		{"plane size", schemas.ColCAM, w.Append("y", "train", 3, 2, []int{1}, good)},
		{"class id ≥ C", schemas.ColClassIDs, w.Append("y", "train", 2, 2, []int{5}, good)},
		{"repeated class", schemas.ColClassIDs, w.Append("y", "train", 2, 2, []int{1, 1}, [][]float32{good[0], good[0]})},
		{"duplicate id", schemas.ColImageID, w.Append("x", "train", 2, 2, []int{1}, good)},
		{"NaN", schemas.ColCAM, w.Append("y", "train", 2, 2, []int{1}, [][]float32{{0, float32(math.NaN()), 0, 0}})},
	}
	for _, c := range cases {
		var bad *badinput.Error
		if !errors.As(c.err, &bad) || bad.Path != path || bad.Field != c.field {
			t.Errorf("%s: err = %v, want bad input at %s field %s", c.name, c.err, path, c.field)
		}
	}
	w.Abort()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("after Abort the directory holds %v", ents)
	}
}

func TestOpenRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.parquet")
	os.WriteFile(junk, []byte("not parquet at all"), 0o644)
	if _, err := Open(junk); !badinput.Is(err) || !strings.Contains(err.Error(), junk) {
		t.Errorf("junk: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing.parquet")); !badinput.Is(err) {
		t.Errorf("missing: %v", err)
	}
}

func TestPNGLayoutRoundTripAndImport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pngDir := filepath.Join(dir, "png")
	recs := make([]*Record, 3)
	items := make([]data.Item, 3)
	for i := range recs {
		cls := []int{i, 4}
		r := &Record{ID: idOf(i), H: 4, W: 3, ClassIDs: cls, DType: schemas.CAMUint8, Data: make([]byte, 2*12)}
		for p, pl := range synthPlanes(i, 4, 3, cls) {
			quantize(r.Data[p*12:], pl, schemas.CAMUint8)
		}
		if err := WritePNGs(pngDir, r); err != nil {
			t.Fatal(err)
		}
		recs[i], items[i] = r, data.Item{ID: r.ID, Labels: cls}
	}
	if _, err := os.Stat(filepath.Join(pngDir, idOf(1)+"_4.png")); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPNGs(pngDir, idOf(2), []int{2, 4})
	if err != nil {
		t.Fatal(err)
	}
	if back.H != 4 || back.W != 3 || string(back.Data) != string(recs[2].Data) {
		t.Fatalf("PNG round trip differs: %dx%d", back.W, back.H)
	}
	out := filepath.Join(dir, "imported.parquet")
	n, err := ImportPNGs(ctx, pngDir, items, out, testMeta(schemas.CAMUint8), 2, nil)
	if err != nil || n != 3 {
		t.Fatalf("import: %d, %v", n, err)
	}
	r, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 3 {
		rec, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != recs[i].ID || string(rec.Data) != string(recs[i].Data) {
			t.Errorf("imported record %d differs", i)
		}
	}
	// A missing class PNG names the file and leaves no dataset behind.
	items[1].Labels = []int{1, 3}
	bad := filepath.Join(dir, "bad.parquet")
	_, err = ImportPNGs(ctx, pngDir, items, bad, testMeta(schemas.CAMUint8), 2, nil)
	if !badinput.Is(err) || !strings.Contains(err.Error(), idOf(1)+"_3.png") {
		t.Errorf("missing PNG: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("partial import left %s", bad)
	}
}
