package activities

import (
	"context"

	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/stages/cam"
)

// CAMRequest computes the CAMs of one trained classifier.
type CAMRequest struct {
	Stage  Stage          `json:"stage"`
	Data   runconfig.Data `json:"data"`
	Config cam.Config     `json:"config"`
	Train  TrainResult    `json:"train"`
	Device string         `json:"device,omitempty"`
}

// CAM runs multi-scale CAM inference over the training list.
func (a *Activities) CAM(ctx context.Context, req CAMRequest) (CAMResult, error) {
	return deref(execute(ctx, a, job[*CAMResult]{
		kind: temporalcfg.StageCAM, stage: req.Stage, config: req.Config,
		inputs: func(ctx context.Context) ([]Input, error) {
			in, _, err := a.datasetInput(ctx, "dataset", datasetSpec(req.Data, req.Data.TrainList), a.heartbeat(ctx))
			if err != nil {
				return nil, err
			}
			if req.Train.Checkpoint == "" {
				return nil, badRequest("train", "no trained checkpoint given")
			}
			return []Input{in, upstream("train", req.Train.Ref)}, nil
		},
		run: func(ctx context.Context, dir string) (*CAMResult, []string, map[string]float64, error) {
			dev, release, err := a.device(ctx, firstNonEmpty(req.Device, req.Config.Device))
			if err != nil {
				return nil, nil, nil, err
			}
			defer release()
			out, err := cam.Run(ctx, req.Config, cam.Inputs{
				Checkpoint: req.Train.Checkpoint, DataRoot: req.Data.Root, Kind: req.Data.DataKind(),
				List: req.Data.TrainList, OutDir: dir, Device: dev, RunID: req.Stage.Run.ID,
			}, a.heartbeat(ctx))
			if err != nil {
				return nil, nil, nil, err
			}
			return &CAMResult{CAMs: out.CAMs, PNGDir: out.PNGDir, Images: out.Images}, nil,
				map[string]float64{"images": float64(out.Images), "seconds": out.Seconds}, nil
		},
	}))
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
