package train

import (
	"fmt"
	"math"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/torch"
)

// ROI is one local crop: the batch image it was cut from and its box in
// global-view pixels.
type ROI struct {
	Batch int
	Box   augment.Box
}

// RoIAlign samples fmap (B, K, H, W) at every roi with the semantics of
// torchvision.ops.roi_align(fmap, rois, (outH, outW), spatial_scale=scale,
// sampling_ratio=-1, aligned=False) (spec §3.3) and returns
// (len(rois), K, outH, outW) with gradient to fmap.
//
// It is built from grid_sample (bilinear, align_corners=True, border
// padding), which libtorch differentiates: bin (i, j) averages n_h×n_w
// samples, n = ceil(roi side / output side), at y1·scale + i·b_h +
// (iy+½)·b_h/n_h (likewise x), each clamped to [0, H−1] as torchvision
// clamps; samples beyond [−1, H] contribute 0 as in torchvision. At the
// reference sizes (box 320, scale 1/8, output 40) that is one sample at
// (y1/8 + i + ½, x1/8 + j + ½).
func RoIAlign(s *torch.Scope, fmap *torch.Tensor, rois []ROI, outH, outW int, scale float64) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	shape := fmap.Shape()
	if len(shape) != 4 {
		s.Fail(fmt.Errorf("roi_align: feature map %v, want 4 dims", shape))
		return nil
	}
	if len(rois) == 0 || outH < 1 || outW < 1 || !(scale > 0) {
		s.Fail(fmt.Errorf("roi_align: %d rois, output %dx%d, scale %v", len(rois), outH, outW, scale))
		return nil
	}
	b, fh, fw := int(shape[0]), float64(shape[2]), float64(shape[3])
	nH, nW := 0, 0
	for i, r := range rois {
		if r.Batch < 0 || r.Batch >= b {
			s.Fail(fmt.Errorf("roi_align: roi %d refers to image %d of a batch of %d", i, r.Batch, b))
			return nil
		}
		rh := math.Max(float64(r.Box.Y2-r.Box.Y1)*scale, 1)
		rw := math.Max(float64(r.Box.X2-r.Box.X1)*scale, 1)
		h, w := int(math.Ceil(rh/float64(outH))), int(math.Ceil(rw/float64(outW)))
		if i == 0 {
			nH, nW = h, w
		} else if h != nH || w != nW {
			// One pooling kernel serves all rois; the crops of a step all have
			// one size, so this never triggers in training.
			s.Fail(fmt.Errorf("roi_align: roi %d needs a %dx%d sampling grid, roi 0 a %dx%d one", i, h, w, nH, nW))
			return nil
		}
	}
	gh, gw := outH*nH, outW*nW
	grid := make([]float64, len(rois)*gh*gw*2)
	mask := make([]float64, len(rois)*gh*gw)
	allValid := true
	idx := make([]int64, len(rois))
	norm := func(v, size float64) float64 {
		if size <= 1 {
			return 0 // align_corners with one pixel: every coordinate is that pixel
		}
		return 2*v/(size-1) - 1
	}
	for r, roi := range rois {
		idx[r] = int64(roi.Batch)
		x1, y1 := float64(roi.Box.X1)*scale, float64(roi.Box.Y1)*scale
		rh := math.Max(float64(roi.Box.Y2-roi.Box.Y1)*scale, 1)
		rw := math.Max(float64(roi.Box.X2-roi.Box.X1)*scale, 1)
		binH, binW := rh/float64(outH), rw/float64(outW)
		for gy := range gh {
			i, iy := gy/nH, gy%nH
			y := y1 + float64(i)*binH + (float64(iy)+0.5)*binH/float64(nH)
			for gx := range gw {
				j, ix := gx/nW, gx%nW
				x := x1 + float64(j)*binW + (float64(ix)+0.5)*binW/float64(nW)
				k := (r*gh+gy)*gw + gx
				if y < -1 || y > fh || x < -1 || x > fw {
					allValid = false
				} else {
					mask[k] = 1
				}
				grid[2*k] = norm(min(max(x, 0), fw-1), fw)
				grid[2*k+1] = norm(min(max(y, 0), fh-1), fh)
			}
		}
	}
	o := torch.Opts{DType: fmap.DType(), Device: fmap.Device()}
	g := s.To(s.FromFloat64(grid, int64(len(rois)), int64(gh), int64(gw), 2), o)
	sel := s.IndexSelect(fmap, 0, s.To(s.FromInt64(idx, int64(len(idx))), torch.Opts{DType: torch.Int64, Device: o.Device}))
	out := s.GridSample(sel, g, torch.Bilinear, torch.PadBorder, true)
	if !allValid {
		out = s.Mul(out, s.To(s.FromFloat64(mask, int64(len(rois)), 1, int64(gh), int64(gw)), o))
	}
	if nH > 1 || nW > 1 {
		out = s.AvgPool2d(out, torch.PoolOpts{Kernel: torch.Pair{int64(nH), int64(nW)}})
	}
	return out
}

// TargetOpts are the settings of the local target (spec §3.2).
type TargetOpts struct {
	BgThreshold float64
	BgTarget    BgTarget
}

