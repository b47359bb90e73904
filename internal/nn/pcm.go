package nn

import (
	"fmt"

	"github.com/l2g/l2g/internal/torch"
)

// HeadConfig sizes the L2G classification head. For ResNet-38 it is
// Feat 4096, Side1 512 → Side1Out 64, Side2 1024 → Side2Out 128, Aff 192.
type HeadConfig struct {
	NumClasses int   // C foreground classes; fc8 has C+1 outputs (the last is background)
	Feat       int64 // channels of the backbone output (conv6)
	Side1      int64 // channels of the first side feature (conv4)
	Side2      int64 // channels of the second side feature (conv5)
	Side1Out   int64 // f8_3 output channels
	Side2Out   int64 // f8_4 output channels
	Aff        int64 // f9 output channels: the PCM embedding
}

// PCMHead is the head of resnet38.py:Net: fc8 (1×1, C+1, no bias), and the
// pixel correlation module that refines the CAM with an affinity built from
// the downsized image and two detached side features.
type PCMHead struct {
	fc8, f83, f84, f9 conv
	numClasses        int
}

// NewPCMHead registers fc8, f8_3, f8_4 and f9 in st, in GroupNew, with the
// reference's initialisation: Xavier-uniform (gain 1) for fc8, Kaiming-normal
// for f8_3 and f8_4, Xavier-uniform gain 4 for f9.
func NewPCMHead(st *Store, c HeadConfig) (*PCMHead, error) {
	if c.NumClasses < 1 || c.Feat < 1 || c.Side1 < 1 || c.Side2 < 1 || c.Side1Out < 1 || c.Side2Out < 1 || c.Aff < 1 {
		return nil, fmt.Errorf("nn: PCM head: every size must be positive: %+v", c)
	}
	g := GroupNew
	h := &PCMHead{
		fc8:        newConv(st, "fc8", c.Feat, int64(c.NumClasses)+1, convCfg{group: g, init: XavierInit(1)}),
		f83:        newConv(st, "f8_3", c.Side1, c.Side1Out, convCfg{group: g, init: KaimingInit}),
		f84:        newConv(st, "f8_4", c.Side2, c.Side2Out, convCfg{group: g, init: KaimingInit}),
		f9:         newConv(st, "f9", 3+c.Side1Out+c.Side2Out, c.Aff, convCfg{group: g, init: XavierInit(4)}),
		numClasses: c.NumClasses,
	}
	return h, st.Err()
}

// pcmEps is the reference's epsilon for both the L2 norm and the column sums.
const pcmEps = 1e-5

// Forward computes (featmap, logits) from the input image x (n, 3, H, W), the
// backbone output feat (n, Feat, h, w) and the side features (n, Side·, h, w):
//
//	x_s = bilinear(x → h×w, align_corners)      f = f9([x_s, f8_3(side1ᵀ), f8_4(side2ᵀ)])
//	F = f / (‖f‖ + 1e-5) per position          A = ReLU(FᵀF), A[:, j] /= Σ_i A[i, j] + 1e-5
//	featmap = fc8(feat) + fc8(feat·A)           logits = mean over h×w of featmap[:, :C]
//
// where ᵀ marks detached features. fc8 is linear without bias, so
// fc8(feat·A) = fc8(feat)·A: the product is taken on the C+1 CAM channels
// instead of the 4096 feature channels, the same value with ~200× fewer
// multiplications (and the same gradients).
func (p *PCMHead) Forward(s *torch.Scope, x, feat, side1, side2 *torch.Tensor) (featmap, logits *torch.Tensor) {
	cam := p.fc8.forward(s, feat)
	if s.Err() != nil {
		return nil, nil
	}
	sh := cam.Shape()
	n, k, h, w := sh[0], sh[1], sh[2], sh[3]
	xs := s.Interpolate(x, h, w, torch.Bilinear, true)
	f := s.Cat([]*torch.Tensor{xs, p.f83.forward(s, s.Detach(side1)), p.f84.forward(s, s.Detach(side2))}, 1)
	aff := PCMAffinity(s, p.f9.forward(s, f))
	att := s.Reshape(s.Bmm(s.Reshape(cam, n, k, h*w), aff), n, k, h, w)
	featmap = s.Add(cam, att)
	logits = s.Mean(s.Narrow(featmap, 1, 0, int64(p.numClasses)), []int64{2, 3}, false)
	return featmap, logits
}

// PCMAffinity is the PCM's column-normalised affinity (n, hw, hw) of an
// embedding f (n, c, h, w): positions are L2-normalised (norm + 1e-5),
// A = ReLU(FᵀF), and column j is divided by its sum + 1e-5, so that
// (X·A)[:, j] is a weighted average of X over the positions similar to j.
func PCMAffinity(s *torch.Scope, f *torch.Tensor) *torch.Tensor {
	if !f.Valid() {
		s.Fail(fmt.Errorf("nn: PCM affinity of a nil embedding"))
		return nil
	}
	sh := f.Shape()
	if len(sh) != 4 {
		s.Fail(fmt.Errorf("nn: PCM affinity: embedding shape %v, want (n, c, h, w)", sh))
		return nil
	}
	ff := s.Normalize(s.Reshape(f, sh[0], sh[1], sh[2]*sh[3]), 1, pcmEps)
	a := s.Relu(s.Bmm(s.Transpose(ff, 1, 2), ff))
	return s.Div(a, s.AddScalar(s.Sum(a, []int64{1}, true), pcmEps))
}
