package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Opts selects dtype and device for new tensors; the zero value is float32
// on the CPU.
type Opts struct {
	DType  DType
	Device Device
}

func i64p(v []int64) *C.int64_t {
	if len(v) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&v[0]))
}

func handles(ts []*Tensor) []*C.l2g_tensor {
	hs := make([]*C.l2g_tensor, len(ts))
	for i, t := range ts {
		hs[i] = t.h
	}
	return hs
}

func keep(ts ...*Tensor) {
	for _, t := range ts {
		runtime.KeepAlive(t)
	}
}

// ---- creation ----

// FromBytes copies raw little-endian element data into a new CPU tensor.
func (s *Scope) FromBytes(dt DType, data []byte, shape ...int64) *Tensor {
	return s.fromPtr("from_data", dt, unsafe.Pointer(unsafe.SliceData(data)), len(data), shape, CPU())
}

func (s *Scope) fromPtr(op string, dt DType, p unsafe.Pointer, nbytes int, shape []int64, dev Device) *Tensor {
	if !s.ok(op) {
		return nil
	}
	if int64(nbytes) != numel(shape)*int64(dt.Size()) {
		s.Fail(&Error{Op: op, Msg: fmt.Sprintf("%d bytes of %v do not fill shape %v", nbytes, dt, shape)})
		return nil
	}
	dtc, dic := dev.c()
	var h *C.l2g_tensor
	err := check(op, C.l2g_tensor_from_data(p, C.size_t(nbytes), C.int(dt), i64p(shape), C.int(len(shape)), dtc, dic, &h))
	keep()
	return s.wrap(h, err)
}

func fromSlice[E any](s *Scope, dt DType, v []E, shape []int64) *Tensor {
	if shape == nil {
		shape = []int64{int64(len(v))}
	}
	var zero E
	return s.fromPtr("from_data", dt, unsafe.Pointer(unsafe.SliceData(v)), len(v)*int(unsafe.Sizeof(zero)), shape, CPU())
}

// FromFloat32 copies v into a new float32 CPU tensor of the given shape
// (1-D when shape is empty).
func (s *Scope) FromFloat32(v []float32, shape ...int64) *Tensor {
	return fromSlice(s, Float32, v, shape)
}

// FromFloat64 copies v into a new float64 CPU tensor.
func (s *Scope) FromFloat64(v []float64, shape ...int64) *Tensor {
	return fromSlice(s, Float64, v, shape)
}

// FromInt64 copies v into a new int64 CPU tensor.
func (s *Scope) FromInt64(v []int64, shape ...int64) *Tensor {
	return fromSlice(s, Int64, v, shape)
}

// FromUint8 copies v into a new uint8 CPU tensor.
func (s *Scope) FromUint8(v []uint8, shape ...int64) *Tensor {
	return fromSlice(s, Uint8, v, shape)
}

// FromBool copies v into a new bool CPU tensor.
func (s *Scope) FromBool(v []bool, shape ...int64) *Tensor {
	return fromSlice(s, Bool, v, shape)
}

// Full returns a tensor of the shape filled with v.
func (s *Scope) Full(shape []int64, v float64, o Opts) *Tensor {
	if !s.ok("full") {
		return nil
	}
	dt, di := o.Device.c()
	var h *C.l2g_tensor
	err := check("full", C.l2g_tensor_full(i64p(shape), C.int(len(shape)), C.double(v), C.int(o.DType), dt, di, &h))
	return s.wrap(h, err)
}

// Zeros returns zeros of the shape.
func (s *Scope) Zeros(shape []int64, o Opts) *Tensor { return s.Full(shape, 0, o) }

// Ones returns ones of the shape.
func (s *Scope) Ones(shape []int64, o Opts) *Tensor { return s.Full(shape, 1, o) }

func (s *Scope) random(op string, kind C.int, shape []int64, o Opts) *Tensor {
	if !s.ok(op) {
		return nil
	}
	dt, di := o.Device.c()
	var h *C.l2g_tensor
	err := check(op, C.l2g_tensor_random(i64p(shape), C.int(len(shape)), kind, C.int(o.DType), dt, di, &h))
	return s.wrap(h, err)
}

