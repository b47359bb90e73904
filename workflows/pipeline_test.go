package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/l2g/l2g/activities"
	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/stages/train"
)

// testInput is a three-branch run (the demo's comparison) with the default
// activity options, retries made fast.
func testInput(t *testing.T) PipelineInput {
	t.Helper()
	cfg := runconfig.Default()
	cfg.Data.Root = "/data/synth"
	cfg.Modes = []train.Mode{train.ModeCAM, train.ModeL2G, train.ModeL2GShape}
	cfg.SegMode = train.ModeL2GShape
	tc := temporalcfg.Default()
	for _, s := range temporalcfg.StageNames() {
		o, _ := tc.Stages.Get(s)
		o.Retry.InitialInterval, o.Retry.MaximumInterval = time.Second, time.Second
		switch s {
		case temporalcfg.StageSaliency:
			tc.Stages.Saliency = o
		case temporalcfg.StageTrain:
			tc.Stages.Train = o
		case temporalcfg.StageCAM:
			tc.Stages.CAM = o
		case temporalcfg.StageCAMEval:
			tc.Stages.CAMEval = o
		case temporalcfg.StagePseudolabel:
			tc.Stages.Pseudolabel = o
		case temporalcfg.StageSegTrain:
			tc.Stages.SegTrain = o
		case temporalcfg.StageEvaluate:
			tc.Stages.Evaluate = o
		}
	}
	ao, err := tc.Activities()
	if err != nil {
		t.Fatal(err)
	}
	return PipelineInput{RunsRoot: "/runs", Config: cfg, Activities: ao}
}

// recorder mocks every activity: each returns a result whose Ref names the
// stage, and the calls are recorded in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
	reqs  map[string]any
}

func (r *recorder) record(name string, req any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, name)
	if r.reqs == nil {
		r.reqs = map[string]any{}
	}
	r.reqs[name] = req
}

func (r *recorder) index(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Index(r.calls, name)
}

func ref(s activities.Stage) activities.Ref {
	return activities.Ref{Name: s.Name, Dir: s.Dir(), Manifest: s.Dir() + "/manifest.json", Digest: "digest-" + s.Name}
}

// mockAll registers mocks for every activity on env.
func (r *recorder) mockAll(env *testsuite.TestWorkflowEnvironment) {
	var a *activities.Activities
	env.OnActivity(a.Saliency, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.SaliencyRequest) (activities.SaliencyResult, error) {
		r.record(req.Stage.Name, req)
		return activities.SaliencyResult{Ref: ref(req.Stage), MapsDir: req.Stage.Dir() + "/maps", Maps: 400}, nil
	}).Maybe()
	env.OnActivity(a.Train, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.TrainRequest) (activities.TrainResult, error) {
		r.record(req.Stage.Name, req)
		return activities.TrainResult{Ref: ref(req.Stage), Mode: string(req.Config.Mode), Checkpoint: req.Stage.Dir() + "/global.safetensors", Iterations: 100, FinalLoss: 0.5}, nil
	}).Maybe()
	env.OnActivity(a.CAM, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.CAMRequest) (activities.CAMResult, error) {
		r.record(req.Stage.Name, req)
		return activities.CAMResult{Ref: ref(req.Stage), CAMs: req.Stage.Dir() + "/cams.parquet", Images: 400}, nil
	}).Maybe()
	env.OnActivity(a.CAMEval, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.CAMEvalRequest) (activities.EvalResult, error) {
		r.record(req.Stage.Name, req)
		return activities.EvalResult{Ref: ref(req.Stage), MIoU: 0.4, Threshold: 0.2, Protocol: activities.ProtocolCAM}, nil
	}).Maybe()
	env.OnActivity(a.Pseudolabel, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.PseudolabelRequest) (activities.PseudolabelResult, error) {
		r.record(req.Stage.Name, req)
		return activities.PseudolabelResult{Ref: ref(req.Stage), Parquet: req.Stage.Dir() + "/pseudo_labels.parquet", Images: 400}, nil
	}).Maybe()
	env.OnActivity(a.Evaluate, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.EvaluateRequest) (activities.EvalResult, error) {
		r.record(req.Stage.Name, req)
		miou := 0.5
		if strings.HasSuffix(req.Stage.Name, "-l2g-shape") {
			miou = 0.6
		}
		return activities.EvalResult{Ref: ref(req.Stage), MIoU: segmetrics.Metric(miou), Threshold: segmetrics.Metric(nanValue()), Protocol: req.Protocol}, nil
	}).Maybe()
	env.OnActivity(a.SegTrain, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.SegTrainRequest) (activities.SegTrainResult, error) {
		r.record(req.Stage.Name, req)
		return activities.SegTrainResult{Ref: ref(req.Stage), PredParquet: req.Stage.Dir() + "/pred.parquet", MIoU: 0.55, Iterations: 300}, nil
	}).Maybe()
}

