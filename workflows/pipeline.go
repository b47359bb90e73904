// Package workflows holds the Pipeline workflow: saliency → train → cam →
// cam_eval → pseudolabel → evaluate for every compared training mode (the
// branches run side by side), then segtrain on one branch's pseudo-labels
// and the evaluation of its predictions. Workflow code is deterministic: no
// I/O, no wall clock, no map iteration; run paths derive from the workflow
// id; activity options come in the input; behaviour changes go behind
// workflow.GetVersion. The "status" query reports every stage.
package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/l2g/l2g/activities"
	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/temporalcfg"
)

// QueryStatus is the name of Pipeline's status query.
const QueryStatus = "status"

// PipelineInput is a whole run, resolved by the CLI: the pipeline config
// and each stage's activity options from temporal.yaml.
type PipelineInput struct {
	// RunsRoot is the absolute folder holding one folder per run (the
	// workflow id) and the manifest index; every worker must see it.
	RunsRoot string           `json:"runs_root"`
	Config   runconfig.Config `json:"config"`
	// Activities holds the options of every stage kind
	// (temporalcfg.StageNames).
	Activities map[string]temporalcfg.ActivityOptions `json:"activities"`
	// From forces this stage kind and every later one to run again even
	// when a manifest matches (l2g rerun --from); earlier stages are
	// skipped through their manifests and reuse the earlier artifacts.
	From string `json:"from,omitempty"`
	// RerunOf is the run this one repeats, for the record.
	RerunOf string `json:"rerun_of,omitempty"`
}

// PipelineResult locates every stage's outputs and carries the headline
// metrics.
type PipelineResult struct {
	RunID    string                     `json:"run_id"`
	Dir      string                     `json:"dir"`
	Saliency *activities.SaliencyResult `json:"saliency,omitempty"`
	Branches []Branch                   `json:"branches"`
	SegMode  string                     `json:"seg_mode"`
	SegTrain activities.SegTrainResult  `json:"segtrain"`
	SegEval  activities.EvalResult      `json:"seg_eval"`
}

// Branch is one training mode's chain.
type Branch struct {
	Mode        string                       `json:"mode"`
	Train       activities.TrainResult       `json:"train"`
	CAM         activities.CAMResult         `json:"cam"`
	CAMEval     activities.EvalResult        `json:"cam_eval"`
	Pseudolabel activities.PseudolabelResult `json:"pseudolabel"`
	Eval        activities.EvalResult        `json:"eval"`
}

// Stage kinds in pipeline order; --from takes one of them.
func stageRank(kind string) int { return slices.Index(temporalcfg.StageNames(), kind) }

// ValidateFrom checks a --from stage kind.
func ValidateFrom(from string) error {
	if from != "" && stageRank(from) < 0 {
		return fmt.Errorf("unknown stage %q (want one of %v)", from, temporalcfg.StageNames())
	}
	return nil
}

// Pipeline runs the whole pipeline. A non-retryable stage failure cancels
// the other branches and fails the run with the stage's error.
func Pipeline(ctx workflow.Context, in PipelineInput) (PipelineResult, error) {
	runID := workflow.GetInfo(ctx).WorkflowExecution.ID
	p := &pipeline{in: in, run: activities.Run{ID: runID, Root: in.RunsRoot}}
	p.status = newStatus(runID, p.run.Dir(), in.Config, workflow.Now(ctx))
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return *p.status, nil }); err != nil {
		return PipelineResult{}, err
	}
	res, err := p.execute(ctx)
	p.status.finish(workflow.Now(ctx), err)
	return res, err
}

type pipeline struct {
	in     PipelineInput
	run    activities.Run
	status *Status
}

