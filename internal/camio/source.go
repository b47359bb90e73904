package camio

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/l2g/l2g/internal/data"
)

// Source yields CAM records one at a time, io.EOF after the last: a
// *Reader over a Parquet dataset, or a PNG directory (OpenPNGDir).
type Source interface {
	Next(ctx context.Context) (*Record, error)
	Close() error
}

// PNGDir reads the reference's <id>_<k>.png files of a list of items,
// decoding ahead on several goroutines and yielding in list order.
type PNGDir struct {
	dir string
	pf  *data.Prefetcher[*Record]
}

// OpenPNGDir reads dir/<id>_<k>.png for every item and each of its Labels
// (the classes the reference saved CAMs for); workers 0 = all cores.
func OpenPNGDir(ctx context.Context, dir string, items []data.Item, workers int) *PNGDir {
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	pf := data.Prefetch(ctx, order, data.PrefetchOptions{Workers: workers}, func(_ context.Context, i int) (*Record, error) {
		return ReadPNGs(dir, items[i].ID, items[i].Labels)
	})
	return &PNGDir{dir: dir, pf: pf}
}

// Next implements Source.
func (p *PNGDir) Next(context.Context) (*Record, error) {
	r, err := p.pf.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("CAM PNGs in %s: %w", p.dir, err)
	}
	return r.Value, nil
}

// Close stops the decoding goroutines.
func (p *PNGDir) Close() error {
	p.pf.Close()
	return nil
}
