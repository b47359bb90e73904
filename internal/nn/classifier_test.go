package nn_test

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
)

func mustClassifier(t testing.TB, arch string, c int, opts ...nn.Option) nn.Classifier {
	t.Helper()
	m, err := nn.NewClassifier(arch, c, torch.CPU(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Store().Close)
	return m
}

func randImage(s *torch.Scope, seed int64, shape ...int64) *torch.Tensor {
	r := rand.New(rand.NewSource(seed))
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return s.FromFloat32(v, shape...)
}

func TestClassifierFeatureSize(t *testing.T) {
	if got := nn.ClassifierFeatureSize(448); got != 56 {
		t.Fatalf("448 → %d, want 56", got)
	}
	if got := nn.ClassifierFeatureSize(320); got != 40 {
		t.Fatalf("320 → %d, want 40", got)
	}
	ceil2 := func(l int64) int64 { return (l + 1) / 2 }
	for l := int64(1); l <= 1000; l++ {
		if got, want := nn.ClassifierFeatureSize(l), ceil2(ceil2(ceil2(l))); got != want {
			t.Fatalf("%d → %d, want ⌈⌈⌈L/2⌉/2⌉/2⌉ = %d", l, got, want)
		}
	}
}

// resnet38Counts counts ResNet-38 + head parameters (conv weights) and BN
// buffer elements from the architecture table of spec §2, with base width w
// (64 in the paper) and C classes.
func resnet38Counts(w, c int64) (params, buffers int64) {
	type rb struct{ in, mid, out, stride int64 }
	blocks := []rb{
		{w, 2 * w, 2 * w, 2}, {2 * w, 2 * w, 2 * w, 1}, {2 * w, 2 * w, 2 * w, 1},
		{2 * w, 4 * w, 4 * w, 2}, {4 * w, 4 * w, 4 * w, 1}, {4 * w, 4 * w, 4 * w, 1},
		{4 * w, 8 * w, 8 * w, 2},
		{8 * w, 8 * w, 8 * w, 1}, {8 * w, 8 * w, 8 * w, 1}, {8 * w, 8 * w, 8 * w, 1}, {8 * w, 8 * w, 8 * w, 1}, {8 * w, 8 * w, 8 * w, 1},
		{8 * w, 8 * w, 16 * w, 1}, {16 * w, 8 * w, 16 * w, 1}, {16 * w, 8 * w, 16 * w, 1},
	}
	params = 3 * w * 9 // conv1a
	for _, b := range blocks {
		params += 9*b.in*b.mid + 9*b.mid*b.out
		if b.in != b.out || b.stride != 1 {
			params += b.in * b.out
		}
		buffers += 4 * (b.in + b.mid)
	}
	for _, b := range [][2]int64{{16 * w, 32 * w}, {32 * w, 64 * w}} { // b6, b7
		in, out := b[0], b[1]
		params += in*out/4 + 9*(out/4)*(out/2) + (out/2)*out + in*out
		buffers += 4 * (in + out/4 + out/2)
	}
	buffers += 4 * 64 * w // bn7
	// fc8, f8_3, f8_4, f9.
	params += 64*w*(c+1) + 8*w*w + 16*w*2*w + (3+w+2*w)*3*w
	return params, buffers
}

func TestResNet38FullWidth(t *testing.T) {
	if testing.Short() {
		t.Skip("full-width network: 105M/44M parameters to allocate")
	}
	m := mustClassifier(t, nn.ArchResNet38, 20)
	st := m.Store()
	wantP, wantB := resnet38Counts(64, 20)
	if got := st.NumParams(false); got != wantP {
		t.Fatalf("parameters: %d, want %d", got, wantP)
	}
	if got := st.NumParams(true) - st.NumParams(false); got != wantB {
		t.Fatalf("BN buffer elements: %d, want %d", got, wantB)
	}
	t.Logf("ResNet-38 + PCM head, 20 classes: %d parameters, %d BN buffer elements", wantP, wantB)
	// The reference's state_dict keys, spot-checked with their shapes.
	wantShapes := map[string][]int64{
		"conv1a.weight":                 {64, 3, 3, 3},
		"b2.bn_branch2a.weight":         {64},
		"b2.conv_branch2a.weight":       {128, 64, 3, 3},
		"b2.conv_branch1.weight":        {128, 64, 1, 1},
		"b2_1.bn_branch2b1.running_var": {128},
		"b4_5.conv_branch2b1.weight":    {512, 512, 3, 3},
		"b5.conv_branch1.weight":        {1024, 512, 1, 1},
		"b5_2.conv_branch2a.weight":     {512, 1024, 3, 3},
		"b6.conv_branch2a.weight":       {512, 1024, 1, 1},
		"b6.conv_branch2b1.weight":      {1024, 512, 3, 3},
		"b6.bn_branch2b2.running_mean":  {1024},
		"b7.conv_branch2b2.weight":      {4096, 2048, 1, 1},
		"b7.conv_branch1.weight":        {4096, 2048, 1, 1},
		"bn7.bias":                      {4096},
		"fc8.weight":                    {21, 4096, 1, 1},
		"f8_3.weight":                   {64, 512, 1, 1},
		"f8_4.weight":                   {128, 1024, 1, 1},
		"f9.weight":                     {192, 195, 1, 1},
	}
	for name, sh := range wantShapes {
		tt := st.Get(name)
		if tt == nil {
			t.Fatalf("no %s; names %v…", name, st.Names()[:8])
		}
		if !slices.Equal(tt.Shape(), sh) {
			t.Fatalf("%s: shape %v, want %v", name, tt.Shape(), sh)
		}
	}
	for _, n := range []string{"b2_1.conv_branch1.weight", "b3_1.conv_branch1.weight", "b5_1.conv_branch1.weight"} {
		if st.Get(n) != nil {
			t.Fatalf("%s exists, but that block keeps its shape (identity shortcut)", n)
		}
	}
	// Groups: frozen stem and stage 2, BN never trained, head ×10.
	trainable := map[string]string{}
	for _, e := range st.Trainable() {
		trainable[e.Name] = e.Group
	}
	for _, e := range st.Entries() {
		frozenWant := strings.HasPrefix(e.Name, "conv1a.") || strings.HasPrefix(e.Name, "b2.") ||
			strings.HasPrefix(e.Name, "b2_1.") || strings.HasPrefix(e.Name, "b2_2.") || strings.Contains(e.Name, ".bn_") || strings.HasPrefix(e.Name, "bn7.")
		g, tr := trainable[e.Name]
		if tr == frozenWant {
			t.Fatalf("%s: trainable=%v", e.Name, tr)
		}
		if e.Frozen && e.T.RequiresGrad() {
			t.Fatalf("%s is frozen but requires grad", e.Name)
		}
		head := strings.HasPrefix(e.Name, "fc8.") || strings.HasPrefix(e.Name, "f8_") || strings.HasPrefix(e.Name, "f9.")
		if tr && (g == nn.GroupNew) != head {
			t.Fatalf("%s in group %q", e.Name, g)
		}
	}
	// Forward only, at small inputs: 64 → 8 and 40 → 5.
	s := torch.NewNoGradScope()
	defer s.Close()
	for _, side := range []int64{64, 40} {
		fm, lg := m.Forward(s, randImage(s, side, 1, 3, side, side), false)
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		f := nn.ClassifierFeatureSize(side)
		if !slices.Equal(fm.Shape(), []int64{1, 21, f, f}) || !slices.Equal(lg.Shape(), []int64{1, 20}) {
			t.Fatalf("input %d: featmap %v logits %v", side, fm.Shape(), lg.Shape())
		}
	}
}

// The full network at reduced width keeps the spatial arithmetic: a forward
// at the paper's sizes gives 448 → 56 and 320 → 40.
func TestResNet38PaperSizesReducedWidth(t *testing.T) {
	m := mustClassifier(t, nn.ArchResNet38, 20, nn.WithWidth(4))
	wantP, _ := resnet38Counts(4, 20)
	if got := m.Store().NumParams(false); got != wantP {
		t.Fatalf("width 4: %d parameters, want %d", got, wantP)
	}
	s := torch.NewNoGradScope()
	defer s.Close()
	for _, c := range [][2]int64{{448, 56}, {320, 40}} {
		fm, _ := m.Forward(s, randImage(s, 1, 1, 3, c[0], c[0]), false)
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fm.Shape(), []int64{1, 21, c[1], c[1]}) {
			t.Fatalf("input %d: featmap %v, want side %d", c[0], fm.Shape(), c[1])
		}
	}
	// A non-square input: each side on its own.
	fm, _ := m.Forward(s, randImage(s, 2, 1, 3, 33, 17), false)
	if err := s.Err(); err != nil || !slices.Equal(fm.Shape(), []int64{1, 21, 5, 3}) {
		t.Fatalf("33×17: %v %v", fm.Shape(), err)
	}
}

