package activities

import (
	"context"
	"os"
	"path/filepath"
	"slices"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/stages/train"
)

// TrainRequest trains one mode's classifier.
type TrainRequest struct {
	Stage  Stage          `json:"stage"`
	Data   runconfig.Data `json:"data"`
	Config train.Config   `json:"config"`
	// Saliency is required by mode l2g-shape.
	Saliency *SaliencyResult `json:"saliency,omitempty"`
	// InitWeights initialises the nets (.safetensors); "" starts from the
	// random initialisation of Config.Seed.
	InitWeights string `json:"init_weights,omitempty"`
	Device      string `json:"device,omitempty"`
}

// Train runs the training stage. A retried attempt resumes from the
// checkpoint named in the last heartbeat of the attempt before it.
func (a *Activities) Train(ctx context.Context, req TrainRequest) (TrainResult, error) {
	return deref(execute(ctx, a, job[*TrainResult]{
		kind: temporalcfg.StageTrain, stage: req.Stage, config: req.Config,
		inputs: func(ctx context.Context) ([]Input, error) {
			in, _, err := a.datasetInput(ctx, "dataset", datasetSpec(req.Data, req.Data.TrainList), a.heartbeat(ctx))
			if err != nil {
				return nil, err
			}
			inputs := []Input{in}
			if req.InitWeights != "" {
				w, err := a.fileInput(ctx, "init_weights", req.InitWeights)
				if err != nil {
					return nil, err
				}
				inputs = append(inputs, w)
			}
			if req.Config.Mode == train.ModeL2GShape {
				if req.Saliency == nil {
					return nil, badRequest("saliency", "mode %s needs the saliency stage's maps", req.Config.Mode)
				}
				inputs = append(inputs, upstream("saliency", req.Saliency.Ref))
			}
			return inputs, nil
		},
		run: func(ctx context.Context, dir string) (*TrainResult, []string, map[string]float64, error) {
			dev, release, err := a.device(ctx, req.Device)
			if err != nil {
				return nil, nil, nil, err
			}
			defer release()
			in := train.Inputs{DataRoot: req.Data.Root, TrainList: req.Data.TrainList, OutDir: dir, Device: dev, InitWeights: req.InitWeights}
			if req.Saliency != nil {
				in.SalDir = req.Saliency.MapsDir
			}
			in.ResumeFrom = a.resumePoint(ctx, filepath.Join(dir, train.CheckpointDir))
			res := &TrainResult{Mode: string(req.Config.Mode), ResumedFrom: in.ResumeFrom}
			out, err := train.Run(ctx, req.Config, in, a.resumeTracker(ctx, in.ResumeFrom, &res.ResumedAt))
			if err != nil {
				return nil, nil, nil, err
			}
			res.Checkpoint, res.LocalCheckpoint, res.Log = out.Checkpoint, out.LocalCheckpoint, out.Log
			res.Iterations, res.FinalLosses = out.Iterations, out.FinalLosses
			res.FinalLoss = out.FinalLosses[train.LossTotal]
			metrics := map[string]float64{"iterations": float64(out.Iterations), "seconds": out.Seconds}
			for k, v := range out.FinalLosses {
				metrics["final_"+k] = v
			}
			return res, nil, metrics, nil
		},
	}))
}

// resumePoint is the checkpoint a retried attempt continues from: the one
// in the last heartbeat. If the stage has pruned that file since (the SDK
// throttles heartbeats, so the last one sent can lag a checkpoint or two),
// the newest checkpoint in dir is used; the stage checks that it belongs to
// the same config and data.
func (a *Activities) resumePoint(ctx context.Context, dir string) string {
	p, ok := lastHeartbeat(ctx)
	if !ok || p.Checkpoint == "" {
		return ""
	}
	if _, err := os.Stat(p.Checkpoint); err == nil {
		a.logger.Info("resuming from the checkpoint of the last heartbeat", "checkpoint", p.Checkpoint, "iteration", p.Iteration)
		return p.Checkpoint
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "iter_*.safetensors"))
	if len(matches) == 0 {
		a.logger.Warn("the heartbeat's checkpoint is gone and no other exists; starting over", "checkpoint", p.Checkpoint)
		return ""
	}
	slices.Sort(matches) // zero-padded iteration numbers
	newest := matches[len(matches)-1]
	a.logger.Warn("the heartbeat's checkpoint is gone; resuming from the newest one", "heartbeat", p.Checkpoint, "checkpoint", newest)
	return newest
}

// resumeTracker heartbeats every report and records the iteration of a
// resumed run: the stages' first report after restoring a checkpoint
// carries it.
func (a *Activities) resumeTracker(ctx context.Context, resumeFrom string, at *int) stages.ProgressFunc {
	hb := a.heartbeat(ctx)
	first := true
	return func(p stages.Progress) {
		if first && resumeFrom != "" && p.Checkpoint == resumeFrom {
			*at = p.Iteration
		}
		first = false
		hb(p)
	}
}

// upstream is an input produced by an earlier stage.
func upstream(name string, r Ref) Input {
	return Input{Name: name, Path: r.Manifest, Digest: r.Digest}
}

// badRequest is a malformed request: a workflow bug or a hand-made call,
// never worth retrying.
func badRequest(field, format string, args ...any) error {
	return badinput.New("", field, "bad request: "+format, args...)
}

// datasetSpec opens list of d.
func datasetSpec(d runconfig.Data, list string) data.Spec {
	return data.Spec{Root: d.Root, Kind: d.DataKind(), List: list}
}
