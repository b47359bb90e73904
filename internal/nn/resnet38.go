package nn

import (
	"fmt"

	"github.com/l2g/l2g/internal/torch"
)

// ResNet-38 (Wu et al., model A1): a wide pre-activation ResNet with output
// stride 8, as models/resnet38_base.py of the reference builds it (spec §2).
// Parameter names are that module's state_dict keys.

// resBlock is the reference's ResBlock: t = ReLU(BN(x)); the shortcut is x,
// or a strided 1×1 projection of t when the shape changes; the main branch
// is conv3×3 (stride, first dilation) → BN → ReLU → conv3×3 (dilation).
type resBlock struct {
	bn2a, bn2b1     frozenBN
	conv2a, conv2b1 conv
	branch1         *conv // nil when in == out and stride 1
}

func newResBlock(st *Store, name string, in, mid, out, stride, firstDil, dil int64) *resBlock {
	g := GroupBackbone
	b := &resBlock{
		bn2a:    newFrozenBN(st, name+".bn_branch2a", in),
		conv2a:  newConv(st, name+".conv_branch2a", in, mid, convCfg{kernel: 3, stride: stride, pad: firstDil, dil: firstDil, group: g}),
		bn2b1:   newFrozenBN(st, name+".bn_branch2b1", mid),
		conv2b1: newConv(st, name+".conv_branch2b1", mid, out, convCfg{kernel: 3, pad: dil, dil: dil, group: g}),
	}
	if in != out || stride != 1 {
		c := newConv(st, name+".conv_branch1", in, out, convCfg{stride: stride, group: g})
		b.branch1 = &c
	}
	return b
}

// forward returns the block output and t = ReLU(BN(x)), the pre-activation
// the head taps as a side feature.
func (b *resBlock) forward(s *torch.Scope, x *torch.Tensor, _ bool) (y, t *torch.Tensor) {
	t = s.Relu(b.bn2a.forward(s, x))
	short := x
	if b.branch1 != nil {
		short = b.branch1.forward(s, t)
	}
	h := b.conv2a.forward(s, t)
	h = s.Relu(b.bn2b1.forward(s, h))
	h = b.conv2b1.forward(s, h)
	return s.Add(short, h), t
}

// resBlockBot is the reference's ResBlock_bot: a bottleneck (1×1 → out/4,
// 3×3 dilated → out/2, 1×1 → out) with Dropout2d before the last two convs
// and a projection shortcut on t = ReLU(BN(x)).
type resBlockBot struct {
	bn2a, bn2b1, bn2b2       frozenBN
	conv2a, conv2b1, conv2b2 conv
	branch1                  conv
	dropout                  float64
}

func newResBlockBot(st *Store, name string, in, out, dil int64, dropout float64) *resBlockBot {
	g := GroupBackbone
	return &resBlockBot{
		bn2a:    newFrozenBN(st, name+".bn_branch2a", in),
		conv2a:  newConv(st, name+".conv_branch2a", in, out/4, convCfg{group: g}),
		bn2b1:   newFrozenBN(st, name+".bn_branch2b1", out/4),
		conv2b1: newConv(st, name+".conv_branch2b1", out/4, out/2, convCfg{kernel: 3, pad: dil, dil: dil, group: g}),
		bn2b2:   newFrozenBN(st, name+".bn_branch2b2", out/2),
		conv2b2: newConv(st, name+".conv_branch2b2", out/2, out, convCfg{group: g}),
		branch1: newConv(st, name+".conv_branch1", in, out, convCfg{group: g}),
		dropout: dropout,
	}
}

func (b *resBlockBot) forward(s *torch.Scope, x *torch.Tensor, train bool) (y, t *torch.Tensor) {
	t = s.Relu(b.bn2a.forward(s, x))
	short := b.branch1.forward(s, t)
	h := b.conv2a.forward(s, t)
	h = s.Dropout2d(s.Relu(b.bn2b1.forward(s, h)), b.dropout, train)
	h = b.conv2b1.forward(s, h)
	h = s.Dropout2d(s.Relu(b.bn2b2.forward(s, h)), b.dropout, train)
	h = b.conv2b2.forward(s, h)
	return s.Add(short, h), t
}

