package segtrain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/checkpoint"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/safetensors"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/stages"
)

func TestScheduleCodes(t *testing.T) {
	s := schedule{n: 7, batch: 3, iterSize: 2, sampler: augment.Sampler{NoShuffle: true}}
	code := func(e, i int) int { return e*7 + i }
	codes, sizes := s.codes(0, 3, code)
	// Epochs of 3 sub-batches (3, 3, 1 images); iteration 1 takes the
	// epoch's last one and the next epoch's first.
	if !reflect.DeepEqual(sizes, []int{3, 3, 1, 3, 3, 1}) {
		t.Errorf("sizes %v", sizes)
	}
	for i, c := range codes {
		if c != i {
			t.Fatalf("codes %v, want 0..13", codes)
		}
	}
	codes, sizes = s.codes(1, 2, code)
	if !reflect.DeepEqual(codes, []int{6, 7, 8, 9}) || !reflect.DeepEqual(sizes, []int{1, 3}) {
		t.Errorf("iteration 1: codes %v sizes %v", codes, sizes)
	}
	s.sampler = augment.Sampler{Seed: 5}
	codes, _ = s.codes(0, 6, code) // four epochs
	seen := map[int]bool{}
	for _, c := range codes {
		seen[c] = true
	}
	if len(codes) != 28 || len(seen) != 28 || reflect.DeepEqual(codes[:7], codes[7:14]) {
		t.Errorf("shuffled codes %v: want each epoch a different permutation", codes)
	}
}

