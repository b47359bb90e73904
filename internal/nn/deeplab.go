package nn

import (
	"fmt"
	"math"

	"github.com/l2g/l2g/internal/torch"
)

// DeepLab-v2 with multi-scale inputs, as deeplab-pytorch (kazuto1011)
// builds DeepLabV2_ResNet101_MSC (spec §8): libs/models/resnet.py,
// deeplabv2.py and msc.py. Parameter names are that model's state_dict keys
// (base.layer1.conv1.conv.weight, base.layer2.block1.reduce.bn.running_mean,
// base.aspp.c0.bias, …).

// Segmenter is a semantic segmentation network.
type Segmenter interface {
	// Forward maps images (n, 3, H, W) to logits. Training returns
	// [l_1.0, l_0.5, l_0.75, l_max] (each scale's own size; l_max at the 1.0
	// size); eval returns [l_max]. BatchNorm stays in eval mode either way.
	Forward(s *torch.Scope, x *torch.Tensor, train bool) []*torch.Tensor
	Store() *Store
	NumClasses() int
}

// convBN is deeplab-pytorch's _ConvBnReLU without its ReLU (applied by the
// caller where the reference has one): name.conv.weight and name.bn.*.
type convBN struct {
	c  conv
	bn frozenBN
}

func newConvBN(st *Store, name string, in, out, k, stride, pad, dil int64) convBN {
	return convBN{
		c:  newConv(st, name+".conv", in, out, convCfg{kernel: k, stride: stride, pad: pad, dil: dil, group: GroupBackbone}),
		bn: newFrozenBN(st, name+".bn", out),
	}
}

func (c convBN) forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	return c.bn.forward(s, c.c.forward(s, x))
}

// bottleneck is the Caffe-style (MSRA) bottleneck: the stride sits on the
// first 1×1 convolution; the first block of each layer has a projection.
type bottleneck struct {
	reduce, conv3x3, increase convBN
	shortcut                  *convBN
}

func newBottleneck(st *Store, name string, in, out, stride, dil int64, downsample bool) *bottleneck {
	mid := out / 4
	b := &bottleneck{
		reduce:   newConvBN(st, name+".reduce", in, mid, 1, stride, 0, 1),
		conv3x3:  newConvBN(st, name+".conv3x3", mid, mid, 3, 1, dil, dil),
		increase: newConvBN(st, name+".increase", mid, out, 1, 1, 0, 1),
	}
	if downsample {
		sc := newConvBN(st, name+".shortcut", in, out, 1, stride, 0, 1)
		b.shortcut = &sc
	}
	return b
}

func (b *bottleneck) forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	h := s.Relu(b.reduce.forward(s, x))
	h = s.Relu(b.conv3x3.forward(s, h))
	h = b.increase.forward(s, h)
	short := x
	if b.shortcut != nil {
		short = b.shortcut.forward(s, x)
	}
	return s.Relu(s.Add(h, short))
}

// aspp sums dilated 3×3 convolutions with bias, initialised N(0, 0.01) / 0.
type aspp struct{ cs []conv }

func newASPP(st *Store, prefix string, in, numClasses int64, rates []int64) (*aspp, error) {
	if len(rates) == 0 {
		return nil, fmt.Errorf("nn: ASPP needs at least one rate")
	}
	a := &aspp{}
	for i, r := range rates {
		if r < 1 {
			return nil, fmt.Errorf("nn: ASPP rate %d", r)
		}
		a.cs = append(a.cs, newConv(st, fmt.Sprintf("%saspp.c%d", prefix, i), in, numClasses, convCfg{
			kernel: 3, pad: r, dil: r, bias: true,
			group: GroupASPPWeight, biasGroup: GroupASPPBias, init: NormalInit(0.01),
		}))
	}
	return a, st.Err()
}

func (a *aspp) forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	var sum *torch.Tensor
	for i, c := range a.cs {
		y := c.forward(s, x)
		if i == 0 {
			sum = y
		} else {
			sum = s.Add(sum, y)
		}
	}
	return sum
}

