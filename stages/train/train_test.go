package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/checkpoint"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/safetensors"
	"github.com/l2g/l2g/internal/synth"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/stages"
)

// synthDir is a tiny synthetic dataset shared by the tests of this file:
// 12 images of 32×32, 3 classes, with saliency maps.
var synthDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "l2g-train-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	o := synth.DefaultOptions()
	o.Classes, o.Train, o.Val, o.Width, o.Height, o.Saliency, o.Workers = 3, 12, 0, 32, 32, true, 2
	if _, err := synth.Generate(context.Background(), dir, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	synthDir = dir
	// One thread: bit-identical results do not depend on libtorch's
	// parallel reductions, and the machine is shared.
	if err := torch.SetNumThreads(1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tinyConfig is a small-net L2G run on synthDir: 32-px views, 16-px crops
// (2×2 local maps in a 4×4 global map), batch 4 (3 iterations an epoch).
func tinyConfig(mode Mode) Config {
	c := DefaultConfig()
	c.Mode = mode
	c.Arch = "small"
	c.NumClasses = 3
	c.View.ShortSide, c.View.Size = 32, 32
	c.Local = LocalConfig{Scheme: "random", N: 3, Crop: 16, IncludeMax: true}
	c.Loss.BgThreshold = 0.1
	c.Optim.LR = 0.01
	c.Optim.Schedule = SchedulePoly
	c.BatchSize = 4
	c.Epochs = 2
	c.Threads = 1
	c.Workers = 3
	c.CheckpointEvery = 2
	c.KeepCheckpoints = 0
	return c
}

func readTensors(t *testing.T, path string) (map[string]safetensors.Tensor, map[string]string) {
	t.Helper()
	st, meta, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return st, meta
}

// TestResumeIsExact trains 6 iterations straight, and 6 iterations
// interrupted after 2 (between iterations, by cancelling the context) and
// resumed from the checkpoint the interruption wrote; both nets' weights
// must be bit-identical. ResNet-38 (width 4) is used for its dropout, so
// the restored RNG state matters, and 3 workers load data in parallel.
func TestResumeIsExact(t *testing.T) {
	cfg := tinyConfig(ModeL2GShape)
	cfg.Arch, cfg.Width = "resnet38", 4
	cfg.CheckpointEvery = 0 // only the interruption and epoch ends write one
	cfg.MaxIterations = 6
	ctx := context.Background()

	straight := t.TempDir()
	want, err := Run(ctx, cfg, Inputs{DataRoot: synthDir, OutDir: straight}, nil)
	if err != nil {
		t.Fatal(err)
	}

	split := t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = Run(cctx, cfg, Inputs{DataRoot: synthDir, OutDir: split}, func(p stages.Progress) {
		if p.Iteration == 2 {
			cancel() // Run sees it before iteration 3 and checkpoints iteration 2
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run returned %v, want context.Canceled", err)
	}
	ckpts, _ := filepath.Glob(filepath.Join(split, CheckpointDir, "iter_*.safetensors"))
	if len(ckpts) != 1 || !strings.HasSuffix(ckpts[0], "iter_00000002.safetensors") {
		t.Fatalf("interruption after iteration 2 left checkpoints %v", ckpts)
	}
	got, err := Run(ctx, cfg, Inputs{DataRoot: synthDir, OutDir: split, ResumeFrom: ckpts[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Iterations != 6 || want.Iterations != 6 {
		t.Fatalf("iterations %d and %d, want 6", got.Iterations, want.Iterations)
	}
	for _, pair := range [][2]string{{want.Checkpoint, got.Checkpoint}, {want.LocalCheckpoint, got.LocalCheckpoint}} {
		a, _ := readTensors(t, pair[0])
		b, _ := readTensors(t, pair[1])
		if len(a) != len(b) || len(a) == 0 {
			t.Fatalf("%s has %d tensors, %s %d", pair[0], len(a), pair[1], len(b))
		}
		for n, x := range a {
			if string(x.Data) != string(b[n].Data) {
				t.Errorf("%s: %s differs after resume", filepath.Base(pair[0]), n)
			}
		}
	}
	// The resumed log continues the interrupted one: 6 records, in order.
	recs, err := readLog(got.Log, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 {
		t.Fatalf("log has %d records, want 6", len(recs))
	}
	wantRecs, _ := readLog(want.Log, 1<<30)
	for i, r := range recs {
		if r.Iteration != i+1 || r.Losses[LossTotal] != wantRecs[i].Losses[LossTotal] {
			t.Errorf("log record %d: iteration %d total %v, straight run %v", i, r.Iteration, r.Losses[LossTotal], wantRecs[i].Losses[LossTotal])
		}
	}
}

func TestRunRejectsBadInputs(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		cfg   func(*Config)
		in    func(*Inputs)
		field string
	}{
		{"class count", func(c *Config) { c.NumClasses = 4 }, nil, "num_classes"},
		{"missing saliency", nil, func(in *Inputs) { in.SalDir = t.TempDir() }, "sal_dir"},
		{"device", nil, func(in *Inputs) { in.Device = "tpu" }, "device"},
		{"groups", func(c *Config) {
			c.Optim.Groups = map[string]nn.GroupOpts{"backbone": {LRMult: 1}}
		}, nil, "optim.groups"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyConfig(ModeL2GShape)
			cfg.MaxIterations = 1
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			in := Inputs{DataRoot: synthDir, OutDir: t.TempDir()}
			if tc.in != nil {
				tc.in(&in)
			}
			_, err := Run(ctx, cfg, in, nil)
			var be *badinput.Error
			if !errors.As(err, &be) || be.Field != tc.field {
				t.Fatalf("got %v, want bad input in field %q", err, tc.field)
			}
		})
	}
}

// TestLossFalls trains the small net in mode l2g-shape for 30 epochs (90
// iterations) on the tiny synthetic set: the mean total loss of the last
// epoch must be below that of the first, and so must the transfer and the
// local classification losses.
func TestLossFalls(t *testing.T) {
	cfg := tinyConfig(ModeL2GShape)
	cfg.Epochs = 30
	cfg.CheckpointEvery = 0
	cfg.KeepCheckpoints = 1
	out, err := Run(context.Background(), cfg, Inputs{DataRoot: synthDir, OutDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readLog(out.Log, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 90 {
		t.Fatalf("%d log records, want 90", len(recs))
	}
	mean := func(rs []LogRecord, k string) float64 {
		var s float64
		for _, r := range rs {
			s += r.Losses[k]
		}
		return s / float64(len(rs))
	}
	// The local loss has a floor well above 0: a 16-px crop of a 32-px
	// image often misses objects its label names.
	for _, k := range []string{LossTotal, LossKD, LossClsLocal} {
		first, last := mean(recs[:3], k), mean(recs[87:], k)
		t.Logf("%s: first epoch %.4f, last epoch %.4f", k, first, last)
		if !(last < 0.92*first) {
			t.Errorf("%s did not fall: first epoch %.4f, last epoch %.4f", k, first, last)
		}
	}
	if got := out.FinalLosses[LossTotal]; math.Abs(got-mean(recs, LossTotal)) > 1e-9 {
		t.Errorf("final total loss %v, want the mean of all 90 records %v", got, mean(recs, LossTotal))
	}
	ckpts, _ := filepath.Glob(filepath.Join(filepath.Dir(out.Log), CheckpointDir, "iter_*.safetensors"))
	if len(ckpts) != 1 || filepath.Base(ckpts[0]) != "iter_00000090.safetensors" {
		t.Errorf("keep_checkpoints 1 left %v", ckpts)
	}
}

// TestModes runs two iterations of every mode and checks what each trains
// and writes.
func TestModes(t *testing.T) {
	cases := []struct {
		mode   Mode
		shared bool
		losses []string
		local  bool
	}{
		{ModeCAM, false, []string{LossCls, LossTotal}, false},
		{ModeLocal, false, []string{LossCls, LossTotal}, false},
		{ModeL2G, false, []string{LossKD, LossClsLocal, LossClsGlobal, LossTotal}, true},
		{ModeL2G, true, []string{LossKD, LossClsLocal, LossClsGlobal, LossTotal}, false},
		{ModeL2GShape, false, []string{LossKD, LossClsLocal, LossClsGlobal, LossTotal}, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s shared=%v", tc.mode, tc.shared), func(t *testing.T) {
			cfg := tinyConfig(tc.mode)
			cfg.SharedBackbone = tc.shared
			cfg.MaxIterations = 2
			var reports []stages.Progress
			out, err := Run(context.Background(), cfg, Inputs{DataRoot: synthDir, OutDir: t.TempDir()}, func(p stages.Progress) {
				reports = append(reports, p)
			})
			if err != nil {
				t.Fatal(err)
			}
			if (out.LocalCheckpoint != "") != tc.local {
				t.Errorf("local checkpoint %q, want one: %v", out.LocalCheckpoint, tc.local)
			}
			if len(out.FinalLosses) != len(tc.losses) {
				t.Errorf("losses %v, want %v", out.FinalLosses, tc.losses)
			}
			for _, k := range tc.losses {
				if v, ok := out.FinalLosses[k]; !ok || !(v > 0) {
					t.Errorf("loss %s = %v (present %v), want > 0", k, v, ok)
				}
			}
			if len(reports) != 2 {
				t.Fatalf("%d progress reports, want 2", len(reports))
			}
			last := reports[1]
			if last.Iteration != 2 || last.Total != 2 || last.LR <= 0 || last.ItemsPerS <= 0 || last.ETASeconds != 0 ||
				last.Checkpoint == "" || last.Stage != StageName || len(last.Losses) != len(tc.losses) {
				t.Errorf("last report %+v", last)
			}
			if reports[0].ETASeconds <= 0 {
				t.Errorf("first report has ETA %v, want > 0", reports[0].ETASeconds)
			}
			st, meta := readTensors(t, out.Checkpoint)
			if meta[MetaArch] != "small" || meta[MetaNumClasses] != "3" || meta[MetaNet] != "global" {
				t.Errorf("global weights metadata %v", meta)
			}
			if _, ok := st["fc8.weight"]; !ok {
				t.Errorf("global weights lack fc8.weight: state_dict names expected")
			}
		})
	}
}

// TestResumeRejectsAnotherConfig resumes a checkpoint under a config that
// changes the run (λ) and under one that only changes the thread count.
func TestResumeRejectsAnotherConfig(t *testing.T) {
	cfg := tinyConfig(ModeL2G)
	cfg.MaxIterations = 2
	dir := t.TempDir()
	if _, err := Run(context.Background(), cfg, Inputs{DataRoot: synthDir, OutDir: dir}, nil); err != nil {
		t.Fatal(err)
	}
	ckpt := checkpoint.Name(filepath.Join(dir, CheckpointDir), 2)
	other := cfg
	other.Loss.KDWeight = 3
	_, err := Run(context.Background(), other, Inputs{DataRoot: synthDir, OutDir: dir, ResumeFrom: ckpt}, nil)
	var be *badinput.Error
	if !errors.As(err, &be) || be.Path != ckpt || be.Field != "config.loss.kd_weight" {
		t.Fatalf("resume with another λ: %v, want bad input naming config.loss.kd_weight", err)
	}
	same := cfg
	same.Threads, same.Workers, same.MaxIterations = 2, 1, 3
	out, err := Run(context.Background(), same, Inputs{DataRoot: synthDir, OutDir: dir, ResumeFrom: ckpt}, nil)
	if err == nil || !strings.Contains(err.Error(), "max_iterations") {
		t.Fatalf("resume with another max_iterations: %v, %+v; want it named", err, out)
	}
	same.MaxIterations = 2
	if _, err := Run(context.Background(), same, Inputs{DataRoot: synthDir, OutDir: dir, ResumeFrom: ckpt}, nil); err != nil {
		t.Fatalf("resume with other threads and workers: %v", err)
	}
}

// TestInitWeights starts a run from the weights of another (with zero
// learning rates, so the output shows what was loaded): every tensor but the
// excluded head equals the file's, and the excluded one does not.
func TestInitWeights(t *testing.T) {
	cfg := tinyConfig(ModeL2G)
	cfg.MaxIterations = 2
	src, err := Run(context.Background(), cfg, Inputs{DataRoot: synthDir, OutDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxIterations = 1
	cfg.Seed = 5
	cfg.InitExclude = []string{"fc8."}
	cfg.Optim.Groups = map[string]nn.GroupOpts{"backbone": {}, "new": {}}
	var msg string
	for _, init := range []string{src.Checkpoint, checkpoint.Name(filepath.Join(filepath.Dir(src.Log), CheckpointDir), 2)} {
		out, err := Run(context.Background(), cfg, Inputs{DataRoot: synthDir, OutDir: t.TempDir(), InitWeights: init}, func(p stages.Progress) {
			if p.Message != "" {
				msg = p.Message
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := readTensors(t, src.Checkpoint)
		for _, path := range []string{out.Checkpoint, out.LocalCheckpoint} {
			got, _ := readTensors(t, path)
			for n, x := range got {
				same := string(x.Data) == string(want[n].Data)
				if same == (n == "fc8.weight") {
					t.Errorf("%s from %s: %s equal to the init file: %v", filepath.Base(path), filepath.Base(init), n, same)
				}
			}
		}
		if !strings.Contains(msg, "initialised 17 of 18 tensors") {
			t.Errorf("init message %q", msg)
		}
	}
	_, err = Run(context.Background(), cfg, Inputs{DataRoot: synthDir, OutDir: t.TempDir(), InitWeights: filepath.Join(synthDir, "classes.txt")}, nil)
	var be *badinput.Error
	if !errors.As(err, &be) || be.Field != "init_weights" {
		t.Errorf("init from a text file: %v, want bad input naming init_weights", err)
	}
}