// examples are n training pairs at scale 1, unflipped, crop×crop from the
// pseudo-labels (no 255 when crop ≤ 64: they have no ignore band and
// nothing is padded).
func examples(t testing.TB, n, crop int) []*example {
	t.Helper()
	ctx := context.Background()
	sp := trainSplit(t)
	labels, err := openLabels(ctx, labelParquet, sp, synthClasses+1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig()
	cfg.Augment.Scales, cfg.Augment.Flip, cfg.Augment.Crop = []float64{1}, false, crop
	l := &loader{aug: cfg.deepLab(), split: sp, labels: labels}
	out := make([]*example, n)
	for i := range out {
		if out[i], err = l.load(ctx, 11*i); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func newTestTrainer(t testing.TB, cfg Config) *trainer {
	t.Helper()
	if err := torch.ManualSeed(cfg.Seed); err != nil {
		t.Fatal(err)
	}
	net, err := newModel(cfg.Model, torch.CPU())
	if err != nil {
		t.Fatal(err)
	}
	opt, err := nn.NewSGD([]*nn.Store{net.Store()}, cfg.Optim.Groups, cfg.Optim.Momentum, false)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trainer{cfg: cfg, net: net, opt: opt, dev: torch.CPU()}
	t.Cleanup(tr.close)
	return tr
}

// pilNearest is PIL's NEAREST source index for output pixel i of n → m.
func pilNearest(i, n, m int) int { return int((float64(i) + 0.5) * float64(n) / float64(m)) }

// TestLossIsHandComputed recomputes one sub-batch's loss in Go from the
// network's four outputs: labels taken with PIL nearest at each output's
// size, 255 skipped, cross-entropy averaged over labelled pixels, divided
// by ITER_SIZE.
func TestLossIsHandComputed(t *testing.T) {
	cfg := smallConfig()
	cfg.Augment.Crop = 32
	tr := newTestTrainer(t, cfg)
	exs := examples(t, 2, 32)
	for i := range 32 * 32 / 3 { // an ignore band, as padding leaves
		exs[1].label[3*i] = ignoreLabel
	}
	losses := map[string]float64{LossTotal: 0}
	if err := tr.subStep(exs, losses); err != nil {
		t.Fatal(err)
	}
	s := torch.NewNoGradScope()
	defer s.Close()
	outs := tr.net.Forward(s, inputs(s, exs, 32, cfg.Augment.InputScale, torch.CPU()), true)
	if len(outs) != 4 {
		t.Fatalf("%d outputs", len(outs))
	}
	total := 0.0
	for k, o := range outs {
		v, err := o.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		c, h, w := int(o.Size(1)), int(o.Size(2)), int(o.Size(3))
		sum, n := 0.0, 0
		for b, ex := range exs {
			for y := range h {
				for x := range w {
					lab := ex.label[pilNearest(y, 32, h)*32+pilNearest(x, 32, w)]
					if lab == ignoreLabel {
						continue
					}
					mx := math.Inf(-1)
					for ch := range c {
						mx = math.Max(mx, float64(v[((b*c+ch)*h+y)*w+x]))
					}
					z := 0.0
					for ch := range c {
						z += math.Exp(float64(v[((b*c+ch)*h+y)*w+x]) - mx)
					}
					sum += mx + math.Log(z) - float64(v[((b*c+int(lab))*h+y)*w+x])
					n++
				}
			}
		}
		want := sum / float64(n) / float64(cfg.IterSize)
		if got := losses[outputLossNames[k]]; math.Abs(got-want) > 1e-5*math.Abs(want) {
			t.Errorf("%s = %.7g, want %.7g (%d labelled pixels at %dx%d)", outputLossNames[k], got, want, n, w, h)
		}
		total += want
	}
	if got := losses[LossTotal]; math.Abs(got-total) > 1e-5*total {
		t.Errorf("total %.7g, want %.7g", got, total)
	}
}

// TestAccumulationEqualsOneBatch: with equally many labelled pixels per
// sub-batch, two accumulated sub-batches of 2 give the update of one batch
// of 4 (the mean over 4 images is the mean of the two means).
func TestAccumulationEqualsOneBatch(t *testing.T) {
	exs := examples(t, 4, 32)
	run := func(batch, iterSize int) map[string][]float32 {
		cfg := smallConfig()
		cfg.Augment.Crop = 32
		cfg.BatchSize, cfg.IterSize = batch, iterSize
		tr := newTestTrainer(t, cfg)
		var subs [][]*example
		for i := 0; i < 4; i += batch {
			subs = append(subs, exs[i:i+batch])
		}
		if _, err := tr.step(subs, 0.05); err != nil {
			t.Fatal(err)
		}
		out := map[string][]float32{}
		for n, x := range tr.net.Store().Tensors() {
			v, err := x.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			out[n] = v
		}
		return out
	}
	one, acc := run(4, 1), run(2, 2)
	aspp := 0
	for n, a := range one {
		b := acc[n]
		for i := range a {
			if d := math.Abs(float64(a[i] - b[i])); d > 1e-6+1e-4*math.Abs(float64(a[i])) {
				t.Fatalf("%s[%d]: %v vs %v", n, i, a[i], b[i])
			}
		}
		if strings.HasPrefix(n, "base.aspp") {
			aspp++
		}
	}
	if aspp != 8 {
		t.Errorf("%d ASPP tensors compared, want 8", aspp)
	}
}

func readTensors(t *testing.T, path string) map[string]safetensors.Tensor {
	t.Helper()
	st, _, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestResumeIsExact trains 6 iterations straight, and 6 interrupted after 2
// (by cancelling the context) and resumed from the checkpoint the
// interruption wrote, with 2 data workers: weights and losses must be
// bit-identical.
func TestResumeIsExact(t *testing.T) {
	cfg := smallConfig()
	cfg.Augment.Crop = 32
	cfg.BatchSize, cfg.IterSize, cfg.Iterations = 2, 2, 6
	cfg.Test.CRF = false
	ctx := context.Background()

	straight := t.TempDir()
	want, err := Run(ctx, cfg, Inputs{DataRoot: synthDir, Labels: labelParquet, OutDir: straight}, nil)
	if err != nil {
		t.Fatal(err)
	}
	split := t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The PNG labels here, the Parquet ones elsewhere: the same masks.
	_, err = Run(cctx, cfg, Inputs{DataRoot: synthDir, Labels: labelDir, OutDir: split}, func(p stages.Progress) {
		if p.Iteration == 2 {
			cancel() // Run sees it before iteration 3 and checkpoints iteration 2
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run returned %v, want context.Canceled", err)
	}
	ckpts, _ := filepath.Glob(filepath.Join(split, CheckpointDir, "iter_*.safetensors"))
	if len(ckpts) != 1 || ckpts[0] != checkpoint.Name(filepath.Join(split, CheckpointDir), 2) {
		t.Fatalf("interruption after iteration 2 left %v", ckpts)
	}

	// Another config is refused, naming the field.
	other := cfg
	other.Optim.LR *= 2
	_, err = Run(ctx, other, Inputs{DataRoot: synthDir, Labels: labelParquet, OutDir: split, ResumeFrom: ckpts[0]}, nil)
	wantBad(t, "resume with another lr", err, ckpts[0], "config.optim.lr")

	got, err := Run(ctx, cfg, Inputs{DataRoot: synthDir, Labels: labelParquet, OutDir: split, ResumeFrom: ckpts[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := readTensors(t, want.Checkpoint), readTensors(t, got.Checkpoint)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Error("resumed weights differ from the straight run's")
	}
	la, err := os.ReadFile(want.Log)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := os.ReadFile(got.Log)
	// Losses agree exactly; throughput does not.
	strip := func(b []byte) []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			out = append(out, l[:strings.Index(l, `"images_per_s"`)])
		}
		return out
	}
	if sa, sb := strip(la), strip(lb); len(sa) != 6 || !reflect.DeepEqual(sa, sb) {
		t.Errorf("logs differ:\n%s\n%s", la, lb)
	}
	if got.FinalLoss != want.FinalLoss || !(want.FinalLoss > 0) {
		t.Errorf("final loss %v vs %v", got.FinalLoss, want.FinalLoss)
	}
	// The model file rebuilds the network.
	net, m, err := LoadModel(got.Checkpoint, torch.CPU())
	if err != nil {
		t.Fatal(err)
	}
	defer net.Store().Close()
	if !reflect.DeepEqual(m, cfg.Model) || net.NumClasses() != 4 {
		t.Errorf("model %+v, %d classes", m, net.NumClasses())
	}
}

func TestRunBadInput(t *testing.T) {
	ctx := context.Background()
	cfg := smallConfig()
	cfg.Iterations = 1
	out := t.TempDir()
	_, err := Run(ctx, cfg, Inputs{DataRoot: synthDir, OutDir: out}, nil)
	wantBad(t, "no labels", err, "", "labels")
	cfg.Model.NumClasses = 5
	_, err = Run(ctx, cfg, Inputs{DataRoot: synthDir, Labels: labelParquet, OutDir: out}, nil)
	wantBad(t, "class count", err, filepath.Join(synthDir, "train_aug.txt"), "num_classes")
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("failed runs left %d files", len(entries))
	}
}

// TestInitWeights loads one net's weights into another: from a model file,
// from bare DeepLabV1 names (no "base."), and from a training checkpoint,
// with the ASPP excluded; the backbone must come from the file and the
// ASPP stay as initialised.
func TestInitWeights(t *testing.T) {
	cfg := smallConfig()
	cfg.Seed = 1
	src := newTestTrainer(t, cfg)
	dir := t.TempDir()
	model := filepath.Join(dir, "model.safetensors")
	if err := src.net.Store().Save(model, nil); err != nil {
		t.Fatal(err)
	}
	bare := map[string]safetensors.Tensor{}
	for n, x := range readTensors(t, model) {
		bare[strings.TrimPrefix(n, "base.")] = x
	}
	bare["fc.weight"] = safetensors.Tensor{DType: "F32", Shape: []int64{1}, Data: make([]byte, 4)} // DeepLabV1's classifier, dropped
	bareFile := filepath.Join(dir, "bare.safetensors")
	if err := safetensors.Write(bareFile, bare, nil); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "ckpt.safetensors")
	src.run = checkpoint.Run{Format: CheckpointFormat, Config: "x: 1\n"}
	if err := checkpoint.Save(ckpt, src.run, 1, src.parts(), nil); err != nil {
		t.Fatal(err)
	}
	want := readTensors(t, model)
	for _, file := range []string{model, bareFile, ckpt} {
		cfg.Seed = 2
		dst := newTestTrainer(t, cfg)
		before := map[string][]float32{}
		for n, x := range dst.net.Store().Tensors() {
			before[n], _ = x.Float32s()
		}
		msg, err := loadInit(dst.net, file, "", []string{"base.aspp."})
		if err != nil {
			t.Fatal(err)
		}
		n := len(dst.net.Store().Entries())
		if !strings.Contains(msg, fmt.Sprintf("initialised %d of %d", n-8, n)) {
			t.Errorf("%s: %s", file, msg)
		}
		for name, x := range dst.net.Store().Tensors() {
			v, _ := x.Float32s()
			b, err := x.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(name, "base.aspp.") {
				if !reflect.DeepEqual(v, before[name]) {
					t.Errorf("%s: excluded %s changed", file, name)
				}
			} else if !reflect.DeepEqual(b, want[name].Data) {
				t.Errorf("%s: %s not loaded", file, name)
			}
		}
	}
	dst := newTestTrainer(t, cfg)
	_, err := loadInit(dst.net, model, "resnet38-mxnet", nil)
	wantBad(t, "classifier source", err, model, "init_source")
	_, err = loadInit(dst.net, model, "", []string{"base."})
	wantBad(t, "nothing matches", err, model, "init_weights")
}