func gradOf(t *testing.T, s *torch.Scope, x *torch.Tensor) []float32 {
	t.Helper()
	g := s.Grad(x)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if g == nil {
		return nil
	}
	v, err := g.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func anyNonZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return true
		}
	}
	return false
}

// Frozen parameters (conv1a, b2*) and BN buffers get no gradient; the rest
// of the backbone and the head do. Reduced width keeps the backward cheap.
func TestResNet38FrozenGetNoGradient(t *testing.T) {
	m := mustClassifier(t, nn.ArchResNet38, 3, nn.WithWidth(8))
	s := torch.NewScope()
	defer s.Close()
	_, lg := m.Forward(s, randImage(s, 3, 2, 3, 32, 32), true)
	loss := s.Sum(s.Mul(lg, lg), nil, false)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Store().Entries() {
		g := gradOf(t, s, e.T)
		frozen := e.Buffer || strings.HasPrefix(e.Name, "conv1a.") || strings.HasPrefix(e.Name, "b2.") ||
			strings.HasPrefix(e.Name, "b2_1.") || strings.HasPrefix(e.Name, "b2_2.")
		if frozen && g != nil {
			t.Fatalf("%s is frozen but got a gradient", e.Name)
		}
		if !frozen && !anyNonZero(g) {
			t.Fatalf("%s got no gradient", e.Name)
		}
	}
}

