//go:build !l2g_libtorch && !l2g_sharedlib

package torch

// Debian's libtorch-dev 1.13.1 (the default). Another libtorch: build with
// -tags l2g_libtorch and CGO_CXXFLAGS/CGO_LDFLAGS pointing at it (the
// Makefile does this from LIBTORCH=/path).

// #cgo CXXFLAGS: -std=c++20 -D_GLIBCXX_USE_CXX11_ABI=1 -I/usr/include/torch/csrc/api/include -w
// #cgo LDFLAGS: -ltorch -ltorch_cpu -lc10
import "C"
