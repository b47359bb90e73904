package cam

import (
	"fmt"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
)

// camEps is the reference's guard in cam / (max + 1e-8).
const camEps = 1e-8

// prepared is an image resized and normalized for every scale, ready for
// the network (built on worker goroutines).
type prepared struct {
	w, h   int
	scaled []scaledInput // one per Options.Scales entry
}

type scaledInput struct {
	w, h int
	chw  []float32 // (3, h, w), normalized
}

// prepare resizes img to every scale with PIL bicubic and Python-rounded
// sizes (spec §5) and normalizes it. Flips are made on the device.
func prepare(img *imaging.RGB, o Options) (*prepared, error) {
	if err := img.Validate(); err != nil {
		return nil, badinput.Wrap("", "image", err)
	}
	p := &prepared{w: img.W, h: img.H, scaled: make([]scaledInput, len(o.Scales))}
	for i, s := range o.Scales {
		w, h := augment.ScaledSize(img.W, img.H, s)
		if w < 1 || h < 1 {
			return nil, badinput.New("", fmt.Sprintf("scales[%d]", i), "scale %v gives a %dx%d input from a %dx%d image", s, w, h, img.W, img.H)
		}
		r, err := imaging.ResizeRGB(img, w, h, imaging.Bicubic)
		if err != nil {
			return nil, fmt.Errorf("scale %v: %w", s, err)
		}
		chw, err := imaging.NormalizeCHW(r, o.Norm.Mean, o.Norm.Std)
		if err != nil {
			return nil, fmt.Errorf("scale %v: %w", s, err)
		}
		p.scaled[i] = scaledInput{w: w, h: h, chw: chw}
	}
	return p, nil
}

