// Package pqio is the Parquet plumbing shared by the l2g dataset writers and
// readers (CAMs, pseudo-labels, evaluation results): ZSTD, one row group per
// written batch, raw (no dictionary, no statistics) image columns, the l2g
// created_by, atomic commit, and row-group-at-a-time reads so that memory
// does not grow with the dataset.
package pqio

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/schemas"
)

// MaxGroupBytes bounds the image bytes of one row group: Arrow binary
// columns use 32-bit offsets.
const MaxGroupBytes = 1 << 30

// Writer streams record batches into a Parquet file that appears under its
// final name only on Commit.
type Writer struct {
	path string
	out  *artifacts.File
	fw   *pqarrow.FileWriter
}

// Create starts a Parquet file at path with schema s. rawColumns (top-level
// binary columns holding image bytes) are written without dictionary
// encoding and without min/max statistics: neither helps on pixel blobs and
// the statistics would copy up to the page size into every footer.
func Create(path string, s *arrow.Schema, rawColumns ...string) (*Writer, error) {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithMaxRowGroupLength(schemas.RowGroupRows),
		parquet.WithCreatedBy(schemas.CreatedBy),
	}
	for _, c := range rawColumns {
		opts = append(opts, parquet.WithDictionaryFor(c, false), parquet.WithStatsFor(c, false))
	}
	out, err := artifacts.Create(path)
	if err != nil {
		return nil, err
	}
	fw, err := pqarrow.NewFileWriter(s, out, parquet.NewWriterProperties(opts...),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		out.Abort()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &Writer{path: path, out: out, fw: fw}, nil
}

// Path is the final path of the file.
func (w *Writer) Path() string { return w.path }

// Write writes rec as one row group (callers batch schemas.RowGroupRows rows).
func (w *Writer) Write(rec arrow.RecordBatch) error {
	if err := w.fw.Write(rec); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

// Commit writes the footer and renames the file into place.
func (w *Writer) Commit() error {
	if err := w.fw.Close(); err != nil {
		w.out.Abort()
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return w.out.Commit()
}

// Abort removes the temporary file; a no-op after Commit.
func (w *Writer) Abort() { w.out.Abort() }

// Reader reads a Parquet file one row group at a time.
type Reader struct {
	path   string
	f      *os.File
	fr     *pqarrow.FileReader
	schema *arrow.Schema
}

// Open opens path; a missing or non-Parquet file is a *badinput.Error.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		f.Close()
		return nil, badinput.New(path, "", "not a readable Parquet file: %w", err)
	}
	// BatchSize covers a whole row group so a column arrives in one chunk.
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 20, PreAllocBinaryData: true}, memory.DefaultAllocator)
	if err != nil {
		f.Close()
		return nil, badinput.New(path, "", "read Parquet schema: %w", err)
	}
	s, err := fr.Schema()
	if err != nil {
		f.Close()
		return nil, badinput.New(path, "", "read Parquet schema: %w", err)
	}
	return &Reader{path: path, f: f, fr: fr, schema: s}, nil
}

// Path is the file's path.
func (r *Reader) Path() string { return r.path }

// Schema is the Arrow schema with the file's key-value metadata.
func (r *Reader) Schema() *arrow.Schema { return r.schema }

// NumRowGroups is the number of row groups.
func (r *Reader) NumRowGroups() int { return r.fr.ParquetReader().NumRowGroups() }

// NumRows is the number of rows in the file.
func (r *Reader) NumRows() int64 { return r.fr.ParquetReader().NumRows() }

// RowGroupRows is the number of rows in row group rg.
func (r *Reader) RowGroupRows(rg int) int64 {
	return r.fr.ParquetReader().MetaData().RowGroup(rg).NumRows()
}

