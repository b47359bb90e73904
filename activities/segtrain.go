package activities

import (
	"context"
	"path/filepath"

	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/stages/segtrain"
)

// SegTrainRequest trains the segmentation net on one branch's
// pseudo-labels and predicts the validation list.
type SegTrainRequest struct {
	Stage  Stage             `json:"stage"`
	Data   runconfig.Data    `json:"data"`
	Config segtrain.Config   `json:"config"`
	Labels PseudolabelResult `json:"labels"`
	// InitWeights initialises the network (.safetensors); "" starts from
	// the random initialisation of Config.Seed.
	InitWeights string `json:"init_weights,omitempty"`
	Device      string `json:"device,omitempty"`
}

// SegTrain runs the segmentation stage. A retried attempt resumes from the
// checkpoint named in the last heartbeat.
func (a *Activities) SegTrain(ctx context.Context, req SegTrainRequest) (SegTrainResult, error) {
	return deref(execute(ctx, a, job[*SegTrainResult]{
		kind: temporalcfg.StageSegTrain, stage: req.Stage, config: req.Config,
		inputs: func(ctx context.Context) ([]Input, error) {
			if req.Labels.Parquet == "" {
				return nil, badRequest("labels", "no pseudo-labels given")
			}
			tr, _, err := a.datasetInput(ctx, "dataset", datasetSpec(req.Data, req.Data.SegTrainList), a.heartbeat(ctx))
			if err != nil {
				return nil, err
			}
			val, _, err := a.datasetInput(ctx, "val", datasetSpec(req.Data, req.Data.ValList), a.heartbeat(ctx))
			if err != nil {
				return nil, err
			}
			inputs := []Input{tr, val, upstream("labels", req.Labels.Ref)}
			if req.InitWeights != "" {
				w, err := a.fileInput(ctx, "init_weights", req.InitWeights)
				if err != nil {
					return nil, err
				}
				inputs = append(inputs, w)
			}
			return inputs, nil
		},
		run: func(ctx context.Context, dir string) (*SegTrainResult, []string, map[string]float64, error) {
			dev, release, err := a.device(ctx, req.Device)
			if err != nil {
				return nil, nil, nil, err
			}
			defer release()
			in := segtrain.Inputs{
				DataRoot: req.Data.Root, TrainList: req.Data.SegTrainList, Labels: req.Labels.Parquet,
				ValList: req.Data.ValList, OutDir: dir, Device: dev, RunID: req.Stage.Run.ID,
				InitWeights: req.InitWeights,
			}
			in.ResumeFrom = a.resumePoint(ctx, filepath.Join(dir, segtrain.CheckpointDir))
			res := &SegTrainResult{ResumedFrom: in.ResumeFrom, MIoU: segmetrics.Metric(nan())}
			out, err := segtrain.Run(ctx, req.Config, in, a.resumeTracker(ctx, in.ResumeFrom, &res.ResumedAt))
			if err != nil {
				return nil, nil, nil, err
			}
			res.Checkpoint, res.Log, res.Iterations, res.FinalLoss = out.Checkpoint, out.Log, out.Iterations, out.FinalLoss
			res.PredDir, res.PredParquet = out.PredDir, out.PredParquet
			metrics := map[string]float64{"iterations": float64(out.Iterations), "final_loss": out.FinalLoss, "seconds": out.Seconds}
			if out.Metrics != nil {
				res.MIoU = out.Metrics.MIoU
				metrics["val_miou"] = float64(out.Metrics.MIoU)
				metrics["val_miou_raw"] = float64(out.Metrics.Raw.MIoUSeg)
			}
			return res, nil, metrics, nil
		},
	}))
}
