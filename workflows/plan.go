package workflows

import (
	"slices"

	"github.com/l2g/l2g/activities"
	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/temporalcfg"
)

// Plan builds each stage's activity request from the run input and the
// upstream results. Pipeline uses it, and so does `l2g stage`, which runs
// one stage without Temporal from the manifests of a run folder; both
// therefore produce the same input hashes.
type Plan struct {
	In  PipelineInput
	Run activities.Run
}

// Stage instance names: the kind, and for branch stages the mode
// ("train-l2g"). They are the folders under the run and the activity ids.
const (
	NameSaliency = "saliency"
	NameSegTrain = "segtrain"
	NameSegEval  = "evaluate-seg"
)

// BranchName is the name of a branch stage of kind for mode.
func BranchName(kind, mode string) string { return kind + "-" + mode }

// BranchKinds are the stage kinds of a branch, in order.
func BranchKinds() []string {
	return []string{temporalcfg.StageTrain, temporalcfg.StageCAM, temporalcfg.StageCAMEval, temporalcfg.StagePseudolabel, temporalcfg.StageEvaluate}
}

// stage is the request header of a stage instance; stages at or after
// In.From are forced to run again.
func (p Plan) stage(kind, name string) activities.Stage {
	force := p.In.From != "" && stageRank(kind) >= stageRank(p.In.From)
	return activities.Stage{Run: p.Run, Name: name, Force: force}
}

// Saliency is the saliency request.
func (p Plan) Saliency() activities.SaliencyRequest {
	c := p.In.Config
	return activities.SaliencyRequest{Stage: p.stage(temporalcfg.StageSaliency, NameSaliency), Data: c.Data, Config: c.Saliency}
}

// Train is the training request of mode i (an index into Config.Modes).
func (p Plan) Train(i int, sal *activities.SaliencyResult) activities.TrainRequest {
	c := p.In.Config
	m := c.Modes[i]
	req := activities.TrainRequest{
		Stage: p.stage(temporalcfg.StageTrain, BranchName(temporalcfg.StageTrain, string(m))),
		Data:  c.Data, Config: c.TrainConfig(m), Device: c.Device, InitWeights: c.Weights.Train,
	}
	if runconfig.ModeUsesSaliency(m) {
		req.Saliency = sal
	}
	return req
}

// CAM is the CAM request of mode i.
func (p Plan) CAM(i int, tr activities.TrainResult) activities.CAMRequest {
	c := p.In.Config
	return activities.CAMRequest{
		Stage: p.stage(temporalcfg.StageCAM, BranchName(temporalcfg.StageCAM, string(c.Modes[i]))),
		Data:  c.Data, Config: c.CAM, Train: tr, Device: c.Device,
	}
}

// CAMEval is the CAM evaluation request of mode i.
func (p Plan) CAMEval(i int, cam activities.CAMResult, sal *activities.SaliencyResult) activities.CAMEvalRequest {
	c := p.In.Config
	return activities.CAMEvalRequest{
		Stage: p.stage(temporalcfg.StageCAMEval, BranchName(temporalcfg.StageCAMEval, string(c.Modes[i]))),
		Data:  c.Data, Config: c.CAMEval, CAM: cam, Saliency: sal,
	}
}

// Pseudolabel is the pseudo-label request of mode i.
func (p Plan) Pseudolabel(i int, cam activities.CAMResult, sal *activities.SaliencyResult) activities.PseudolabelRequest {
	c := p.In.Config
	return activities.PseudolabelRequest{
		Stage:  p.stage(temporalcfg.StagePseudolabel, BranchName(temporalcfg.StagePseudolabel, string(c.Modes[i]))),
		Config: c.Pseudolabel, CAM: cam, Saliency: sal,
	}
}

// LabelEval is the evaluation request of mode i's pseudo-labels, scored
// on the eval list with the CAM protocol, as the reference scores them.
func (p Plan) LabelEval(i int, pl activities.PseudolabelResult) activities.EvaluateRequest {
	c := p.In.Config
	return activities.EvaluateRequest{
		Stage: p.stage(temporalcfg.StageEvaluate, BranchName(temporalcfg.StageEvaluate, string(c.Modes[i]))),
		Data:  c.Data, List: c.Data.EvalList, Config: c.Evaluate,
		Labels: pl.Parquet, From: pl.Ref, Protocol: activities.ProtocolCAM,
	}
}

// SegIndex is the index in Config.Modes of the branch segtrain learns from.
func (p Plan) SegIndex() int { return slices.Index(p.In.Config.Modes, p.In.Config.SegMode) }

// SegTrain is the segmentation request on the seg_mode branch's labels.
func (p Plan) SegTrain(pl activities.PseudolabelResult) activities.SegTrainRequest {
	c := p.In.Config
	return activities.SegTrainRequest{
		Stage: p.stage(temporalcfg.StageSegTrain, NameSegTrain),
		Data:  c.Data, Config: c.SegTrain, Labels: pl, Device: c.Device, InitWeights: c.Weights.SegTrain,
	}
}

// SegEval is the evaluation request of the segmentation predictions on
// the val list (segmentation protocol).
func (p Plan) SegEval(seg activities.SegTrainResult) activities.EvaluateRequest {
	c := p.In.Config
	return activities.EvaluateRequest{
		Stage: p.stage(temporalcfg.StageEvaluate, NameSegEval),
		Data:  c.Data, List: c.Data.ValList, Config: c.Evaluate,
		Labels: seg.PredParquet, From: seg.Ref, Protocol: activities.ProtocolSeg,
	}
}
