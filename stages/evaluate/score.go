package evaluate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/schemas"
	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/stages/pseudolabel"
)

// camAcc is one worker's accumulators for EvaluateCAMs.
type camAcc struct {
	sw     *sweep
	conf   []*segmetrics.Confusion // per variant
	lab    []*pseudolabel.Labeler  // per variant
	masks  [][]uint8               // per variant scratch
	thrIdx []int
}

type camItem struct {
	rec  *camio.Record
	item data.Item
}

// EvaluateCAMs scores the CAMs at path (a CAM Parquet dataset or a
// directory of <id>_<k>.png) against the masks of split: the argmax labels
// of spec §6 at every cfg.Thresholds (one pass; CAMs are read once) and the
// labels of every cfg.Variants.
func EvaluateCAMs(ctx context.Context, path string, split *data.Split, cfg Config, progress stages.ProgressFunc) (Outputs, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Outputs{}, badinput.Wrap(path, "cams", err)
	}
	k := split.NumClasses() + 1
	var src camio.Source
	if fi.IsDir() {
		src = camio.OpenPNGDir(ctx, path, split.Items, cfg.Workers)
	} else {
		r, err := camio.Open(path)
		if err != nil {
			return Outputs{}, err
		}
		if c := len(r.Meta().ClassNames); c != split.NumClasses() {
			r.Close()
			return Outputs{}, badinput.New(path, schemas.KeyClassNames, "%d classes, the dataset %s has %d", c, split.List, split.NumClasses())
		}
		src = r
	}
	defer src.Close()

	thr := slices.Clone(cfg.Thresholds)
	slices.Sort(thr)
	thr = slices.Compact(thr)
	needSal := false
	for _, v := range cfg.Variants {
		needSal = needSal || v.Background == pseudolabel.BackgroundSaliency
	}
	accs := make([]*camAcc, workerCount(cfg.Workers))
	for i := range accs {
		a := &camAcc{sw: newSweep(k, thr)}
		for _, v := range cfg.Variants {
			a.conf = append(a.conf, segmetrics.New(k))
			a.lab = append(a.lab, pseudolabel.NewLabeler(v.Config))
		}
		a.masks = make([][]uint8, len(cfg.Variants))
		accs[i] = a
	}

	seen := make(map[string]bool, len(split.Items))
	next := func(ctx context.Context) (camItem, bool, error) {
		for {
			rec, err := src.Next(ctx)
			if errors.Is(err, io.EOF) {
				return camItem{}, false, nil
			}
			if err != nil {
				return camItem{}, false, err
			}
			i, ok := split.Lookup(rec.ID)
			if !ok {
				continue // not in the evaluated list
			}
			if seen[rec.ID] {
				return camItem{}, false, badinput.New(path, schemas.ColImageID, "image %q appears twice", rec.ID)
			}
			seen[rec.ID] = true
			progress.Report(stages.Progress{Stage: "evaluate", Iteration: len(seen), Total: len(split.Items), Message: "images"})
			return camItem{rec, split.Items[i]}, true, nil
		}
	}
	score := func(_ context.Context, a *camAcc, ci camItem) error {
		rec, it := ci.rec, ci.item
		gt, err := loadGT(split, it)
		if err != nil {
			return err
		}
		if len(rec.ClassIDs) == 0 && rec.W == 0 {
			rec.W, rec.H = gt.W, gt.H // no PNG to size an image without classes: all background
		}
		if gt.W != rec.W || gt.H != rec.H {
			return badinput.New(path, schemas.ColCAM, "image %q: CAMs are %dx%d, ground truth %s is %dx%d", rec.ID, rec.W, rec.H, it.MaskPath, gt.W, gt.H)
		}
		if err := a.sw.add(rec, gt.Pix); err != nil {
			return valueErr(err, it.MaskPath, "")
		}
		var sal *imaging.Gray
		if needSal {
			if it.SalPath == "" {
				return badinput.AtLine(split.List, it.Line, "image %q: a saliency variant needs a saliency map (dataset has no Sal directory)", rec.ID)
			}
			if sal, err = data.DecodeSaliency(it.SalPath); err != nil {
				return err
			}
		}
		for v, l := range a.lab {
			if a.masks[v], err = l.Label(rec, sal, it.SalPath, a.masks[v]); err != nil {
				return err
			}
			if err := a.conf[v].Add(gt.Pix, a.masks[v]); err != nil {
				return valueErr(err, it.MaskPath, "")
			}
		}
		return nil
	}
	if err := forEach(ctx, accs, next, score); err != nil {
		return Outputs{}, err
	}
	if err := checkCovered(path, split, seen); err != nil {
		return Outputs{}, err
	}
	total := accs[0]
	for _, a := range accs[1:] {
		total.sw.merge(a.sw)
		for v := range total.conf {
			total.conf[v].Merge(a.conf[v])
		}
	}
	out := Outputs{Source: path, ClassNames: classNames(split)}
	for t, c := range total.sw.confusions() {
		out.Results = append(out.Results, result(KindCAMs, "", thr[t], len(seen), c))
	}
	for v, c := range total.conf {
		out.Results = append(out.Results, result(KindVariant, cfg.Variants[v].Name, cfg.Variants[v].BgThreshold, len(seen), c))
	}
	out.Best = bestCAM(out.Results)
	return out, nil
}