// deepLabV2 is DeepLabV2 (the MSC "base"): the dilated ResNet and ASPP.
type deepLabV2 struct {
	stem   convBN
	layers [4][]*bottleneck
	head   *aspp
}

func newDeepLabV2(st *Store, numClasses int64, width int64, blocks [4]int, rates []int64) (*deepLabV2, error) {
	if width < 4 || width%4 != 0 {
		return nil, fmt.Errorf("nn: ResNet width %d: want a positive multiple of 4", width)
	}
	d := &deepLabV2{stem: newConvBN(st, "base.layer1.conv1", 3, width, 7, 2, 3, 1)}
	// layer2..5: output channels 4w, 8w, 16w, 32w; strides 1, 2, 1, 1;
	// dilations 1, 1, 2, 4 (output stride 8).
	in := width
	stride := [4]int64{1, 2, 1, 1}
	dil := [4]int64{1, 1, 2, 4}
	for l := range 4 {
		if blocks[l] < 1 {
			return nil, fmt.Errorf("nn: layer%d has %d blocks", l+2, blocks[l])
		}
		out := width * 4 << l
		for i := range blocks[l] {
			name := fmt.Sprintf("base.layer%d.block%d", l+2, i+1)
			bin, bs := out, int64(1)
			if i == 0 {
				bin, bs = in, stride[l]
			}
			d.layers[l] = append(d.layers[l], newBottleneck(st, name, bin, out, bs, dil[l], i == 0))
		}
		in = out
	}
	var err error
	if d.head, err = newASPP(st, "base.", in, numClasses, rates); err != nil {
		return nil, err
	}
	return d, st.Err()
}

func (d *deepLabV2) forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	h := s.Relu(d.stem.forward(s, x))
	h = s.MaxPool2d(h, torch.PoolOpts{Kernel: torch.P(3), Stride: torch.P(2), Padding: torch.P(1), CeilMode: true})
	for _, layer := range d.layers {
		for _, b := range layer {
			h = b.forward(s, h)
		}
	}
	return d.head.forward(s, h)
}

// smallSeg is the CPU option: the small classifier backbone (under "base.")
// with an ASPP head.
type smallSeg struct {
	net  *smallNet
	head *aspp
}

func (m *smallSeg) forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	feat, _, _ := m.net.forward(s, x, false)
	return m.head.forward(s, feat)
}

type segBase interface {
	forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor
}

// msc runs the base at scales 1, 0.5 and 0.75 and takes the pixel-wise max.
type msc struct {
	st         *Store
	base       segBase
	numClasses int
}

// NewSegmenter builds arch ("deeplabv2_resnet101" or "small") with MSC for
// numClasses classes (background included) on dev, randomly initialised.
// Groups: backbone convolutions GroupBackbone, ASPP weights GroupASPPWeight,
// ASPP biases GroupASPPBias; every BatchNorm is frozen (buffers).
// WithWidth, WithBlocks and WithASPPRates shrink the ResNet for CPU tests.
func NewSegmenter(arch string, numClasses int, dev torch.Device, opts ...Option) (Segmenter, error) {
	if numClasses < 1 {
		return nil, fmt.Errorf("nn: segmenter %s: %d classes", arch, numClasses)
	}
	o := collect(opts)
	st := NewStore(dev)
	m := &msc{st: st, numClasses: numClasses}
	var err error
	switch arch {
	case ArchDeepLabV2ResNet101:
		rates := o.rates
		if rates == nil {
			rates = []int64{6, 12, 18, 24}
		}
		var d *deepLabV2
		if d, err = newDeepLabV2(st, int64(numClasses), o.width, o.blocks, rates); err == nil {
			m.base = d
		}
	case ArchSmall:
		// A 96 px image gives a 12-cell map; rates scaled down from 6..24 so
		// the taps stay inside it.
		rates := o.rates
		if rates == nil {
			rates = []int64{2, 4, 6, 8}
		}
		var n *smallNet
		if n, err = newSmallNet(st, "base.", o.smallWidths); err == nil {
			var a *aspp
			if a, err = newASPP(st, "base.", n.width[6], int64(numClasses), rates); err == nil {
				m.base = &smallSeg{net: n, head: a}
			}
		}
	default:
		err = fmt.Errorf("unknown segmenter architecture %q (want %q or %q)", arch, ArchDeepLabV2ResNet101, ArchSmall)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("nn: build segmenter %s: %w", arch, err)
	}
	return m, nil
}

