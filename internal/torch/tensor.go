package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Tensor is one libtorch tensor handle. It is owned either by the Scope that
// created it (freed when the scope closes) or, after Keep, by the caller, who
// calls Free. Handles share storage the way PyTorch tensors do.
type Tensor struct {
	h *C.l2g_tensor
}

// leaked counts handles freed by the finalizer: each one is a missing Free.
var leaked atomic.Int64

// LeakedTensors is how many tensors were freed by the garbage collector
// instead of by Free or a Scope (a leak in the caller's code).
func LeakedTensors() int64 { return leaked.Load() }

func newTensor(h *C.l2g_tensor) *Tensor {
	t := &Tensor{h: h}
	runtime.SetFinalizer(t, func(t *Tensor) {
		if t.h != nil {
			leaked.Add(1)
			slog.Debug("torch: finalizer freed a tensor that was never freed")
			C.l2g_tensor_free(t.h)
			t.h = nil
		}
	})
	return t
}

// Free releases the handle now. Freeing twice, or a nil tensor, is a no-op.
// A tensor still owned by a scope must not be freed directly; use Keep first.
func (t *Tensor) Free() {
	if t == nil || t.h == nil {
		return
	}
	C.l2g_tensor_free(t.h)
	t.h = nil
	runtime.SetFinalizer(t, nil)
}

// Valid reports whether t holds a live handle.
func (t *Tensor) Valid() bool { return t != nil && t.h != nil }

type info struct {
	shape        []int64
	dtype        DType
	device       Device
	requiresGrad bool
}

func (t *Tensor) info() (info, error) {
	if !t.Valid() {
		return info{}, errors.New("torch: use of a freed or nil tensor")
	}
	var (
		nd, dt, devT, devI, rg C.int
		shape                  [16]C.int64_t
	)
	err := check("info", C.l2g_tensor_info(t.h, &nd, &shape[0], 16, &dt, &devT, &devI, &rg))
	runtime.KeepAlive(t)
	if err != nil {
		return info{}, err
	}
	if nd > 16 {
		return info{}, fmt.Errorf("torch: tensor has %d dims, more than 16", nd)
	}
	in := info{shape: make([]int64, nd), dtype: DType(dt), requiresGrad: rg != 0}
	for i := range in.shape {
		in.shape[i] = int64(shape[i])
	}
	if devT == C.L2G_CUDA {
		in.device = CUDA(int(devI))
	}
	return in, nil
}

// Shape is the tensor's size per dimension (nil for a freed tensor).
func (t *Tensor) Shape() []int64 {
	in, err := t.info()
	if err != nil {
		return nil
	}
	return in.shape
}

// Dim is the number of dimensions.
func (t *Tensor) Dim() int { return len(t.Shape()) }

// Size is the size of dimension d (negative d counts from the end).
func (t *Tensor) Size(d int) int64 {
	s := t.Shape()
	if d < 0 {
		d += len(s)
	}
	if d < 0 || d >= len(s) {
		return -1
	}
	return s[d]
}

// Numel is the number of elements.
func (t *Tensor) Numel() int64 { return numel(t.Shape()) }

func numel(shape []int64) int64 {
	n := int64(1)
	for _, s := range shape {
		n *= s
	}
	return n
}

// DType is the element type.
func (t *Tensor) DType() DType { in, _ := t.info(); return in.dtype }

// Device is where the tensor lives.
func (t *Tensor) Device() Device { in, _ := t.info(); return in.device }

// RequiresGrad reports whether autograd tracks t.
func (t *Tensor) RequiresGrad() bool { in, _ := t.info(); return in.requiresGrad }

func (t *Tensor) String() string {
	in, err := t.info()
	if err != nil {
		return "Tensor(freed)"
	}
	return fmt.Sprintf("Tensor(%v, %v, %v)", in.shape, in.dtype, in.device)
}

// Bytes copies the tensor's elements (moved to the CPU, contiguous) into a
// new byte slice in native (little-endian) order.
func (t *Tensor) Bytes() ([]byte, error) {
	in, err := t.info()
	if err != nil {
		return nil, err
	}
	n := int(numel(in.shape)) * in.dtype.Size()
	buf := make([]byte, n)
	if n == 0 {
		return buf, nil
	}
	err = check("copy_out", C.l2g_tensor_copy_out(t.h, unsafe.Pointer(&buf[0]), C.size_t(n)))
	runtime.KeepAlive(t)
	return buf, err
}

func copyOut[E any](t *Tensor, want DType) ([]E, error) {
	in, err := t.info()
	if err != nil {
		return nil, err
	}
	if in.dtype != want {
		return nil, fmt.Errorf("torch: tensor is %v, not %v", in.dtype, want)
	}
	out := make([]E, numel(in.shape))
	if len(out) == 0 {
		return out, nil
	}
	var zero E
	err = check("copy_out", C.l2g_tensor_copy_out(t.h, unsafe.Pointer(&out[0]),
		C.size_t(len(out)*int(unsafe.Sizeof(zero)))))
	runtime.KeepAlive(t)
	return out, err
}

// Float32s copies a float32 tensor out.
func (t *Tensor) Float32s() ([]float32, error) { return copyOut[float32](t, Float32) }

// Float64s copies a float64 tensor out.
func (t *Tensor) Float64s() ([]float64, error) { return copyOut[float64](t, Float64) }

// Int64s copies an int64 tensor out.
func (t *Tensor) Int64s() ([]int64, error) { return copyOut[int64](t, Int64) }

// Uint8s copies a uint8 tensor out.
func (t *Tensor) Uint8s() ([]uint8, error) { return copyOut[uint8](t, Uint8) }

// Bools copies a bool tensor out.
func (t *Tensor) Bools() ([]bool, error) { return copyOut[bool](t, Bool) }

