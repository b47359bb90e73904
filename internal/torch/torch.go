// Package torch is l2g's binding to libtorch: a small C ABI (shim.h) and the
// Go API over it. Tensors live in a Scope (an arena freed at once, one per
// training step or image) or are owned by the caller and freed explicitly;
// a finalizer only catches leaks.
//
// Ops are methods on the Scope that owns their results. A failing op records
// the first error in the scope and returns nil; later ops on that scope do
// nothing, so model code reads straight and checks s.Err() once.
package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Error is an error raised inside libtorch (or the shim), carrying the
// operation name and libtorch's message without its C++ backtrace.
type Error struct {
	Op  string
	Msg string
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// IsOutOfMemory reports whether err is a libtorch allocation failure, the
// one torch error worth retrying (elsewhere, or later).
func IsOutOfMemory(err error) bool {
	var te *Error
	if !errors.As(err, &te) {
		return false
	}
	m := strings.ToLower(te.Msg)
	return strings.Contains(m, "out of memory") || strings.Contains(m, "failed to allocate") ||
		strings.Contains(m, "defaultcpuallocator: can't allocate")
}

// check converts a shim error string into an *Error and frees it.
func check(op string, p *C.char) error {
	if p == nil {
		return nil
	}
	msg := C.GoString(p)
	C.l2g_free_string(p)
	return &Error{Op: op, Msg: strings.TrimSpace(msg)}
}

// DType is a tensor element type.
type DType int

// The element types the binding supports.
const (
	Float32  DType = C.L2G_FLOAT32
	Float64  DType = C.L2G_FLOAT64
	Float16  DType = C.L2G_FLOAT16
	BFloat16 DType = C.L2G_BFLOAT16
	Int64    DType = C.L2G_INT64
	Uint8    DType = C.L2G_UINT8
	Bool     DType = C.L2G_BOOL
	Int32    DType = C.L2G_INT32
)

var dtypeNames = map[DType]string{
	Float32: "float32", Float64: "float64", Float16: "float16", BFloat16: "bfloat16",
	Int64: "int64", Uint8: "uint8", Bool: "bool", Int32: "int32",
}

func (d DType) String() string {
	if n, ok := dtypeNames[d]; ok {
		return n
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Size is the element size in bytes.
func (d DType) Size() int {
	switch d {
	case Float64, Int64:
		return 8
	case Float32, Int32:
		return 4
	case Float16, BFloat16:
		return 2
	case Uint8, Bool:
		return 1
	}
	return 0
}

// Device is where a tensor lives. The zero value is the CPU.
type Device struct {
	cuda  bool
	index int
}

// CPU is the host device.
func CPU() Device { return Device{} }

// CUDA is GPU i.
func CUDA(i int) Device { return Device{cuda: true, index: i} }

// IsCUDA reports whether d is a GPU.
func (d Device) IsCUDA() bool { return d.cuda }

// Index is the GPU index (0 for the CPU).
func (d Device) Index() int { return d.index }

func (d Device) String() string {
	if d.cuda {
		return fmt.Sprintf("cuda:%d", d.index)
	}
	return "cpu"
}

// ParseDevice reads "cpu", "cuda" or "cuda:N".
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "" || s == "cpu":
		return CPU(), nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		var i int
		if _, err := fmt.Sscanf(s, "cuda:%d", &i); err != nil || i < 0 {
			return Device{}, fmt.Errorf("bad device %q: want cpu, cuda or cuda:N", s)
		}
		return CUDA(i), nil
	}
	return Device{}, fmt.Errorf("bad device %q: want cpu, cuda or cuda:N", s)
}

func (d Device) c() (C.int, C.int) {
	if d.cuda {
		return C.L2G_CUDA, C.int(d.index)
	}
	return C.L2G_CPU, 0
}

// Version is the libtorch version the shim was built against.
func Version() (string, error) {
	var p *C.char
	if err := check("version", C.l2g_version(&p)); err != nil {
		return "", err
	}
	s := C.GoString(p)
	C.l2g_free_string(p)
	return s, nil
}

// ParallelInfo is libtorch's description of its thread pools (OpenMP, MKL).
func ParallelInfo() (string, error) {
	var p *C.char
	if err := check("parallel_info", C.l2g_parallel_info(&p)); err != nil {
		return "", err
	}
	s := C.GoString(p)
	C.l2g_free_string(p)
	return s, nil
}

// Allocator describes how the C heap that holds tensor memory is set up:
// "tuned" (freed tensors stay in the process heap: no page faults per
// step, and the heap keeps its peak size), "system" (glibc's defaults,
// chosen with L2G_MALLOC=system) or "unsupported" (not glibc).
func Allocator() string {
	switch C.l2g_malloc_mode() {
	case C.L2G_MALLOC_TUNED:
		return "tuned"
	case C.L2G_MALLOC_UNSUPPORTED:
		return "unsupported"
	default:
		return "system"
	}
}

// SetNumThreads sets libtorch's intra-op thread count. The shim stores it and
// re-applies it inside every call, since OpenMP counts threads per OS thread
// and goroutines move between OS threads.
func SetNumThreads(n int) error {
	return check("set_num_threads", C.l2g_set_num_threads(C.int(n)))
}

// NumThreads is the intra-op thread count in effect.
func NumThreads() (int, error) {
	var n C.int
	err := check("get_num_threads", C.l2g_get_num_threads(&n))
	return int(n), err
}

// CUDADeviceCount is the number of GPUs libtorch can use (0 with a CPU build).
func CUDADeviceCount() (int, error) {
	var n C.int
	err := check("cuda_device_count", C.l2g_cuda_device_count(&n))
	return int(n), err
}

// ManualSeed seeds libtorch's default generators (CPU and CUDA).
func ManualSeed(seed uint64) error {
	return check("manual_seed", C.l2g_manual_seed(C.uint64_t(seed)))
}

// RNGState returns the default CPU generator's state, for exact resume.
func RNGState() ([]byte, error) {
	var h *C.l2g_tensor
	if err := check("rng_get_state", C.l2g_rng_get_state(&h)); err != nil {
		return nil, err
	}
	t := &Tensor{h: h}
	defer t.Free()
	return t.Bytes()
}

// SetRNGState restores a state returned by RNGState.
func SetRNGState(state []byte) error {
	s := NewScope()
	defer s.Close()
	t := s.FromBytes(Uint8, state, int64(len(state)))
	if s.Err() != nil {
		return s.Err()
	}
	return check("rng_set_state", C.l2g_rng_set_state(t.h))
}

// BLAS names the BLAS library actually mapped into this process, as the
// dynamic loader resolved it (Debian picks it through alternatives), and
// whether it is netlib's slow reference implementation.
func BLAS() (path string, reference bool, err error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	seen := map[string]bool{}
	var libs []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		p := fields[len(fields)-1]
		base := p[strings.LastIndex(p, "/")+1:]
		if seen[p] {
			continue
		}
		if strings.Contains(base, "blas") || strings.Contains(base, "mkl_") {
			seen[p] = true
			libs = append(libs, p)
		}
	}
	if err := sc.Err(); err != nil {
		return "", false, err
	}
	if len(libs) == 0 {
		return "", false, errors.New("no BLAS library is mapped (libtorch may use MKL statically)")
	}
	for _, l := range libs {
		if strings.Contains(l, "openblas") || strings.Contains(l, "mkl") || strings.Contains(l, "blis") {
			return l, false, nil
		}
	}
	// libblas.so.3 from the netlib package lives in .../blas/; others in
	// their own directories (openblas-pthread/, atlas/).
	for _, l := range libs {
		if strings.Contains(l, "/blas/") {
			return l, true, nil
		}
	}
	return libs[0], false, nil
}
