package bench_test

import (
	"testing"

	"github.com/l2g/l2g/internal/bench"
	"github.com/l2g/l2g/internal/torch"
)

// BenchmarkTrainStep: conv-BN-ReLU-conv training step on 8x3x224x224, the
// workload `l2g bench step` compares with Python torch.
func BenchmarkTrainStep(b *testing.B) {
	n, err := bench.NewNet(64, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	s := torch.NewNoGradScope()
	defer s.Close()
	x := s.Rand([]int64{8, 3, 224, 224}, torch.Opts{})
	if _, err := n.Step(x, 1e-3); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.Step(x, 1e-3); err != nil {
			b.Fatal(err)
		}
	}
}

func TestStepLearns(t *testing.T) {
	n, err := bench.NewNet(8, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	s := torch.NewNoGradScope()
	defer s.Close()
	x := s.Rand([]int64{2, 3, 16, 16}, torch.Opts{})
	first, err := n.Step(x, 1e-2)
	if err != nil {
		t.Fatal(err)
	}
	var last float64
	for i := 0; i < 30; i++ {
		if last, err = n.Step(x, 1e-2); err != nil {
			t.Fatal(err)
		}
	}
	if !(last < 0.5*first) {
		t.Fatalf("loss %v -> %v: not falling", first, last)
	}
}
