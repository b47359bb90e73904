package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"math"
)

// Pair is a (height, width) pair of sizes; P(v) makes a square one.
type Pair [2]int64

// P returns (v, v).
func P(v int64) Pair { return Pair{v, v} }

func orDefault(p Pair, def int64) Pair {
	if p == (Pair{}) {
		return P(def)
	}
	return p
}

// Conv2dOpts configures Conv2d. Zero values mean stride 1, padding 0,
// dilation 1, groups 1.
type Conv2dOpts struct {
	Stride   Pair
	Padding  Pair
	Dilation Pair
	Groups   int64
}

// Conv2d is F.conv2d; b may be nil (no bias).
func (s *Scope) Conv2d(x, w, b *Tensor, o Conv2dOpts) *Tensor {
	ts := []*Tensor{x, w}
	if b != nil {
		ts = append(ts, b)
	}
	if !s.ok("conv2d", ts...) {
		return nil
	}
	stride, pad, dil := orDefault(o.Stride, 1), o.Padding, orDefault(o.Dilation, 1)
	groups := o.Groups
	if groups == 0 {
		groups = 1
	}
	var bh *C.l2g_tensor
	if b != nil {
		bh = b.h
	}
	var h *C.l2g_tensor
	err := check("conv2d", C.l2g_conv2d(s.ng(), x.h, w.h, bh, i64p(stride[:]), i64p(pad[:]), i64p(dil[:]), C.int64_t(groups), &h))
	keep(x, w, b)
	return s.wrap(h, err)
}

// BatchNormEval is batch norm in inference mode: running statistics, affine
// weight/bias (either may be nil). Gradient flows to x only when weight and
// bias do not require grad.
func (s *Scope) BatchNormEval(x, weight, bias, mean, variance *Tensor, eps float64) *Tensor {
	ts := []*Tensor{x, mean, variance}
	var wh, bh *C.l2g_tensor
	if weight != nil {
		ts = append(ts, weight)
		wh = weight.h
	}
	if bias != nil {
		ts = append(ts, bias)
		bh = bias.h
	}
	if !s.ok("batch_norm", ts...) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("batch_norm", C.l2g_batch_norm_eval(s.ng(), x.h, wh, bh, mean.h, variance.h, C.double(eps), &h))
	keep(ts...)
	return s.wrap(h, err)
}

