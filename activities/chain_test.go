package activities

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/stages/cam"
	"github.com/l2g/l2g/stages/evaluate"
	"github.com/l2g/l2g/stages/pseudolabel"
	"github.com/l2g/l2g/stages/saliency"
	"github.com/l2g/l2g/stages/segtrain"
	"github.com/l2g/l2g/stages/train"
)

// tinyTrain is the small classifier on the 32-px images.
func tinyTrain(mode train.Mode) train.Config {
	c := train.DefaultConfig()
	c.Mode = mode
	c.Arch = "small"
	c.NumClasses = synthClasses
	c.View.ShortSide, c.View.Size = 32, 32
	c.Local = train.LocalConfig{Scheme: "random", N: 2, Crop: 16, IncludeMax: true}
	c.Loss.BgThreshold = 0.1
	c.Optim.LR = 0.01
	c.Optim.Schedule = train.SchedulePoly
	c.BatchSize, c.Epochs, c.MaxIterations = 4, 2, 6
	c.Threads, c.Workers = 1, 2
	c.CheckpointEvery, c.KeepCheckpoints = 1, 0
	return c
}

func tinySeg() segtrain.Config {
	c := segtrain.VOCConfig()
	c.Model = segtrain.ModelConfig{Arch: "small", NumClasses: synthClasses + 1, SmallWidths: []int64{8, 8, 8, 8, 8, 8, 8}}
	c.Augment.Crop = 32
	c.Augment.InputScale = 1.0 / 58
	c.Optim.LR = 0.01
	c.BatchSize, c.IterSize, c.Iterations = 4, 1, 4
	c.Threads, c.Workers = 1, 2
	c.CheckpointEvery, c.KeepCheckpoints = 2, 0
	c.Test.WritePNG = false
	return c
}

