package saliency

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/saliency/mbd"
)

// Beta2 is β² of the F-measure, the salient-object-detection convention
// that weighs precision over recall.
const Beta2 = 0.3

// Scores are saliency quality against ground-truth foreground: mask values
// 1..254 are foreground, 0 background, 255 ignored.
type Scores struct {
	Images       int     `json:"images"`        // images scored
	NoForeground int     `json:"no_foreground"` // of which without foreground: in MAE, not in F
	MAE          float64 `json:"mae"`           // mean over images of mean |S/255 − G|
	MaxF         float64 `json:"max_f"`         // max over thresholds of F_β(mean P, mean R)
	Threshold    int     `json:"threshold"`     // S >= Threshold is foreground at MaxF
	Precision    float64 `json:"precision"`     // mean precision at Threshold
	Recall       float64 `json:"recall"`        // mean recall at Threshold
}

// Accumulator gathers per-image statistics; precision and recall are
// averaged over images at each of the 256 thresholds, then combined.
type Accumulator struct {
	images, withFG int
	noFG           int
	maeSum         float64
	p, r           [256]float64
}

// Add scores one saliency map against its mask (same size).
func (a *Accumulator) Add(sal, mask *imaging.Gray) error {
	if sal.W != mask.W || sal.H != mask.H {
		return fmt.Errorf("saliency %dx%d vs mask %dx%d", sal.W, sal.H, mask.W, mask.H)
	}
	var fg, all [256]int
	var absSum float64
	nValid, nFG := 0, 0
	for i, g := range mask.Pix {
		if g == data.IgnoreLabel {
			continue
		}
		v := sal.Pix[i]
		all[v]++
		nValid++
		if g != 0 {
			fg[v]++
			nFG++
			absSum += float64(255-v) / 255
		} else {
			absSum += float64(v) / 255
		}
	}
	if nValid == 0 {
		// Nothing to score; the image does not count.
		return nil
	}
	a.images++
	a.maeSum += absSum / float64(nValid)
	if nFG == 0 {
		a.noFG++
		return nil
	}
	a.withFG++
	tp, pp := 0, 0
	for t := 255; t >= 0; t-- {
		tp += fg[t]
		pp += all[t]
		if pp > 0 {
			a.p[t] += float64(tp) / float64(pp)
		}
		a.r[t] += float64(tp) / float64(nFG)
	}
	return nil
}

// Scores returns the totals so far.
func (a *Accumulator) Scores() Scores {
	s := Scores{Images: a.images, NoForeground: a.noFG}
	if a.images == 0 {
		return s
	}
	s.MAE = a.maeSum / float64(a.images)
	if a.withFG == 0 {
		return s
	}
	n := float64(a.withFG)
	for t := range 256 {
		p, r := a.p[t]/n, a.r[t]/n
		if p+r == 0 {
			continue
		}
		if f := (1 + Beta2) * p * r / (Beta2*p + r); f > s.MaxF {
			s.MaxF, s.Threshold, s.Precision, s.Recall = f, t, p, r
		}
	}
	return s
}

// Evaluate scores the maps <salDir>/<id>.png of items against their masks.
// Every missing or mis-sized file is reported at once.
func Evaluate(ctx context.Context, items []data.Item, salDir string, workers int) (Scores, error) {
	return evaluate(ctx, items, workers, func(it data.Item, mask *imaging.Gray) (*imaging.Gray, error) {
		path := mapPath(salDir, it.ID)
		s, err := data.DecodeSaliency(path)
		if err != nil {
			return nil, err
		}
		if s.W != mask.W || s.H != mask.H {
			return nil, badinput.New(path, "size", "%dx%d, but mask %s is %dx%d", s.W, s.H, it.MaskPath, mask.W, mask.H)
		}
		return s, nil
	})
}

// EvaluateCentrePrior scores the centre-prior baseline (mbd.CentrePrior) on
// the same items.
func EvaluateCentrePrior(ctx context.Context, items []data.Item, workers int) (Scores, error) {
	return evaluate(ctx, items, workers, func(_ data.Item, mask *imaging.Gray) (*imaging.Gray, error) {
		return mbd.CentrePrior(mask.W, mask.H), nil
	})
}

type pair struct{ sal, mask *imaging.Gray }

func evaluate(ctx context.Context, items []data.Item, workers int, source func(data.Item, *imaging.Gray) (*imaging.Gray, error)) (Scores, error) {
	if len(items) == 0 {
		return Scores{}, badinput.New("", "items", "no images to evaluate")
	}
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	type res struct {
		p   pair
		bad *badinput.Error
	}
	p := data.Prefetch(ctx, order, data.PrefetchOptions{Workers: workers}, func(ctx context.Context, i int) (res, error) {
		if err := ctx.Err(); err != nil {
			return res{}, err
		}
		it := items[i]
		if it.MaskPath == "" {
			return res{bad: badinput.New(it.ImagePath, "mask", "image %s has no ground-truth mask", it.ID)}, nil
		}
		mask, err := data.DecodeMask(it.MaskPath)
		if err != nil {
			return res{bad: asBad(it.MaskPath, err)}, nil
		}
		s, err := source(it, mask)
		if err != nil {
			var bad *badinput.Error
			if errors.As(err, &bad) {
				return res{bad: bad}, nil
			}
			return res{}, err
		}
		return res{p: pair{s, mask}}, nil
	})
	defer p.Close()
	var acc Accumulator
	var errs badinput.List
	for {
		r, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Scores{}, err
		}
		if r.Value.bad != nil {
			errs.Add(r.Value.bad)
			continue
		}
		if err := acc.Add(r.Value.p.sal, r.Value.p.mask); err != nil {
			return Scores{}, err
		}
	}
	if err := errs.Err(); err != nil {
		return Scores{}, err
	}
	return acc.Scores(), nil
}
