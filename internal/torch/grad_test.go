package torch_test

import (
	"math"
	"math/rand"
	"testing"

	"github.com/l2g/l2g/internal/torch"
)

// fdCase is one differentiable op under test: f builds a scalar from the
// inputs (all float64 leaves).
type fdCase struct {
	name   string
	shapes [][]int64
	// positive restricts inputs to (0.5, 1.5) for ops like log/sqrt/div.
	positive bool
	f        func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor
}

// weightedSum turns any output into a scalar with fixed random weights, so
// every output element's gradient is checked, not only their sum.
func weightedSum(s *torch.Scope, y *torch.Tensor) *torch.Tensor {
	shape := y.Shape()
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	r := rand.New(rand.NewSource(int64(n)))
	w := make([]float64, n)
	for i := range w {
		w[i] = r.Float64()*2 - 1
	}
	wt := s.FromFloat64(w, shape...)
	return s.Sum(s.Mul(y, wt), nil, false)
}

func checkGrad(t *testing.T, c fdCase) {
	t.Helper()
	r := rand.New(rand.NewSource(42))
	vals := make([][]float64, len(c.shapes))
	for i, sh := range c.shapes {
		n := 1
		for _, d := range sh {
			n *= int(d)
		}
		vals[i] = make([]float64, n)
		for j := range vals[i] {
			if c.positive {
				vals[i][j] = 0.5 + r.Float64()
			} else {
				vals[i][j] = r.Float64()*2 - 1
			}
		}
	}
	eval := func(withGrad bool) (float64, [][]float64) {
		s := torch.NewScope()
		defer s.Close()
		in := make([]*torch.Tensor, len(vals))
		for i := range vals {
			in[i] = s.FromFloat64(vals[i], c.shapes[i]...)
			if withGrad {
				if err := in[i].SetRequiresGrad(true); err != nil {
					t.Fatal(err)
				}
			}
		}
		y := weightedSum(s, c.f(s, in))
		if err := s.Err(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		v, err := y.Item()
		if err != nil {
			t.Fatal(err)
		}
		if !withGrad {
			return v, nil
		}
		if err := y.Backward(); err != nil {
			t.Fatalf("%s: backward: %v", c.name, err)
		}
		grads := make([][]float64, len(in))
		for i, x := range in {
			g := s.Grad(x)
			if g == nil {
				grads[i] = make([]float64, len(vals[i]))
				continue
			}
			grads[i], err = g.Float64s()
			if err != nil {
				t.Fatal(err)
			}
		}
		return v, grads
	}
	_, analytic := eval(true)
	const h = 1e-6
	for i := range vals {
		for j := range vals[i] {
			orig := vals[i][j]
			vals[i][j] = orig + h
			fp, _ := eval(false)
			vals[i][j] = orig - h
			fm, _ := eval(false)
			vals[i][j] = orig
			num := (fp - fm) / (2 * h)
			if d := math.Abs(num - analytic[i][j]); d > 1e-5*math.Max(1, math.Abs(num)) {
				t.Fatalf("%s: d/d input%d[%d]: analytic %.8g, finite difference %.8g", c.name, i, j, analytic[i][j], num)
			}
		}
	}
}

// Each differentiable op the L2G, DeepLab and saliency stages use, checked
// against central finite differences in float64.
func TestGradientsFiniteDifferences(t *testing.T) {
	cases := []fdCase{
		{name: "conv2d stride2 pad1 bias", shapes: [][]int64{{1, 2, 5, 5}, {3, 2, 3, 3}, {3}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.Conv2d(in[0], in[1], in[2], torch.Conv2dOpts{Stride: torch.P(2), Padding: torch.P(1)})
			}},
		{name: "conv2d dilation2 no bias", shapes: [][]int64{{2, 2, 6, 6}, {2, 2, 3, 3}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.Conv2d(in[0], in[1], nil, torch.Conv2dOpts{Padding: torch.P(2), Dilation: torch.P(2)})
			}},
		{name: "batch_norm eval (input grad)", shapes: [][]int64{{2, 3, 2, 2}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				w := s.FromFloat64([]float64{1.5, -0.5, 2}, 3)
				b := s.FromFloat64([]float64{0.1, 0.2, 0.3}, 3)
				m := s.FromFloat64([]float64{0.2, -0.1, 0}, 3)
				v := s.FromFloat64([]float64{0.5, 2, 1}, 3)
				return s.BatchNormEval(in[0], w, b, m, v, 1e-5)
			}},
		{name: "relu", shapes: [][]int64{{7}}, f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor { return s.Relu(in[0]) }},
		{name: "sigmoid", shapes: [][]int64{{5}}, f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor { return s.Sigmoid(in[0]) }},
		{name: "exp log sqrt", shapes: [][]int64{{4}}, positive: true,
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.Add(s.Exp(in[0]), s.Mul(s.Log(in[0]), s.Sqrt(in[0])))
			}},
		{name: "broadcast add sub mul div", shapes: [][]int64{{2, 3}, {3}}, positive: true,
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.Div(s.Mul(s.Sub(in[0], in[1]), s.Add(in[0], in[1])), in[1])
			}},
		{name: "scalar ops", shapes: [][]int64{{4}}, positive: true,
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.PowScalar(s.RSubScalar(s.DivScalar(s.MulScalar(s.AddScalar(in[0], 0.3), 2), 3), 5), 1.5)
			}},
		{name: "clamp_min masked_fill where", shapes: [][]int64{{6}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				c := s.ClampMin(in[0], 0.1)
				m := s.LtScalar(in[0], -0.5)
				return s.Add(s.MaskedFill(c, m, 0), s.Where(m, in[0], s.MulScalar(in[0], 3)))
			}},
		{name: "bmm", shapes: [][]int64{{2, 3, 4}, {2, 4, 2}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor { return s.Bmm(in[0], in[1]) }},
		{name: "matmul", shapes: [][]int64{{3, 4}, {4, 2}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor { return s.Matmul(in[0], in[1]) }},
		{name: "softmax", shapes: [][]int64{{2, 4, 3}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor { return s.Softmax(in[0], 1) }},
		{name: "log_softmax", shapes: [][]int64{{2, 4}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor { return s.LogSoftmax(in[0], 1) }},
		{name: "sum mean keepdim", shapes: [][]int64{{2, 3, 4}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.Add(s.Sum(in[0], []int64{2}, true), s.Mean(in[0], []int64{1, 2}, true))
			}},
		{name: "max over dim (grad to argmax)", shapes: [][]int64{{3, 4}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor { v, _ := s.MaxDim(in[0], 1, false); return v }},
		{name: "amax over stack (MSC fusion)", shapes: [][]int64{{2, 3}, {2, 3}, {2, 3}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				v, _ := s.MaxDim(s.Stack(in, 0), 0, false)
				return v
			}},
		{name: "L2 normalize", shapes: [][]int64{{2, 3, 4}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor { return s.Normalize(in[0], 1, 1e-5) }},
		{name: "cat narrow permute reshape transpose", shapes: [][]int64{{2, 3}, {2, 2}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				c := s.Cat(in, 1)
				n := s.Narrow(c, 1, 1, 3)
				return s.Transpose(s.Reshape(s.Permute(n, 1, 0), 2, 3), 0, 1)
			}},
		{name: "expand repeat unsqueeze squeeze flip", shapes: [][]int64{{3, 1}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				e := s.Expand(in[0], 3, 4)
				r := s.Repeat(s.Unsqueeze(e, 0), 2, 1, 1)
				return s.Flip(s.Squeeze(s.Narrow(r, 0, 1, 1), 0), 1)
			}},
		{name: "index_select", shapes: [][]int64{{4, 3}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.IndexSelect(in[0], 0, s.FromInt64([]int64{3, 0, 3}, 3))
			}},
		{name: "pad", shapes: [][]int64{{1, 1, 2, 3}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.Pad(in[0], []int64{1, 2, 0, 1}, 0.5)
			}},
		{name: "max_pool2d 3x3 s2 p1 ceil", shapes: [][]int64{{1, 2, 6, 6}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.MaxPool2d(in[0], torch.PoolOpts{Kernel: torch.P(3), Stride: torch.P(2), Padding: torch.P(1), CeilMode: true})
			}},
		{name: "avg_pool2d and adaptive", shapes: [][]int64{{1, 2, 4, 4}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				a := s.AvgPool2d(in[0], torch.PoolOpts{Kernel: torch.P(2)})
				return s.Add(a, s.AdaptiveAvgPool2d(in[0], 2, 2))
			}},
		{name: "interpolate bilinear align_corners=False", shapes: [][]int64{{1, 2, 3, 4}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.Interpolate(in[0], 5, 7, torch.Bilinear, false)
			}},
		{name: "interpolate bilinear align_corners=True", shapes: [][]int64{{1, 1, 4, 3}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.Interpolate(in[0], 2, 5, torch.Bilinear, true)
			}},
		{name: "interpolate bicubic", shapes: [][]int64{{1, 1, 3, 3}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.Interpolate(in[0], 5, 4, torch.Bicubic, false)
			}},
		{name: "grid_sample bilinear border align_corners (feature grad)", shapes: [][]int64{{1, 2, 4, 5}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				g := s.FromFloat64([]float64{-1, -1, 0.3, -0.2, 1.2, 0.9, 0.05, 0.7, -1.4, 0.1, 0.6, 1}, 1, 2, 3, 2)
				return s.GridSample(in[0], g, torch.Bilinear, torch.PadBorder, true)
			}},
		{name: "grid_sample (grid grad)", shapes: [][]int64{{1, 2, 2, 2}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				x := s.FromFloat64([]float64{1, 2, 3, 4, 5, 7, 11, 13, -1, 0, 2, 1, 3, 3, 1, 0, 2, 2, 6, 1}, 1, 1, 4, 5)
				return s.GridSample(x, s.MulScalar(in[0], 0.8), torch.Bilinear, torch.PadBorder, true)
			}},
		{name: "mse_loss", shapes: [][]int64{{2, 3}, {2, 3}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				return s.MSELoss(in[0], in[1], torch.ReduceMean)
			}},
		{name: "multilabel soft margin", shapes: [][]int64{{3, 4}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				y := s.FromFloat64([]float64{1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0}, 3, 4)
				return s.MultilabelSoftMargin(s.MulScalar(in[0], 3), y)
			}},
		{name: "cross_entropy ignore 255", shapes: [][]int64{{2, 3, 2, 2}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor {
				y := s.FromInt64([]int64{0, 2, 255, 1, 1, 255, 0, 2}, 2, 2, 2)
				return s.CrossEntropy(in[0], y, 255, torch.ReduceMean)
			}},
		{name: "dropout2d eval is identity", shapes: [][]int64{{1, 3, 2, 2}},
			f: func(s *torch.Scope, in []*torch.Tensor) *torch.Tensor { return s.Dropout2d(in[0], 0.5, false) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGrad(t, c) })
	}
}

// Dropout2d in training mode: gradient equals the (fixed) channel mask times
// 1/(1-p); checked by reading the mask from the output.
func TestDropout2dTrainScalesChannels(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	torch.ManualSeed(3)
	x := s.Ones([]int64{4, 16, 3, 3}, torch.Opts{DType: torch.Float64})
	x.SetRequiresGrad(true)
	y := s.Dropout2d(x, 0.5, true)
	v, err := y.Float64s()
	if err != nil || s.Err() != nil {
		t.Fatal(err, s.Err())
	}
	zeros, twos := 0, 0
	for c := 0; c < 64; c++ {
		ch := v[c*9 : c*9+9]
		for _, e := range ch[1:] {
			if e != ch[0] {
				t.Fatalf("channel %d not uniform: %v", c, ch)
			}
		}
		switch ch[0] {
		case 0:
			zeros++
		case 2:
			twos++
		default:
			t.Fatalf("channel %d value %v, want 0 or 1/(1-p)=2", c, ch[0])
		}
	}
	if zeros < 16 || twos < 16 {
		t.Fatalf("dropped %d of 64 channels, kept %d: not p=0.5-like", zeros, twos)
	}
}