// exec runs one activity in a fresh test environment.
func exec[R any](t *testing.T, a *Activities, fn any, req any, setup func(*testsuite.TestActivityEnvironment)) (R, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if setup != nil {
		setup(env)
	}
	var res R
	val, err := env.ExecuteActivity(fn, req)
	if err != nil {
		return res, err
	}
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

// TestTrainResumesFromHeartbeat: a first attempt is interrupted after its
// third iteration (the stage writes a checkpoint when its context ends, as
// when a cancellation arrives through a heartbeat); the activity then runs
// with that attempt's last progress as heartbeat details, as Temporal
// hands them to the next attempt. It must resume from the heartbeat's
// checkpoint at iteration 3, finish all 6 iterations and keep a loss log
// of all of them.
func TestTrainResumesFromHeartbeat(t *testing.T) {
	root := t.TempDir()
	a := New(Options{})
	req := TrainRequest{Stage: testStage(root, "run1", "train-cam"), Data: testData(synthDir), Config: tinyTrain(train.ModeCAM), Device: "cpu"}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var last stages.Progress
	_, err := train.Run(ctx, req.Config, train.Inputs{DataRoot: synthDir, OutDir: req.Stage.Dir()}, func(p stages.Progress) {
		last = p
		if p.Iteration == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || last.Iteration != 3 || last.Checkpoint == "" {
		t.Fatalf("interrupted attempt: %v, last progress %+v", err, last)
	}

	res, err := exec[TrainResult](t, a, a.Train, req, func(env *testsuite.TestActivityEnvironment) {
		env.SetHeartbeatDetails(last)
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != last.Checkpoint || res.ResumedAt != 3 {
		t.Errorf("resumed from %q at %d, want %q at 3", res.ResumedFrom, res.ResumedAt, last.Checkpoint)
	}
	if res.Iterations != 6 || res.Skipped {
		t.Errorf("result %+v", res)
	}
	recs, err := os.ReadFile(res.Log)
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(recs); n != 6 {
		t.Errorf("loss log has %d records, want 6", n)
	}
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// TestResumePointFallsBackToNewestCheckpoint: when the heartbeat's
// checkpoint has been pruned, the newest one in the folder is used.
func TestResumePointFallsBackToNewestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"iter_00000002.safetensors", "iter_00000010.safetensors", "iter_00000004.safetensors"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := New(Options{})
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	var got []string
	probe := func(ctx context.Context) error {
		got = append(got, a.resumePoint(ctx, dir))
		return nil
	}
	env.RegisterActivity(probe)
	// No heartbeat: a first attempt starts from scratch.
	if _, err := env.ExecuteActivity(probe); err != nil {
		t.Fatal(err)
	}
	env.SetHeartbeatDetails(stages.Progress{Iteration: 8, Checkpoint: filepath.Join(dir, "iter_00000008.safetensors")})
	if _, err := env.ExecuteActivity(probe); err != nil {
		t.Fatal(err)
	}
	env.SetHeartbeatDetails(stages.Progress{Iteration: 4, Checkpoint: filepath.Join(dir, "iter_00000004.safetensors")})
	if _, err := env.ExecuteActivity(probe); err != nil {
		t.Fatal(err)
	}
	want := []string{"", filepath.Join(dir, "iter_00000010.safetensors"), filepath.Join(dir, "iter_00000004.safetensors")}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("case %d: resume point %q, want %q", i, got[i], want[i])
		}
	}
}

// TestChain runs every activity once, in pipeline order, on the tiny
// dataset: each consumes the previous one's result, writes a manifest,
// and the metrics come back in the results.
func TestChain(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two small nets")
	}
	root := t.TempDir()
	a := New(Options{})
	d := testData(synthDir)
	st := func(name string) Stage { return testStage(root, "run1", name) }

	sal, err := exec[SaliencyResult](t, a, a.Saliency, SaliencyRequest{Stage: st("saliency"), Data: d, Config: saliency.DefaultConfig()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var beats []stages.Progress
	tr, err := exec[TrainResult](t, a, a.Train, TrainRequest{Stage: st("train-l2g-shape"), Data: d, Config: tinyTrain(train.ModeL2GShape), Saliency: &sal, Device: "cpu"},
		func(env *testsuite.TestActivityEnvironment) {
			env.SetOnActivityHeartbeatListener(func(_ *activity.Info, v converter.EncodedValues) {
				var p stages.Progress
				if err := v.Get(&p); err != nil {
					t.Error(err)
				}
				beats = append(beats, p)
			})
		})
	if err != nil {
		t.Fatal(err)
	}
	// The first report is sent at once (later ones are throttled): the
	// heartbeat details are the stage's progress, with its checkpoint.
	if len(beats) == 0 || beats[0].Stage != train.StageName || beats[0].Iteration != 1 || beats[0].Checkpoint == "" || len(beats[0].Losses) == 0 {
		t.Errorf("heartbeats %+v, want the first iteration's progress with its checkpoint and losses", beats)
	}
	camCfg := cam.DefaultConfig()
	camCfg.Scales, camCfg.Threads, camCfg.Workers, camCfg.Device = []float64{1, 1.5}, 1, 2, "cpu"
	cm, err := exec[CAMResult](t, a, a.CAM, CAMRequest{Stage: st("cam-l2g-shape"), Data: d, Config: camCfg, Train: tr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	evalCfg := evaluate.DefaultConfig()
	evalCfg.Variants = pseudolabel.DefaultVariants(0.25)
	ce, err := exec[EvalResult](t, a, a.CAMEval, CAMEvalRequest{Stage: st("cam_eval-l2g-shape"), Data: d, Config: evalCfg, CAM: cm, Saliency: &sal}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := exec[PseudolabelResult](t, a, a.Pseudolabel, PseudolabelRequest{Stage: st("pseudolabel-l2g-shape"), Config: pseudolabel.DefaultConfig(), CAM: cm}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pe, err := exec[EvalResult](t, a, a.Evaluate, EvaluateRequest{Stage: st("evaluate-l2g-shape"), Data: d, List: d.EvalList,
		Config: evaluate.DefaultConfig(), Labels: pl.Parquet, From: pl.Ref, Protocol: ProtocolCAM}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := exec[SegTrainResult](t, a, a.SegTrain, SegTrainRequest{Stage: st("segtrain"), Data: d, Config: tinySeg(), Labels: pl, Device: "cpu"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	se, err := exec[EvalResult](t, a, a.Evaluate, EvaluateRequest{Stage: st("evaluate-seg"), Data: d, List: d.ValList,
		Config: evaluate.DefaultConfig(), Labels: sg.PredParquet, From: sg.Ref, Protocol: ProtocolSeg}, nil)
	if err != nil {
		t.Fatal(err)
	}

	if cm.Images != 16 || pl.Images != 16 || tr.Iterations != 6 || sg.Iterations != 4 {
		t.Errorf("counts: cam %d, labels %d, train %d, segtrain %d", cm.Images, pl.Images, tr.Iterations, sg.Iterations)
	}
	if math.IsNaN(float64(ce.Threshold)) || len(ce.Variants) != len(evalCfg.Variants) || len(ce.IoU) != synthClasses+1 {
		t.Errorf("cam_eval: %+v", ce)
	}
	for _, r := range []EvalResult{ce, pe, se} {
		if m := float64(r.MIoU); math.IsNaN(m) || m < 0 || m > 1 {
			t.Errorf("%s: mIoU %v", r.Name, m)
		}
	}
	if pe.Images != 16 || se.Images != 8 || se.Protocol != ProtocolSeg || !math.IsNaN(float64(pe.Threshold)) {
		t.Errorf("label evaluations: pseudo %d images, seg %d images %s", pe.Images, se.Images, se.Protocol)
	}
	// Each manifest's inputs name its upstream stage by digest.
	for _, c := range []struct {
		ref      Ref
		upstream string
		digest   string
	}{
		{tr.Ref, "saliency", sal.Digest}, {cm.Ref, "train", tr.Digest}, {ce.Ref, "cam", cm.Digest},
		{pl.Ref, "cam", cm.Digest}, {pe.Ref, "labels", pl.Digest}, {sg.Ref, "labels", pl.Digest}, {se.Ref, "labels", sg.Digest},
	} {
		m, err := ReadManifest(c.ref.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, in := range m.Inputs {
			found = found || (in.Name == c.upstream && in.Digest == c.digest)
		}
		if !found {
			t.Errorf("%s: inputs %+v lack %s=%s", c.ref.Name, m.Inputs, c.upstream, c.digest)
		}
	}
	// The segmentation net's val mIoU is in its manifest's metrics.
	m, _ := ReadManifest(sg.Manifest)
	if v, ok := m.Metrics["val_miou"]; !ok || v != float64(sg.MIoU) {
		t.Errorf("segtrain metrics %v, result mIoU %v", m.Metrics, sg.MIoU)
	}
	if _, err := os.Stat(filepath.Join(sg.Dir, segtrain.CheckpointDir)); err != nil {
		t.Errorf("segtrain checkpoints: %v", err)
	}
	for _, f := range m.Outputs {
		if filepath.Base(filepath.Dir(f.Path)) == segtrain.CheckpointDir {
			t.Errorf("checkpoint %s listed as an output", f.Path)
		}
	}
}