func nanValue() float64 { var z float64; return z / z }

func queryStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) Status {
	t.Helper()
	v, err := env.QueryWorkflow(QueryStatus)
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPipelineStageOrder: saliency first; in each branch train → cam →
// cam_eval → pseudolabel → evaluate, each consuming the one before; then
// segtrain on the seg_mode branch's pseudo-labels and the evaluation of its
// predictions on the val list. The status query reports every stage done
// with its metrics.
func TestPipelineStageOrder(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(startOptions("demo-1"))
	var r recorder
	r.mockAll(env)
	in := testInput(t)
	env.ExecuteWorkflow(Pipeline, in)
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v, error %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var res PipelineResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 1+5*3+2 {
		t.Fatalf("%d activity calls: %v", len(r.calls), r.calls)
	}
	if r.calls[0] != "saliency" || r.calls[len(r.calls)-2] != "segtrain" || r.calls[len(r.calls)-1] != "evaluate-seg" {
		t.Errorf("calls %v: want saliency first, segtrain and evaluate-seg last", r.calls)
	}
	for _, m := range in.Config.Modes {
		name := func(kind string) string { return kind + "-" + string(m) }
		at := func(kind string) int { return r.index(name(kind)) }
		// cam_eval and pseudolabel both follow cam (side by side since
		// version 1 of cam-eval-beside-pseudolabel); evaluate follows
		// pseudolabel.
		if !(r.index("saliency") < at("train") && at("train") < at("cam") && at("cam") < at("cam_eval") &&
			at("cam") < at("pseudolabel") && at("pseudolabel") < at("evaluate")) {
			t.Errorf("branch %s out of order: %v", m, r.calls)
		}
	}
	// Each request carries the previous stage's result, by reference.
	cr := r.reqs["cam-l2g"].(activities.CAMRequest)
	if cr.Train.Checkpoint != "/runs/demo-1/train-l2g/global.safetensors" || cr.Train.Digest != "digest-train-l2g" {
		t.Errorf("cam-l2g got train result %+v", cr.Train)
	}
	if tr := r.reqs["train-l2g-shape"].(activities.TrainRequest); tr.Saliency == nil || tr.Saliency.MapsDir != "/runs/demo-1/saliency/maps" || tr.Config.Mode != train.ModeL2GShape {
		t.Errorf("train-l2g-shape request %+v", tr)
	}
	if tr := r.reqs["train-cam"].(activities.TrainRequest); tr.Saliency != nil || tr.Config.Mode != train.ModeCAM {
		t.Errorf("train-cam request: saliency %v, mode %s", tr.Saliency, tr.Config.Mode)
	}
	sr := r.reqs["segtrain"].(activities.SegTrainRequest)
	if sr.Labels.Parquet != "/runs/demo-1/pseudolabel-l2g-shape/pseudo_labels.parquet" {
		t.Errorf("segtrain trains on %s, want the l2g-shape pseudo-labels", sr.Labels.Parquet)
	}
	er := r.reqs["evaluate-seg"].(activities.EvaluateRequest)
	if er.Labels != "/runs/demo-1/segtrain/pred.parquet" || er.List != in.Config.Data.ValList || er.Protocol != activities.ProtocolSeg {
		t.Errorf("evaluate-seg request %+v", er)
	}
	if r.reqs["evaluate-cam"].(activities.EvaluateRequest).List != in.Config.Data.EvalList {
		t.Error("pseudo-labels not scored on the eval list")
	}
	for _, name := range r.calls {
		if st := stageOf(r.reqs[name]); st.Force || st.Run.ID != "demo-1" || st.Run.Root != "/runs" {
			t.Errorf("%s: stage header %+v", name, st)
		}
	}

	if len(res.Branches) != 3 || res.Branches[2].Mode != "l2g-shape" || float64(res.Branches[2].Eval.MIoU) != 0.6 || float64(res.SegEval.MIoU) != 0.5 {
		t.Errorf("result %+v", res)
	}
	st := queryStatus(t, env)
	if st.State != RunCompleted || len(st.Stages) != 18 {
		t.Fatalf("status %+v", st)
	}
	for _, s := range st.Stages {
		if s.State != StateDone || s.Manifest == "" || len(s.Metrics) == 0 {
			t.Errorf("stage %+v", s)
		}
	}
	if m := st.Stages[len(st.Stages)-3].Metrics; st.Stages[len(st.Stages)-3].Name != "evaluate-l2g-shape" || m["miou"] != 0.6 {
		t.Errorf("evaluate-l2g-shape status %+v", st.Stages[len(st.Stages)-3])
	}
}

func stageOf(req any) activities.Stage {
	switch r := req.(type) {
	case activities.SaliencyRequest:
		return r.Stage
	case activities.TrainRequest:
		return r.Stage
	case activities.CAMRequest:
		return r.Stage
	case activities.CAMEvalRequest:
		return r.Stage
	case activities.PseudolabelRequest:
		return r.Stage
	case activities.EvaluateRequest:
		return r.Stage
	case activities.SegTrainRequest:
		return r.Stage
	}
	panic(fmt.Sprintf("unknown request %T", req))
}

// TestRerunFromForcesLaterStages: with From = cam, saliency and train run
// unforced (their manifests let them be skipped) and every later stage is
// forced.
func TestRerunFromForcesLaterStages(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(startOptions("demo-2"))
	var r recorder
	r.mockAll(env)
	in := testInput(t)
	in.From, in.RerunOf = temporalcfg.StageCAM, "demo-1"
	env.ExecuteWorkflow(Pipeline, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	for _, name := range r.calls {
		st := stageOf(r.reqs[name])
		want := !(name == "saliency" || strings.HasPrefix(name, "train-"))
		if st.Force != want {
			t.Errorf("%s: force %v, want %v", name, st.Force, want)
		}
	}
}

// TestRetryableFailureIsRetried: a CAM attempt that fails with an ordinary
// error twice is retried under the stage's policy and the run completes.
func TestRetryableFailureIsRetried(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(startOptions("demo-3"))
	var r recorder
	var mu sync.Mutex
	attempts := 0
	var a *activities.Activities
	env.OnActivity(a.CAM, mock.Anything, mock.Anything).Return(func(ctx context.Context, req activities.CAMRequest) (activities.CAMResult, error) {
		if req.Stage.Name == "cam-l2g" {
			mu.Lock()
			attempts++
			n := attempts
			mu.Unlock()
			if n <= 2 {
				return activities.CAMResult{}, errors.New("worker lost the shared filesystem")
			}
		}
		return activities.CAMResult{Ref: ref(req.Stage), CAMs: req.Stage.Dir() + "/cams.parquet"}, nil
	})
	r.mockAll(env)
	env.ExecuteWorkflow(Pipeline, testInput(t))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if attempts != 3 {
		t.Errorf("cam-l2g ran %d times, want 3", attempts)
	}
}

// TestInvalidInputFailsFast: bad input in one branch's training is not
// retried, cancels the other branches, never reaches segtrain, and the run
// fails with the stage's message.
func TestInvalidInputFailsFast(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(startOptions("demo-4"))
	var r recorder
	var mu sync.Mutex
	calls := 0
	var a *activities.Activities
	const msg = "invalid input: /data/synth/JPEGImages/synth_000005.jpg: decode: unexpected EOF"
	env.OnActivity(a.Train, mock.Anything, mock.Anything).Return(func(ctx context.Context, req activities.TrainRequest) (activities.TrainResult, error) {
		r.record(req.Stage.Name, req)
		if req.Stage.Name == "train-l2g" {
			mu.Lock()
			calls++
			mu.Unlock()
			return activities.TrainResult{}, temporal.NewNonRetryableApplicationError(req.Stage.Name, activities.ErrInvalidInput, errors.New(msg))
		}
		// The other branches are still training when it fails.
		select {
		case <-ctx.Done():
			return activities.TrainResult{}, ctx.Err()
		case <-time.After(2 * time.Second):
		}
		return activities.TrainResult{Ref: ref(req.Stage), Checkpoint: "x"}, nil
	})
	r.mockAll(env)
	env.ExecuteWorkflow(Pipeline, testInput(t))
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrInvalidInput || !app.NonRetryable() {
		t.Fatalf("workflow error %v, want the non-retryable InvalidInput", err)
	}
	if !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "train-l2g") {
		t.Errorf("error %q lacks the stage and its message", err)
	}
	if calls != 1 {
		t.Errorf("train-l2g ran %d times, want 1", calls)
	}
	if r.index("segtrain") >= 0 || r.index("cam-cam") >= 0 {
		t.Errorf("stages ran after the failure: %v", r.calls)
	}
	st := queryStatus(t, env)
	states := map[string]string{}
	for _, s := range st.Stages {
		states[s.Name] = s.State
	}
	if st.State != RunFailed || states["train-l2g"] != StateFailed || states["segtrain"] != StatePending || !strings.Contains(st.Error, msg) {
		t.Errorf("status %s (%s), stages %v", st.State, st.Error, states)
	}
	if states["train-cam"] != StateCanceled && states["train-cam"] != StateFailed {
		t.Errorf("train-cam is %s after the failure, want canceled", states["train-cam"])
	}
}

// TestRetriedTrainGetsLastHeartbeat: the first attempt of a training
// activity heartbeats its progress with a checkpoint and then dies; the
// retried attempt receives that heartbeat as its details (what
// Activities.Train resumes from).
func TestRetriedTrainGetsLastHeartbeat(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(startOptions("demo-5"))
	var r recorder
	var a *activities.Activities
	env.OnActivity(a.Train, mock.Anything, mock.Anything).Return(func(ctx context.Context, req activities.TrainRequest) (activities.TrainResult, error) {
		res := activities.TrainResult{Ref: ref(req.Stage), Checkpoint: "x", Iterations: 6}
		if req.Stage.Name != "train-l2g-shape" {
			return res, nil
		}
		if activity.GetInfo(ctx).Attempt == 1 {
			for it := 1; it <= 3; it++ {
				activity.RecordHeartbeat(ctx, stages.Progress{Stage: "train", Iteration: it, Total: 6,
					Checkpoint: fmt.Sprintf("%s/checkpoints/iter_%08d.safetensors", req.Stage.Dir(), it)})
			}
			return activities.TrainResult{}, errors.New("worker process killed")
		}
		var p stages.Progress
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			return activities.TrainResult{}, err
		}
		res.ResumedFrom, res.ResumedAt = p.Checkpoint, p.Iteration
		return res, nil
	})
	r.mockAll(env)
	env.ExecuteWorkflow(Pipeline, testInput(t))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res PipelineResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	tr := res.Branches[2].Train
	if tr.ResumedAt != 3 || tr.ResumedFrom != "/runs/demo-5/train-l2g-shape/checkpoints/iter_00000003.safetensors" {
		t.Errorf("retried attempt resumed from %q at %d, want iteration 3's checkpoint", tr.ResumedFrom, tr.ResumedAt)
	}
}

