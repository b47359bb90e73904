package nn

import (
	"math"

	"github.com/l2g/l2g/internal/torch"
)

// Optimizer group names. The classifiers put every backbone convolution in
// GroupBackbone and the layers trained from scratch (fc8, f8_3, f8_4, f9) in
// GroupNew; DeepLab puts its ResNet convolutions in GroupBackbone and the
// ASPP weights and biases in their own groups.
const (
	GroupBackbone   = "backbone"
	GroupNew        = "new"
	GroupASPPWeight = "aspp_weight"
	GroupASPPBias   = "aspp_bias"
)

// ClassifierGroups is the reference's L2G optimizer layout (spec §4): backbone
// weights ×1, new layers ×10, the same weight decay for both.
func ClassifierGroups(weightDecay float64) map[string]GroupOpts {
	return map[string]GroupOpts{
		GroupBackbone: {LRMult: 1, WeightDecay: weightDecay},
		GroupNew:      {LRMult: 10, WeightDecay: weightDecay},
	}
}

// SegmenterGroups is deeplab-pytorch's layout (spec §8): backbone ×1, ASPP
// weights ×10, ASPP biases ×20 without weight decay.
func SegmenterGroups(weightDecay float64) map[string]GroupOpts {
	return map[string]GroupOpts{
		GroupBackbone:   {LRMult: 1, WeightDecay: weightDecay},
		GroupASPPWeight: {LRMult: 10, WeightDecay: weightDecay},
		GroupASPPBias:   {LRMult: 20, WeightDecay: 0},
	}
}

// Initialisers with torch.nn.init semantics, as Store.Param init functions.

// DefaultConvInit is PyTorch's default Conv2d weight init,
// kaiming_uniform_(a=√5), i.e. U(±1/√fan_in).
func DefaultConvInit(w *torch.Tensor) error {
	in, _, err := torch.Fans(w.Shape())
	if err != nil {
		return err
	}
	b := 1 / math.Sqrt(float64(in))
	return w.UniformInit(-b, b)
}

// XavierInit returns xavier_uniform_ with the gain.
func XavierInit(gain float64) func(*torch.Tensor) error {
	return func(w *torch.Tensor) error { return torch.XavierUniform(w, gain) }
}

// KaimingInit is kaiming_normal_ with its defaults (fan_in, ReLU gain).
func KaimingInit(w *torch.Tensor) error { return torch.KaimingNormal(w, false) }

// NormalInit returns normal_(0, std).
func NormalInit(std float64) func(*torch.Tensor) error {
	return func(w *torch.Tensor) error { return w.NormalInit(0, std) }
}

// convCfg configures a convolution; zero values mean kernel 1, stride 1,
// dilation 1, padding 0, no bias, DefaultConvInit, zero bias.
type convCfg struct {
	kernel, stride, pad, dil int64
	bias                     bool
	group, biasGroup         string
	init                     func(*torch.Tensor) error
}

// conv is a Conv2d's weight (out, in, k, k), optional bias and options.
type conv struct {
	w, b *torch.Tensor
	o    torch.Conv2dOpts
}

// newConv registers name+".weight" (and ".bias") in st.
func newConv(st *Store, name string, in, out int64, c convCfg) conv {
	k := max(c.kernel, 1)
	init := c.init
	if init == nil {
		init = DefaultConvInit
	}
	cv := conv{
		w: st.Param(name+".weight", []int64{out, in, k, k}, c.group, init),
		o: torch.Conv2dOpts{
			Stride:   torch.P(max(c.stride, 1)),
			Padding:  torch.P(c.pad),
			Dilation: torch.P(max(c.dil, 1)),
		},
	}
	if c.bias {
		g := c.biasGroup
		if g == "" {
			g = c.group
		}
		cv.b = st.Param(name+".bias", []int64{out}, g, nil)
	}
	return cv
}

func (c conv) forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	return s.Conv2d(x, c.w, c.b, c.o)
}

// bnEps is the BatchNorm2d epsilon of both reference models.
const bnEps = 1e-5

// frozenBN is a BatchNorm2d kept in eval mode with its affine parameters
// frozen, as both reference models train: all four tensors are buffers,
// saved under the state_dict names but never optimized. PyTorch's
// num_batches_tracked is not kept (it does not affect eval mode).
type frozenBN struct {
	w, b, mean, variance *torch.Tensor
}

func newFrozenBN(st *Store, name string, c int64) frozenBN {
	sh := []int64{c}
	return frozenBN{
		w:        st.Buffer(name+".weight", sh, 1),
		b:        st.Buffer(name+".bias", sh, 0),
		mean:     st.Buffer(name+".running_mean", sh, 0),
		variance: st.Buffer(name+".running_var", sh, 1),
	}
}

func (bn frozenBN) forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	return s.BatchNormEval(x, bn.w, bn.b, bn.mean, bn.variance, bnEps)
}

// convOut is a convolution's (or non-ceil pool's) output side.
func convOut(l, k, stride, pad, dil int64) int64 {
	return (l+2*pad-dil*(k-1)-1)/stride + 1
}