func (p *pipeline) execute(ctx workflow.Context) (PipelineResult, error) {
	cfg := p.in.Config
	if err := ValidateFrom(p.in.From); err != nil {
		return PipelineResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrInvalidInput, nil)
	}
	if len(cfg.Modes) == 0 || p.in.RunsRoot == "" {
		return PipelineResult{}, temporal.NewNonRetryableApplicationError("pipeline input has no modes or no runs root", activities.ErrInvalidInput, nil)
	}
	for _, kind := range temporalcfg.StageNames() {
		if _, ok := p.in.Activities[kind]; !ok {
			return PipelineResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("pipeline input has no activity options for stage %s", kind), activities.ErrInvalidInput, nil)
		}
	}
	res := PipelineResult{RunID: p.run.ID, Dir: p.run.Dir(), SegMode: string(cfg.SegMode)}
	var a *activities.Activities

	if cfg.NeedsSaliency() {
		var sal activities.SaliencyResult
		err := p.call(ctx, temporalcfg.StageSaliency, "saliency", a.Saliency, activities.SaliencyRequest{
			Stage: p.stage(temporalcfg.StageSaliency, "saliency"), Data: cfg.Data, Config: cfg.Saliency,
		}, &sal, func() map[string]float64 { return metrics("maps", float64(sal.Maps)) })
		if err != nil {
			return res, err
		}
		res.Saliency = &sal
	}

	// The branches run side by side; the first failure cancels the rest.
	bctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	res.Branches = make([]Branch, len(cfg.Modes))
	errs := workflow.NewChannel(ctx)
	for i := range cfg.Modes {
		workflow.Go(bctx, func(gctx workflow.Context) {
			var err error
			res.Branches[i], err = p.branch(gctx, i, res.Saliency)
			errs.Send(gctx, err)
		})
	}
	var first error
	for range cfg.Modes {
		var err error
		errs.Receive(ctx, &err)
		if err != nil && first == nil {
			first = err
			cancel()
		}
	}
	if first != nil {
		return res, first
	}

	seg := res.Branches[slices.Index(cfg.Modes, cfg.SegMode)]
	err := p.call(ctx, temporalcfg.StageSegTrain, "segtrain", a.SegTrain, activities.SegTrainRequest{
		Stage: p.stage(temporalcfg.StageSegTrain, "segtrain"), Data: cfg.Data, Config: cfg.SegTrain,
		Labels: seg.Pseudolabel, Device: cfg.Device,
	}, &res.SegTrain, func() map[string]float64 {
		return metrics("val_miou", float64(res.SegTrain.MIoU), "iterations", float64(res.SegTrain.Iterations))
	})
	if err != nil {
		return res, err
	}
	err = p.call(ctx, temporalcfg.StageEvaluate, "evaluate-seg", a.Evaluate, activities.EvaluateRequest{
		Stage: p.stage(temporalcfg.StageEvaluate, "evaluate-seg"), Data: cfg.Data, List: cfg.Data.ValList,
		Config: cfg.Evaluate, Labels: res.SegTrain.PredParquet, From: res.SegTrain.Ref, Protocol: activities.ProtocolSeg,
	}, &res.SegEval, evalMetrics(&res.SegEval))
	return res, err
}

