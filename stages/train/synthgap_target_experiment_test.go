//go:build experiment

package train

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/torch"
)

// TestSynthGapTarget measures, for every finished two-net run under the
// design folder, what the local target (spec §3.2, without saliency) makes
// of the val images at scale 1: per ground-truth region, the share of map
// cells whose target is the right class, background, another class or
// nothing (every channel 0). It shows how far the local net's untrained
// background channel takes object cells in the argmax.
func TestSynthGapTarget(t *testing.T) {
	base, val, runs := savedRuns(t, "l2g*", LocalFile)
	for _, w := range runs {
		for _, which := range []string{LocalFile, GlobalFile} {
			st, err := targetStats(base, filepath.Join(filepath.Dir(w), which), val)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: %s", filepath.Base(filepath.Dir(w)), which, st)
		}
	}
}

type regionStats struct{ right, bg, other, none, n float64 }

func (r regionStats) String() string {
	return fmt.Sprintf("right %.2f bg %.2f other %.2f none %.2f", r.right/r.n, r.bg/r.n, r.other/r.n, r.none/r.n)
}

type targetSummary struct{ obj, back regionStats }

func (s targetSummary) String() string {
	return fmt.Sprintf("objects [%s] | background [%s]", s.obj, s.back)
}

func targetStats(cfg Config, weights string, val *data.Split) (targetSummary, error) {
	var sum targetSummary
	net, err := loadNet(cfg, weights)
	if err != nil {
		return sum, err
	}
	defer net.Store().Close()
	c := cfg.NumClasses
	for i := range val.Items {
		smp, err := val.Load(context.Background(), i)
		if err != nil {
			return sum, err
		}
		ins, err := augment.MultiScale(smp.Image, []float64{1}, cfg.norm())
		if err != nil {
			return sum, err
		}
		s := torch.NewNoGradScope()
		fm, _ := net.Forward(s, s.FromFloat32(ins[0].Image, 1, 3, int64(ins[0].H), int64(ins[0].W)), false)
		present := make([]float32, c)
		for _, k := range smp.Labels {
			present[k] = 1
		}
		tg := LocalTarget(s, fm, s.FromFloat32(present, 1, int64(c)), nil, TargetOpts{BgThreshold: cfg.Loss.BgThreshold, BgTarget: cfg.Loss.BgTarget})
		if err := s.Err(); err != nil {
			s.Close()
			return sum, err
		}
		sh := tg.Shape()
		h, w := int(sh[2]), int(sh[3])
		v, err := tg.Float32s()
		s.Close()
		if err != nil {
			return sum, err
		}
		stride := smp.Image.W / w
		for y := range h {
			for x := range w {
				g := smp.Mask.Pix[(y*stride+stride/2)*smp.Image.W+x*stride+stride/2]
				if g == 255 {
					continue
				}
				lab := -1
				for k := 0; k <= c; k++ {
					if v[(k*h+y)*w+x] > 0 {
						lab = k
					}
				}
				r := &sum.back
				if g != 0 {
					r = &sum.obj
				}
				r.n++
				switch {
				case lab < 0:
					r.none++
				case lab == c:
					r.bg++
				case g != 0 && lab == int(g)-1:
					r.right++
				default:
					r.other++
				}
			}
		}
	}
	return sum, nil
}

// TestSynthGapPerClass prints, for every finished run under the design
// folder, the per-class IoU, precision and recall of its pseudo-labels at
// the best threshold: a collapse confined to one class shows there.
func TestSynthGapPerClass(t *testing.T) {
	base, val, runs := savedRuns(t, "*", envOr("SYNTHGAP_FILE", GlobalFile))
	for _, w := range runs {
		sc, err := pseudoLabelScores(base, w, val, false)
		if err != nil {
			t.Fatal(err)
		}
		miou := make([]float64, len(sc))
		for i := range sc {
			miou[i] = float64(sc[i].MIoUCAM)
		}
		_, bi := bestOf(miou)
		var b strings.Builder
		for k := range sc[bi].IoU {
			fmt.Fprintf(&b, " %d:%.0f(p%.0f r%.0f)", k, 100*float64(sc[bi].IoU[k]), 100*float64(sc[bi].Precision[k]), 100*float64(sc[bi].Recall[k]))
		}
		t.Logf("%s thr %.2f mIoU %.1f:%s", filepath.Base(filepath.Dir(w)), gapThresholds[bi], 100*float64(sc[bi].MIoUCAM), b.String())
	}
}
