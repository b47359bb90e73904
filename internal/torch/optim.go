package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// SGDStep applies one SGD update (PyTorch semantics, dampening 0) to every
// parameter in a single C call without autograd: d = g + wd·p;
// buf = m·buf + d; d = nesterov ? d + m·buf : buf; p -= lr·d. Parameters
// without a gradient are skipped, weight decay included, as torch.optim.SGD
// does. bufs are the momentum buffers (zeros initially, same shapes as the
// params); they may be nil when momentum is 0.
func SGDStep(params, bufs []*Tensor, lrs, wds []float64, momentum float64, nesterov bool) error {
	n := len(params)
	if len(lrs) != n || len(wds) != n || (momentum != 0 && len(bufs) != n) {
		return fmt.Errorf("torch: sgd step: %d params, %d bufs, %d lrs, %d wds", n, len(bufs), len(lrs), len(wds))
	}
	if n == 0 {
		return nil
	}
	for i, p := range params {
		if !p.Valid() || (momentum != 0 && !bufs[i].Valid()) {
			return fmt.Errorf("torch: sgd step: param %d or its buffer is nil or freed", i)
		}
	}
	ptrSize := C.size_t(unsafe.Sizeof((*C.l2g_tensor)(nil)))
	ph := (**C.l2g_tensor)(C.malloc(C.size_t(n) * ptrSize))
	defer C.free(unsafe.Pointer(ph))
	copy(unsafe.Slice(ph, n), handles(params))
	var bh **C.l2g_tensor
	if momentum != 0 {
		bh = (**C.l2g_tensor)(C.malloc(C.size_t(n) * ptrSize))
		defer C.free(unsafe.Pointer(bh))
		copy(unsafe.Slice(bh, n), handles(bufs))
	}
	err := check("sgd_step", C.l2g_sgd_step(ph, bh, C.int(n),
		(*C.double)(unsafe.Pointer(&lrs[0])), (*C.double)(unsafe.Pointer(&wds[0])),
		C.double(momentum), cbool(nesterov)))
	keep(params...)
	keep(bufs...)
	return err
}