// branch trains mode i and turns its CAMs into scored pseudo-labels.
func (p *pipeline) branch(ctx workflow.Context, i int, sal *activities.SaliencyResult) (Branch, error) {
	cfg := p.in.Config
	mode := cfg.Modes[i]
	b := Branch{Mode: string(mode)}
	var a *activities.Activities
	name := func(kind string) string { return kind + "-" + string(mode) }

	treq := activities.TrainRequest{
		Stage: p.stage(temporalcfg.StageTrain, name("train")), Data: cfg.Data,
		Config: cfg.TrainConfig(mode), Device: cfg.Device,
	}
	if runconfig.ModeUsesSaliency(mode) {
		treq.Saliency = sal
	}
	err := p.call(ctx, temporalcfg.StageTrain, treq.Stage.Name, a.Train, treq, &b.Train, func() map[string]float64 {
		return metrics("iterations", float64(b.Train.Iterations), "final_loss", b.Train.FinalLoss)
	})
	if err != nil {
		return b, err
	}
	creq := activities.CAMRequest{Stage: p.stage(temporalcfg.StageCAM, name("cam")), Data: cfg.Data, Config: cfg.CAM, Train: b.Train, Device: cfg.Device}
	err = p.call(ctx, temporalcfg.StageCAM, creq.Stage.Name, a.CAM, creq, &b.CAM, func() map[string]float64 {
		return metrics("images", float64(b.CAM.Images))
	})
	if err != nil {
		return b, err
	}
	ereq := activities.CAMEvalRequest{Stage: p.stage(temporalcfg.StageCAMEval, name("cam_eval")), Data: cfg.Data, Config: cfg.CAMEval, CAM: b.CAM, Saliency: sal}
	if err := p.call(ctx, temporalcfg.StageCAMEval, ereq.Stage.Name, a.CAMEval, ereq, &b.CAMEval, evalMetrics(&b.CAMEval)); err != nil {
		return b, err
	}
	preq := activities.PseudolabelRequest{Stage: p.stage(temporalcfg.StagePseudolabel, name("pseudolabel")), Config: cfg.Pseudolabel, CAM: b.CAM, Saliency: sal}
	err = p.call(ctx, temporalcfg.StagePseudolabel, preq.Stage.Name, a.Pseudolabel, preq, &b.Pseudolabel, func() map[string]float64 {
		return metrics("images", float64(b.Pseudolabel.Images), "ignore_fraction", b.Pseudolabel.IgnoreFraction)
	})
	if err != nil {
		return b, err
	}
	vreq := activities.EvaluateRequest{
		Stage: p.stage(temporalcfg.StageEvaluate, name("evaluate")), Data: cfg.Data, List: cfg.Data.EvalList,
		Config: cfg.Evaluate, Labels: b.Pseudolabel.Parquet, From: b.Pseudolabel.Ref, Protocol: activities.ProtocolCAM,
	}
	err = p.call(ctx, temporalcfg.StageEvaluate, vreq.Stage.Name, a.Evaluate, vreq, &b.Eval, evalMetrics(&b.Eval))
	return b, err
}

// stage is the request header of a stage instance; stages at or after
// In.From are forced to run again.
func (p *pipeline) stage(kind, name string) activities.Stage {
	return activities.Stage{Run: p.run, Name: name, Force: p.in.From != "" && stageRank(kind) >= stageRank(p.in.From)}
}

// call runs one activity with its stage's options, keeping the status
// current; headline reads the stage's main numbers from the result.
func (p *pipeline) call(ctx workflow.Context, kind, name string, fn, req, res any, headline func() map[string]float64) error {
	ao := p.in.Activities[kind].Workflow()
	ao.ActivityID = name // l2g status matches pending activities by it
	actx := workflow.WithActivityOptions(ctx, ao)
	p.status.set(name, StateRunning, workflow.Now(ctx), nil)
	err := workflow.ExecuteActivity(actx, fn, req).Get(actx, res)
	now := workflow.Now(ctx)
	if err != nil {
		state := StateFailed
		if temporal.IsCanceledError(err) {
			state = StateCanceled
		}
		p.status.set(name, state, now, err)
		return err
	}
	st := p.status.set(name, StateDone, now, nil)
	if ref := refOf(res); ref != nil {
		st.Dir, st.Manifest, st.Skipped, st.ReusedFrom, st.Seconds = ref.Dir, ref.Manifest, ref.Skipped, ref.ReusedFrom, ref.Seconds
		if ref.Skipped {
			st.State = StateSkipped
		}
	}
	st.Metrics = headline()
	return nil
}

func evalMetrics(r *activities.EvalResult) func() map[string]float64 {
	return func() map[string]float64 {
		return metrics("miou", float64(r.MIoU), "threshold", float64(r.Threshold)) // no threshold for labels (NaN)
	}
}

// refOf returns the Ref embedded in an activity result.
func refOf(res any) *activities.Ref {
	switch r := res.(type) {
	case *activities.SaliencyResult:
		return &r.Ref
	case *activities.TrainResult:
		return &r.Ref
	case *activities.CAMResult:
		return &r.Ref
	case *activities.EvalResult:
		return &r.Ref
	case *activities.PseudolabelResult:
		return &r.Ref
	case *activities.SegTrainResult:
		return &r.Ref
	}
	return nil
}
