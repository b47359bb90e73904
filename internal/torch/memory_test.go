package torch_test

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/l2g/l2g/internal/torch"
)

// tinyNet is conv3x3 → ReLU → conv1x1 → global mean, trained to a target.
type tinyNet struct {
	owner  *torch.Scope
	params []*torch.Tensor
	bufs   []*torch.Tensor
}

func newTinyNet(t testing.TB) *tinyNet {
	s := torch.NewScope()
	n := &tinyNet{owner: s}
	w1 := s.Zeros([]int64{8, 3, 3, 3}, torch.Opts{})
	w2 := s.Zeros([]int64{2, 8, 1, 1}, torch.Opts{})
	if err := torch.XavierUniform(w1, 1); err != nil {
		t.Fatal(err)
	}
	if err := torch.XavierUniform(w2, 1); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*torch.Tensor{w1, w2} {
		w.SetRequiresGrad(true)
		n.params = append(n.params, w)
		n.bufs = append(n.bufs, s.ZerosLike(w))
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *tinyNet) step(t testing.TB, x, y *torch.Tensor) float64 {
	s := torch.NewScope()
	defer s.Close()
	h := s.Relu(s.Conv2d(x, n.params[0], nil, torch.Conv2dOpts{Padding: torch.P(1)}))
	out := s.Mean(s.Conv2d(h, n.params[1], nil, torch.Conv2dOpts{}), []int64{2, 3}, false)
	loss := s.MultilabelSoftMargin(out, y)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	for _, p := range n.params {
		p.ZeroGrad()
	}
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	if err := torch.SGDStep(n.params, n.bufs, []float64{0.1, 0.1}, []float64{1e-4, 1e-4}, 0.9, true); err != nil {
		t.Fatal(err)
	}
	v, err := loss.Item()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func rssKB(t testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
			return v
		}
	}
	t.Fatal("VmRSS not found")
	return 0
}

// A 1,000-step training loop holds RSS steady: every temporary lives in the
// step's scope, so libtorch memory (invisible to the GC) does not grow.
func TestTrainingLoopHoldsRSS(t *testing.T) {
	n := newTinyNet(t)
	defer n.owner.Close()
	s := torch.NewNoGradScope()
	defer s.Close()
	x := s.Rand([]int64{4, 3, 24, 24}, torch.Opts{})
	y := s.FromFloat32([]float32{1, 0, 1, 0, 1, 0, 1, 0}, 4, 2)
	leaks := torch.LeakedTensors()
	for i := 0; i < 100; i++ {
		n.step(t, x, y)
	}
	runtime.GC()
	base := rssKB(t)
	var last float64
	for i := 0; i < 1000; i++ {
		last = n.step(t, x, y)
	}
	runtime.GC()
	grown := rssKB(t) - base
	// One step's tensors are ~50 KB; a leak of a single activation per step
	// would add ≥ 18 MB over 1,000 steps.
	if grown > 8*1024 {
		t.Fatalf("RSS grew by %d KB over 1000 steps", grown)
	}
	if torch.LeakedTensors() != leaks {
		t.Fatalf("%d tensors reached the finalizer", torch.LeakedTensors()-leaks)
	}
	if !(last < 0.3) {
		t.Fatalf("final loss %v: the loop did not train", last)
	}
}

// Eight goroutines train independent nets at once; each must learn and no
// call may fail (thread counts and grad mode are per call, not per thread).
func TestConcurrentTraining(t *testing.T) {
	if err := torch.SetNumThreads(1); err != nil {
		t.Fatal(err)
	}
	defer torch.SetNumThreads(runtime.NumCPU())
	var wg sync.WaitGroup
	losses := make([][2]float64, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			n := newTinyNet(t)
			defer n.owner.Close()
			s := torch.NewNoGradScope()
			defer s.Close()
			x := s.Rand([]int64{2, 3, 12, 12}, torch.Opts{})
			y := s.FromFloat32([]float32{1, 0, 1, 0}, 2, 2)
			losses[g][0] = n.step(t, x, y)
			for i := 0; i < 60; i++ {
				losses[g][1] = n.step(t, x, y)
			}
			// A no-grad scope's result carries no graph even while other
			// goroutines record graphs.
			if s.Relu(n.params[0]).RequiresGrad() {
				t.Errorf("goroutine %d: no-grad op recorded a graph", g)
			}
		}(g)
	}
	wg.Wait()
	for g, l := range losses {
		if !(l[1] < 0.5*l[0]) {
			t.Fatalf("goroutine %d: loss %v -> %v", g, l[0], l[1])
		}
	}
	if n, _ := torch.NumThreads(); n != 1 {
		t.Fatalf("thread count %d, want 1", n)
	}
}

func TestRuntimeInfo(t *testing.T) {
	v, err := torch.Version()
	if err != nil || v == "" {
		t.Fatalf("version %q %v", v, err)
	}
	if n, err := torch.CUDADeviceCount(); err != nil || n < 0 {
		t.Fatalf("cuda devices %d %v", n, err)
	}
	if err := torch.SetNumThreads(0); err == nil {
		t.Fatal("0 threads accepted")
	}
}
