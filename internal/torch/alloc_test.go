package torch_test

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/l2g/l2g/internal/torch"
)

// minorFaults is the process's minor page-fault count so far.
func minorFaults(t *testing.T) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// faultsPerAlloc allocates, fills and frees a 48 MiB tensor (over glibc's
// 32 MiB mmap ceiling) 10 times after 20 warm-up rounds and returns the
// minor page faults per round. A fill touches all 12,288 pages; a heap
// that keeps freed blocks stops faulting once it has grown (glibc's
// posix_memalign needs a few rounds of free blocks before they coalesce
// into one that fits).
func faultsPerAlloc(t *testing.T) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	round := func() {
		s := torch.NewNoGradScope()
		x := s.Full([]int64{12 << 20}, 1, torch.Opts{})
		if _, err := s.Sum(x, nil, false).Item(); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for i := 0; i < 20; i++ {
		round()
	}
	before := minorFaults(t)
	for i := 0; i < 10; i++ {
		round()
	}
	return float64(minorFaults(t)-before) / 10
}

// TestAllocatorKeepsTensorMemory: with the default tuning a freed 48 MiB
// tensor is reused without page faults; with L2G_MALLOC=system (checked in
// a child process, since the tuning runs before main) glibc mmaps it anew
// and every page faults again. The child prints its figure.
func TestAllocatorKeepsTensorMemory(t *testing.T) {
	if os.Getenv("L2G_ALLOC_CHILD") == "1" {
		if got := torch.Allocator(); got != "system" {
			t.Fatalf("L2G_MALLOC=system: Allocator() = %q", got)
		}
		t.Logf("FAULTS %.0f", faultsPerAlloc(t))
		return
	}
	if got := torch.Allocator(); got != "tuned" {
		t.Fatalf("Allocator() = %q, want tuned (glibc)", got)
	}
	tuned := faultsPerAlloc(t)
	if tuned > 1000 {
		t.Errorf("tuned allocator: %.0f page faults per 48 MiB round, want < 1000 (memory not reused)", tuned)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestAllocatorKeepsTensorMemory$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "L2G_ALLOC_CHILD=1", "L2G_MALLOC=system")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child with L2G_MALLOC=system: %v\n%s", err, out)
	}
	i := strings.Index(string(out), "FAULTS ")
	if i < 0 {
		t.Fatalf("child printed no figure:\n%s", out)
	}
	system, err := strconv.ParseFloat(strings.Fields(string(out)[i+7:])[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page faults per 48 MiB alloc+fill+free: tuned %.0f, glibc defaults %.0f", tuned, system)
	if system < 10000 {
		t.Errorf("glibc defaults: %.0f page faults per round, want ≥ 10000 (12,288 pages): the test no longer shows the difference", system)
	}
}