// TestBadInputRejected: an input without activity options, or with an
// unknown --from stage, fails at once.
func TestBadInputRejected(t *testing.T) {
	for _, c := range []struct {
		name   string
		modify func(*PipelineInput)
		want   string
	}{
		{"no options", func(in *PipelineInput) { delete(in.Activities, temporalcfg.StageCAM) }, "no activity options for stage cam"},
		{"unknown from", func(in *PipelineInput) { in.From = "nosuch" }, `unknown stage "nosuch"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ts testsuite.WorkflowTestSuite
			env := ts.NewTestWorkflowEnvironment()
			var r recorder
			r.mockAll(env)
			in := testInput(t)
			c.modify(&in)
			env.ExecuteWorkflow(Pipeline, in)
			err := env.GetWorkflowError()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
			if len(r.calls) != 0 {
				t.Errorf("activities ran: %v", r.calls)
			}
		})
	}
}

// TestCAMEvalBesidePseudolabel: cam_eval and pseudolabel of a branch run
// at the same time. The cam_eval mock only returns once the pseudolabel
// activity of its branch has started, which never happens when they run
// one after the other.
func TestCAMEvalBesidePseudolabel(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(startOptions("demo-6"))
	var r recorder
	var a *activities.Activities
	env.OnActivity(a.CAMEval, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.CAMEvalRequest) (activities.EvalResult, error) {
		pl := strings.Replace(req.Stage.Name, "cam_eval-", "pseudolabel-", 1)
		for range 100 {
			if r.index(pl) >= 0 {
				return activities.EvalResult{Ref: ref(req.Stage), MIoU: 0.4, Threshold: 0.2}, nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return activities.EvalResult{}, temporal.NewNonRetryableApplicationError(pl+" did not start while "+req.Stage.Name+" ran", "Sequential", nil)
	})
	r.mockAll(env)
	env.ExecuteWorkflow(Pipeline, testInput(t))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
}

// TestCancelStopsRunningStages: cancelling the workflow (l2g cancel)
// cancels the running training activities, which see it through their
// context, and the run ends canceled with no later stage started.
func TestCancelStopsRunningStages(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(startOptions("demo-7"))
	var r recorder
	var mu sync.Mutex
	stopped := 0
	var a *activities.Activities
	env.OnActivity(a.Train, mock.Anything, mock.Anything).Return(func(ctx context.Context, req activities.TrainRequest) (activities.TrainResult, error) {
		r.record(req.Stage.Name, req)
		for {
			activity.RecordHeartbeat(ctx, stages.Progress{Iteration: 1})
			select {
			case <-ctx.Done():
				mu.Lock()
				stopped++
				mu.Unlock()
				return activities.TrainResult{}, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	r.mockAll(env)
	env.SetTestTimeout(30 * time.Second)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Second)
	in := testInput(t)
	// Cancellation reaches an activity with its next heartbeat call that
	// is not throttled: 0.8 × the heartbeat timeout after the last one.
	o := in.Activities[temporalcfg.StageTrain]
	o.HeartbeatTimeout = time.Second
	in.Activities[temporalcfg.StageTrain] = o
	env.ExecuteWorkflow(Pipeline, in)
	err := env.GetWorkflowError()
	if !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error %v, want canceled", err)
	}
	n := 0
	for range 100 { // the mocks run on their own goroutines
		mu.Lock()
		n = stopped
		mu.Unlock()
		if n == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n != 3 {
		t.Errorf("%d training activities saw the cancellation, want 3", n)
	}
	if r.index("cam-cam") >= 0 || r.index("segtrain") >= 0 {
		t.Errorf("stages started after the cancellation: %v", r.calls)
	}
	st := queryStatus(t, env)
	if st.State != RunCanceled {
		t.Errorf("run state %s, want canceled", st.State)
	}
	for _, s := range st.Stages {
		if strings.HasPrefix(s.Name, "train-") && s.State != StateCanceled {
			t.Errorf("%s is %s, want canceled", s.Name, s.State)
		}
	}
}