type predItem struct {
	path string // file the mask came from
	id   string
	mask *imaging.Gray
	item data.Item
}

// EvaluateLabels scores label masks at path (a pseudo-label Parquet dataset
// or a directory of <id>.png) against the masks of split. Prediction 255
// is "unlabeled": not scored, counted in Unlabeled and Coverage.
func EvaluateLabels(ctx context.Context, path string, split *data.Split, workers int, progress stages.ProgressFunc) (Outputs, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Outputs{}, badinput.Wrap(path, "labels", err)
	}
	k := split.NumClasses() + 1
	seen := make(map[string]bool, len(split.Items))
	var next func(context.Context) (predItem, bool, error)
	if fi.IsDir() {
		order := make([]int, len(split.Items))
		for i := range order {
			order[i] = i
		}
		pf := data.Prefetch(ctx, order, data.PrefetchOptions{Workers: workers}, func(_ context.Context, i int) (predItem, error) {
			p := filepath.Join(path, split.Items[i].ID+".png")
			m, err := data.DecodeMask(p)
			return predItem{path: p, id: split.Items[i].ID, mask: m, item: split.Items[i]}, err
		})
		defer pf.Close()
		next = func(context.Context) (predItem, bool, error) {
			r, err := pf.Next()
			if errors.Is(err, io.EOF) {
				return predItem{}, false, nil
			}
			if err != nil {
				return predItem{}, false, err
			}
			seen[r.Value.id] = true
			return r.Value, true, nil
		}
	} else {
		r, err := labelio.Open(path)
		if err != nil {
			return Outputs{}, err
		}
		defer r.Close()
		if n := r.Meta().NumLabels(); n != k {
			return Outputs{}, badinput.New(path, schemas.KeyClassNames, "%d labels, the dataset %s has %d (with background)", n, split.List, k)
		}
		next = func(ctx context.Context) (predItem, bool, error) {
			for {
				rec, err := r.Next(ctx)
				if errors.Is(err, io.EOF) {
					return predItem{}, false, nil
				}
				if err != nil {
					return predItem{}, false, err
				}
				i, ok := split.Lookup(rec.ID)
				if !ok {
					continue
				}
				if seen[rec.ID] {
					return predItem{}, false, badinput.New(path, schemas.ColImageID, "image %q appears twice", rec.ID)
				}
				seen[rec.ID] = true
				return predItem{path: path, id: rec.ID, mask: &imaging.Gray{W: rec.W, H: rec.H, Pix: rec.Mask}, item: split.Items[i]}, true, nil
			}
		}
	}
	counted := next
	next = func(ctx context.Context) (predItem, bool, error) {
		p, ok, err := counted(ctx)
		if ok {
			progress.Report(stages.Progress{Stage: "evaluate", Iteration: len(seen), Total: len(split.Items), Message: "images"})
		}
		return p, ok, err
	}
	accs := make([]*segmetrics.Confusion, workerCount(workers))
	for i := range accs {
		accs[i] = segmetrics.New(k)
	}
	score := func(_ context.Context, c *segmetrics.Confusion, p predItem) error {
		gt, err := loadGT(split, p.item)
		if err != nil {
			return err
		}
		if gt.W != p.mask.W || gt.H != p.mask.H {
			return badinput.New(p.path, field(p, "size"), "image %q: mask is %dx%d, ground truth %s is %dx%d",
				p.id, p.mask.W, p.mask.H, p.item.MaskPath, gt.W, gt.H)
		}
		if err := c.Add(gt.Pix, p.mask.Pix); err != nil {
			return valueErr(err, p.item.MaskPath, p.path)
		}
		return nil
	}
	if err := forEach(ctx, accs, next, score); err != nil {
		return Outputs{}, err
	}
	if err := checkCovered(path, split, seen); err != nil {
		return Outputs{}, err
	}
	for _, c := range accs[1:] {
		accs[0].Merge(c)
	}
	out := Outputs{Source: path, ClassNames: classNames(split), Best: -1,
		Results: []Result{result(KindLabels, "", nan(), len(seen), accs[0])}}
	return out, nil
}