func (s *Scope) dropout(op string, x *Tensor, p float64, train bool, feature C.int) *Tensor {
	if !s.ok(op, x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check(op, C.l2g_dropout(s.ng(), x.h, C.double(p), cbool(train), feature, &h))
	keep(x)
	return s.wrap(h, err)
}

// Dropout zeroes elements with probability p and scales the rest by 1/(1-p)
// when train is set; identity otherwise.
func (s *Scope) Dropout(x *Tensor, p float64, train bool) *Tensor {
	return s.dropout("dropout", x, p, train, 0)
}

// Dropout2d zeroes whole channels (Dropout2d / feature dropout).
func (s *Scope) Dropout2d(x *Tensor, p float64, train bool) *Tensor {
	return s.dropout("dropout2d", x, p, train, 1)
}

// PoolOpts configures the 2-D pools. Stride defaults to the kernel size.
type PoolOpts struct {
	Kernel          Pair
	Stride          Pair
	Padding         Pair
	Dilation        Pair
	CeilMode        bool
	CountIncludePad bool // avg_pool2d only
}

// MaxPool2d is F.max_pool2d.
func (s *Scope) MaxPool2d(x *Tensor, o PoolOpts) *Tensor {
	if !s.ok("max_pool2d", x) {
		return nil
	}
	st := o.Stride
	if st == (Pair{}) {
		st = o.Kernel
	}
	dil := orDefault(o.Dilation, 1)
	var h *C.l2g_tensor
	err := check("max_pool2d", C.l2g_max_pool2d(s.ng(), x.h, i64p(o.Kernel[:]), i64p(st[:]), i64p(o.Padding[:]), i64p(dil[:]), cbool(o.CeilMode), &h))
	keep(x)
	return s.wrap(h, err)
}

// AvgPool2d is F.avg_pool2d.
func (s *Scope) AvgPool2d(x *Tensor, o PoolOpts) *Tensor {
	if !s.ok("avg_pool2d", x) {
		return nil
	}
	st := o.Stride
	if st == (Pair{}) {
		st = o.Kernel
	}
	var h *C.l2g_tensor
	err := check("avg_pool2d", C.l2g_avg_pool2d(s.ng(), x.h, i64p(o.Kernel[:]), i64p(st[:]), i64p(o.Padding[:]), cbool(o.CeilMode), cbool(o.CountIncludePad), &h))
	keep(x)
	return s.wrap(h, err)
}

// AdaptiveAvgPool2d pools to an (oh, ow) output.
func (s *Scope) AdaptiveAvgPool2d(x *Tensor, oh, ow int64) *Tensor {
	if !s.ok("adaptive_avg_pool2d", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("adaptive_avg_pool2d", C.l2g_adaptive_avg_pool2d(s.ng(), x.h, C.int64_t(oh), C.int64_t(ow), &h))
	keep(x)
	return s.wrap(h, err)
}

// InterpMode is an interpolation kernel.
type InterpMode int

// Interpolation kernels. Nearest is PyTorch's legacy "nearest" (source index
// floor(dst · in/out)); Bicubic uses A = -0.75.
const (
	Nearest  InterpMode = C.L2G_NEAREST
	Bilinear InterpMode = C.L2G_BILINEAR
	Bicubic  InterpMode = C.L2G_BICUBIC
)

// Interpolate resizes a 4-D (N,C,H,W) tensor to (oh, ow), as F.interpolate
// with an explicit size. alignCorners is ignored for Nearest.
func (s *Scope) Interpolate(x *Tensor, oh, ow int64, mode InterpMode, alignCorners bool) *Tensor {
	if !s.ok("interpolate", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("interpolate", C.l2g_interpolate(s.ng(), x.h, C.int(mode), C.int64_t(oh), C.int64_t(ow), cbool(alignCorners), &h))
	keep(x)
	return s.wrap(h, err)
}

// GridPadding is grid_sample's treatment of out-of-range coordinates.
type GridPadding int

// Grid padding modes.
const (
	PadZeros      GridPadding = C.L2G_PAD_ZEROS
	PadBorder     GridPadding = C.L2G_PAD_BORDER
	PadReflection GridPadding = C.L2G_PAD_REFLECTION
)

// GridSample is F.grid_sample: x (N,C,H,W), grid (N,Ho,Wo,2) with (x, y) in
// [-1, 1]; mode Bilinear, Nearest or Bicubic.
func (s *Scope) GridSample(x, grid *Tensor, mode InterpMode, pad GridPadding, alignCorners bool) *Tensor {
	if !s.ok("grid_sample", x, grid) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("grid_sample", C.l2g_grid_sample(s.ng(), x.h, grid.h, C.int(mode), C.int(pad), cbool(alignCorners), &h))
	keep(x, grid)
	return s.wrap(h, err)
}

func (s *Scope) softmax(op string, x *Tensor, dim int64, log C.int) *Tensor {
	if !s.ok(op, x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check(op, C.l2g_softmax(s.ng(), x.h, C.int64_t(dim), log, &h))
	keep(x)
	return s.wrap(h, err)
}

// Softmax along dim.
func (s *Scope) Softmax(x *Tensor, dim int64) *Tensor { return s.softmax("softmax", x, dim, 0) }

// LogSoftmax along dim.
func (s *Scope) LogSoftmax(x *Tensor, dim int64) *Tensor {
	return s.softmax("log_softmax", x, dim, 1)
}

// Reduction selects how a loss is reduced.
type Reduction int

// Loss reductions.
const (
	ReduceMean Reduction = C.L2G_REDUCE_MEAN
	ReduceSum  Reduction = C.L2G_REDUCE_SUM
	ReduceNone Reduction = C.L2G_REDUCE_NONE
)

// MSELoss is F.mse_loss.
func (s *Scope) MSELoss(x, target *Tensor, r Reduction) *Tensor {
	if !s.ok("mse_loss", x, target) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("mse_loss", C.l2g_mse_loss(s.ng(), x.h, target.h, C.int(r), &h))
	keep(x, target)
	return s.wrap(h, err)
}

// BCEWithLogits is F.binary_cross_entropy_with_logits.
func (s *Scope) BCEWithLogits(x, target *Tensor, r Reduction) *Tensor {
	if !s.ok("bce_with_logits", x, target) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("bce_with_logits", C.l2g_bce_with_logits(s.ng(), x.h, target.h, C.int(r), &h))
	keep(x, target)
	return s.wrap(h, err)
}

// MultilabelSoftMargin is nn.MultiLabelSoftMarginLoss (mean over samples of
// the mean over classes of -[y log σ(z) + (1-y) log(1-σ(z))]), which for a
// fixed class count is the mean BCE-with-logits over all elements.
func (s *Scope) MultilabelSoftMargin(logits, target *Tensor) *Tensor {
	return s.BCEWithLogits(logits, target, ReduceMean)
}

// CrossEntropy is F.cross_entropy on logits (N,C,…) and int64 targets (N,…),
// skipping targets equal to ignoreIndex.
func (s *Scope) CrossEntropy(x, target *Tensor, ignoreIndex int64, r Reduction) *Tensor {
	if !s.ok("cross_entropy", x, target) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("cross_entropy", C.l2g_cross_entropy(s.ng(), x.h, target.h, C.int64_t(ignoreIndex), C.int(r), &h))
	keep(x, target)
	return s.wrap(h, err)
}

// Normalize divides x by (its L2 norm along dim + eps), the reference PCM's
// normalisation (not F.normalize's max(norm, eps)).
func (s *Scope) Normalize(x *Tensor, dim int64, eps float64) *Tensor {
	n := s.Norm(x, []int64{dim}, true)
	return s.Div(x, s.AddScalar(n, eps))
}

// ---- initialisation (torch.nn.init semantics) ----

// Fans returns (fan_in, fan_out) of a weight shaped like PyTorch's
// (out, in, k…) convention.
func Fans(shape []int64) (fanIn, fanOut int64, err error) {
	if len(shape) < 2 {
		return 0, 0, fmt.Errorf("torch: fan in/out needs at least 2 dims, got %v", shape)
	}
	recept := int64(1)
	for _, k := range shape[2:] {
		recept *= k
	}
	return shape[1] * recept, shape[0] * recept, nil
}

// XavierUniform fills w with U(-a, a), a = gain·sqrt(6/(fan_in+fan_out)).
func XavierUniform(w *Tensor, gain float64) error {
	in, out, err := Fans(w.Shape())
	if err != nil {
		return err
	}
	a := gain * math.Sqrt(6/float64(in+out))
	return w.UniformInit(-a, a)
}

// KaimingNormal fills w with N(0, std²), std = sqrt(2)/sqrt(fan) (ReLU gain,
// a = 0); fanOut selects mode="fan_out".
func KaimingNormal(w *Tensor, fanOut bool) error {
	in, out, err := Fans(w.Shape())
	if err != nil {
		return err
	}
	fan := in
	if fanOut {
		fan = out
	}
	return w.NormalInit(0, math.Sqrt2/math.Sqrt(float64(fan)))
}
