//go:build l2g_libtorch && !l2g_sharedlib

package torch

// A libtorch tree chosen at build time: include and link flags come from
// CGO_CXXFLAGS and CGO_LDFLAGS (see the Makefile's LIBTORCH handling).

// #cgo CXXFLAGS: -std=c++20 -w
import "C"
