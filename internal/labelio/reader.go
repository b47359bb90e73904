package labelio

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/pqio"
	"github.com/l2g/l2g/schemas"
)

// Loc is where a row lives in the file.
type Loc struct{ RowGroup, Row int }

// Reader reads a pseudo-label dataset. Next iterates in file order one row
// group at a time; Get serves random access by id, decoding the row group
// that holds it (the last one is cached). Methods are safe for concurrent
// use (they serialize on the file).
type Reader struct {
	mu   sync.Mutex
	pq   *pqio.Reader
	meta schemas.PseudoLabelMeta

	rg  int // next row group for Next
	cur []Record
	pos int

	index   map[string]Loc
	cacheRG int
	cache   []Record
}

// Open opens a pseudo-label dataset and checks its schema; problems are
// *badinput.Error naming the file and column or metadata key.
func Open(path string) (*Reader, error) {
	pq, err := pqio.Open(path)
	if err != nil {
		return nil, err
	}
	meta, err := schemas.ParsePseudoLabel(pq.Schema())
	if err != nil {
		pq.Close()
		return nil, pqio.SchemaError(path, err)
	}
	return &Reader{pq: pq, meta: meta, cacheRG: -1}, nil
}

// Meta is the file's metadata (class names with background first, palette).
func (r *Reader) Meta() schemas.PseudoLabelMeta { return r.meta }

// Path is the file's path.
func (r *Reader) Path() string { return r.pq.Path() }

// NumRows is the number of images.
func (r *Reader) NumRows() int { return int(r.pq.NumRows()) }

// NumRowGroups is the number of row groups (schemas.RowGroupRows images
// each, the last possibly fewer).
func (r *Reader) NumRowGroups() int { return r.pq.NumRowGroups() }

// Next returns the next record in file order, or io.EOF after the last.
func (r *Reader) Next(ctx context.Context) (*Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.pos >= len(r.cur) {
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
	r.cur[r.pos] = Record{}
	r.pos++
	return &rec, nil
}

// ReadRowGroup decodes every record of row group rg (for block-shuffled
// training: shuffle row groups, then rows within one).
func (r *Reader) ReadRowGroup(ctx context.Context, rg int) ([]Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readGroup(ctx, rg)
}

// Index maps every image id to its row, reading only the image_id column.
func (r *Reader) Index(ctx context.Context) (map[string]Loc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.buildIndex(ctx); err != nil {
		return nil, err
	}
	out := make(map[string]Loc, len(r.index))
	for k, v := range r.index {
		out[k] = v
	}
	return out, nil
}

func (r *Reader) buildIndex(ctx context.Context) error {
	if r.index != nil {
		return nil
	}
	idx := make(map[string]Loc, r.pq.NumRows())
	for rg := range r.pq.NumRowGroups() {
		batch, err := r.pq.ReadRowGroup(ctx, rg, []int{0})
		if err != nil {
			return err
		}
		ids := batch.Column(0).(*array.String)
		for i := range ids.Len() {
			id := ids.Value(i)
			if prev, dup := idx[id]; dup {
				batch.Release()
				return badinput.New(r.pq.Path(), schemas.ColImageID, "image %q in row group %d row %d and row group %d row %d",
					id, prev.RowGroup, prev.Row, rg, i)
			}
			idx[id] = Loc{RowGroup: rg, Row: i}
		}
		batch.Release()
	}
	r.index = idx
	return nil
}

// Get returns the record of image id (its mask is the caller's to modify).
// An id not in the file is a *badinput.Error.
func (r *Reader) Get(ctx context.Context, id string) (*Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.buildIndex(ctx); err != nil {
		return nil, err
	}
	loc, ok := r.index[id]
	if !ok {
		return nil, badinput.New(r.pq.Path(), schemas.ColImageID, "no pseudo-label for image %q", id)
	}
	if r.cacheRG != loc.RowGroup {
		recs, err := r.readGroup(ctx, loc.RowGroup)
		if err != nil {
			return nil, err
		}
		r.cache, r.cacheRG = recs, loc.RowGroup
	}
	rec := r.cache[loc.Row]
	rec.Mask = append([]uint8(nil), rec.Mask...)
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
	masks := batch.Column(4).(*array.Binary)
	cls := batch.Column(5).(*array.List)
	clsv := cls.ListValues().(*array.Int32)
	frs := batch.Column(6).(*array.List)
	frv := frs.ListValues().(*array.Float32)
	ign := batch.Column(7).(*array.Float32)
	thr := batch.Column(8).(*array.Float64)
	runs := batch.Column(9).(*array.String)
	hashes := batch.Column(10).(*array.String)
	out := make([]Record, batch.NumRows())
	for i := range out {
		rec := Record{
			ID: ids.Value(i), Split: splits.Value(i), H: int(hs.Value(i)), W: int(ws.Value(i)),
			Mask: append([]uint8(nil), masks.Value(i)...), BgThreshold: thr.Value(i),
			SourceRunID: runs.Value(i), ConfigHash: hashes.Value(i), IgnoreFraction: ign.Value(i),
		}
		cs, ce := cls.ValueOffsets(i)
		fs, fe := frs.ValueOffsets(i)
		if ce-cs != fe-fs {
			return nil, r.bad(rg, i, schemas.ColClassFractions, "image %q: %d class ids but %d fractions", rec.ID, ce-cs, fe-fs)
		}
		for j := cs; j < ce; j++ {
			rec.ClassIDs = append(rec.ClassIDs, int(clsv.Value(int(j))))
		}
		rec.ClassFractions = append([]float32(nil), frv.Float32Values()[fs:fe]...)
		if rec.H <= 0 || rec.W <= 0 || len(rec.Mask) != rec.H*rec.W {
			return nil, r.bad(rg, i, schemas.ColMask, "image %q: mask has %d pixels, image is %dx%d", rec.ID, len(rec.Mask), rec.W, rec.H)
		}
		if _, _, _, bad := Stats(rec.Mask, r.meta.NumLabels()); bad >= 0 {
			return nil, r.bad(rg, i, schemas.ColMask, "image %q: pixel (x=%d, y=%d) has class id %d, want 0..%d or %d",
				rec.ID, bad%rec.W, bad/rec.W, rec.Mask[bad], r.meta.NumLabels()-1, schemas.IgnoreLabel)
		}
		out[i] = rec
	}
	return out, nil
}

func (r *Reader) bad(rg, row int, field, format string, args ...any) error {
	return badinput.New(r.pq.Path(), fmt.Sprintf("%s (row group %d, row %d)", field, rg, row), format, args...)
}

// Close closes the file.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pq.Close()
}
