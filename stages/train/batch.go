package train

import (
	"context"
	"fmt"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/torch"
)

// example is one image made ready for a step: its global view and/or its
// local crops, all normalised CHW float32.
type example struct {
	index int
	label []float32     // multi-hot, C
	view  []float32     // 3×S×S; nil in mode local
	crops []float32     // N×3×c×c; nil in mode cam
	sal   []float32     // N×c×c; only in mode l2g-shape
	boxes []augment.Box // the N crop boxes in view pixels
}

// loader turns (epoch, image) into an example. All randomness comes from
// the Sampler keyed by (seed, epoch, image, stream), so any number of
// workers in any order, and a resumed run, produce the same examples.
type loader struct {
	cfg     Config
	split   *data.Split
	sampler augment.Sampler
}

// code packs (epoch, index) into one int for the prefetcher's order.
func (l *loader) code(epoch, index int) int { return epoch*len(l.split.Items) + index }

func (l *loader) load(ctx context.Context, code int) (*example, error) {
	n := len(l.split.Items)
	epoch, idx := code/n, code%n
	smp, err := l.split.Load(ctx, idx)
	if err != nil {
		return nil, err
	}
	var sal *imaging.Gray
	if l.cfg.Mode == ModeL2GShape {
		if smp.Sal == nil {
			return nil, badinput.New(smp.ImagePath, "saliency", "mode l2g-shape needs a saliency map for %s", smp.ID)
		}
		sal = smp.Sal
	}
	r := l.sampler.Rand(epoch, idx, augment.StreamView)
	var v *augment.View
	switch l.cfg.View.Kind {
	case "coco":
		v, err = l.cfg.cocoView().Apply(smp.Image, sal, r)
	default:
		v, err = l.cfg.vocView().Apply(smp.Image, sal, r)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", smp.ImagePath, err)
	}
	ex := &example{index: idx, label: smp.MultiHot(l.split.NumClasses())}
	if l.cfg.Mode != ModeLocal {
		ex.view = v.Image
	}
	if !l.cfg.Mode.usesCrops() {
		return ex, nil
	}
	boxes, err := l.cfg.localBoxes().Sample(l.sampler.Rand(epoch, idx, augment.StreamBoxes))
	if err != nil {
		return nil, err
	}
	ex.boxes = boxes
	for _, b := range boxes {
		img, s, err := v.Local(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", smp.ImagePath, err)
		}
		ex.crops = append(ex.crops, img...)
		ex.sal = append(ex.sal, s...)
	}
	return ex, nil
}

// batch is one step's input tensors (owned by the step's scope).
type batch struct {
	views     *torch.Tensor // (B, 3, S, S); nil in mode local
	crops     *torch.Tensor // (B·N, 3, c, c); nil in mode cam
	sal       *torch.Tensor // (B·N, 1, c, c); only in mode l2g-shape
	labels    *torch.Tensor // (B, C)
	labelsRep *torch.Tensor // (B·N, C): each image's label once per crop
	rois      []ROI         // crop boxes, image-major like crops
}

// tensors assembles examples into the step's tensors on dev.
func (c Config) tensors(s *torch.Scope, exs []*example, dev torch.Device) *batch {
	b := int64(len(exs))
	nc := int64(c.NumClasses)
	o := torch.Opts{Device: dev}
	to := func(t *torch.Tensor) *torch.Tensor {
		if dev.IsCUDA() {
			return s.To(t, o)
		}
		return t
	}
	var labels, labelsRep []float32
	for _, ex := range exs {
		labels = append(labels, ex.label...)
	}
	out := &batch{labels: to(s.FromFloat32(labels, b, nc))}
	if c.Mode != ModeLocal {
		side := int64(c.View.Size)
		var views []float32
		for _, ex := range exs {
			views = append(views, ex.view...)
		}
		out.views = to(s.FromFloat32(views, b, 3, side, side))
	}
	if !c.Mode.usesCrops() {
		return out
	}
	n, crop := int64(c.Local.N), int64(c.Local.Crop)
	var crops, sal []float32
	for bi, ex := range exs {
		crops = append(crops, ex.crops...)
		sal = append(sal, ex.sal...)
		for _, bx := range ex.boxes {
			out.rois = append(out.rois, ROI{Batch: bi, Box: bx})
			labelsRep = append(labelsRep, ex.label...)
		}
	}
	out.crops = to(s.FromFloat32(crops, b*n, 3, crop, crop))
	out.labelsRep = to(s.FromFloat32(labelsRep, b*n, nc))
	if c.Mode == ModeL2GShape {
		out.sal = to(s.FromFloat32(sal, b*n, 1, crop, crop))
	}
	return out
}
