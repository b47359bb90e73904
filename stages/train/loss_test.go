package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/torch"
)

// bilinearRef is torchvision's roi_align bilinear_interpolate (CPU kernel),
// returning the four corner indices and weights (weights 0 outside).
func bilinearRef(h, w int, y, x float64) (idx [4][2]int, wt [4]float64) {
	if y < -1 || y > float64(h) || x < -1 || x > float64(w) {
		return idx, wt
	}
	y, x = max(y, 0), max(x, 0)
	yl, xl := int(y), int(x)
	var yh, xh int
	if yl >= h-1 {
		yh, yl, y = h-1, h-1, float64(h-1)
	} else {
		yh = yl + 1
	}
	if xl >= w-1 {
		xh, xl, x = w-1, w-1, float64(w-1)
	} else {
		xh = xl + 1
	}
	ly, lx := y-float64(yl), x-float64(xl)
	hy, hx := 1-ly, 1-lx
	return [4][2]int{{yl, xl}, {yl, xh}, {yh, xl}, {yh, xh}}, [4]float64{hy * hx, hy * lx, ly * hx, ly * lx}
}

// roiAlignRef is torchvision.ops.roi_align (aligned=False, sampling_ratio
// −1) written out: forward values and, for an upstream gradient g, the
// gradient with respect to the feature map.
func roiAlignRef(f []float64, b, k, h, w int, rois []ROI, oh, ow int, scale float64, g []float64) (out, grad []float64) {
	out = make([]float64, len(rois)*k*oh*ow)
	grad = make([]float64, len(f))
	for r, roi := range rois {
		x1, y1 := float64(roi.Box.X1)*scale, float64(roi.Box.Y1)*scale
		rw := math.Max(float64(roi.Box.X2)*scale-x1, 1)
		rh := math.Max(float64(roi.Box.Y2)*scale-y1, 1)
		bh, bw := rh/float64(oh), rw/float64(ow)
		gh, gw := int(math.Ceil(rh/float64(oh))), int(math.Ceil(rw/float64(ow)))
		count := float64(max(gh*gw, 1))
		for c := range k {
			plane := (roi.Batch*k + c) * h * w
			for i := range oh {
				for j := range ow {
					o := ((r*k+c)*oh+i)*ow + j
					for iy := range gh {
						y := y1 + float64(i)*bh + (float64(iy)+0.5)*bh/float64(gh)
						for ix := range gw {
							x := x1 + float64(j)*bw + (float64(ix)+0.5)*bw/float64(gw)
							idx, wt := bilinearRef(h, w, y, x)
							for q := range 4 {
								p := plane + idx[q][0]*w + idx[q][1]
								out[o] += wt[q] * f[p] / count
								grad[p] += wt[q] * g[o] / count
							}
						}
					}
				}
			}
		}
	}
	return out, grad
}

func randSlice(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.Float64()*4 - 2
	}
	return v
}

func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			t.Fatalf("%s[%d] = %.9g, want %.9g", what, i, got[i], want[i])
		}
	}
}