// Dropout2d in b6/b7 is active only in training.
func TestResNet38DropoutOnlyInTraining(t *testing.T) {
	m := mustClassifier(t, nn.ArchResNet38, 2, nn.WithWidth(4))
	s := torch.NewNoGradScope()
	defer s.Close()
	x := randImage(s, 4, 1, 3, 24, 24)
	run := func(train bool) []float32 {
		_, lg := m.Forward(s, x, train)
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		v, err := lg.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	e1, e2 := run(false), run(false)
	if !slices.Equal(e1, e2) {
		t.Fatalf("eval forward is not deterministic: %v vs %v", e1, e2)
	}
	if t1 := run(true); slices.Equal(t1, e1) {
		t.Fatalf("training forward equals eval forward (%v): dropout inactive", t1)
	}
}

// ---- PCM ----

// bilinearAC is a Go bilinear resize with align_corners=True of one
// (h, w) channel stored row-major.
func bilinearAC(src []float64, h, w, oh, ow int) []float64 {
	out := make([]float64, oh*ow)
	coord := func(i, in, out int) (int, int, float64) {
		if out == 1 {
			return 0, 0, 0
		}
		p := float64(i) * float64(in-1) / float64(out-1)
		i0 := int(math.Floor(p))
		i1 := min(i0+1, in-1)
		return i0, i1, p - float64(i0)
	}
	for y := range oh {
		y0, y1, ly := coord(y, h, oh)
		for x := range ow {
			x0, x1, lx := coord(x, w, ow)
			top := src[y0*w+x0]*(1-lx) + src[y0*w+x1]*lx
			bot := src[y1*w+x0]*(1-lx) + src[y1*w+x1]*lx
			out[y*ow+x] = top*(1-ly) + bot*ly
		}
	}
	return out
}

// conv1x1 applies a (out, in) weight to (in, hw) features.
func conv1x1(w []float64, in, out int, x [][]float64) [][]float64 {
	y := make([][]float64, out)
	for o := range out {
		y[o] = make([]float64, len(x[0]))
		for c := range in {
			for p := range x[0] {
				y[o][p] += w[o*in+c] * x[c][p]
			}
		}
	}
	return y
}

func setParam(t *testing.T, st *nn.Store, name string, v []float64) {
	t.Helper()
	p := st.Get(name)
	s := torch.NewNoGradScope()
	defer s.Close()
	src := s.Reshape(s.FromFloat64(v), p.Shape()...)
	if err := s.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := p.CopyFrom(src); err != nil {
		t.Fatal(err)
	}
}

// randSlice draws U(-1, 1) values representable in float32, so that the Go
// reference and the float32 network see the same numbers.
func randSlice(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(float32(r.Float64()*2 - 1))
	}
	return v
}

func f32(s *torch.Scope, v []float64, shape ...int64) *torch.Tensor {
	return s.To(s.FromFloat64(v, shape...), torch.Opts{DType: torch.Float32})
}

