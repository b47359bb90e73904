package saliency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/saliency/mbd"
	"github.com/l2g/l2g/stages"
)

// Run provides a saliency map for every item with the configured method.
// Input problems (missing, corrupt or mis-sized files) are all reported
// together as a *badinput.List; nothing is left half-written.
func Run(ctx context.Context, cfg Config, in Inputs, progress stages.ProgressFunc) (Outputs, error) {
	method, err := cfg.method()
	if err != nil {
		return Outputs{}, err
	}
	if len(in.Items) == 0 {
		return Outputs{}, badinput.New("", "items", "no images to provide saliency maps for")
	}
	if method != MethodImport || cfg.Copy {
		if in.OutDir == "" {
			return Outputs{}, badinput.New("", "out_dir", "no output directory for the saliency maps")
		}
	}
	var out Outputs
	switch method {
	case MethodImport:
		out, err = importMaps(ctx, cfg, in, progress)
	case MethodModel:
		out, err = runModel(ctx, cfg.Model, cfg.Workers, in, progress)
	case MethodMBD:
		o := cfg.MBD
		out, err = computeEach(ctx, cfg.Workers, in, progress, func(img *imaging.RGB) (*imaging.Gray, error) {
			return mbd.Saliency(img, o)
		})
	}
	if err != nil {
		return Outputs{}, fmt.Errorf("saliency %s: %w", method, err)
	}
	out.Method = method
	if err := writeManifest(in.ManifestPath, out); err != nil {
		return Outputs{}, err
	}
	return out, nil
}

// result is one item's outcome: bad input is collected, not fatal, so a
// run reports every problem at once.
type result struct {
	m   Map
	bad []*badinput.Error
}

// asResult turns bad input into a collected problem and passes other
// errors (I/O on the output, cancellation) through as fatal.
func asResult(m Map, err error) (result, error) {
	if err == nil {
		return result{m: m}, nil
	}
	var bad *badinput.Error
	if errors.As(err, &bad) {
		return result{bad: []*badinput.Error{bad}}, nil
	}
	return result{}, err
}

// forEach runs job for every item on workers goroutines, reporting progress
// in item order, and returns the maps in item order or every problem.
func forEach(ctx context.Context, workers int, items []data.Item, progress stages.ProgressFunc, msg string,
	job func(ctx context.Context, i int, it data.Item) (result, error)) ([]Map, error) {
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	p := data.Prefetch(ctx, order, data.PrefetchOptions{Workers: workers}, func(ctx context.Context, i int) (result, error) {
		if err := ctx.Err(); err != nil {
			return result{}, err
		}
		return job(ctx, i, items[i])
	})
	defer p.Close()
	maps := make([]Map, len(items))
	var errs badinput.List
	start := time.Now()
	for {
		r, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		maps[r.Index] = r.Value.m
		for _, b := range r.Value.bad {
			errs.Add(b)
		}
		done := r.Pos + 1
		rate := float64(done) / time.Since(start).Seconds()
		progress.Report(stages.Progress{
			Stage: StageName, Iteration: done, Total: len(items), Message: msg,
			ItemsPerS: rate, ETASeconds: float64(len(items)-done) / rate,
		})
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return maps, nil
}

// computeEach writes fn's map of every image to OutDir.
func computeEach(ctx context.Context, workers int, in Inputs, progress stages.ProgressFunc, fn func(*imaging.RGB) (*imaging.Gray, error)) (Outputs, error) {
	dir, err := filepath.Abs(in.OutDir)
	if err != nil {
		return Outputs{}, fmt.Errorf("output directory: %w", err)
	}
	enc := data.NewPNGEncoder()
	maps, err := forEach(ctx, workers, in.Items, progress, "computing saliency", func(_ context.Context, _ int, it data.Item) (result, error) {
		path := mapPath(dir, it.ID)
		if in.Resume {
			if m, ok := reusable(path, it); ok {
				return result{m: m}, nil
			}
		}
		img, err := data.DecodeImage(it.ImagePath)
		if err != nil {
			return asResult(Map{}, err)
		}
		s, err := fn(img)
		if err != nil {
			return result{}, fmt.Errorf("%s: %w", it.ImagePath, err)
		}
		m, err := writeMap(enc, path, it.ID, s)
		return result{m: m}, err
	})
	if err != nil {
		return Outputs{}, err
	}
	return Outputs{Dir: dir, Maps: maps}, nil
}

// writeMap encodes s as an 8-bit gray PNG at path, atomically.
func writeMap(enc *data.PNGEncoder, path, id string, s *imaging.Gray) (Map, error) {
	var buf bytes.Buffer
	if err := enc.Gray(&buf, s); err != nil {
		return Map{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := artifacts.WriteFile(path, buf.Bytes()); err != nil {
		return Map{}, err
	}
	return Map{ID: id, Path: path, W: s.W, H: s.H, Bytes: int64(buf.Len()), SHA256: sha(buf.Bytes())}, nil
}

// reusable reports whether path already holds a valid map of it's size.
func reusable(path string, it data.Item) (Map, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Map{}, false
	}
	s, err := data.DecodeSaliency(path)
	if err != nil {
		return Map{}, false
	}
	w, h, err := imageSize(it.ImagePath)
	if err != nil || w != s.W || h != s.H {
		return Map{}, false
	}
	return Map{ID: it.ID, Path: path, W: w, H: h, Bytes: int64(len(b)), SHA256: sha(b)}, true
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
