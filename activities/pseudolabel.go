package activities

import (
	"context"
	"fmt"

	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/stages/pseudolabel"
)

// PseudolabelRequest turns one branch's CAMs into pseudo-labels.
type PseudolabelRequest struct {
	Stage  Stage              `json:"stage"`
	Config pseudolabel.Config `json:"config"`
	CAM    CAMResult          `json:"cam"`
	// Saliency is required by background: saliency.
	Saliency *SaliencyResult `json:"saliency,omitempty"`
}

// Pseudolabel exports the pseudo-labels as Parquet (and PNGs).
func (a *Activities) Pseudolabel(ctx context.Context, req PseudolabelRequest) (PseudolabelResult, error) {
	useSal := req.Config.Background == pseudolabel.BackgroundSaliency
	return deref(execute(ctx, a, job[*PseudolabelResult]{
		kind: temporalcfg.StagePseudolabel, stage: req.Stage, config: req.Config,
		inputs: func(ctx context.Context) ([]Input, error) {
			if req.CAM.CAMs == "" {
				return nil, badRequest("cam", "no CAM dataset given")
			}
			inputs := []Input{upstream("cam", req.CAM.Ref)}
			if useSal {
				if req.Saliency == nil {
					return nil, badRequest("saliency", "background %s needs the saliency stage's maps", req.Config.Background)
				}
				inputs = append(inputs, upstream("saliency", req.Saliency.Ref))
			}
			return inputs, nil
		},
		run: func(ctx context.Context, dir string) (*PseudolabelResult, []string, map[string]float64, error) {
			in := pseudolabel.Inputs{CAMs: req.CAM.CAMs, OutDir: dir, RunID: req.Stage.Run.ID}
			if useSal {
				in.SalDir = req.Saliency.MapsDir
			}
			out, err := pseudolabel.Run(ctx, req.Config, in, a.heartbeat(ctx))
			if err != nil {
				return nil, nil, nil, err
			}
			metrics := map[string]float64{"images": float64(out.Images), "ignore_fraction": out.IgnoreFraction}
			for k, f := range out.LabelFractions {
				metrics[fmt.Sprintf("label_fraction_%d", k)] = f
			}
			return &PseudolabelResult{
				Parquet: out.Parquet, PNGDir: out.PNGDir, Images: out.Images,
				LabelFractions: out.LabelFractions, IgnoreFraction: out.IgnoreFraction,
			}, nil, metrics, nil
		},
	}))
}
