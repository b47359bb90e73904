//go:build !unix

package crf

import "time"

// processCPU is unavailable here; the cpu-ms/op metric reads 0.
func processCPU() time.Duration { return 0 }