// Rand draws U[0, 1) from libtorch's generator.
func (s *Scope) Rand(shape []int64, o Opts) *Tensor { return s.random("rand", 0, shape, o) }

// Randn draws N(0, 1) from libtorch's generator.
func (s *Scope) Randn(shape []int64, o Opts) *Tensor { return s.random("randn", 1, shape, o) }

// Arange is [start, end) in steps of step.
func (s *Scope) Arange(start, end, step float64, o Opts) *Tensor {
	if !s.ok("arange") {
		return nil
	}
	dt, di := o.Device.c()
	var h *C.l2g_tensor
	err := check("arange", C.l2g_tensor_arange(C.double(start), C.double(end), C.double(step), C.int(o.DType), dt, di, &h))
	return s.wrap(h, err)
}

// Alias returns a second handle on x's storage, owned by s (PyTorch's
// shallow copy: same data, same autograd identity).
func (s *Scope) Alias(x *Tensor) *Tensor {
	if !s.ok("alias", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("alias", C.l2g_tensor_shallow_clone(x.h, &h))
	keep(x)
	return s.wrap(h, err)
}

// To converts x to another dtype and/or device.
func (s *Scope) To(x *Tensor, o Opts) *Tensor {
	if !s.ok("to", x) {
		return nil
	}
	dt, di := o.Device.c()
	var h *C.l2g_tensor
	err := check("to", C.l2g_tensor_to(s.ng(), x.h, C.int(o.DType), dt, di, &h))
	keep(x)
	return s.wrap(h, err)
}

// Grad is x's accumulated gradient, or nil when it has none (not an error).
func (s *Scope) Grad(x *Tensor) *Tensor {
	if !s.ok("grad", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("grad", C.l2g_tensor_grad(x.h, &h))
	keep(x)
	return s.wrap(h, err)
}

// ---- elementwise ----

func (s *Scope) unary(op string, code C.int, x *Tensor) *Tensor {
	if !s.ok(op, x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check(op, C.l2g_unary(s.ng(), code, x.h, &h))
	keep(x)
	return s.wrap(h, err)
}

// Relu is max(x, 0).
func (s *Scope) Relu(x *Tensor) *Tensor { return s.unary("relu", C.L2G_RELU, x) }

// Sigmoid is 1/(1+e^-x).
func (s *Scope) Sigmoid(x *Tensor) *Tensor { return s.unary("sigmoid", C.L2G_SIGMOID, x) }

// LogSigmoid is log σ(x), computed stably.
func (s *Scope) LogSigmoid(x *Tensor) *Tensor { return s.unary("log_sigmoid", C.L2G_LOG_SIGMOID, x) }

// Exp is e^x.
func (s *Scope) Exp(x *Tensor) *Tensor { return s.unary("exp", C.L2G_EXP, x) }

// Log is the natural logarithm.
func (s *Scope) Log(x *Tensor) *Tensor { return s.unary("log", C.L2G_LOG, x) }

// Sqrt is the square root.
func (s *Scope) Sqrt(x *Tensor) *Tensor { return s.unary("sqrt", C.L2G_SQRT, x) }

// Neg is -x.
func (s *Scope) Neg(x *Tensor) *Tensor { return s.unary("neg", C.L2G_NEG, x) }

// Abs is |x|.
func (s *Scope) Abs(x *Tensor) *Tensor { return s.unary("abs", C.L2G_ABS, x) }

// Tanh is the hyperbolic tangent.
func (s *Scope) Tanh(x *Tensor) *Tensor { return s.unary("tanh", C.L2G_TANH, x) }

// Floor rounds down.
func (s *Scope) Floor(x *Tensor) *Tensor { return s.unary("floor", C.L2G_FLOOR, x) }

// Round rounds half to even, as torch.round.
func (s *Scope) Round(x *Tensor) *Tensor { return s.unary("round", C.L2G_ROUND, x) }

// Contiguous returns x in row-major memory order.
func (s *Scope) Contiguous(x *Tensor) *Tensor { return s.unary("contiguous", C.L2G_CONTIGUOUS, x) }

// Clone copies x's data (autograd flows through the copy).
func (s *Scope) Clone(x *Tensor) *Tensor { return s.unary("clone", C.L2G_CLONE, x) }

// Detach shares x's data without autograd history.
func (s *Scope) Detach(x *Tensor) *Tensor { return s.unary("detach", C.L2G_DETACH, x) }

// ZerosLike is zeros of x's shape, dtype and device.
func (s *Scope) ZerosLike(x *Tensor) *Tensor { return s.unary("zeros_like", C.L2G_ZEROS_LIKE, x) }

// OnesLike is ones of x's shape, dtype and device.
func (s *Scope) OnesLike(x *Tensor) *Tensor { return s.unary("ones_like", C.L2G_ONES_LIKE, x) }

// LogicalNot is !x.
func (s *Scope) LogicalNot(x *Tensor) *Tensor { return s.unary("logical_not", C.L2G_LOGICAL_NOT, x) }

func (s *Scope) binary(op string, code C.int, a, b *Tensor) *Tensor {
	if !s.ok(op, a, b) {
		return nil
	}
	var h *C.l2g_tensor
	err := check(op, C.l2g_binary(s.ng(), code, a.h, b.h, &h))
	keep(a, b)
	return s.wrap(h, err)
}

// Add is a+b with broadcasting.
func (s *Scope) Add(a, b *Tensor) *Tensor { return s.binary("add", C.L2G_ADD, a, b) }

// Sub is a-b with broadcasting.
func (s *Scope) Sub(a, b *Tensor) *Tensor { return s.binary("sub", C.L2G_SUB, a, b) }

// Mul is a*b with broadcasting.
func (s *Scope) Mul(a, b *Tensor) *Tensor { return s.binary("mul", C.L2G_MUL, a, b) }

// Div is a/b with broadcasting.
func (s *Scope) Div(a, b *Tensor) *Tensor { return s.binary("div", C.L2G_DIV, a, b) }

// Matmul is torch.matmul.
func (s *Scope) Matmul(a, b *Tensor) *Tensor { return s.binary("matmul", C.L2G_MATMUL, a, b) }

// Bmm is the batched product (n,a,b)·(n,b,c).
func (s *Scope) Bmm(a, b *Tensor) *Tensor { return s.binary("bmm", C.L2G_BMM, a, b) }

// Gt is a > b (bool).
func (s *Scope) Gt(a, b *Tensor) *Tensor { return s.binary("gt", C.L2G_GT, a, b) }

// Lt is a < b (bool).
func (s *Scope) Lt(a, b *Tensor) *Tensor { return s.binary("lt", C.L2G_LT, a, b) }

// Ge is a >= b (bool).
func (s *Scope) Ge(a, b *Tensor) *Tensor { return s.binary("ge", C.L2G_GE, a, b) }

// Le is a <= b (bool).
func (s *Scope) Le(a, b *Tensor) *Tensor { return s.binary("le", C.L2G_LE, a, b) }

// Eq is a == b (bool).
func (s *Scope) Eq(a, b *Tensor) *Tensor { return s.binary("eq", C.L2G_EQ, a, b) }

// Ne is a != b (bool).
func (s *Scope) Ne(a, b *Tensor) *Tensor { return s.binary("ne", C.L2G_NE, a, b) }

// Maximum is the elementwise max.
func (s *Scope) Maximum(a, b *Tensor) *Tensor { return s.binary("maximum", C.L2G_MAXIMUM, a, b) }

// Minimum is the elementwise min.
func (s *Scope) Minimum(a, b *Tensor) *Tensor { return s.binary("minimum", C.L2G_MINIMUM, a, b) }

// Pow is a^b elementwise.
func (s *Scope) Pow(a, b *Tensor) *Tensor { return s.binary("pow", C.L2G_POW, a, b) }

// LogicalAnd is a && b.
func (s *Scope) LogicalAnd(a, b *Tensor) *Tensor {
	return s.binary("logical_and", C.L2G_LOGICAL_AND, a, b)
}

// LogicalOr is a || b.
func (s *Scope) LogicalOr(a, b *Tensor) *Tensor {
	return s.binary("logical_or", C.L2G_LOGICAL_OR, a, b)
}

func (s *Scope) scalar(op string, code C.int, a *Tensor, v float64) *Tensor {
	if !s.ok(op, a) {
		return nil
	}
	var h *C.l2g_tensor
	err := check(op, C.l2g_scalar(s.ng(), code, a.h, C.double(v), &h))
	keep(a)
	return s.wrap(h, err)
}

// AddScalar is a+v.
func (s *Scope) AddScalar(a *Tensor, v float64) *Tensor { return s.scalar("add", C.L2G_S_ADD, a, v) }

// SubScalar is a-v.
func (s *Scope) SubScalar(a *Tensor, v float64) *Tensor { return s.scalar("sub", C.L2G_S_SUB, a, v) }

// RSubScalar is v-a.
func (s *Scope) RSubScalar(a *Tensor, v float64) *Tensor {
	return s.scalar("rsub", C.L2G_S_RSUB, a, v)
}

// MulScalar is a*v.
func (s *Scope) MulScalar(a *Tensor, v float64) *Tensor { return s.scalar("mul", C.L2G_S_MUL, a, v) }

// DivScalar is a/v.
func (s *Scope) DivScalar(a *Tensor, v float64) *Tensor { return s.scalar("div", C.L2G_S_DIV, a, v) }

// PowScalar is a^v.
func (s *Scope) PowScalar(a *Tensor, v float64) *Tensor { return s.scalar("pow", C.L2G_S_POW, a, v) }

// GtScalar is a > v (bool).
func (s *Scope) GtScalar(a *Tensor, v float64) *Tensor { return s.scalar("gt", C.L2G_S_GT, a, v) }

// LtScalar is a < v (bool).
func (s *Scope) LtScalar(a *Tensor, v float64) *Tensor { return s.scalar("lt", C.L2G_S_LT, a, v) }

// GeScalar is a >= v (bool).
func (s *Scope) GeScalar(a *Tensor, v float64) *Tensor { return s.scalar("ge", C.L2G_S_GE, a, v) }

// LeScalar is a <= v (bool).
func (s *Scope) LeScalar(a *Tensor, v float64) *Tensor { return s.scalar("le", C.L2G_S_LE, a, v) }

// EqScalar is a == v (bool).
func (s *Scope) EqScalar(a *Tensor, v float64) *Tensor { return s.scalar("eq", C.L2G_S_EQ, a, v) }

// NeScalar is a != v (bool).
func (s *Scope) NeScalar(a *Tensor, v float64) *Tensor { return s.scalar("ne", C.L2G_S_NE, a, v) }

// ClampMin is max(a, v).
func (s *Scope) ClampMin(a *Tensor, v float64) *Tensor {
	return s.scalar("clamp_min", C.L2G_S_CLAMP_MIN, a, v)
}

// ClampMax is min(a, v).
func (s *Scope) ClampMax(a *Tensor, v float64) *Tensor {
	return s.scalar("clamp_max", C.L2G_S_CLAMP_MAX, a, v)
}

// Clamp limits x to [lo, hi].
func (s *Scope) Clamp(x *Tensor, lo, hi float64) *Tensor {
	if !s.ok("clamp", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("clamp", C.l2g_clamp(s.ng(), x.h, 1, C.double(lo), 1, C.double(hi), &h))
	keep(x)
	return s.wrap(h, err)
}

// Where is cond ? a : b.
func (s *Scope) Where(cond, a, b *Tensor) *Tensor {
	if !s.ok("where", cond, a, b) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("where", C.l2g_where(s.ng(), cond.h, a.h, b.h, &h))
	keep(cond, a, b)
	return s.wrap(h, err)
}

// MaskedFill sets x to v where mask is true.
func (s *Scope) MaskedFill(x, mask *Tensor, v float64) *Tensor {
	if !s.ok("masked_fill", x, mask) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("masked_fill", C.l2g_masked_fill(s.ng(), x.h, mask.h, C.double(v), &h))
	keep(x, mask)
	return s.wrap(h, err)
}

// ---- reductions ----

func (s *Scope) reduce(op string, code C.int, x *Tensor, dims []int64, keepdim bool) *Tensor {
	if !s.ok(op, x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check(op, C.l2g_reduce(s.ng(), code, x.h, i64p(dims), C.int(len(dims)), cbool(keepdim), &h))
	keep(x)
	return s.wrap(h, err)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Sum over dims (all elements when dims is empty).
func (s *Scope) Sum(x *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce("sum", C.L2G_SUM, x, dims, keepdim)
}

// Mean over dims (all elements when dims is empty).
func (s *Scope) Mean(x *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce("mean", C.L2G_MEAN, x, dims, keepdim)
}

// Amax is the maximum over dims (gradient shared among ties).
func (s *Scope) Amax(x *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce("amax", C.L2G_AMAX, x, dims, keepdim)
}

// Amin is the minimum over dims.
func (s *Scope) Amin(x *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce("amin", C.L2G_AMIN, x, dims, keepdim)
}

// Norm is the L2 norm over dims.
func (s *Scope) Norm(x *Tensor, dims []int64, keepdim bool) *Tensor {
	return s.reduce("norm", C.L2G_NORM2, x, dims, keepdim)
}

// MaxDim is torch.max(x, dim): values and int64 indices; the gradient goes to
// the selected element.
func (s *Scope) MaxDim(x *Tensor, dim int64, keepdim bool) (values, indices *Tensor) {
	if !s.ok("max", x) {
		return nil, nil
	}
	var v, i *C.l2g_tensor
	err := check("max", C.l2g_max_dim(s.ng(), x.h, C.int64_t(dim), cbool(keepdim), &v, &i))
	keep(x)
	if err != nil {
		s.Fail(err)
		return nil, nil
	}
	return s.wrap(v, nil), s.wrap(i, nil)
}

// Argmax is the index of the maximum along dim (first on ties).
func (s *Scope) Argmax(x *Tensor, dim int64, keepdim bool) *Tensor {
	if !s.ok("argmax", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("argmax", C.l2g_argmax(s.ng(), x.h, C.int64_t(dim), cbool(keepdim), &h))
	keep(x)
	return s.wrap(h, err)
}

// ---- shapes ----

func (s *Scope) shapeOp(op string, x *Tensor, v []int64, f func(*C.l2g_tensor, *C.int64_t, C.int, **C.l2g_tensor) *C.char) *Tensor {
	if !s.ok(op, x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check(op, f(x.h, i64p(v), C.int(len(v)), &h))
	keep(x)
	return s.wrap(h, err)
}

// Reshape returns x with a new shape (one dim may be -1).
func (s *Scope) Reshape(x *Tensor, shape ...int64) *Tensor {
	return s.shapeOp("reshape", x, shape, func(h *C.l2g_tensor, p *C.int64_t, n C.int, o **C.l2g_tensor) *C.char {
		return C.l2g_reshape(s.ng(), h, p, n, o)
	})
}

// Permute reorders dimensions.
func (s *Scope) Permute(x *Tensor, dims ...int64) *Tensor {
	return s.shapeOp("permute", x, dims, func(h *C.l2g_tensor, p *C.int64_t, n C.int, o **C.l2g_tensor) *C.char {
		return C.l2g_permute(s.ng(), h, p, n, o)
	})
}

// Expand broadcasts x to shape without copying (-1 keeps a size).
func (s *Scope) Expand(x *Tensor, shape ...int64) *Tensor {
	return s.shapeOp("expand", x, shape, func(h *C.l2g_tensor, p *C.int64_t, n C.int, o **C.l2g_tensor) *C.char {
		return C.l2g_expand(s.ng(), h, p, n, o)
	})
}

// Repeat tiles x.
func (s *Scope) Repeat(x *Tensor, reps ...int64) *Tensor {
	return s.shapeOp("repeat", x, reps, func(h *C.l2g_tensor, p *C.int64_t, n C.int, o **C.l2g_tensor) *C.char {
		return C.l2g_repeat(s.ng(), h, p, n, o)
	})
}

// Flip reverses x along dims.
func (s *Scope) Flip(x *Tensor, dims ...int64) *Tensor {
	return s.shapeOp("flip", x, dims, func(h *C.l2g_tensor, p *C.int64_t, n C.int, o **C.l2g_tensor) *C.char {
		return C.l2g_flip(s.ng(), h, p, n, o)
	})
}

// Pad is F.pad with a constant: pads lists (before, after) pairs starting
// from the last dimension.
func (s *Scope) Pad(x *Tensor, pads []int64, value float64) *Tensor {
	if !s.ok("pad", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("pad", C.l2g_pad(s.ng(), x.h, i64p(pads), C.int(len(pads)), C.double(value), &h))
	keep(x)
	return s.wrap(h, err)
}

// Narrow is x sliced to [start, start+length) along dim (a view).
func (s *Scope) Narrow(x *Tensor, dim, start, length int64) *Tensor {
	if !s.ok("narrow", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("narrow", C.l2g_narrow(s.ng(), x.h, C.int64_t(dim), C.int64_t(start), C.int64_t(length), &h))
	keep(x)
	return s.wrap(h, err)
}

// IndexSelect picks the entries of index (int64) along dim.
func (s *Scope) IndexSelect(x *Tensor, dim int64, index *Tensor) *Tensor {
	if !s.ok("index_select", x, index) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("index_select", C.l2g_index_select(s.ng(), x.h, C.int64_t(dim), index.h, &h))
	keep(x, index)
	return s.wrap(h, err)
}

// Transpose swaps two dimensions.
func (s *Scope) Transpose(x *Tensor, d0, d1 int64) *Tensor {
	if !s.ok("transpose", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("transpose", C.l2g_transpose(s.ng(), x.h, C.int64_t(d0), C.int64_t(d1), &h))
	keep(x)
	return s.wrap(h, err)
}

// Unsqueeze inserts a size-1 dimension at dim.
func (s *Scope) Unsqueeze(x *Tensor, dim int64) *Tensor {
	if !s.ok("unsqueeze", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("unsqueeze", C.l2g_unsqueeze(s.ng(), x.h, C.int64_t(dim), &h))
	keep(x)
	return s.wrap(h, err)
}

// Squeeze removes dimension dim if it has size 1.
func (s *Scope) Squeeze(x *Tensor, dim int64) *Tensor {
	if !s.ok("squeeze", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("squeeze", C.l2g_squeeze(s.ng(), x.h, C.int64_t(dim), &h))
	keep(x)
	return s.wrap(h, err)
}

func (s *Scope) list(op string, xs []*Tensor, dim int64, f func(**C.l2g_tensor, C.int, C.int64_t, **C.l2g_tensor) *C.char) *Tensor {
	if !s.ok(op, xs...) {
		return nil
	}
	if len(xs) == 0 {
		s.Fail(&Error{Op: op, Msg: "empty tensor list"})
		return nil
	}
	// The handle array is C memory so that no Go pointer is passed to C
	// inside another Go allocation.
	arr := (**C.l2g_tensor)(C.malloc(C.size_t(len(xs)) * C.size_t(unsafe.Sizeof((*C.l2g_tensor)(nil)))))
	defer C.free(unsafe.Pointer(arr))
	copy(unsafe.Slice(arr, len(xs)), handles(xs))
	var h *C.l2g_tensor
	err := check(op, f(arr, C.int(len(xs)), C.int64_t(dim), &h))
	keep(xs...)
	return s.wrap(h, err)
}

// Cat concatenates along dim.
func (s *Scope) Cat(xs []*Tensor, dim int64) *Tensor {
	return s.list("cat", xs, dim, func(a **C.l2g_tensor, n C.int, d C.int64_t, o **C.l2g_tensor) *C.char {
		return C.l2g_cat(s.ng(), a, n, d, o)
	})
}

// Stack stacks along a new dim.
func (s *Scope) Stack(xs []*Tensor, dim int64) *Tensor {
	return s.list("stack", xs, dim, func(a **C.l2g_tensor, n C.int, d C.int64_t, o **C.l2g_tensor) *C.char {
		return C.l2g_stack(s.ng(), a, n, d, o)
	})
}

// OneHot turns int64 class indices into a trailing one-hot dimension (int64).
func (s *Scope) OneHot(x *Tensor, numClasses int64) *Tensor {
	if !s.ok("one_hot", x) {
		return nil
	}
	var h *C.l2g_tensor
	err := check("one_hot", C.l2g_one_hot(s.ng(), x.h, C.int64_t(numClasses), &h))
	keep(x)
	return s.wrap(h, err)
}
