package nn

import (
	"fmt"

	"github.com/l2g/l2g/internal/torch"
)

// smallNet is the CPU backbone of the synthetic demo (SYNTH-RECIPE): seven
// 3×3 conv + ReLU layers, strides 2 at layers 1, 3 and 5 (output stride 8,
// like ResNet-38, so feature sizes agree) and dilation 2 at layers 6 and 7.
//
// The recipe's net had BatchNorm trained with batch statistics; the binding
// has only eval-mode BN and ResNet-38 never updates its BN, so this net has
// plain convolutions with a bias instead (Kaiming-normal init, zero bias),
// which trains from scratch at this depth. Names: conv1.weight … conv7.bias,
// under prefix.
type smallNet struct {
	convs [7]conv
	width [7]int64
}

func newSmallNet(st *Store, prefix string, widths [7]int64) (*smallNet, error) {
	stride := [7]int64{2, 1, 2, 1, 2, 1, 1}
	dil := [7]int64{1, 1, 1, 1, 1, 2, 2}
	n := &smallNet{width: widths}
	in := int64(3)
	for i, w := range widths {
		if w < 1 {
			return nil, fmt.Errorf("nn: small net: layer %d width %d", i+1, w)
		}
		n.convs[i] = newConv(st, fmt.Sprintf("%sconv%d", prefix, i+1), in, w, convCfg{
			kernel: 3, stride: stride[i], pad: dil[i], dil: dil[i],
			bias: true, group: GroupBackbone, init: KaimingInit,
		})
		in = w
	}
	return n, st.Err()
}

// forward returns the last layer's output and, as the PCM side features,
// the outputs of layers 5 and 6 — the first two stride-8 maps, the places
// ResNet-38's conv4 and conv5 occupy.
func (n *smallNet) forward(s *torch.Scope, x *torch.Tensor, _ bool) (feat, side1, side2 *torch.Tensor) {
	h := x
	for i, c := range n.convs {
		h = s.Relu(c.forward(s, h))
		switch i {
		case 4:
			side1 = h
		case 5:
			side2 = h
		}
	}
	return h, side1, side2
}

func (n *smallNet) channels() (feat, side1, side2 int64) {
	return n.width[6], n.width[4], n.width[5]
}