// ReadRowGroup reads columns cols (nil = all) of row group rg as one record
// batch; the caller releases it. Decoding failures are *badinput.Error.
func (r *Reader) ReadRowGroup(ctx context.Context, rg int, cols []int) (arrow.RecordBatch, error) {
	if rg < 0 || rg >= r.NumRowGroups() {
		return nil, fmt.Errorf("read %s: row group %d out of range 0..%d", r.path, rg, r.NumRowGroups()-1)
	}
	if cols == nil {
		cols = make([]int, r.schema.NumFields())
		for i := range cols {
			cols[i] = i
		}
	}
	tbl, err := r.fr.ReadRowGroups(ctx, cols, []int{rg})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, badinput.New(r.path, "", "row group %d: %w", rg, err)
	}
	defer tbl.Release()
	arrs := make([]arrow.Array, tbl.NumCols())
	defer func() {
		for _, a := range arrs {
			if a != nil {
				a.Release()
			}
		}
	}()
	for i := range arrs {
		chunks := tbl.Column(i).Data().Chunks()
		switch len(chunks) {
		case 0:
			arrs[i] = array.MakeArrayOfNull(memory.DefaultAllocator, tbl.Column(i).DataType(), 0)
		case 1:
			chunks[0].Retain()
			arrs[i] = chunks[0]
		default:
			if arrs[i], err = array.Concatenate(chunks, memory.DefaultAllocator); err != nil {
				return nil, fmt.Errorf("read %s: row group %d: %w", r.path, rg, err)
			}
		}
	}
	return array.NewRecordBatch(tbl.Schema(), arrs, tbl.NumRows()), nil
}

// Close closes the file.
func (r *Reader) Close() error {
	if r.f == nil {
		return errors.New("close " + r.path + ": already closed")
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// SchemaError turns a schema mismatch into a *badinput.Error naming path and
// the column or metadata key.
func SchemaError(path string, err error) error {
	var se *schemas.Error
	if errors.As(err, &se) {
		return badinput.New(path, se.Field, "%s", se.Msg)
	}
	return badinput.Wrap(path, "", err)
}

// Batch accumulates one row group: Arrow builders for the ordinary columns
// and one reusable buffer for the blob column (the image bytes), which an
// Arrow builder would regrow and zero again for every row group.
type Batch struct {
	schema   *arrow.Schema
	blob     int // index of the blob column
	builders []array.Builder
	data     []byte
	offsets  []int32
}

// NewBatch starts a batch for schema whose binary column blobCol is
// filled with AppendBlob; every other field through Field.
func NewBatch(schema *arrow.Schema, blobCol string) *Batch {
	idx := schema.FieldIndices(blobCol)
	if len(idx) != 1 || schema.Field(idx[0]).Type.ID() != arrow.BINARY {
		panic("pqio.NewBatch: " + blobCol + " is not one binary column of the schema")
	}
	b := &Batch{schema: schema, blob: idx[0], builders: make([]array.Builder, schema.NumFields()), offsets: []int32{0}}
	for i, f := range schema.Fields() {
		if i != b.blob {
			b.builders[i] = array.NewBuilder(memory.DefaultAllocator, f.Type)
		}
	}
	return b
}

// Field is the builder of column i (not the blob column).
func (b *Batch) Field(i int) array.Builder { return b.builders[i] }

// AppendBlob appends one value of the blob column (copied).
func (b *Batch) AppendBlob(p []byte) {
	if b.data == nil {
		// Images of a dataset have similar sizes: reserve a row group's
		// worth once instead of doubling the buffer up to it.
		b.data = make([]byte, 0, min(len(p)*schemas.RowGroupRows, MaxGroupBytes))
	}
	b.data = append(b.data, p...)
	b.offsets = append(b.offsets, int32(len(b.data)))
}

// Rows is the number of blob values appended since the last Flush.
func (b *Batch) Rows() int { return len(b.offsets) - 1 }

// BlobBytes is the size of the blob values since the last Flush.
func (b *Batch) BlobBytes() int { return len(b.data) }

// Flush writes the rows as one row group and starts the next.
func (b *Batch) Flush(w *Writer) error {
	n := b.Rows()
	if n == 0 {
		return nil
	}
	cols := make([]arrow.Array, len(b.builders))
	for i, bl := range b.builders {
		if bl != nil {
			cols[i] = bl.NewArray()
		}
	}
	blobData := array.NewData(arrow.BinaryTypes.Binary, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(b.offsets)), memory.NewBufferBytes(b.data)}, nil, 0, 0)
	cols[b.blob] = array.NewBinaryData(blobData)
	blobData.Release()
	rec := array.NewRecordBatch(b.schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	err := w.Write(rec) // encodes synchronously: the buffers are free after
	rec.Release()
	b.data, b.offsets = b.data[:0], b.offsets[:1]
	return err
}

// Release frees the builders.
func (b *Batch) Release() {
	for _, bl := range b.builders {
		if bl != nil {
			bl.Release()
		}
	}
}
