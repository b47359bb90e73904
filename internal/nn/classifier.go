package nn

import (
	"fmt"

	"github.com/l2g/l2g/internal/torch"
)

// Classifier is an L2G classification network (the local and the global net
// are two of these): a stride-8 backbone with the PCM head.
type Classifier interface {
	// Forward maps images (n, 3, H, W) to the CAM featmap (n, C+1, h, w),
	// background last, and the image logits (n, C). train turns dropout on;
	// BatchNorm stays in eval mode either way.
	Forward(s *torch.Scope, x *torch.Tensor, train bool) (featmap, logits *torch.Tensor)
	// Store owns the parameters (names are the reference's state_dict keys).
	Store() *Store
	NumClasses() int
	// Stride is the backbone's output stride (8): h = ⌈H/8⌉.
	Stride() int
}

// Architecture names accepted by NewClassifier and NewSegmenter.
const (
	ArchResNet38           = "resnet38"
	ArchSmall              = "small"
	ArchDeepLabV2ResNet101 = "deeplabv2_resnet101"
)

// Option adjusts a network built by NewClassifier or NewSegmenter.
type Option func(*buildOptions)

type buildOptions struct {
	width       int64
	smallWidths [7]int64
	blocks      [4]int
	rates       []int64
}

// WithWidth sets the base width of the ResNets (default 64: ResNet-38's
// conv1a and ResNet-101's stem; every other width scales with it, the PCM
// head's f8_3/f8_4/f9 included). Smaller widths keep the architecture and
// the parameter names for fast CPU tests.
func WithWidth(w int64) Option { return func(o *buildOptions) { o.width = w } }

// WithSmallWidths sets the seven layer widths of the "small" backbone
// (default 12, 24, 48, 48, 72, 72, 72, the SYNTH-RECIPE net).
func WithSmallWidths(w [7]int64) Option { return func(o *buildOptions) { o.smallWidths = w } }

// WithBlocks sets DeepLab's ResNet block counts for layer2..layer5
// (default 3, 4, 23, 3: ResNet-101).
func WithBlocks(layer2, layer3, layer4, layer5 int) Option {
	return func(o *buildOptions) { o.blocks = [4]int{layer2, layer3, layer4, layer5} }
}

// WithASPPRates sets the ASPP dilations (default 6, 12, 18, 24 for ResNet-101,
// 2, 4, 6, 8 for "small").
func WithASPPRates(r ...int64) Option {
	return func(o *buildOptions) { o.rates = append([]int64{}, r...) }
}

func collect(opts []Option) buildOptions {
	o := buildOptions{width: 64, smallWidths: [7]int64{12, 24, 48, 48, 72, 72, 72}, blocks: [4]int{3, 4, 23, 3}}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// backbone is what a classifier's head needs from its trunk.
type backbone interface {
	forward(s *torch.Scope, x *torch.Tensor, train bool) (feat, side1, side2 *torch.Tensor)
	channels() (feat, side1, side2 int64)
}

type classifier struct {
	st         *Store
	bb         backbone
	head       *PCMHead
	numClasses int
}

// NewClassifier builds arch ("resnet38" or "small") for numClasses foreground
// classes on dev, randomly initialised (load ImageNet or checkpoint weights
// into Store afterwards). Groups: backbone convolutions GroupBackbone,
// fc8/f8_3/f8_4/f9 GroupNew; ResNet-38's conv1a and b2* are frozen.
func NewClassifier(arch string, numClasses int, dev torch.Device, opts ...Option) (Classifier, error) {
	if numClasses < 1 {
		return nil, fmt.Errorf("nn: classifier %s: %d classes", arch, numClasses)
	}
	o := collect(opts)
	st := NewStore(dev)
	c := &classifier{st: st, numClasses: numClasses}
	hc := HeadConfig{NumClasses: numClasses}
	var err error
	switch arch {
	case ArchResNet38:
		var r *resnet38
		if r, err = newResNet38(st, o.width); err == nil {
			c.bb = r
		}
		hc.Side1Out, hc.Side2Out, hc.Aff = o.width, 2*o.width, 3*o.width
	case ArchSmall:
		var n *smallNet
		if n, err = newSmallNet(st, "", o.smallWidths); err == nil {
			c.bb = n
		}
		hc.Side1Out, hc.Side2Out, hc.Aff = 16, 32, 48
	default:
		err = fmt.Errorf("unknown classifier architecture %q (want %q or %q)", arch, ArchResNet38, ArchSmall)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("nn: build classifier %s: %w", arch, err)
	}
	hc.Feat, hc.Side1, hc.Side2 = c.bb.channels()
	if c.head, err = NewPCMHead(st, hc); err != nil {
		st.Close()
		return nil, fmt.Errorf("nn: build %s head: %w", arch, err)
	}
	return c, nil
}

func (c *classifier) Forward(s *torch.Scope, x *torch.Tensor, train bool) (featmap, logits *torch.Tensor) {
	feat, side1, side2 := c.bb.forward(s, x, train)
	return c.head.Forward(s, x, feat, side1, side2)
}

func (c *classifier) Store() *Store   { return c.st }
func (c *classifier) NumClasses() int { return c.numClasses }
func (c *classifier) Stride() int     { return 8 }
