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

// Change ids of workflow.GetVersion: a run keeps the behaviour it started
// with when workers are upgraded mid-run (the replay test holds a run
// recorded before each change).
const (
	// versionCAMEvalBeside: cam_eval and pseudolabel run side by side
	// (version 1) instead of one after the other.
	versionCAMEvalBeside = "cam-eval-beside-pseudolabel"
)

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
	// Status is the final status (what the query returns), kept so that a
	// finished run can be shown without a worker to answer queries.
	Status Status `json:"status"`
}

// request is implemented by every activity request.
type request interface{ StageHeader() activities.Stage }

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
// the other branches and fails the run with the stage's error; cancelling
// the workflow (l2g cancel) cancels the running activities and waits for
// them to stop (training writes a checkpoint on the way out).
func Pipeline(ctx workflow.Context, in PipelineInput) (PipelineResult, error) {
	runID := workflow.GetInfo(ctx).WorkflowExecution.ID
	p := &pipeline{Plan: Plan{In: in, Run: activities.Run{ID: runID, Root: in.RunsRoot}}}
	p.status = newStatus(runID, p.Run.Dir(), in.Config, workflow.Now(ctx))
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return *p.status, nil }); err != nil {
		return PipelineResult{}, err
	}
	res, err := p.execute(ctx)
	p.status.finish(workflow.Now(ctx), err)
	res.Status = *p.status
	return res, err
}

type pipeline struct {
	Plan
	status *Status
}

func (p *pipeline) execute(ctx workflow.Context) (PipelineResult, error) {
	cfg := p.In.Config
	invalid := func(msg string) error {
		return temporal.NewNonRetryableApplicationError(msg, activities.ErrInvalidInput, nil)
	}
	if err := ValidateFrom(p.In.From); err != nil {
		return PipelineResult{}, invalid(err.Error())
	}
	if len(cfg.Modes) == 0 || p.SegIndex() < 0 || p.In.RunsRoot == "" {
		return PipelineResult{}, invalid("pipeline input has no modes, no seg_mode among them, or no runs root")
	}
	for _, kind := range temporalcfg.StageNames() {
		if _, ok := p.In.Activities[kind]; !ok {
			return PipelineResult{}, invalid(fmt.Sprintf("pipeline input has no activity options for stage %s", kind))
		}
	}
	res := PipelineResult{RunID: p.Run.ID, Dir: p.Run.Dir(), SegMode: string(cfg.SegMode)}
	var a *activities.Activities

	if cfg.NeedsSaliency() {
		var sal activities.SaliencyResult
		err := p.call(ctx, temporalcfg.StageSaliency, a.Saliency, p.Saliency(), &sal, func() map[string]float64 {
			return metrics("maps", float64(sal.Maps))
		})
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

	err := p.call(ctx, temporalcfg.StageSegTrain, a.SegTrain, p.SegTrain(res.Branches[p.SegIndex()].Pseudolabel), &res.SegTrain, func() map[string]float64 {
		return metrics("val_miou", float64(res.SegTrain.MIoU), "iterations", float64(res.SegTrain.Iterations))
	})
	if err != nil {
		return res, err
	}
	err = p.call(ctx, temporalcfg.StageEvaluate, a.Evaluate, p.SegEval(res.SegTrain), &res.SegEval, evalMetrics(&res.SegEval))
	return res, err
}

// branch trains mode i and turns its CAMs into scored pseudo-labels.
func (p *pipeline) branch(ctx workflow.Context, i int, sal *activities.SaliencyResult) (Branch, error) {
	b := Branch{Mode: string(p.In.Config.Modes[i])}
	var a *activities.Activities
	err := p.call(ctx, temporalcfg.StageTrain, a.Train, p.Train(i, sal), &b.Train, func() map[string]float64 {
		return metrics("iterations", float64(b.Train.Iterations), "final_loss", b.Train.FinalLoss)
	})
	if err != nil {
		return b, err
	}
	err = p.call(ctx, temporalcfg.StageCAM, a.CAM, p.CAM(i, b.Train), &b.CAM, func() map[string]float64 {
		return metrics("images", float64(b.CAM.Images))
	})
	if err != nil {
		return b, err
	}
	plMetrics := func() map[string]float64 {
		return metrics("images", float64(b.Pseudolabel.Images), "ignore_fraction", b.Pseudolabel.IgnoreFraction)
	}
	// Version 1 scores the CAMs beside the pseudo-label export (both read
	// only the CAMs); runs recorded before it did one after the other.
	if workflow.GetVersion(ctx, versionCAMEvalBeside, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		if err := p.call(ctx, temporalcfg.StageCAMEval, a.CAMEval, p.CAMEval(i, b.CAM, sal), &b.CAMEval, evalMetrics(&b.CAMEval)); err != nil {
			return b, err
		}
		if err := p.call(ctx, temporalcfg.StagePseudolabel, a.Pseudolabel, p.Pseudolabel(i, b.CAM, sal), &b.Pseudolabel, plMetrics); err != nil {
			return b, err
		}
	} else {
		ev := p.start(ctx, temporalcfg.StageCAMEval, a.CAMEval, p.CAMEval(i, b.CAM, sal))
		pl := p.start(ctx, temporalcfg.StagePseudolabel, a.Pseudolabel, p.Pseudolabel(i, b.CAM, sal))
		errEval := ev.wait(ctx, &b.CAMEval, evalMetrics(&b.CAMEval))
		if err := pl.wait(ctx, &b.Pseudolabel, plMetrics); err != nil {
			return b, err
		}
		if errEval != nil {
			return b, errEval
		}
	}
	err = p.call(ctx, temporalcfg.StageEvaluate, a.Evaluate, p.LabelEval(i, b.Pseudolabel), &b.Eval, evalMetrics(&b.Eval))
	return b, err
}

// call runs one activity with its stage's options, keeping the status
// current; headline reads the stage's main numbers from the result.
func (p *pipeline) call(ctx workflow.Context, kind string, fn any, req request, res any, headline func() map[string]float64) error {
	return p.start(ctx, kind, fn, req).wait(ctx, res, headline)
}

// pending is a started activity.
type pending struct {
	p    *pipeline
	name string
	f    workflow.Future
}

// start schedules one activity with its stage's options.
func (p *pipeline) start(ctx workflow.Context, kind string, fn any, req request) pending {
	name := req.StageHeader().Name
	ao := p.In.Activities[kind].Workflow()
	ao.ActivityID = name // l2g status matches pending activities by it
	ao.WaitForCancellation = true
	p.status.set(name, StateRunning, workflow.Now(ctx), nil)
	return pending{p: p, name: name, f: workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, ao), fn, req)}
}

// wait collects the activity's result and records it in the status.
func (a pending) wait(ctx workflow.Context, res any, headline func() map[string]float64) error {
	err := a.f.Get(ctx, res)
	now := workflow.Now(ctx)
	if err != nil {
		state := StateFailed
		if temporal.IsCanceledError(err) {
			state = StateCanceled
		}
		a.p.status.set(a.name, state, now, err)
		return err
	}
	st := a.p.status.set(a.name, StateDone, now, nil)
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
