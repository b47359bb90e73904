//go:build unix

package crf

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time of this process, reported next to
// wall time because the benchmark machine is shared.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