// TestRoIAlignMatchesBilinearSampling checks the grid_sample construction
// against torchvision's RoIAlign written out, values and gradients, at the
// reference geometry (one sample per bin, clamping at the far edge), with
// several samples per bin, and with boxes reaching past the map.
func TestRoIAlignMatchesBilinearSampling(t *testing.T) {
	const b, k, h, w = 2, 3, 7, 7
	r := rand.New(rand.NewPCG(1, 2))
	f := randSlice(r, b*k*h*w)
	box := func(bi, x1, y1, size int) ROI {
		return ROI{Batch: bi, Box: augment.Box{X1: x1, Y1: y1, X2: x1 + size, Y2: y1 + size}}
	}
	cases := []struct {
		name   string
		rois   []ROI
		oh, ow int
		scale  float64
	}{
		// 56-px view, 40-px crops, stride 8: the reference's 448/320/8 in small.
		{"reference geometry", []ROI{box(0, 0, 0, 40), box(1, 16, 16, 40), box(0, 13, 5, 40), box(1, 3, 11, 40)}, 5, 5, 1.0 / 8},
		{"several samples per bin", []ROI{box(0, 0, 0, 40), box(1, 9, 14, 40)}, 2, 3, 1.0 / 8},
		{"past the map", []ROI{box(1, 40, 30, 40), box(0, 0, 0, 40)}, 5, 5, 1.0 / 8},
		{"box under one cell", []ROI{box(0, 20, 20, 4)}, 2, 2, 1.0 / 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			x := s.FromFloat64(f, b, k, h, w)
			if err := x.SetRequiresGrad(true); err != nil {
				t.Fatal(err)
			}
			y := RoIAlign(s, x, tc.rois, tc.oh, tc.ow, tc.scale)
			g := randSlice(r, len(tc.rois)*k*tc.oh*tc.ow)
			loss := s.Sum(s.Mul(y, s.FromFloat64(g, y.Shape()...)), nil, false)
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
			got, err := y.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			gotGrad, err := s.Grad(x).Float64s()
			if err != nil {
				t.Fatal(err)
			}
			want, wantGrad := roiAlignRef(f, b, k, h, w, tc.rois, tc.oh, tc.ow, tc.scale, g)
			assertClose(t, "value", got, want, 1e-12)
			assertClose(t, "gradient", gotGrad, wantGrad, 1e-12)
		})
	}
}