// The head on a crafted tiny input equals the spec's formula computed
// explicitly in Go in float64, with the product on the feature channels
// (fc8(conv6·A)) rather than the head's reordered fc8(conv6)·A.
func TestPCMHeadMatchesFormula(t *testing.T) {
	const (
		n, C, feat, s1, s2, o1, o2, aff = 2, 2, 5, 3, 4, 2, 3, 4
		H, W, h, w                      = 5, 7, 3, 4
	)
	st := nn.NewStore(torch.CPU())
	defer st.Close()
	head, err := nn.NewPCMHead(st, nn.HeadConfig{NumClasses: C, Feat: feat, Side1: s1, Side2: s2, Side1Out: o1, Side2Out: o2, Aff: aff})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(7))
	wfc8, w83, w84, w9 := randSlice(r, (C+1)*feat), randSlice(r, o1*s1), randSlice(r, o2*s2), randSlice(r, aff*(3+o1+o2))
	setParam(t, st, "fc8.weight", wfc8)
	setParam(t, st, "f8_3.weight", w83)
	setParam(t, st, "f8_4.weight", w84)
	setParam(t, st, "f9.weight", w9)
	img, fv, sv1, sv2 := randSlice(r, n*3*H*W), randSlice(r, n*feat*h*w), randSlice(r, n*s1*h*w), randSlice(r, n*s2*h*w)
	s := torch.NewScope()
	defer s.Close()
	fm, lg := head.Forward(s, f32(s, img, n, 3, H, W), f32(s, fv, n, feat, h, w),
		f32(s, sv1, n, s1, h, w), f32(s, sv2, n, s2, h, w))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fm.Shape(), []int64{n, C + 1, h, w}) || !slices.Equal(lg.Shape(), []int64{n, C}) {
		t.Fatalf("shapes %v %v", fm.Shape(), lg.Shape())
	}
	gotFM, _ := s.To(fm, torch.Opts{DType: torch.Float64}).Float64s()
	gotLG, _ := s.To(lg, torch.Opts{DType: torch.Float64}).Float64s()

	hw := h * w
	chans := func(v []float64, b, c int) [][]float64 {
		out := make([][]float64, c)
		for i := range c {
			out[i] = v[(b*c+i)*hw : (b*c+i+1)*hw]
		}
		return out
	}
	negSeen := false
	for b := range n {
		var f [][]float64
		for c := range 3 {
			f = append(f, bilinearAC(img[(b*3+c)*H*W:(b*3+c+1)*H*W], H, W, h, w))
		}
		f = append(f, conv1x1(w83, s1, o1, chans(sv1, b, s1))...)
		f = append(f, conv1x1(w84, s2, o2, chans(sv2, b, s2))...)
		e := conv1x1(w9, 3+o1+o2, aff, f)
		for p := range hw { // L2-normalise each position, norm + 1e-5
			var nn2 float64
			for c := range aff {
				nn2 += e[c][p] * e[c][p]
			}
			for c := range aff {
				e[c][p] /= math.Sqrt(nn2) + 1e-5
			}
		}
		A := make([][]float64, hw)
		for i := range hw {
			A[i] = make([]float64, hw)
			for j := range hw {
				var d float64
				for c := range aff {
					d += e[c][i] * e[c][j]
				}
				if d < 0 {
					negSeen = true
				}
				A[i][j] = max(d, 0)
			}
		}
		for j := range hw {
			var col float64
			for i := range hw {
				col += A[i][j]
			}
			for i := range hw {
				A[i][j] /= col + 1e-5
			}
		}
		X := chans(fv, b, feat)
		Xatt := make([][]float64, feat)
		for c := range feat {
			Xatt[c] = make([]float64, hw)
			for j := range hw {
				for i := range hw {
					Xatt[c][j] += X[c][i] * A[i][j]
				}
			}
		}
		cam, camAtt := conv1x1(wfc8, feat, C+1, X), conv1x1(wfc8, feat, C+1, Xatt)
		for k := range C + 1 {
			var mean float64
			for p := range hw {
				want := cam[k][p] + camAtt[k][p]
				got := gotFM[(b*(C+1)+k)*hw+p]
				if math.Abs(got-want) > 1e-5 {
					t.Fatalf("featmap[%d,%d,%d] = %v, want %v", b, k, p, got, want)
				}
				mean += want / float64(hw)
			}
			if k < C && math.Abs(gotLG[b*C+k]-mean) > 1e-5 {
				t.Fatalf("logit[%d,%d] = %v, want %v", b, k, gotLG[b*C+k], mean)
			}
		}
	}
	if !negSeen {
		t.Fatal("the crafted input has no negative affinity; ReLU is untested")
	}
}

