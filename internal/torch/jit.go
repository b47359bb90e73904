package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"runtime"
	"unsafe"
)

// Module is a loaded TorchScript module (torch.jit.save / trace output).
type Module struct {
	h    *C.l2g_module
	path string
}

// LoadModule loads a TorchScript file onto dev, in eval mode.
func LoadModule(path string, dev Device) (*Module, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	dt, di := dev.c()
	var h *C.l2g_module
	if err := check("jit_load "+path, C.l2g_jit_load(cp, dt, di, &h)); err != nil {
		return nil, err
	}
	return &Module{h: h, path: path}, nil
}

// Close frees the module.
func (m *Module) Close() {
	if m != nil && m.h != nil {
		C.l2g_jit_free(m.h)
		m.h = nil
	}
}

// Forward runs the module's forward without autograd and returns its tensor
// output (or the first tensor of a tuple/list output), owned by s.
func (s *Scope) Forward(m *Module, inputs ...*Tensor) *Tensor {
	if !s.ok("jit_forward", inputs...) {
		return nil
	}
	if m == nil || m.h == nil {
		s.Fail(errors.New("torch: forward of a closed module"))
		return nil
	}
	arr := (**C.l2g_tensor)(C.malloc(C.size_t(len(inputs)+1) * C.size_t(unsafe.Sizeof((*C.l2g_tensor)(nil)))))
	defer C.free(unsafe.Pointer(arr))
	copy(unsafe.Slice(arr, len(inputs)), handles(inputs))
	var h *C.l2g_tensor
	err := check("jit_forward "+m.path, C.l2g_jit_forward(m.h, arr, C.int(len(inputs)), &h))
	keep(inputs...)
	runtime.KeepAlive(m)
	return s.wrap(h, err)
}