// TestRoIAlignReferencePositions pins the spec's statement of the
// positions: output (i, j) of a 320 box at (x1, y1) in a 448 view samples
// the 56×56 map at (y1/8 + i + ½, x1/8 + j + ½), clamped to 55.
func TestRoIAlignReferencePositions(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	// f(y, x) = 1000·y + x is reproduced exactly by bilinear sampling.
	f := make([]float64, 56*56)
	for y := range 56 {
		for x := range 56 {
			f[y*56+x] = 1000*float64(y) + float64(x)
		}
	}
	x1, y1 := 128, 37
	out, err := RoIAlign(s, s.FromFloat64(f, 1, 1, 56, 56),
		[]ROI{{Box: augment.Box{X1: x1, Y1: y1, X2: x1 + 320, Y2: y1 + 320}}}, 40, 40, 1.0/8).Float64s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		for j := range 40 {
			y := math.Min(float64(y1)/8+float64(i)+0.5, 55)
			x := math.Min(float64(x1)/8+float64(j)+0.5, 55)
			if want := 1000*y + x; math.Abs(out[i*40+j]-want) > 1e-9 {
				t.Fatalf("out[%d,%d] = %v, want %v", i, j, out[i*40+j], want)
			}
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRoIAlignRejectsMixedGrids(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := s.Zeros([]int64{1, 1, 8, 8}, torch.Opts{})
	RoIAlign(s, x, []ROI{{Box: augment.Box{X2: 8, Y2: 8}}, {Box: augment.Box{X2: 64, Y2: 64}}}, 2, 2, 1.0/8)
	if s.Err() == nil {
		t.Fatal("rois needing different sampling grids were accepted")
	}
}

// crafted is a 2-crop, 2-class (K = 3), 2×2 local map chosen so that every
// step of the target construction matters (see TestLocalTargetHandComputed).
func crafted(s *torch.Scope) (fl, present, sal *torch.Tensor) {
	fl = s.FromFloat64([]float64{
		// crop 0, classes 0 and 1 present
		2, -1, 1, 0.5, // class 0: relu+norm → 1, 0, .5, .25
		1, 4, 0, 2, // class 1: → .25, 1, 0, .5
		0.5, 1, 3, 0, // bg: → 1/6, 1/3, 1, 0
		// crop 1, only class 0 present
		1, 2, 0, 0, // class 0: → .5, 1, 0, 0
		5, 0, 0, 0, // class 1: absent, zeroed (would win pixel (0,0))
		1, 1, 2, 4, // bg: → .25, .25, .5, 1
	}, 2, 3, 2, 2)
	present = s.FromFloat64([]float64{1, 1, 1, 0}, 2, 2)
	// 4×4 saliency; legacy nearest to 2×2 picks (0,0), (0,2), (2,0), (2,2).
	sal = s.FromFloat64([]float64{
		0.9, 0, 0.8, 0,
		0, 0, 0, 0,
		0.3, 0, 0.7, 0,
		0, 0, 0, 0,

		0.2, 0, 0.4, 0,
		0, 0, 0, 0,
		0.6, 0, 0.5, 0,
		0, 0, 0, 0,
	}, 2, 1, 4, 4)
	return fl, present, sal
}

func TestLocalTargetHandComputed(t *testing.T) {
	// Threshold 0.6: per-pixel winners after masking are
	// crop 0: (0,0) c0 1, (0,1) c1 1, (1,0) bg 1, (1,1) c1 .5 (below 0.6);
	// crop 1: (0,0) c0 .5 (below), (0,1) c0 1, (1,0) bg .5 (below), (1,1) bg 1.
	cases := []struct {
		name string
		sal  bool
		bg   BgTarget
		want []float64
	}{
		{"saliency, mask background (VOC)", true, BgMask, []float64{
			0.9, 0, 0, 0, // c0 = M·S
			0, 0.8, 0, 0, // c1
			0, 0, 0.7, 0, // bg = M·(1−S)
			0, 0.4, 0, 0,
			0, 0, 0, 0,
			0, 0, 0, 0.5,
		}},
		{"saliency, soft background (COCO)", true, BgSoft, []float64{
			0.9, 0, 0, 0,
			0, 0.8, 0, 0,
			0, 0, 0.7, 0, // T_bg·(1−S) = 1·0.7
			0, 0.4, 0, 0,
			0, 0, 0, 0,
			0, 0, 0.5 * 0.4, 0.5, // .5·(1−.6) kept although below threshold
		}},
		{"no saliency, mask background", false, BgMask, []float64{
			1, 0, 0, 0,
			0, 1, 0, 0,
			0, 0, 1, 0,
			0, 1, 0, 0,
			0, 0, 0, 0,
			0, 0, 0, 1,
		}},
		{"no saliency, soft background", false, BgSoft, []float64{
			1, 0, 0, 0,
			0, 1, 0, 0,
			0, 0, 1, 0,
			0, 1, 0, 0,
			0, 0, 0, 0,
			0, 0, 0.5, 1,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			fl, present, sal := crafted(s)
			if err := fl.SetRequiresGrad(true); err != nil {
				t.Fatal(err)
			}
			if !tc.sal {
				sal = nil
			}
			tt := LocalTarget(s, fl, present, sal, TargetOpts{BgThreshold: 0.6, BgTarget: tc.bg})
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			if tt.RequiresGrad() {
				t.Error("the target carries autograd history; it must be detached")
			}
			got, err := tt.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			// 1e-7: the spatial max is divided with +1e-8, as in the reference.
			assertClose(t, "target", got, tc.want, 1e-7)
		})
	}
}

func TestLocalTargetShapeErrors(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	fl, _, sal := crafted(s)
	LocalTarget(s, fl, s.Zeros([]int64{2, 3}, torch.Opts{DType: torch.Float64}), sal, TargetOpts{BgTarget: BgMask})
	if s.Err() == nil {
		t.Fatal("labels with K instead of K−1 columns were accepted")
	}
}

func TestTransferLossHandComputed(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	// Pixel a: logits (0, ln 2, ln 3) → softmax (1, 2, 3)/6, target (1, 0, 0);
	// pixel b: logits 0 → 1/3 each, target (0, 0, 1).
	r := s.FromFloat64([]float64{0, 0, math.Log(2), 0, math.Log(3), 0}, 1, 3, 1, 2)
	tg := s.FromFloat64([]float64{1, 0, 0, 0, 0, 1}, 1, 3, 1, 2)
	// Squared errors: a 25/36 + 4/36 + 9/36, b 4/36 + 4/36 + 16/36; mean over 6.
	want := 10 * (38.0 + 24.0) / 36 / 6
	got, err := TransferLoss(s, r, tg, 10).Item()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("transfer loss %.15g, want %.15g", got, want)
	}
}

// softMargin is −[y·log σ(z) + (1−y)·log(1−σ(z))] averaged, by hand.
func softMargin(z, y []float64) float64 {
	var sum float64
	for i := range z {
		sum += y[i]*math.Log1p(math.Exp(-z[i])) + (1-y[i])*math.Log1p(math.Exp(z[i]))
	}
	return sum / float64(len(z))
}

// TestStepLossesHandComputed evaluates every loss term of every mode on
// crafted net outputs and compares with values computed here step by step:
// the local target written out by hand, RoIAlign by the torchvision
// formula, softmax, MSE and the soft margin by their definitions.
func TestStepLossesHandComputed(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	fl, _, sal := crafted(s)
	// One 24-px view, crops of 16 px at (0,0) and (8,8); stride 8 gives a
	// 3×3 global map and 2×2 local maps. The image shows class 0 only.
	rois := []ROI{{Box: augment.Box{X2: 16, Y2: 16}}, {Box: augment.Box{X1: 8, Y1: 8, X2: 24, Y2: 24}}}
	r := rand.New(rand.NewPCG(3, 4))
	fgv := randSlice(r, 27)
	zgv, zlv := []float64{0.7, -1.2}, []float64{2, -0.5, 0.1, 0.3}
	y, yRep := []float64{1, 0}, []float64{1, 0, 1, 0}
	o := outputs{
		fg: s.FromFloat64(fgv, 1, 3, 3, 3), zg: s.FromFloat64(zgv, 1, 2),
		fl: fl, zl: s.FromFloat64(zlv, 2, 2),
	}
	b := &batch{labels: s.FromFloat64(y, 1, 2), labelsRep: s.FromFloat64(yRep, 2, 2), sal: sal, rois: rois}

	// Target, threshold 0.6, class 1 absent from both crops (see crafted):
	// crop 0 winners (0,0) c0 1, (0,1) bg 1/3, (1,0) bg 1, (1,1) c0 .25;
	// crop 1 as in TestLocalTargetHandComputed. S = .9 .8 .3 .7 / .2 .4 .6 .5.
	target := []float64{
		0.9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.7, 0,
		0, 0.4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5,
	}
	aligned, _ := roiAlignRef(fgv, 1, 3, 3, 3, rois, 2, 2, 1.0/8, make([]float64, 24))
	var sq float64
	for crop := range 2 {
		for p := range 4 {
			var z [3]float64
			var den float64
			for k := range 3 {
				z[k] = math.Exp(aligned[(crop*3+k)*4+p])
				den += z[k]
			}
			for k := range 3 {
				d := z[k]/den - target[(crop*3+k)*4+p]
				sq += d * d
			}
		}
	}
	wantKD := 30 * sq / 24
	wantClsL, wantClsG := softMargin(zlv, yRep), softMargin(zgv, y)

	check := func(name string, got *torch.Tensor, want float64) {
		t.Helper()
		v, err := got.Item()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// 1e-7: the target's max division carries +1e-8.
		if math.Abs(v-want) > 1e-7 {
			t.Errorf("%s = %.12g, want %.12g", name, v, want)
		}
	}
	cfg := DefaultConfig()
	cfg.Loss = LossConfig{KDWeight: 30, BgThreshold: 0.6, BgTarget: BgMask}
	terms, total := cfg.stepLosses(s, o, b, 8)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	check("kd", terms[LossKD], wantKD)
	check("cls_local", terms[LossClsLocal], wantClsL)
	check("cls_global", terms[LossClsGlobal], wantClsG)
	check("total", total, wantKD+wantClsL)

	cfg.Loss.GlobalCls = true
	_, total = cfg.stepLosses(s, o, b, 8)
	check("total with the global classification loss", total, wantKD+wantClsL+wantClsG)

	cfg.Mode = ModeCAM
	terms, total = cfg.stepLosses(s, o, b, 8)
	check("cam cls", terms[LossCls], wantClsG)
	check("cam total", total, wantClsG)
	cfg.Mode = ModeLocal
	_, total = cfg.stepLosses(s, o, b, 8)
	check("local total", total, wantClsL)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}
