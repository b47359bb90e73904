// Package bench holds the binding's reference workload, a conv-BN-ReLU-conv
// training step, shared by `go test -bench` and `l2g bench` so that the Go
// figure and the Python one (scripts/bench_step.py) time the same math.
package bench

import (
	"fmt"
	"math"

	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
)

// Net is conv3x3(3→C) → BN(eval) → ReLU → conv3x3(C→C), trained with MSE
// against zeros and SGD (momentum 0.9, weight decay 5e-4).
type Net struct {
	Store          *nn.Store
	opt            *nn.SGD
	w1, w2, b1, b2 *torch.Tensor
	gamma, beta    *torch.Tensor
	mean, variance *torch.Tensor
}

// NewNet builds the net with C channels, seeded.
func NewNet(channels int64, seed uint64) (*Net, error) {
	if err := torch.ManualSeed(seed); err != nil {
		return nil, err
	}
	st := nn.NewStore(torch.CPU())
	n := &Net{Store: st}
	kaiming := func(t *torch.Tensor) error { return torch.KaimingNormal(t, false) }
	n.w1 = st.Param("conv1.weight", []int64{channels, 3, 3, 3}, "w", kaiming)
	n.b1 = st.Param("conv1.bias", []int64{channels}, "w", nil)
	n.w2 = st.Param("conv2.weight", []int64{channels, channels, 3, 3}, "w", kaiming)
	n.b2 = st.Param("conv2.bias", []int64{channels}, "w", nil)
	n.gamma = st.Buffer("bn.weight", []int64{channels}, 1)
	n.beta = st.Buffer("bn.bias", []int64{channels}, 0)
	n.mean = st.Buffer("bn.running_mean", []int64{channels}, 0)
	n.variance = st.Buffer("bn.running_var", []int64{channels}, 1)
	if err := st.Err(); err != nil {
		st.Close()
		return nil, err
	}
	opt, err := nn.NewSGD([]*nn.Store{st}, map[string]nn.GroupOpts{"w": {LRMult: 1, WeightDecay: 5e-4}}, 0.9, false)
	if err != nil {
		st.Close()
		return nil, err
	}
	n.opt = opt
	return n, nil
}

// Close frees the net.
func (n *Net) Close() {
	n.opt.Close()
	n.Store.Close()
}

// Step runs forward, backward and the SGD update on x and returns the loss.
// All temporaries live in one scope, freed before returning.
func (n *Net) Step(x *torch.Tensor, lr float64) (float64, error) {
	s := torch.NewScope()
	defer s.Close()
	h := s.Conv2d(x, n.w1, n.b1, torch.Conv2dOpts{Padding: torch.P(1)})
	h = s.Relu(s.BatchNormEval(h, n.gamma, n.beta, n.mean, n.variance, 1e-5))
	y := s.Conv2d(h, n.w2, n.b2, torch.Conv2dOpts{Padding: torch.P(1)})
	loss := s.MSELoss(y, s.ZerosLike(y), torch.ReduceMean)
	if err := s.Err(); err != nil {
		return math.NaN(), err
	}
	if err := n.opt.ZeroGrad(); err != nil {
		return math.NaN(), err
	}
	if err := loss.Backward(); err != nil {
		return math.NaN(), err
	}
	if err := n.opt.Step(lr); err != nil {
		return math.NaN(), err
	}
	v, err := loss.Item()
	if err != nil {
		return math.NaN(), err
	}
	if math.IsNaN(v) {
		return v, fmt.Errorf("bench: loss is NaN")
	}
	return v, nil
}