// f8_3 and f8_4 see detached side features: no gradient reaches them, while
// the main feature gets one through both fc8 terms.
func TestPCMSideFeaturesDetached(t *testing.T) {
	st := nn.NewStore(torch.CPU())
	defer st.Close()
	head, err := nn.NewPCMHead(st, nn.HeadConfig{NumClasses: 2, Feat: 4, Side1: 3, Side2: 3, Side1Out: 2, Side2Out: 2, Aff: 3})
	if err != nil {
		t.Fatal(err)
	}
	s := torch.NewScope()
	defer s.Close()
	feat, s1, s2 := randImage(s, 1, 1, 4, 3, 3), randImage(s, 2, 1, 3, 3, 3), randImage(s, 3, 1, 3, 3, 3)
	for _, x := range []*torch.Tensor{feat, s1, s2} {
		if err := x.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
	}
	_, lg := head.Forward(s, randImage(s, 4, 1, 3, 6, 6), feat, s1, s2)
	if err := s.Sum(lg, nil, false).Backward(); err != nil {
		t.Fatal(err)
	}
	if g := gradOf(t, s, s1); g != nil {
		t.Fatalf("side feature 1 got a gradient %v", g)
	}
	if g := gradOf(t, s, s2); g != nil {
		t.Fatalf("side feature 2 got a gradient %v", g)
	}
	if !anyNonZero(gradOf(t, s, feat)) {
		t.Fatal("main feature got no gradient")
	}
	for _, n := range []string{"fc8.weight", "f8_3.weight", "f8_4.weight", "f9.weight"} {
		if !anyNonZero(gradOf(t, s, st.Get(n))) {
			t.Fatalf("%s got no gradient", n)
		}
	}
}

// The small classifier trains: shapes at 96 px, gradients everywhere, and a
// few SGD steps on one batch lower the multilabel loss.
func TestSmallClassifierTrains(t *testing.T) {
	if err := torch.ManualSeed(1); err != nil {
		t.Fatal(err)
	}
	m := mustClassifier(t, nn.ArchSmall, 5)
	if m.Stride() != 8 || m.NumClasses() != 5 {
		t.Fatalf("stride %d classes %d", m.Stride(), m.NumClasses())
	}
	opt, err := nn.NewSGD([]*nn.Store{m.Store()}, nn.ClassifierGroups(5e-4), 0.9, true)
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	if opt.NumParams() != len(m.Store().Names()) {
		t.Fatalf("%d optimized of %d: the small net has nothing frozen", opt.NumParams(), len(m.Store().Names()))
	}
	data := torch.NewNoGradScope()
	defer data.Close()
	x := randImage(data, 5, 4, 3, 96, 96)
	y := data.FromFloat32([]float32{1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1}, 4, 5)
	var losses []float64
	for it := range 8 {
		s := torch.NewScope()
		fm, lg := m.Forward(s, x, true)
		loss := s.MultilabelSoftMargin(lg, y)
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if it == 0 {
			if !slices.Equal(fm.Shape(), []int64{4, 6, 12, 12}) {
				t.Fatalf("featmap %v", fm.Shape())
			}
		}
		if err := opt.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		if it == 0 {
			for _, e := range m.Store().Entries() {
				if !anyNonZero(gradOf(t, s, e.T)) {
					t.Fatalf("%s got no gradient", e.Name)
				}
			}
		}
		v, _ := loss.Item()
		losses = append(losses, v)
		if err := opt.Step(1e-2); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if !(losses[len(losses)-1] < 0.9*losses[0]) {
		t.Fatalf("loss did not fall: %v", losses)
	}
}

func TestClassifierBadArguments(t *testing.T) {
	if _, err := nn.NewClassifier("vgg16", 20, torch.CPU()); err == nil || !strings.Contains(err.Error(), "vgg16") {
		t.Fatalf("unknown arch: %v", err)
	}
	if _, err := nn.NewClassifier(nn.ArchSmall, 0, torch.CPU()); err == nil {
		t.Fatal("0 classes accepted")
	}
	if _, err := nn.NewClassifier(nn.ArchResNet38, 20, torch.CPU(), nn.WithWidth(6)); err == nil {
		t.Fatal("width 6 accepted")
	}
	if _, err := nn.NewClassifier(nn.ArchSmall, 5, torch.CPU(), nn.WithSmallWidths([7]int64{8, 8, 8, 0, 8, 8, 8})); err == nil {
		t.Fatal("zero width accepted")
	}
}

// Forward + backward of the small classifier on a batch of 16 96×96 images
// (the SYNTH-RECIPE batch).
func BenchmarkSmallClassifierForwardBackward96(b *testing.B) {
	m := mustClassifier(b, nn.ArchSmall, 5)
	data := torch.NewNoGradScope()
	defer data.Close()
	x := randImage(data, 1, 16, 3, 96, 96)
	y := data.Full([]int64{16, 5}, 0.5, torch.Opts{})
	for b.Loop() {
		s := torch.NewScope()
		_, lg := m.Forward(s, x, true)
		loss := s.MultilabelSoftMargin(lg, y)
		if err := s.Err(); err != nil {
			b.Fatal(err)
		}
		if err := loss.Backward(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