// Infer runs multi-scale CAM inference (spec §5) on one image with net in
// eval mode and returns the normalized CAM (values in [0, 1], H·W row-major)
// of each featmap channel in classes; nil classes means every channel, the
// background (the last) included. It runs on the device of net's Store,
// with autograd off.
func Infer(net nn.Classifier, img *imaging.RGB, classes []int, o Options) ([][]float32, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	p, err := prepare(img, o)
	if err != nil {
		return nil, err
	}
	if classes == nil {
		classes = make([]int, net.NumClasses()+1)
		for k := range classes {
			classes[k] = k
		}
	}
	out, err := inferGroup(net, []*prepared{p}, [][]int{classes}, o)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// inferGroup runs images of one size together: per scale their passes
// (unflipped, then flipped) go through the network in batches of at most
// o.MaxPixels input pixels. classes[b] are image b's channels to return;
// an image with none costs no compute.
func inferGroup(net nn.Classifier, group []*prepared, classes [][]int, o Options) ([][][]float32, error) {
	out := make([][][]float32, len(group))
	var todo []int // images with classes to compute
	for b, p := range group {
		if p.w != group[0].w || p.h != group[0].h {
			return nil, fmt.Errorf("cam: image %d is %dx%d, image 0 %dx%d: a group needs one size", b, p.w, p.h, group[0].w, group[0].h)
		}
		if len(classes[b]) > 0 {
			todo = append(todo, b)
		} else {
			out[b] = [][]float32{}
		}
	}
	if len(todo) == 0 {
		return out, nil
	}
	dev := net.Store().Device()
	k := net.NumClasses() + 1
	gs := torch.NewNoGradScope()
	defer gs.Close()

	idx := make([]*torch.Tensor, len(group))
	for _, b := range todo {
		ids := make([]int64, len(classes[b]))
		for j, c := range classes[b] {
			if c < 0 || c >= k {
				return nil, fmt.Errorf("cam: class %d out of range 0..%d", c, k-1)
			}
			ids[j] = int64(c)
		}
		idx[b] = gs.To(gs.FromInt64(ids), torch.Opts{DType: torch.Int64, Device: dev})
	}
	H, W := int64(group[0].h), int64(group[0].w)
	acc := make([]*torch.Tensor, len(group))
	for si := range o.Scales {
		sums, err := forwardScale(gs, net, group, todo, si, idx, o)
		if err != nil {
			return nil, err
		}
		for _, b := range todo {
			up := gs.Interpolate(sums[b], H, W, torch.Bicubic, false)
			if acc[b] == nil {
				acc[b] = up
			} else {
				acc[b] = gs.Add(acc[b], up)
			}
		}
	}
	n := int(H * W)
	for _, b := range todo {
		m := gs.ClampMin(gs.DivScalar(acc[b], float64(o.passes())), 0)
		m = gs.Div(m, gs.AddScalar(gs.Amax(m, []int64{2, 3}, true), camEps))
		m = gs.To(m, torch.Opts{DType: torch.Float32, Device: torch.CPU()})
		if err := gs.Err(); err != nil {
			return nil, fmt.Errorf("cam: normalize: %w", err)
		}
		v, err := m.Float32s()
		if err != nil {
			return nil, fmt.Errorf("cam: copy out: %w", err)
		}
		planes := make([][]float32, len(classes[b]))
		for j := range planes {
			planes[j] = v[j*n : (j+1)*n : (j+1)*n]
		}
		out[b] = planes
	}
	return out, nil
}

// pass is one forward input: image b of a group, maybe flipped.
type pass struct {
	b    int
	flip bool
}

// forwardScale runs every pass of scale si and returns, in gs, per image
// the sum of its selected featmap channels over its passes, flipped passes
// flipped back: (1, P, h', w'). Each batch's activations live in their own
// scope, freed before the next batch.
func forwardScale(gs *torch.Scope, net nn.Classifier, group []*prepared, todo []int, si int, idx []*torch.Tensor, o Options) ([]*torch.Tensor, error) {
	dev := net.Store().Device()
	sc := group[todo[0]].scaled[si]
	var passes []pass
	for _, b := range todo {
		passes = append(passes, pass{b: b})
	}
	if o.Flip {
		for _, b := range todo {
			passes = append(passes, pass{b: b, flip: true})
		}
	}
	chunk := len(passes)
	if o.MaxPixels > 0 {
		chunk = max(1, min(chunk, o.MaxPixels/(sc.w*sc.h)))
	}
	sums := make([]*torch.Tensor, len(group))
	for start := 0; start < len(passes); start += chunk {
		batch := passes[start:min(start+chunk, len(passes))]
		if err := forwardBatch(gs, net, dev, group, si, batch, idx, sums); err != nil {
			return nil, fmt.Errorf("cam: scale %v (%dx%d): %w", o.Scales[si], sc.w, sc.h, err)
		}
	}
	return sums, nil
}

func forwardBatch(gs *torch.Scope, net nn.Classifier, dev torch.Device, group []*prepared, si int, batch []pass, idx, sums []*torch.Tensor) error {
	cs := torch.NewNoGradScope()
	defer cs.Close()
	sc := group[batch[0].b].scaled[si]
	h, w := int64(sc.h), int64(sc.w)
	uploaded := map[int]*torch.Tensor{}
	xs := make([]*torch.Tensor, len(batch))
	for j, p := range batch {
		x, ok := uploaded[p.b]
		if !ok {
			x = cs.FromFloat32(group[p.b].scaled[si].chw, 1, 3, h, w)
			if dev.IsCUDA() {
				x = cs.To(x, torch.Opts{DType: torch.Float32, Device: dev})
			}
			uploaded[p.b] = x
		}
		if p.flip {
			x = cs.Flip(x, 3)
		}
		xs[j] = x
	}
	x := xs[0]
	if len(xs) > 1 {
		x = cs.Cat(xs, 0)
	}
	fm, _ := net.Forward(cs, x, false)
	if err := cs.Err(); err != nil {
		return fmt.Errorf("forward of %d passes: %w", len(batch), err)
	}
	if sh := fm.Shape(); len(sh) != 4 || sh[0] != int64(len(batch)) || sh[1] != int64(net.NumClasses()+1) {
		return fmt.Errorf("featmap shape %v for %d inputs, want (%d, %d, h, w)", sh, len(batch), len(batch), net.NumClasses()+1)
	}
	for j, p := range batch {
		f := cs.IndexSelect(cs.Narrow(fm, 0, int64(j), 1), 1, idx[p.b])
		if p.flip {
			f = cs.Flip(f, 3)
		}
		if err := cs.Err(); err != nil {
			return fmt.Errorf("select classes: %w", err)
		}
		f = gs.Adopt(cs.Keep(f))
		if sums[p.b] == nil {
			sums[p.b] = f
		} else {
			sums[p.b] = gs.Add(sums[p.b], f)
		}
	}
	return gs.Err()
}
