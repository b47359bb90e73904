package camio

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/pqio"
	"github.com/l2g/l2g/schemas"
)

// Writer streams CAM records into a Parquet file; memory holds at most one
// row group (schemas.RowGroupRows images). Nothing appears at the path
// until Close succeeds.
type Writer struct {
	pw   *pqio.Writer
	meta schemas.CAMMeta
	b    *pqio.Batch
	seen map[string]struct{} // ids written, to reject duplicates
	buf  []byte
}

// Create starts a CAM dataset at path.
func Create(path string, meta schemas.CAMMeta) (*Writer, error) {
	s, err := schemas.CAM(meta)
	if err != nil {
		return nil, pqio.SchemaError(path, err)
	}
	pw, err := pqio.Create(path, s, schemas.ColCAM)
	if err != nil {
		return nil, err
	}
	return &Writer{pw: pw, meta: meta, b: pqio.NewBatch(s, schemas.ColCAM), seen: map[string]struct{}{}}, nil
}

// Meta is the file's metadata.
func (w *Writer) Meta() schemas.CAMMeta { return w.meta }

// Append quantizes and adds one image: planes[p] is the normalized CAM
// (values in [0, 1], h·w row-major) of zero-based class classIDs[p]. Class
// order does not matter; it is stored ascending. Problems are
// *badinput.Error naming the output file and column.
func (w *Writer) Append(id, split string, h, wd int, classIDs []int, planes [][]float32) error {
	if len(planes) != len(classIDs) {
		return w.bad(schemas.ColCAM, "image %q: %d planes for %d classes", id, len(planes), len(classIDs))
	}
	order := make([]int, len(classIDs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return classIDs[order[a]] < classIDs[order[b]] })
	sorted := make([]int, len(classIDs))
	for i, o := range order {
		sorted[i] = classIDs[o]
	}
	if err := w.check(id, h, wd, sorted); err != nil {
		return err
	}
	n := h * wd
	bpv := bytesPerValue(w.meta.DType)
	if need := len(planes) * n * bpv; cap(w.buf) < need {
		w.buf = make([]byte, need)
	}
	data := w.buf[:len(planes)*n*bpv]
	for i, o := range order {
		if len(planes[o]) != n {
			return w.bad(schemas.ColCAM, "image %q: plane of class %d has %d values, want %d×%d = %d",
				id, classIDs[o], len(planes[o]), h, wd, n)
		}
		if err := quantize(data[i*n*bpv:(i+1)*n*bpv], planes[o], w.meta.DType); err != nil {
			return w.bad(schemas.ColCAM, "image %q: class %d: %v", id, classIDs[o], err)
		}
	}
	return w.add(id, split, h, wd, sorted, data)
}

// AppendRecord adds a record already in the file's encoding (e.g. imported
// from the reference's PNGs, which are stored bit-exactly).
func (w *Writer) AppendRecord(r *Record) error {
	if r.DType != w.meta.DType {
		return w.bad(schemas.ColCAM, "image %q: record dtype %q, file dtype %q", r.ID, r.DType, w.meta.DType)
	}
	if err := w.check(r.ID, r.H, r.W, r.ClassIDs); err != nil {
		return err
	}
	if want := len(r.ClassIDs) * r.H * r.W * bytesPerValue(r.DType); len(r.Data) != want {
		return w.bad(schemas.ColCAM, "image %q: %d bytes, want %d", r.ID, len(r.Data), want)
	}
	if err := checkCodes(r); err != nil {
		return w.bad(schemas.ColCAM, "image %q: %v", r.ID, err)
	}
	return w.add(r.ID, r.Split, r.H, r.W, r.ClassIDs, r.Data)
}

func (w *Writer) check(id string, h, wd int, sorted []int) error {
	if id == "" {
		return w.bad(schemas.ColImageID, "empty image id")
	}
	if _, dup := w.seen[id]; dup {
		return w.bad(schemas.ColImageID, "image %q written twice", id)
	}
	if h <= 0 || wd <= 0 || h > 1<<15 || wd > 1<<15 {
		return w.bad(schemas.ColHeight, "image %q: size %dx%d (width x height) out of range 1..32768", id, wd, h)
	}
	c := len(w.meta.ClassNames)
	for i, k := range sorted {
		if k < 0 || k >= c {
			return w.bad(schemas.ColClassIDs, "image %q: class id %d out of range 0..%d", id, k, c-1)
		}
		if i > 0 && sorted[i-1] == k {
			return w.bad(schemas.ColClassIDs, "image %q: class id %d repeated", id, k)
		}
	}
	if len(sorted) > 255 {
		return w.bad(schemas.ColClassIDs, "image %q: %d classes, at most 255 planes", id, len(sorted))
	}
	return nil
}

func (w *Writer) add(id, split string, h, wd int, classIDs []int, data []byte) error {
	if len(data) > pqio.MaxGroupBytes {
		return w.bad(schemas.ColCAM, "image %q: %d bytes of CAMs, at most %d per image", id, len(data), pqio.MaxGroupBytes)
	}
	// Binary columns have 32-bit offsets: start a new row group early
	// rather than overflow them.
	if w.b.Rows() > 0 && w.b.BlobBytes()+len(data) > pqio.MaxGroupBytes {
		if err := w.b.Flush(w.pw); err != nil {
			return err
		}
	}
	w.seen[id] = struct{}{}
	w.b.Field(0).(*array.StringBuilder).Append(id)
	w.b.Field(1).(*array.StringBuilder).Append(split)
	w.b.Field(2).(*array.Int32Builder).Append(int32(h))
	w.b.Field(3).(*array.Int32Builder).Append(int32(wd))
	lb := w.b.Field(4).(*array.ListBuilder)
	lb.Append(true)
	vb := lb.ValueBuilder().(*array.Int32Builder)
	for _, k := range classIDs {
		vb.Append(int32(k))
	}
	w.b.AppendBlob(data) // copies data
	if w.b.Rows() == schemas.RowGroupRows {
		return w.b.Flush(w.pw)
	}
	return nil
}

// Close writes the last row group and the footer and commits the file.
// After an error nothing is left at the path.
func (w *Writer) Close() error {
	defer w.b.Release()
	if err := w.b.Flush(w.pw); err != nil {
		w.pw.Abort()
		return err
	}
	return w.pw.Commit()
}

// Abort discards the file; safe after Close.
func (w *Writer) Abort() { w.pw.Abort() }

func (w *Writer) bad(field, format string, args ...any) error {
	return badinput.New(w.pw.Path(), field, format, args...)
}

// checkCodes verifies that float16 codes are non-negative values ≤ 1 (the
// ordering Top relies on); every byte is a valid uint8 code.
func checkCodes(r *Record) error {
	if r.DType != schemas.CAMFloat16 {
		return nil
	}
	const one = 0x3c00
	for i := 0; i+1 < len(r.Data); i += 2 {
		if c := uint16(r.Data[i]) | uint16(r.Data[i+1])<<8; c > one {
			return fmt.Errorf("float16 value %#04x at index %d is not in [0, 1]", c, i/2)
		}
	}
	return nil
}
