package segtrain

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/schemas"
)

// ignoreLabel marks pixels without a label (padding, boundaries).
const ignoreLabel = schemas.IgnoreLabel

// labelSource hands out the training mask of an image.
type labelSource interface {
	// mask returns image id's label map and the file it came from.
	mask(id string) (*imaging.Gray, string, error)
}

// openLabels opens the pseudo-labels at path for the images of split: a
// pseudo-label Parquet dataset (schemas.PseudoLabel) or a directory of
// <id>.png masks. Every image must have one; numLabels is C+1.
func openLabels(ctx context.Context, path string, split *data.Split, numLabels int) (labelSource, error) {
	if path == "" {
		return nil, badinput.New("", "labels", "no pseudo-labels given (a Parquet file or a directory of PNG masks)")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, badinput.Wrap(path, "labels", err)
	}
	if fi.IsDir() {
		return openLabelDir(path, split, numLabels)
	}
	return loadParquetLabels(ctx, path, split, numLabels)
}

// dirLabels reads <dir>/<id>.png (palette or 8-bit gray) per image.
type dirLabels struct {
	dir       string
	numLabels int
}

func openLabelDir(dir string, split *data.Split, numLabels int) (*dirLabels, error) {
	// Checked up front: a missing mask would otherwise stop the run hours
	// in, when its image comes up.
	for _, it := range split.Items {
		if _, err := os.Stat(filepath.Join(dir, it.ID+".png")); err != nil {
			return nil, badinput.New(dir, "labels", "no pseudo-label %s.png for line %d of %s", it.ID, it.Line, split.List)
		}
	}
	return &dirLabels{dir: dir, numLabels: numLabels}, nil
}

func (d *dirLabels) mask(id string) (*imaging.Gray, string, error) {
	p := filepath.Join(d.dir, id+".png")
	m, err := data.DecodeMask(p)
	if err != nil {
		return nil, p, err
	}
	if _, err := data.MaskLabels(m, d.numLabels-1); err != nil {
		var be *badinput.Error
		if errors.As(err, &be) {
			return nil, p, &badinput.Error{Path: p, Field: be.Field, Err: be.Err}
		}
		return nil, p, badinput.Wrap(p, "value", err)
	}
	return m, p, nil
}

// memLabels holds the masks of a Parquet dataset in memory, run-length
// encoded: random access in a shuffled order would otherwise decode a whole
// row group per image, and label maps are mostly long runs (a VOC
// pseudo-label is a few KB this way instead of ~190 KB).
type memLabels struct {
	path  string
	masks map[string]rle
}

func loadParquetLabels(ctx context.Context, path string, split *data.Split, numLabels int) (*memLabels, error) {
	r, err := labelio.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if n := r.Meta().NumLabels(); n != numLabels {
		return nil, badinput.New(path, schemas.KeyClassNames, "%d labels (with background), the model has %d", n, numLabels)
	}
	m := &memLabels{path: path, masks: make(map[string]rle, len(split.Items))}
	for {
		rec, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if _, ok := split.Lookup(rec.ID); ok {
			m.masks[rec.ID] = encodeRLE(rec.W, rec.H, rec.Mask)
		}
	}
	for _, it := range split.Items {
		if _, ok := m.masks[it.ID]; !ok {
			return nil, badinput.New(path, schemas.ColImageID, "no pseudo-label for image %q (line %d of %s)", it.ID, it.Line, split.List)
		}
	}
	return m, nil
}

func (m *memLabels) mask(id string) (*imaging.Gray, string, error) {
	e, ok := m.masks[id]
	if !ok {
		return nil, m.path, badinput.New(m.path, schemas.ColImageID, "no pseudo-label for image %q", id)
	}
	g, err := e.decode()
	if err != nil {
		return nil, m.path, fmt.Errorf("segtrain: labels of %s: %w", id, err)
	}
	return g, m.path, nil
}

// rle is a label map as (value, uvarint run length) pairs, row-major.
type rle struct {
	w, h int
	runs []byte
}

func encodeRLE(w, h int, pix []uint8) rle {
	var out []byte
	var buf [binary.MaxVarintLen64]byte
	for i := 0; i < len(pix); {
		j := i + 1
		for j < len(pix) && pix[j] == pix[i] {
			j++
		}
		out = append(out, pix[i])
		out = append(out, buf[:binary.PutUvarint(buf[:], uint64(j-i))]...)
		i = j
	}
	return rle{w: w, h: h, runs: out}
}

func (r rle) decode() (*imaging.Gray, error) {
	g := imaging.NewGray(r.w, r.h)
	pos := 0
	for b := r.runs; len(b) > 0; {
		v := b[0]
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || uint64(len(g.Pix)-pos) < n {
			return nil, fmt.Errorf("corrupt run-length data at pixel %d", pos)
		}
		for i := range int(n) {
			g.Pix[pos+i] = v
		}
		pos += int(n)
		b = b[1+k:]
	}
	if pos != len(g.Pix) {
		return nil, fmt.Errorf("run-length data covers %d of %d pixels", pos, len(g.Pix))
	}
	return g, nil
}
