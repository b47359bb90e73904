package labelio

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/pqio"
	"github.com/l2g/l2g/schemas"
)

// Writer streams pseudo-labels into a Parquet file; memory holds at most one
// row group. Nothing appears at the path until Close succeeds.
type Writer struct {
	pw   *pqio.Writer
	meta schemas.PseudoLabelMeta
	b    *pqio.Batch
	seen map[string]struct{}
}

// Create starts a pseudo-label dataset at path.
func Create(path string, meta schemas.PseudoLabelMeta) (*Writer, error) {
	s, err := schemas.PseudoLabel(meta)
	if err != nil {
		return nil, pqio.SchemaError(path, err)
	}
	pw, err := pqio.Create(path, s, schemas.ColMask)
	if err != nil {
		return nil, err
	}
	return &Writer{pw: pw, meta: meta, b: pqio.NewBatch(s, schemas.ColMask), seen: map[string]struct{}{}}, nil
}

// Append validates r, derives its class ids and fractions from the mask,
// and adds it. A mask whose size is not H·W, a label ≥ C+1 other than 255,
// a repeated id or a bad threshold is a *badinput.Error naming the output
// file and column; the writer stays usable.
func (w *Writer) Append(r Record) error {
	if r.ID == "" {
		return w.bad(schemas.ColImageID, "empty image id")
	}
	if _, dup := w.seen[r.ID]; dup {
		return w.bad(schemas.ColImageID, "image %q written twice", r.ID)
	}
	if r.H <= 0 || r.W <= 0 || r.H > 1<<15 || r.W > 1<<15 {
		return w.bad(schemas.ColHeight, "image %q: size %dx%d (width x height) out of range 1..32768", r.ID, r.W, r.H)
	}
	if len(r.Mask) != r.H*r.W {
		return w.bad(schemas.ColMask, "image %q: mask has %d pixels, image is %dx%d = %d", r.ID, len(r.Mask), r.W, r.H, r.H*r.W)
	}
	if math.IsNaN(r.BgThreshold) || math.IsInf(r.BgThreshold, 0) {
		return w.bad(schemas.ColBgThreshold, "image %q: threshold %v", r.ID, r.BgThreshold)
	}
	ids, fr, ign, bad := Stats(r.Mask, w.meta.NumLabels())
	if bad >= 0 {
		return w.bad(schemas.ColMask, "image %q: pixel (x=%d, y=%d) has class id %d, want 0..%d or %d",
			r.ID, bad%r.W, bad/r.W, r.Mask[bad], w.meta.NumLabels()-1, schemas.IgnoreLabel)
	}
	if w.b.Rows() > 0 && w.b.BlobBytes()+len(r.Mask) > pqio.MaxGroupBytes {
		if err := w.b.Flush(w.pw); err != nil {
			return err
		}
	}
	w.seen[r.ID] = struct{}{}
	w.b.Field(0).(*array.StringBuilder).Append(r.ID)
	w.b.Field(1).(*array.StringBuilder).Append(r.Split)
	w.b.Field(2).(*array.Int32Builder).Append(int32(r.H))
	w.b.Field(3).(*array.Int32Builder).Append(int32(r.W))
	w.b.AppendBlob(r.Mask)
	lb := w.b.Field(5).(*array.ListBuilder)
	lb.Append(true)
	for _, k := range ids {
		lb.ValueBuilder().(*array.Int32Builder).Append(int32(k))
	}
	fb := w.b.Field(6).(*array.ListBuilder)
	fb.Append(true)
	fb.ValueBuilder().(*array.Float32Builder).AppendValues(fr, nil)
	w.b.Field(7).(*array.Float32Builder).Append(ign)
	w.b.Field(8).(*array.Float64Builder).Append(r.BgThreshold)
	w.b.Field(9).(*array.StringBuilder).Append(r.SourceRunID)
	w.b.Field(10).(*array.StringBuilder).Append(r.ConfigHash)
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
