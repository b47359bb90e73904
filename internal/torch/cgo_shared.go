//go:build l2g_sharedlib

package torch

// Link a prebuilt libl2gtorch.so (scripts/build-shim.sh) instead of compiling
// shim.cpp: the C ABI in shim.h is the only contract, so a binary built on a
// machine without a GPU runs against a shim built beside a CUDA PyTorch.

// #cgo LDFLAGS: -ll2gtorch
import "C"
