package torch_test

import (
	"math"
	"testing"

	"github.com/l2g/l2g/internal/torch"
)

func values(t *testing.T, s *torch.Scope, x *torch.Tensor) []float64 {
	t.Helper()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	v, err := s.To(x, torch.Opts{DType: torch.Float64}).Float64s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func near(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			t.Fatalf("%s[%d] = %.9g, want %.9g (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

func TestInterpolateHandComputed(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := s.FromFloat64([]float64{0, 10}, 1, 1, 1, 2)

	// Bilinear, align_corners=False, 2 -> 4: source x = (i+0.5)/2 - 0.5,
	// clamped at 0: -0.25->0, 0.25, 0.75, 1.25->1 (edge).
	near(t, "bilinear", values(t, s, s.Interpolate(x, 1, 4, torch.Bilinear, false)),
		[]float64{0, 2.5, 7.5, 10}, 1e-12)
	// align_corners=True, 2 -> 3: source x = i·(1/2): 0, 0.5, 1.
	near(t, "bilinear ac", values(t, s, s.Interpolate(x, 1, 3, torch.Bilinear, true)),
		[]float64{0, 5, 10}, 1e-12)
	// Legacy nearest, 2 -> 5: src = floor(i·2/5) = 0,0,0,1,1.
	near(t, "nearest", values(t, s, s.Interpolate(x, 1, 5, torch.Nearest, false)),
		[]float64{0, 0, 0, 10, 10}, 0)

	// Bicubic, A = -0.75, 4 -> 2 on a row [0, 1, 8, 27]: source x = (i+0.5)·2 - 0.5
	// = 0.5 and 2.5; taps at floor-1..floor+2 clamped to the border, with
	// weights for t = 0.5: w(1.5), w(0.5), w(0.5), w(1.5) where
	// w(0.5) = (A+2)/8 - (A+3)/4 + 1 = 0.59375 and w(1.5) = -0.09375.
	row := s.FromFloat64([]float64{0, 1, 8, 27}, 1, 1, 1, 4)
	w0, w1 := -0.09375, 0.59375
	want := []float64{
		w0*0 + w1*0 + w1*1 + w0*8,   // taps -1(=0),0,1,2
		w0*1 + w1*8 + w1*27 + w0*27, // taps 1,2,3,4(=3)
	}
	near(t, "bicubic", values(t, s, s.Interpolate(row, 1, 2, torch.Bicubic, false)), want, 1e-12)
}

func TestSoftmaxHandComputed(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := s.FromFloat64([]float64{1, 2, 3, 0, 0, 0}, 2, 3)
	e := []float64{math.Exp(1), math.Exp(2), math.Exp(3)}
	z := e[0] + e[1] + e[2]
	near(t, "softmax", values(t, s, s.Softmax(x, 1)),
		[]float64{e[0] / z, e[1] / z, e[2] / z, 1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-12)
	near(t, "log_softmax", values(t, s, s.LogSoftmax(x, 1)),
		[]float64{1 - math.Log(z), 2 - math.Log(z), 3 - math.Log(z), -math.Log(3), -math.Log(3), -math.Log(3)}, 1e-12)
}

// grid_sample with align_corners=True maps -1/+1 to the corner pixel
// centres; border padding clamps beyond them (the RoIAlign equivalent).
func TestGridSampleCornersAndBorder(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	// 2x3 map: rows [1 2 3], [4 5 6].
	x := s.FromFloat64([]float64{1, 2, 3, 4, 5, 6}, 1, 1, 2, 3)
	g := s.FromFloat64([]float64{
		-1, -1, // top-left corner -> 1
		1, 1, // bottom-right -> 6
		0, 0, // centre: x=1, y=0.5 -> (2+5)/2 = 3.5
		2, -3, // beyond top-right: clamped -> 3
		0.5, 1, // x = 1.5, y = 1 -> (5+6)/2 = 5.5
	}, 1, 1, 5, 2)
	near(t, "border", values(t, s, s.GridSample(x, g, torch.Bilinear, torch.PadBorder, true)),
		[]float64{1, 6, 3.5, 3, 5.5}, 1e-12)
	// Zero padding: beyond the map contributes 0.
	near(t, "zeros", values(t, s, s.GridSample(x, g, torch.Bilinear, torch.PadZeros, true)),
		[]float64{1, 6, 3.5, 0, 5.5}, 1e-12)
}

func TestBatchNormEvalHandComputed(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := s.FromFloat64([]float64{1, 2, 3, 4}, 1, 2, 1, 2)
	w := s.FromFloat64([]float64{2, 0.5}, 2)
	b := s.FromFloat64([]float64{1, -1}, 2)
	m := s.FromFloat64([]float64{1, 2}, 2)
	v := s.FromFloat64([]float64{4, 1}, 2)
	eps := 1e-5
	f := func(x, w, b, m, v float64) float64 { return (x-m)/math.Sqrt(v+eps)*w + b }
	near(t, "bn", values(t, s, s.BatchNormEval(x, w, b, m, v, eps)),
		[]float64{f(1, 2, 1, 1, 4), f(2, 2, 1, 1, 4), f(3, 0.5, -1, 2, 1), f(4, 0.5, -1, 2, 1)}, 1e-12)
}

func TestLossesHandComputed(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := s.FromFloat64([]float64{1, 2, 3, 4}, 2, 2)
	b := s.FromFloat64([]float64{0, 2, 5, 3}, 2, 2)
	near(t, "mse", values(t, s, s.MSELoss(a, b, torch.ReduceMean)), []float64{(1 + 0 + 4 + 1) / 4.0}, 1e-12)

	z := s.FromFloat64([]float64{0.5, -1, 2, 0}, 2, 2)
	y := s.FromFloat64([]float64{1, 0, 0, 1}, 2, 2)
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	bce := -(math.Log(sig(0.5)) + math.Log(1-sig(-1)) + math.Log(1-sig(2)) + math.Log(sig(0))) / 4
	near(t, "multilabel soft margin", values(t, s, s.MultilabelSoftMargin(z, y)), []float64{bce}, 1e-12)

	// Cross-entropy over 2 valid pixels of 3 (one ignored).
	logits := s.FromFloat64([]float64{ // (1, 2 classes, 1, 3)
		1, 0, 3, // class 0
		2, 0, -1, // class 1
	}, 1, 2, 1, 3)
	tgt := s.FromInt64([]int64{1, 255, 0}, 1, 1, 3)
	lse := func(a, b float64) float64 { return math.Log(math.Exp(a) + math.Exp(b)) }
	ce := ((lse(1, 2) - 2) + (lse(3, -1) - 3)) / 2
	near(t, "cross_entropy", values(t, s, s.CrossEntropy(logits, tgt, 255, torch.ReduceMean)), []float64{ce}, 1e-12)
}

// SGD with momentum, Nesterov and weight decay against the update written
// out by hand for two steps; a parameter without a gradient is untouched.
func TestSGDStepMatchesFormula(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	p := s.FromFloat64([]float64{1, -2}, 2)
	frozen := s.FromFloat64([]float64{5}, 1)
	p.SetRequiresGrad(true)
	bufs := []*torch.Tensor{s.ZerosLike(p), s.ZerosLike(frozen)}
	lr, wd, mom := 0.1, 0.01, 0.9
	wantP := []float64{1, -2}
	buf := []float64{0, 0}
	for step := 0; step < 2; step++ {
		p.ZeroGrad()
		loss := s.Sum(s.Mul(p, p), nil, false) // grad = 2p
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		if err := torch.SGDStep([]*torch.Tensor{p, frozen}, bufs, []float64{lr, lr}, []float64{wd, wd}, mom, true); err != nil {
			t.Fatal(err)
		}
		for i := range wantP {
			d := 2*wantP[i] + wd*wantP[i]
			buf[i] = mom*buf[i] + d
			wantP[i] -= lr * (d + mom*buf[i])
		}
	}
	near(t, "param", values(t, s, p), wantP, 1e-12)
	near(t, "frozen", values(t, s, frozen), []float64{5}, 0)
}
