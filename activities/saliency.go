package activities

import (
	"context"
	"path/filepath"

	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/stages/saliency"
)

// SaliencyRequest asks for a saliency map of every training image.
type SaliencyRequest struct {
	Stage  Stage           `json:"stage"`
	Data   runconfig.Data  `json:"data"`
	Config saliency.Config `json:"config"`
}

// Saliency runs the saliency stage on the training list into
// <stage>/maps. A retried attempt keeps the maps already written.
func (a *Activities) Saliency(ctx context.Context, req SaliencyRequest) (SaliencyResult, error) {
	var split *data.Split
	return deref(execute(ctx, a, job[*SaliencyResult]{
		kind: temporalcfg.StageSaliency, stage: req.Stage, config: req.Config,
		inputs: func(ctx context.Context) ([]Input, error) {
			in, sp, err := a.datasetInput(ctx, "dataset", datasetSpec(req.Data, req.Data.TrainList), a.heartbeat(ctx))
			split = sp
			return []Input{in}, err
		},
		run: func(ctx context.Context, dir string) (*SaliencyResult, []string, map[string]float64, error) {
			out, err := saliency.Run(ctx, req.Config, saliency.Inputs{
				Items: split.Items, OutDir: filepath.Join(dir, "maps"), Resume: true,
				ManifestPath: filepath.Join(dir, "maps.json"),
			}, a.heartbeat(ctx))
			if err != nil {
				return nil, nil, nil, err
			}
			var extra []string
			if out.Dir != filepath.Join(dir, "maps") { // imported in place
				for _, m := range out.Maps {
					extra = append(extra, m.Path)
				}
			}
			return &SaliencyResult{MapsDir: out.Dir, Maps: len(out.Maps), Method: out.Method}, extra,
				map[string]float64{"maps": float64(len(out.Maps))}, nil
		},
	}))
}
