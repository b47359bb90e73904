package segtrain

import (
	"context"
	"fmt"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/torch"
)

// example is one augmented training pair.
type example struct {
	image []float32 // 3×c×c, BGR minus the mean
	label []uint8   // c×c, 255 where padded or unlabeled
}

// loader turns (epoch, image) into an example. All randomness comes from
// the Sampler keyed by (seed, epoch, image), so any number of workers in
// any order, and a resumed run, produce the same examples.
type loader struct {
	aug     augment.DeepLab
	split   *data.Split
	labels  labelSource
	sampler augment.Sampler
}

// code packs (epoch, index) into one int for the prefetcher's order.
func (l *loader) code(epoch, index int) int { return epoch*len(l.split.Items) + index }

func (l *loader) load(ctx context.Context, code int) (*example, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := len(l.split.Items)
	epoch, idx := code/n, code%n
	it := l.split.Items[idx]
	img, err := data.DecodeImage(it.ImagePath)
	if err != nil {
		return nil, err
	}
	lab, where, err := l.labels.mask(it.ID)
	if err != nil {
		return nil, err
	}
	if lab.W != img.W || lab.H != img.H {
		return nil, badinput.New(where, "size", "label of %s is %dx%d, image %s is %dx%d", it.ID, lab.W, lab.H, it.ImagePath, img.W, img.H)
	}
	s, err := l.aug.Apply(img, lab, l.sampler.Rand(epoch, idx, augment.StreamDeepLab))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", it.ImagePath, err)
	}
	return &example{image: s.Image, label: s.Label}, nil
}

// schedule maps the stream of sub-batches onto images: each epoch visits a
// permutation of the list in batches of size B, the last one possibly
// smaller (DataLoader with drop_last=False, restarted when exhausted, as
// deeplab-pytorch's loop does). Iteration it consumes sub-batches
// it·S … it·S+S−1, S = ITER_SIZE.
type schedule struct {
	n, batch, iterSize int
	sampler            augment.Sampler
}

// perEpoch is the number of sub-batches in an epoch, ⌈n/B⌉.
func (s schedule) perEpoch() int { return (s.n + s.batch - 1) / s.batch }

// codes lists the prefetch codes (epoch·n + image) of the sub-batches of
// iterations from..to-1, and the size of each sub-batch.
func (s schedule) codes(from, to int, code func(epoch, index int) int) (codes, sizes []int) {
	per := s.perEpoch()
	var perm []int
	permEpoch := -1
	for g := from * s.iterSize; g < to*s.iterSize; g++ {
		e, k := g/per, g%per
		if e != permEpoch {
			perm, permEpoch = s.sampler.Order(e, s.n), e
		}
		part := perm[k*s.batch : min((k+1)*s.batch, s.n)]
		for _, idx := range part {
			codes = append(codes, code(e, idx))
		}
		sizes = append(sizes, len(part))
	}
	return codes, sizes
}

// inputs stacks a sub-batch's images, times scale, into (b, 3, c, c) on
// dev.
func inputs(s *torch.Scope, exs []*example, crop int, scale float64, dev torch.Device) *torch.Tensor {
	c := int64(crop)
	buf := make([]float32, 0, len(exs)*3*crop*crop)
	for _, ex := range exs {
		buf = append(buf, ex.image...)
	}
	scaleInPlace(buf, scale)
	x := s.FromFloat32(buf, int64(len(exs)), 3, c, c)
	if dev.IsCUDA() {
		x = s.To(x, torch.Opts{Device: dev})
	}
	return x
}

// targets resizes each label to h×w with PIL nearest (deeplab-pytorch
// resize_labels) and returns them as int64 (b, h, w) on dev, with the
// number of labelled (non-255) pixels.
func targets(s *torch.Scope, exs []*example, crop int, h, w int64, dev torch.Device) (*torch.Tensor, int, error) {
	out := make([]int64, 0, int64(len(exs))*h*w)
	valid := 0
	for _, ex := range exs {
		g, err := imaging.ResizeGray(&imaging.Gray{W: crop, H: crop, Pix: ex.label}, int(w), int(h), imaging.Nearest)
		if err != nil {
			return nil, 0, fmt.Errorf("resize labels: %w", err)
		}
		for _, v := range g.Pix {
			if v != ignoreLabel {
				valid++
			}
			out = append(out, int64(v))
		}
	}
	t := s.FromInt64(out, int64(len(exs)), h, w)
	if dev.IsCUDA() {
		t = s.To(t, torch.Opts{Device: dev})
	}
	return t, valid, nil
}

// scaleInPlace multiplies v by scale (a no-op for the reference's 1).
func scaleInPlace(v []float32, scale float64) {
	if scale == 1 {
		return
	}
	f := float32(scale)
	for i := range v {
		v[i] *= f
	}
}