// Item is the value of a one-element tensor as float64.
func (t *Tensor) Item() (float64, error) {
	if !t.Valid() {
		return math.NaN(), errors.New("torch: item of a freed or nil tensor")
	}
	var v C.double
	err := check("item", C.l2g_tensor_item(t.h, &v))
	runtime.KeepAlive(t)
	return float64(v), err
}

// SetRequiresGrad turns autograd tracking on or off for a leaf tensor.
func (t *Tensor) SetRequiresGrad(b bool) error {
	if !t.Valid() {
		return errors.New("torch: requires_grad on a freed or nil tensor")
	}
	var v C.int
	if b {
		v = 1
	}
	err := check("requires_grad_", C.l2g_tensor_set_requires_grad(t.h, v))
	runtime.KeepAlive(t)
	return err
}

// Backward runs autograd from the scalar t.
func (t *Tensor) Backward() error {
	if !t.Valid() {
		return errors.New("torch: backward of a freed or nil tensor")
	}
	err := check("backward", C.l2g_tensor_backward(t.h, nil))
	runtime.KeepAlive(t)
	return err
}

// ZeroGrad drops t's accumulated gradient (PyTorch's set_to_none).
func (t *Tensor) ZeroGrad() error {
	if !t.Valid() {
		return errors.New("torch: zero_grad of a freed or nil tensor")
	}
	err := check("zero_grad", C.l2g_tensor_zero_grad(t.h))
	runtime.KeepAlive(t)
	return err
}

// CopyFrom copies src's values into t in place, without autograd
// (broadcasting, converting dtype and device as needed).
func (t *Tensor) CopyFrom(src *Tensor) error {
	if !t.Valid() || !src.Valid() {
		return errors.New("torch: copy_ with a freed or nil tensor")
	}
	err := check("copy_", C.l2g_tensor_copy_(t.h, src.h))
	runtime.KeepAlive(t)
	runtime.KeepAlive(src)
	return err
}

func (t *Tensor) init(op string, kind C.int, a, b float64) error {
	if !t.Valid() {
		return fmt.Errorf("torch: %s of a freed or nil tensor", op)
	}
	err := check(op, C.l2g_tensor_init_(t.h, kind, C.double(a), C.double(b)))
	runtime.KeepAlive(t)
	return err
}

// UniformInit fills t with U[lo, hi) from libtorch's generator.
func (t *Tensor) UniformInit(lo, hi float64) error {
	return t.init("uniform_", C.L2G_INIT_UNIFORM, lo, hi)
}

// NormalInit fills t with N(mean, std²).
func (t *Tensor) NormalInit(mean, std float64) error {
	return t.init("normal_", C.L2G_INIT_NORMAL, mean, std)
}

// Fill sets every element to v.
func (t *Tensor) Fill(v float64) error { return t.init("fill_", C.L2G_INIT_CONSTANT, v, 0) }

// Scope is an arena of tensors: every tensor an op on the scope returns
// belongs to it and is freed by Close. One scope per training step or image
// keeps libtorch memory (invisible to Go's GC) bounded.
//
// The first failing op's error sticks: later ops return nil without calling
// libtorch, and Err reports it.
type Scope struct {
	mu     sync.Mutex
	owned  []*Tensor
	err    error
	noGrad bool
	closed bool
}

// NewScope returns a scope whose ops record autograd graphs as usual.
func NewScope() *Scope { return &Scope{} }

// NewNoGradScope returns a scope whose ops run with autograd off (inference,
// target construction). The switch happens inside each C call, never as
// thread state.
func NewNoGradScope() *Scope { return &Scope{noGrad: true} }

// Err is the first error an op on this scope hit, or nil.
func (s *Scope) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Fail records err as the scope's error (if it has none yet), so that code
// outside the binding can stop a chain of ops the same way.
func (s *Scope) Fail(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// Close frees every tensor the scope still owns. Safe to call twice.
func (s *Scope) Close() {
	s.mu.Lock()
	owned := s.owned
	s.owned = nil
	s.closed = true
	s.mu.Unlock()
	for _, t := range owned {
		t.Free()
	}
}

// Len is the number of tensors the scope owns (for tests of lifetimes).
func (s *Scope) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.owned)
}

// Keep takes t out of the scope: the caller now owns it (Free, or hand it to
// another scope with Adopt). It returns t for chaining.
func (s *Scope) Keep(t *Tensor) *Tensor {
	if t == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.owned) - 1; i >= 0; i-- {
		if s.owned[i] == t {
			s.owned[i] = s.owned[len(s.owned)-1]
			s.owned = s.owned[:len(s.owned)-1]
			break
		}
	}
	return t
}

// Adopt makes s the owner of a caller-owned tensor.
func (s *Scope) Adopt(t *Tensor) *Tensor {
	if t == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		t.Free()
		return nil
	}
	s.owned = append(s.owned, t)
	return t
}

func (s *Scope) ng() C.int {
	if s.noGrad {
		return 1
	}
	return 0
}

// ok reports whether an op may run: no earlier error and live operands.
func (s *Scope) ok(op string, ts ...*Tensor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	if s.closed {
		s.err = &Error{Op: op, Msg: "scope is closed"}
		return false
	}
	for i, t := range ts {
		if !t.Valid() {
			s.err = &Error{Op: op, Msg: fmt.Sprintf("operand %d is a nil or freed tensor", i)}
			return false
		}
	}
	return true
}

// wrap adopts a new handle or records the error.
func (s *Scope) wrap(h *C.l2g_tensor, err error) *Tensor {
	if err != nil {
		if h != nil {
			C.l2g_tensor_free(h)
		}
		s.Fail(err)
		return nil
	}
	if h == nil {
		return nil
	}
	return s.Adopt(newTensor(h))
}
