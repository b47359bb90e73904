package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
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
