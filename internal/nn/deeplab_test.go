package nn_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
)

func mustSegmenter(t testing.TB, arch string, k int, opts ...nn.Option) nn.Segmenter {
	t.Helper()
	m, err := nn.NewSegmenter(arch, k, torch.CPU(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Store().Close)
	return m
}

// deeplabCounts counts DeepLab-v2 parameters (conv weights, ASPP biases) and
// BN buffer elements from spec §8: stem 7×7 (w), bottleneck layers of
// 4w, 8w, 16w, 32w output channels (mid = out/4, projection in block 1),
// four 3×3 ASPP branches with bias.
func deeplabCounts(w int64, blocks [4]int64, k int64) (params, buffers int64) {
	params, buffers = 3*w*49, 4*w
	in := w
	for l, n := range blocks {
		out := 4 * w << l
		mid := out / 4
		for b := range n {
			bin := out
			if b == 0 {
				bin = in
				params += bin * out
				buffers += 4 * out
			}
			params += bin*mid + 9*mid*mid + mid*out
			buffers += 4 * (mid + mid + out)
		}
		in = out
	}
	params += 4 * (9*in*k + k)
	return params, buffers
}

func TestDeepLabV2ResNet101FullWidth(t *testing.T) {
	if testing.Short() {
		t.Skip("full-width network: 105M/44M parameters to allocate")
	}
	m := mustSegmenter(t, nn.ArchDeepLabV2ResNet101, 21)
	st := m.Store()
	wantP, wantB := deeplabCounts(64, [4]int64{3, 4, 23, 3}, 21)
	if wantP != 43943188 || wantB != 210688 { // counted with PyTorch 1.13 modules
		t.Fatalf("test formula gives %d, %d", wantP, wantB)
	}
	if got := st.NumParams(false); got != wantP {
		t.Fatalf("parameters: %d, want %d", got, wantP)
	}
	if got := st.NumParams(true) - st.NumParams(false); got != wantB {
		t.Fatalf("BN buffer elements: %d, want %d", got, wantB)
	}
	wantShapes := map[string][]int64{
		"base.layer1.conv1.conv.weight":              {64, 3, 7, 7},
		"base.layer1.conv1.bn.running_mean":          {64},
		"base.layer2.block1.reduce.conv.weight":      {64, 64, 1, 1},
		"base.layer2.block1.shortcut.conv.weight":    {256, 64, 1, 1},
		"base.layer2.block3.increase.bn.weight":      {256},
		"base.layer3.block1.reduce.conv.weight":      {128, 256, 1, 1},
		"base.layer4.block23.conv3x3.conv.weight":    {256, 256, 3, 3},
		"base.layer4.block23.conv3x3.bn.running_var": {256},
		"base.layer5.block1.shortcut.bn.bias":        {2048},
		"base.layer5.block3.increase.conv.weight":    {2048, 512, 1, 1},
		"base.aspp.c0.weight":                        {21, 2048, 3, 3},
		"base.aspp.c3.bias":                          {21},
	}
	for name, sh := range wantShapes {
		if tt := st.Get(name); tt == nil || !slices.Equal(tt.Shape(), sh) {
			t.Fatalf("%s: %v, want shape %v", name, tt, sh)
		}
	}
	if st.Get("base.layer2.block2.shortcut.conv.weight") != nil {
		t.Fatal("block 2 has a projection shortcut")
	}
	groups := map[string]string{}
	for _, e := range st.Trainable() {
		groups[e.Name] = e.Group
	}
	for _, e := range st.Entries() {
		g, tr := groups[e.Name]
		isBN := strings.Contains(e.Name, ".bn.")
		want := nn.GroupBackbone
		switch {
		case strings.HasPrefix(e.Name, "base.aspp.") && strings.HasSuffix(e.Name, ".weight"):
			want = nn.GroupASPPWeight
		case strings.HasPrefix(e.Name, "base.aspp.") && strings.HasSuffix(e.Name, ".bias"):
			want = nn.GroupASPPBias
		}
		if tr == isBN || (tr && g != want) {
			t.Fatalf("%s: trainable %v group %q", e.Name, tr, g)
		}
	}
	if gs := nn.SegmenterGroups(5e-4); gs[nn.GroupASPPBias].LRMult != 20 || gs[nn.GroupASPPBias].WeightDecay != 0 ||
		gs[nn.GroupASPPWeight].LRMult != 10 || gs[nn.GroupBackbone].WeightDecay != 5e-4 {
		t.Fatalf("segmenter groups %v", gs)
	}
	// ASPP init N(0, 0.01), bias 0.
	w, _ := st.Get("base.aspp.c1.weight").Float32s()
	var ss float64
	for _, v := range w {
		ss += float64(v) * float64(v)
	}
	if std := math.Sqrt(ss / float64(len(w))); math.Abs(std-0.01) > 0.0005 {
		t.Fatalf("ASPP weight std %v, want 0.01", std)
	}
	if b, _ := st.Get("base.aspp.c2.bias").Float32s(); anyNonZero(b) {
		t.Fatalf("ASPP bias %v, want 0", b)
	}
}

// MSC on a 321 input gives 41², 21², 31², 41² (the full ResNet-101 depth at
// reduced width), and l_max is the element-wise max of the scale-1 logits
// and the upsampled 0.5 and 0.75 logits; eval returns only l_max.
func TestDeepLabMSCSizes321(t *testing.T) {
	m := mustSegmenter(t, nn.ArchDeepLabV2ResNet101, 3, nn.WithWidth(4))
	wantP, _ := deeplabCounts(4, [4]int64{3, 4, 23, 3}, 3)
	if got := m.Store().NumParams(false); got != wantP {
		t.Fatalf("width 4: %d parameters, want %d", got, wantP)
	}
	s := torch.NewNoGradScope()
	defer s.Close()
	x := randImage(s, 9, 1, 3, 321, 321)
	outs := m.Forward(s, x, true)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(outs) != 4 {
		t.Fatalf("training returns %d outputs", len(outs))
	}
	for i, side := range []int64{41, 21, 31, 41} {
		if !slices.Equal(outs[i].Shape(), []int64{1, 3, side, side}) {
			t.Fatalf("output %d: %v, want side %d", i, outs[i].Shape(), side)
		}
	}
	up05 := s.Interpolate(outs[1], 41, 41, torch.Bilinear, false)
	up075 := s.Interpolate(outs[2], 41, 41, torch.Bilinear, false)
	var vals [4][]float32
	for i, tt := range []*torch.Tensor{outs[0], up05, up075, outs[3]} {
		vals[i], _ = tt.Float32s()
	}
	fromHalf := 0
	for i := range vals[3] {
		want := max(vals[0][i], vals[1][i], vals[2][i])
		if vals[3][i] != want {
			t.Fatalf("l_max[%d] = %v, want max(%v, %v, %v)", i, vals[3][i], vals[0][i], vals[1][i], vals[2][i])
		}
		if want == vals[1][i] && want != vals[0][i] {
			fromHalf++
		}
	}
	if fromHalf == 0 {
		t.Fatal("no maximum came from the 0.5 scale; the comparison is vacuous")
	}
	ev := m.Forward(s, x, false)
	if err := s.Err(); err != nil || len(ev) != 1 {
		t.Fatalf("eval: %d outputs, %v", len(ev), err)
	}
	e, _ := ev[0].Float32s()
	if !slices.Equal(e, vals[3]) {
		t.Fatal("eval output differs from the training l_max")
	}
}

// DownscaleBilinear reproduces F.interpolate(scale_factor=…, bilinear,
// align_corners=False) of PyTorch ≥ 1.6; the numbers were printed by
// PyTorch 1.13.1 for x = (arange(35)²/10).reshape(1, 1, 5, 7).
func TestDownscaleBilinearMatchesPyTorch(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	v := make([]float32, 35)
	for i := range v {
		v[i] = float32(i*i) / 10
	}
	x := s.FromFloat32(v, 1, 1, 5, 7)
	cases := []struct {
		scale float64
		shape []int64
		want  []float64
	}{
		{0.5, []int64{1, 1, 2, 3}, []float64{2.85, 4.85, 7.65, 33.65, 41.25, 49.65}},
		{0.75, []int64{1, 1, 3, 5}, []float64{0.87222, 1.41667, 2.29444, 3.53889, 5.15, 12.61667, 15.65,
			19.01667, 22.75, 26.85, 40.69445, 46.21667, 52.07222, 58.29445, 64.88334}},
	}
	for _, c := range cases {
		y := nn.DownscaleBilinear(s, x, c.scale)
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(y.Shape(), c.shape) {
			t.Fatalf("scale %v: shape %v, want %v", c.scale, y.Shape(), c.shape)
		}
		got, _ := y.Float32s()
		for i := range got {
			if math.Abs(float64(got[i])-c.want[i]) > 1e-4 {
				t.Fatalf("scale %v: [%d] = %v, want %v", c.scale, i, got[i], c.want[i])
			}
		}
	}
	if nn.DownscaleBilinear(s, x, 0.1); s.Err() == nil {
		t.Fatal("a 5×7 image scaled by 0.1 (empty) was accepted")
	}
}

// The small segmenter trains end to end: four outputs at 96 px, gradients
// on every parameter through the cross-entropy of all four.
func TestSmallSegmenterBackward(t *testing.T) {
	m := mustSegmenter(t, nn.ArchSmall, 6)
	opt, err := nn.NewSGD([]*nn.Store{m.Store()}, nn.SegmenterGroups(5e-4), 0.9, false)
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	s := torch.NewScope()
	defer s.Close()
	outs := m.Forward(s, randImage(s, 11, 2, 3, 96, 96), true)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	var loss *torch.Tensor
	for i, side := range []int64{12, 6, 9, 12} {
		if !slices.Equal(outs[i].Shape(), []int64{2, 6, side, side}) {
			t.Fatalf("output %d: %v", i, outs[i].Shape())
		}
		lab := make([]int64, 2*side*side)
		for j := range lab {
			lab[j] = int64(j % 7)
			if lab[j] == 6 {
				lab[j] = 255
			}
		}
		l := s.CrossEntropy(outs[i], s.FromInt64(lab, 2, side, side), 255, torch.ReduceMean)
		if loss == nil {
			loss = l
		} else {
			loss = s.Add(loss, l)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Store().Entries() {
		if !anyNonZero(gradOf(t, s, e.T)) {
			t.Fatalf("%s got no gradient", e.Name)
		}
	}
	if err := opt.Step(1e-3); err != nil {
		t.Fatal(err)
	}
	if m.Store().Get("base.conv7.weight") == nil || m.Store().Get("base.aspp.c3.bias") == nil {
		t.Fatalf("names %v", m.Store().Names())
	}
}

func TestSegmenterBadArguments(t *testing.T) {
	if _, err := nn.NewSegmenter("deeplabv3", 21, torch.CPU()); err == nil || !strings.Contains(err.Error(), "deeplabv3") {
		t.Fatalf("unknown arch: %v", err)
	}
	if _, err := nn.NewSegmenter(nn.ArchDeepLabV2ResNet101, 21, torch.CPU(), nn.WithWidth(4), nn.WithBlocks(1, 0, 1, 1)); err == nil {
		t.Fatal("a layer with 0 blocks was accepted")
	}
	if _, err := nn.NewSegmenter(nn.ArchSmall, 21, torch.CPU(), nn.WithASPPRates()); err == nil {
		t.Fatal("an ASPP without rates was accepted")
	}
}