func (m *msc) Forward(s *torch.Scope, x *torch.Tensor, train bool) []*torch.Tensor {
	l1 := m.base.forward(s, x)
	if s.Err() != nil {
		return nil
	}
	h, w := l1.Size(2), l1.Size(3)
	outs := []*torch.Tensor{l1}
	all := []*torch.Tensor{l1}
	// The extra scales, in the order the reference lists their outputs.
	for _, p := range []float64{0.5, 0.75} {
		lp := m.base.forward(s, DownscaleBilinear(s, x, p))
		outs = append(outs, lp)
		all = append(all, s.Interpolate(lp, h, w, torch.Bilinear, false))
	}
	// torch.max over a stack: the gradient goes to the arg-max input only.
	lmax, _ := s.MaxDim(s.Stack(all, 0), 0, false)
	if s.Err() != nil {
		return nil
	}
	if train {
		return append(outs, lmax)
	}
	return []*torch.Tensor{lmax}
}

func (m *msc) Store() *Store   { return m.st }
func (m *msc) NumClasses() int { return m.numClasses }

// DownscaleBilinear is F.interpolate(x, scale_factor=scale, mode="bilinear",
// align_corners=False) with PyTorch ≥ 1.6 semantics (the L2G environment
// runs 1.7): the output side is ⌊L·scale⌋ and source coordinates are
// (i + 0.5)/scale − 0.5, not (i + 0.5)·L/out − 0.5 as with an explicit size
// (321 → 160 differs by 0.3%). It is computed as R_h · x · R_wᵀ with the
// two-tap interpolation matrices, which is exact and differentiable.
func DownscaleBilinear(s *torch.Scope, x *torch.Tensor, scale float64) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	if !x.Valid() {
		s.Fail(fmt.Errorf("nn: downscale of a nil tensor"))
		return nil
	}
	if !(scale > 0) {
		s.Fail(fmt.Errorf("nn: downscale by %v", scale))
		return nil
	}
	sh := x.Shape()
	if len(sh) != 4 {
		s.Fail(fmt.Errorf("nn: downscale: shape %v, want (n, c, h, w)", sh))
		return nil
	}
	o := torch.Opts{DType: x.DType(), Device: x.Device()}
	rh, oh := interpMatrix(sh[2], scale)
	rw, ow := interpMatrix(sh[3], scale)
	if oh < 1 || ow < 1 {
		s.Fail(fmt.Errorf("nn: downscale %v by %v leaves an empty image", sh, scale))
		return nil
	}
	mh := s.To(s.FromFloat32(rh, oh, sh[2]), o)
	mwT := s.To(s.FromFloat32(rw, ow, sh[3]), o)
	return s.Matmul(mh, s.Matmul(x, s.Transpose(mwT, 0, 1)))
}

// interpMatrix is the (out, in) bilinear matrix of upsample_bilinear2d with
// align_corners=False and an explicit scale factor.
func interpMatrix(in int64, scale float64) ([]float32, int64) {
	out := int64(math.Floor(float64(in) * scale))
	if out < 1 {
		return nil, out
	}
	m := make([]float32, out*in)
	for i := range out {
		src := max((float64(i)+0.5)/scale-0.5, 0)
		i0 := min(int64(src), in-1)
		i1 := min(i0+1, in-1)
		l := src - float64(i0)
		m[i*in+i0] += float32(1 - l)
		m[i*in+i1] += float32(l)
	}
	return m, out
}