type block interface {
	forward(s *torch.Scope, x *torch.Tensor, train bool) (y, t *torch.Tensor)
}

// resnet38 is the backbone; width is conv1a's channel count (64 in the
// reference), every other width scales with it.
type resnet38 struct {
	conv1a conv
	blocks []block
	b5, b6 int // indices of the blocks whose pre-activation is conv4 / conv5
	bn7    frozenBN
	width  int64
}

func newResNet38(st *Store, width int64) (*resnet38, error) {
	if width < 4 || width%4 != 0 {
		return nil, fmt.Errorf("nn: resnet38 width %d: want a positive multiple of 4", width)
	}
	w := width
	r := &resnet38{width: w}
	r.conv1a = newConv(st, "conv1a", 3, w, convCfg{kernel: 3, pad: 1, group: GroupBackbone})
	add := func(b block) { r.blocks = append(r.blocks, b) }
	add(newResBlock(st, "b2", w, 2*w, 2*w, 2, 1, 1))
	add(newResBlock(st, "b2_1", 2*w, 2*w, 2*w, 1, 1, 1))
	add(newResBlock(st, "b2_2", 2*w, 2*w, 2*w, 1, 1, 1))
	add(newResBlock(st, "b3", 2*w, 4*w, 4*w, 2, 1, 1))
	add(newResBlock(st, "b3_1", 4*w, 4*w, 4*w, 1, 1, 1))
	add(newResBlock(st, "b3_2", 4*w, 4*w, 4*w, 1, 1, 1))
	add(newResBlock(st, "b4", 4*w, 8*w, 8*w, 2, 1, 1))
	for i := 1; i <= 5; i++ {
		add(newResBlock(st, fmt.Sprintf("b4_%d", i), 8*w, 8*w, 8*w, 1, 1, 1))
	}
	r.b5 = len(r.blocks)
	add(newResBlock(st, "b5", 8*w, 8*w, 16*w, 1, 1, 2))
	add(newResBlock(st, "b5_1", 16*w, 8*w, 16*w, 1, 2, 2))
	add(newResBlock(st, "b5_2", 16*w, 8*w, 16*w, 1, 2, 2))
	r.b6 = len(r.blocks)
	add(newResBlockBot(st, "b6", 16*w, 32*w, 4, 0.3))
	add(newResBlockBot(st, "b7", 32*w, 64*w, 4, 0.5))
	r.bn7 = newFrozenBN(st, "bn7", 64*w)
	// The reference trains neither the stem nor the first stage (their BN
	// statistics are frozen anyway): resnet38.Net.not_training.
	for _, p := range []string{"conv1a.", "b2.", "b2_1.", "b2_2."} {
		st.Freeze(p)
	}
	return r, st.Err()
}

// forward returns conv6 = ReLU(BN7(b7 output)) and the side features conv4
// (b5's pre-activation) and conv5 (b6's).
func (r *resnet38) forward(s *torch.Scope, x *torch.Tensor, train bool) (feat, side1, side2 *torch.Tensor) {
	h := r.conv1a.forward(s, x)
	for i, b := range r.blocks {
		var t *torch.Tensor
		h, t = b.forward(s, h, train)
		switch i {
		case r.b5:
			side1 = t
		case r.b6:
			side2 = t
		}
	}
	feat = s.Relu(r.bn7.forward(s, h))
	return feat, side1, side2
}

// channels are conv6's, conv4's and conv5's channel counts.
func (r *resnet38) channels() (feat, side1, side2 int64) {
	return 64 * r.width, 8 * r.width, 16 * r.width
}

// ClassifierFeatureSize is the side of the feature map both classifier
// backbones produce for an input side l: three stride-2 3×3 convolutions
// with padding 1, i.e. ⌈⌈⌈l/2⌉/2⌉/2⌉ (448 → 56, 320 → 40).
func ClassifierFeatureSize(l int64) int64 {
	for range 3 {
		l = convOut(l, 3, 2, 1, 1)
	}
	return l
}
