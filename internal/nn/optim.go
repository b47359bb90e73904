package nn

import (
	"fmt"
	"sort"

	"github.com/l2g/l2g/internal/torch"
)

// GroupOpts is one optimizer group's multiplier on the base learning rate
// and its weight decay.
type GroupOpts struct {
	LRMult      float64 `yaml:"lr_mult" json:"lr_mult"`
	WeightDecay float64 `yaml:"weight_decay" json:"weight_decay"`
}

// SGD is torch.optim.SGD over one or more stores (the L2G local and global
// nets share one optimizer), with per-group learning rates. The whole step
// runs in one C call.
type SGD struct {
	params   []*torch.Tensor
	names    []string
	bufs     []*torch.Tensor
	mults    []float64
	wds      []float64
	lrs      []float64
	momentum float64
	nesterov bool
	scope    *torch.Scope
}

// NewSGD collects the trainable parameters of stores (names prefixed with
// the store's index when there are several: "0.fc8.weight") and zero
// momentum buffers. Every trainable parameter's group must be in groups.
func NewSGD(stores []*Store, groups map[string]GroupOpts, momentum float64, nesterov bool) (*SGD, error) {
	o := &SGD{momentum: momentum, nesterov: nesterov, scope: torch.NewNoGradScope()}
	for i, st := range stores {
		for _, e := range st.Trainable() {
			g, ok := groups[e.Group]
			if !ok {
				o.Close()
				return nil, fmt.Errorf("nn: parameter %s is in group %q, which has no optimizer settings", e.Name, e.Group)
			}
			name := e.Name
			if len(stores) > 1 {
				name = fmt.Sprintf("%d.%s", i, e.Name)
			}
			o.params = append(o.params, e.T)
			o.names = append(o.names, name)
			o.mults = append(o.mults, g.LRMult)
			o.wds = append(o.wds, g.WeightDecay)
			if momentum != 0 {
				o.bufs = append(o.bufs, o.scope.ZerosLike(e.T))
			}
		}
	}
	o.lrs = make([]float64, len(o.params))
	if err := o.scope.Err(); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// Step applies one update with learning rate baseLR × each group's multiplier.
func (o *SGD) Step(baseLR float64) error {
	for i, m := range o.mults {
		o.lrs[i] = baseLR * m
	}
	return torch.SGDStep(o.params, o.bufs, o.lrs, o.wds, o.momentum, o.nesterov)
}

// ZeroGrad drops every parameter's gradient.
func (o *SGD) ZeroGrad() error {
	for i, p := range o.params {
		if err := p.ZeroGrad(); err != nil {
			return fmt.Errorf("nn: zero_grad %s: %w", o.names[i], err)
		}
	}
	return nil
}

// NumParams is the number of optimized tensors.
func (o *SGD) NumParams() int { return len(o.params) }

// State returns the momentum buffers keyed "momentum.<param>", for
// checkpoints.
func (o *SGD) State() map[string]*torch.Tensor {
	m := make(map[string]*torch.Tensor, len(o.bufs))
	for i, b := range o.bufs {
		m["momentum."+o.names[i]] = b
	}
	return m
}

// LoadState restores buffers saved by State; every buffer must be present.
func (o *SGD) LoadState(host map[string]HostTensor, source string) error {
	var missing []string
	sc := torch.NewNoGradScope()
	defer sc.Close()
	for i, b := range o.bufs {
		k := "momentum." + o.names[i]
		h, ok := host[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		src := sc.FromBytes(h.DType, h.Data, h.Shape...)
		if err := sc.Err(); err != nil {
			return fmt.Errorf("nn: %s: optimizer state %s: %w", source, k, err)
		}
		if err := b.CopyFrom(src); err != nil {
			return fmt.Errorf("nn: %s: optimizer state %s: %w", source, k, err)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("nn: %s: optimizer state lacks %v", source, missing)
	}
	return nil
}

// Close frees the momentum buffers.
func (o *SGD) Close() { o.scope.Close() }
