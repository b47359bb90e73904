package camio

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/pqio"
	"github.com/l2g/l2g/schemas"
)

// Reader iterates the records of a CAM Parquet file, decoding one row group
// at a time. It is not safe for concurrent use.
type Reader struct {
	pq   *pqio.Reader
	meta schemas.CAMMeta
	rg   int      // next row group to decode
	cur  []Record // decoded rows of the current row group
	pos  int
}

// Open opens a CAM dataset and checks its schema; problems are
// *badinput.Error naming the file and column or metadata key.
func Open(path string) (*Reader, error) {
	pq, err := pqio.Open(path)
	if err != nil {
		return nil, err
	}
	meta, err := schemas.ParseCAM(pq.Schema())
	if err != nil {
		pq.Close()
		return nil, pqio.SchemaError(path, err)
	}
	return &Reader{pq: pq, meta: meta}, nil
}

// Meta is the file's metadata.
func (r *Reader) Meta() schemas.CAMMeta { return r.meta }

// Path is the file's path.
func (r *Reader) Path() string { return r.pq.Path() }

// NumRows is the number of images in the file.
func (r *Reader) NumRows() int { return int(r.pq.NumRows()) }

// Next returns the next record, or io.EOF after the last. The record is the
// caller's to keep.
func (r *Reader) Next(ctx context.Context) (*Record, error) {
	for r.pos >= len(r.cur) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.rg >= r.pq.NumRowGroups() {
			return nil, io.EOF
		}
		recs, err := r.readGroup(ctx, r.rg)
		if err != nil {
			return nil, err
		}
		r.rg++
		r.cur, r.pos = recs, 0
	}
	rec := r.cur[r.pos]
	r.cur[r.pos] = Record{} // drop our reference so the caller owns it
	r.pos++
	return &rec, nil
}

func (r *Reader) readGroup(ctx context.Context, rg int) ([]Record, error) {
	batch, err := r.pq.ReadRowGroup(ctx, rg, nil)
	if err != nil {
		return nil, err
	}
	defer batch.Release()
	ids := batch.Column(0).(*array.String)
	splits := batch.Column(1).(*array.String)
	hs := batch.Column(2).(*array.Int32)
	ws := batch.Column(3).(*array.Int32)
	cls := batch.Column(4).(*array.List)
	clsv := cls.ListValues().(*array.Int32)
	cams := batch.Column(5).(*array.Binary)
	out := make([]Record, batch.NumRows())
	for i := range out {
		rec := Record{ID: ids.Value(i), Split: splits.Value(i), H: int(hs.Value(i)), W: int(ws.Value(i)), DType: r.meta.DType}
		if cls.IsNull(i) || cams.IsNull(i) {
			return nil, r.bad(rg, i, schemas.ColClassIDs, "null class_ids or cam")
		}
		start, end := cls.ValueOffsets(i)
		rec.ClassIDs = make([]int, 0, end-start)
		for j := start; j < end; j++ {
			rec.ClassIDs = append(rec.ClassIDs, int(clsv.Value(int(j))))
		}
		rec.Data = append([]byte(nil), cams.Value(i)...)
		if field, err := r.validate(&rec); err != nil {
			return nil, r.bad(rg, i, field, "image %q: %v", rec.ID, err)
		}
		out[i] = rec
	}
	return out, nil
}

// validate checks a decoded row; it returns the column at fault.
func (r *Reader) validate(rec *Record) (string, error) {
	if rec.H <= 0 || rec.W <= 0 {
		return schemas.ColHeight, fmt.Errorf("size %dx%d (width x height) is not positive", rec.W, rec.H)
	}
	c := len(r.meta.ClassNames)
	for j, k := range rec.ClassIDs {
		if k < 0 || k >= c {
			return schemas.ColClassIDs, fmt.Errorf("class id %d out of range 0..%d", k, c-1)
		}
		if j > 0 && rec.ClassIDs[j-1] >= k {
			return schemas.ColClassIDs, fmt.Errorf("class ids %v not strictly ascending", rec.ClassIDs)
		}
	}
	want := len(rec.ClassIDs) * rec.H * rec.W * bytesPerValue(rec.DType)
	if len(rec.Data) != want {
		return schemas.ColCAM, fmt.Errorf("%d bytes, want %d (classes × height × width × bytes per value)", len(rec.Data), want)
	}
	if err := checkCodes(rec); err != nil {
		return schemas.ColCAM, err
	}
	return "", nil
}

func (r *Reader) bad(rg, row int, field, format string, args ...any) error {
	return badinput.New(r.pq.Path(), fmt.Sprintf("%s (row group %d, row %d)", field, rg, row), format, args...)
}

// Close closes the file.
func (r *Reader) Close() error { return r.pq.Close() }

// Schema is the Arrow schema with the file's metadata.
func (r *Reader) Schema() *arrow.Schema { return r.pq.Schema() }
