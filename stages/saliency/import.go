package saliency

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/stages"
)

// importMaps checks that ImportDir holds an 8-bit gray <id>.png of the
// image's size for every item, reporting every missing or mismatched file
// at once, then registers the maps in place (their size and SHA-256 are
// recorded, so a change is detectable) or, with Copy, copies them into
// OutDir. Nothing is copied unless every map is good.
func importMaps(ctx context.Context, cfg Config, in Inputs, progress stages.ProgressFunc) (Outputs, error) {
	src, err := filepath.Abs(cfg.ImportDir)
	if err != nil {
		return Outputs{}, badinput.Wrap(cfg.ImportDir, "import_dir", err)
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return Outputs{}, badinput.New(src, "import_dir", "not a directory of saliency maps")
	}
	maps, err := forEach(ctx, cfg.Workers, in.Items, progress, "checking saliency maps", func(_ context.Context, _ int, it data.Item) (result, error) {
		return checkImported(mapPath(src, it.ID), it), nil
	})
	if err != nil {
		return Outputs{}, err
	}
	out := Outputs{Dir: src, Maps: maps}
	if !cfg.Copy {
		return out, nil
	}
	dst, err := filepath.Abs(in.OutDir)
	if err != nil {
		return Outputs{}, fmt.Errorf("output directory: %w", err)
	}
	if dst == src {
		// Already where they should be.
		return out, nil
	}
	maps, err = forEach(ctx, cfg.Workers, in.Items, progress, "copying saliency maps", func(_ context.Context, i int, it data.Item) (result, error) {
		b, err := os.ReadFile(mapPath(src, it.ID))
		if err != nil {
			return asResult(Map{}, badinput.Wrap(mapPath(src, it.ID), "", err))
		}
		m := maps[i]
		if sha(b) != m.SHA256 {
			return asResult(Map{}, badinput.New(m.Path, "", "changed while being imported"))
		}
		m.Path = mapPath(dst, it.ID)
		return result{m: m}, artifacts.WriteFile(m.Path, b)
	})
	if err != nil {
		return Outputs{}, err
	}
	return Outputs{Dir: dst, Copied: true, Maps: maps}, nil
}

// checkImported validates one map against its image.
func checkImported(path string, it data.Item) result {
	var r result
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		r.bad = append(r.bad, badinput.New(path, "", "missing: no saliency map for image %s", it.ImagePath))
		return r
	}
	if err != nil {
		r.bad = append(r.bad, badinput.Wrap(path, "", err).(*badinput.Error))
		return r
	}
	s, err := data.DecodeSaliency(path)
	if err != nil {
		r.bad = append(r.bad, asBad(path, err))
		return r
	}
	w, h, err := imageSize(it.ImagePath)
	if err != nil {
		r.bad = append(r.bad, asBad(it.ImagePath, err))
		return r
	}
	if w != s.W || h != s.H {
		r.bad = append(r.bad, badinput.New(path, "size", "%dx%d, but image %s is %dx%d", s.W, s.H, it.ImagePath, w, h))
		return r
	}
	r.m = Map{ID: it.ID, Path: path, W: w, H: h, Bytes: int64(len(b)), SHA256: sha(b)}
	return r
}

func asBad(path string, err error) *badinput.Error {
	var bad *badinput.Error
	if errors.As(err, &bad) {
		return bad
	}
	return &badinput.Error{Path: path, Err: err}
}