// field names the mask of a Parquet row or the PNG itself.
func field(p predItem, what string) string {
	if filepath.Ext(p.path) == ".png" {
		return what
	}
	return fmt.Sprintf("%s (image %s)", schemas.ColMask, p.id)
}

func loadGT(split *data.Split, it data.Item) (*imaging.Gray, error) {
	if it.MaskPath == "" {
		return nil, badinput.AtLine(split.List, it.Line, "image %q has no ground-truth mask", it.ID)
	}
	return data.DecodeMask(it.MaskPath)
}

// valueErr turns a *segmetrics.ValueError into bad input naming the mask it
// is in (gtPath or predPath) and the pixel.
func valueErr(err error, gtPath, predPath string) error {
	var ve *segmetrics.ValueError
	if !errors.As(err, &ve) {
		return err
	}
	path := gtPath
	if ve.Pred {
		path = predPath
	}
	return badinput.New(path, "value", "%v", ve)
}

// checkCovered requires a prediction for every image of the list.
func checkCovered(path string, split *data.Split, seen map[string]bool) error {
	var missing []string
	for _, it := range split.Items {
		if !seen[it.ID] {
			missing = append(missing, it.ID)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return badinput.New(path, schemas.ColImageID, "%d of the %d images of %s have no prediction (first: %q)",
		len(missing), len(split.Items), split.List, missing[0])
}

func workerCount(w int) int {
	if w <= 0 {
		return runtime.NumCPU()
	}
	return w
}

// forEach feeds every item next yields to fn on len(states) goroutines, each
// owning one state, in no particular order. next runs on the calling
// goroutine only. The first error stops the rest and is returned.
func forEach[T, S any](ctx context.Context, states []S, next func(context.Context) (T, bool, error), fn func(context.Context, S, T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	free := make(chan S, len(states))
	for _, s := range states {
		free <- s
	}
	for {
		var s S
		select {
		case s = <-free:
		case <-gctx.Done():
			err := g.Wait()
			if err == nil {
				err = ctx.Err()
			}
			return err
		}
		v, ok, err := next(gctx)
		if err != nil || !ok {
			free <- s
			if werr := g.Wait(); werr != nil {
				return werr
			}
			if err == nil {
				err = ctx.Err()
			}
			return err
		}
		g.Go(func() error {
			defer func() { free <- s }()
			return fn(gctx, s, v)
		})
	}
}