// LocalTarget builds the transfer target T from the local net's feature
// map fl (B·N, K, h, w), K = C+1 with background last (spec §3.2), without
// autograd:
//
//	a. T = max(fl, 0)
//	b. each (crop, channel) divided by its spatial max + 1e-8
//	c. channels of classes absent from the crop's image label zeroed
//	   (present is (B·N, C) multi-hot; background never zeroed)
//	d. per pixel only the argmax channel kept (first on ties), value kept
//	e. M = 1[T > bg_threshold]
//	f. sal (B·N, 1, H', W') resized to (h, w) with legacy nearest
//	g. foreground T_c = M_c·S; background M_bg·(1−S) (mask) or T_bg·(1−S)
//	   (soft).
//
// Without saliency (sal nil, mode l2g) S is taken as 1 in the foreground
// channels and 0 in the (1−S) factor, so T = M (background: M_bg or T_bg).
//
// The result belongs to dst; the work runs in a scope of its own with
// autograd off, so nothing of it reaches the graph.
func LocalTarget(dst *torch.Scope, fl, present, sal *torch.Tensor, o TargetOpts) *torch.Tensor {
	if dst.Err() != nil {
		return nil
	}
	out, err := localTarget(fl, present, sal, o)
	if err != nil {
		dst.Fail(err)
		return nil
	}
	return dst.Adopt(out)
}

func localTarget(fl, present, sal *torch.Tensor, o TargetOpts) (*torch.Tensor, error) {
	s := torch.NewNoGradScope()
	defer s.Close()
	shape := fl.Shape()
	if len(shape) != 4 {
		return nil, fmt.Errorf("local target: feature map %v, want 4 dims", shape)
	}
	n, k, h, w := shape[0], shape[1], shape[2], shape[3]
	if ps := present.Shape(); len(ps) != 2 || ps[0] != n || ps[1] != k-1 {
		return nil, fmt.Errorf("local target: labels %v for a feature map %v, want (%d, %d)", ps, shape, n, k-1)
	}
	c := k - 1
	opt := torch.Opts{DType: fl.DType(), Device: fl.Device()}
	t := s.Relu(s.Detach(fl))
	t = s.Div(t, s.AddScalar(s.Amax(t, []int64{2, 3}, true), 1e-8))
	keepCh := s.Cat([]*torch.Tensor{s.To(present, opt), s.Ones([]int64{n, 1}, opt)}, 1)
	t = s.Mul(t, s.Reshape(keepCh, n, k, 1, 1))
	onehot := s.Permute(s.To(s.OneHot(s.Argmax(t, 1, false), k), opt), 0, 3, 1, 2)
	t = s.Mul(t, onehot)
	m := s.To(s.GtScalar(t, o.BgThreshold), opt)
	fgM := s.Narrow(m, 1, 0, c)
	bg := s.Narrow(m, 1, c, 1)
	if o.BgTarget == BgSoft {
		bg = s.Narrow(t, 1, c, 1)
	}
	var out *torch.Tensor
	if sal == nil {
		out = s.Cat([]*torch.Tensor{fgM, bg}, 1)
	} else {
		if ss := sal.Shape(); len(ss) != 4 || ss[0] != n || ss[1] != 1 {
			return nil, fmt.Errorf("local target: saliency %v for a feature map %v, want (%d, 1, H, W)", ss, shape, n)
		}
		sv := s.Interpolate(s.To(sal, opt), h, w, torch.Nearest, false)
		out = s.Cat([]*torch.Tensor{s.Mul(fgM, sv), s.Mul(bg, s.RSubScalar(sv, 1))}, 1)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("local target: %w", err)
	}
	return s.Keep(out), nil
}

// TransferLoss is λ·mean((softmax_K(r) − t)²) over every element (spec
// §3.4–3.5): r is the global map sampled at the crops, t the local target.
func TransferLoss(s *torch.Scope, r, t *torch.Tensor, lambda float64) *torch.Tensor {
	return s.MulScalar(s.MSELoss(s.Softmax(r, 1), t, torch.ReduceMean), lambda)
}

// Loss term names, as reported in progress, the log and Outputs.FinalLosses.
const (
	LossTotal     = "total"
	LossKD        = "kd"         // λ·MSE transfer loss (l2g modes)
	LossClsLocal  = "cls_local"  // local net on the crops (l2g modes)
	LossClsGlobal = "cls_global" // global net on the views (l2g modes; logged, added only with loss.global_cls)
	LossCls       = "cls"        // the one net's loss (modes cam and local)
)

// outputs are a step's forward results: the global net on the views, the
// local net on the crops (either pair nil when the mode has no such net).
type outputs struct {
	fg, zg *torch.Tensor // (B, K, H, W), (B, C)
	fl, zl *torch.Tensor // (B·N, K, h, w), (B·N, C)
}

// stepLosses computes the mode's loss terms (spec §3) and their total.
func (c Config) stepLosses(s *torch.Scope, o outputs, b *batch, stride int) (terms map[string]*torch.Tensor, total *torch.Tensor) {
	switch c.Mode {
	case ModeCAM:
		cls := s.MultilabelSoftMargin(o.zg, b.labels)
		return map[string]*torch.Tensor{LossCls: cls, LossTotal: cls}, cls
	case ModeLocal:
		cls := s.MultilabelSoftMargin(o.zl, b.labelsRep)
		return map[string]*torch.Tensor{LossCls: cls, LossTotal: cls}, cls
	}
	target := LocalTarget(s, o.fl, b.labelsRep, b.sal, TargetOpts{BgThreshold: c.Loss.BgThreshold, BgTarget: c.Loss.BgTarget})
	if s.Err() != nil {
		return nil, nil
	}
	lsh := o.fl.Shape()
	r := RoIAlign(s, o.fg, b.rois, int(lsh[2]), int(lsh[3]), 1/float64(stride))
	kd := TransferLoss(s, r, target, c.Loss.KDWeight)
	clsL := s.MultilabelSoftMargin(o.zl, b.labelsRep)
	clsG := s.MultilabelSoftMargin(o.zg, b.labels)
	total = s.Add(kd, clsL)
	if c.Loss.GlobalCls {
		total = s.Add(total, clsG)
	}
	return map[string]*torch.Tensor{LossKD: kd, LossClsLocal: clsL, LossClsGlobal: clsG, LossTotal: total}, total
}
