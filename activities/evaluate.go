package activities

import (
	"context"
	"fmt"
	"slices"

	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/stages/evaluate"
	"github.com/l2g/l2g/stages/pseudolabel"
)

// CAMEvalRequest scores one branch's CAMs (the threshold sweep and the
// configured pseudo-label rules) on the evaluation list.
type CAMEvalRequest struct {
	Stage  Stage           `json:"stage"`
	Data   runconfig.Data  `json:"data"`
	Config evaluate.Config `json:"config"`
	CAM    CAMResult       `json:"cam"`
	// Saliency is required by pseudo-label variants with background
	// saliency.
	Saliency *SaliencyResult `json:"saliency,omitempty"`
}

// CAMEval runs the evaluation stage on CAMs.
func (a *Activities) CAMEval(ctx context.Context, req CAMEvalRequest) (EvalResult, error) {
	spec := datasetSpec(req.Data, req.Data.EvalList)
	useSal := slices.ContainsFunc(req.Config.Variants, func(v pseudolabel.Variant) bool {
		return v.Background == pseudolabel.BackgroundSaliency
	})
	if useSal && req.Saliency != nil {
		spec.SalDir = req.Saliency.MapsDir
	}
	return deref(execute(ctx, a, job[*EvalResult]{
		kind: temporalcfg.StageCAMEval, stage: req.Stage, config: req.Config,
		inputs: func(ctx context.Context) ([]Input, error) {
			if req.CAM.CAMs == "" {
				return nil, badRequest("cam", "no CAM dataset given")
			}
			in, _, err := a.datasetInput(ctx, "dataset", spec, a.heartbeat(ctx))
			inputs := []Input{in, upstream("cam", req.CAM.Ref)}
			if useSal {
				if req.Saliency == nil {
					return nil, badRequest("saliency", "a variant with background %s needs the saliency stage's maps", pseudolabel.BackgroundSaliency)
				}
				inputs = append(inputs, upstream("saliency", req.Saliency.Ref))
			}
			return inputs, err
		},
		run: func(ctx context.Context, dir string) (*EvalResult, []string, map[string]float64, error) {
			out, err := evaluate.Run(ctx, req.Config, evaluate.Inputs{CAMs: req.CAM.CAMs, Dataset: spec, OutDir: dir}, a.heartbeat(ctx))
			if err != nil {
				return nil, nil, nil, err
			}
			res, metrics := summarize(out, ProtocolCAM)
			return res, nil, metrics, nil
		},
	}))
}

// EvaluateRequest scores label masks (pseudo-labels, segmentation
// predictions) on a list with ground truth.
type EvaluateRequest struct {
	Stage  Stage           `json:"stage"`
	Data   runconfig.Data  `json:"data"`
	List   string          `json:"list"` // relative to Data.Root unless absolute
	Config evaluate.Config `json:"config"`
	// Labels is a label Parquet dataset or a folder of <id>.png written by
	// the stage From.
	Labels string `json:"labels"`
	From   Ref    `json:"from"`
	// Protocol is the headline mIoU: ProtocolCAM for pseudo-labels (as
	// the reference scores them), ProtocolSeg for segmentation output.
	Protocol string `json:"protocol"`
}

// Evaluate runs the evaluation stage on label masks.
func (a *Activities) Evaluate(ctx context.Context, req EvaluateRequest) (EvalResult, error) {
	spec := datasetSpec(req.Data, req.List)
	return deref(execute(ctx, a, job[*EvalResult]{
		kind: temporalcfg.StageEvaluate, stage: req.Stage, config: struct {
			Config   evaluate.Config `json:"config"`
			Protocol string          `json:"protocol"`
		}{req.Config, req.Protocol},
		inputs: func(ctx context.Context) ([]Input, error) {
			if req.Labels == "" {
				return nil, badRequest("labels", "no labels given")
			}
			if req.Protocol != ProtocolCAM && req.Protocol != ProtocolSeg {
				return nil, badRequest("protocol", "%q, want %s or %s", req.Protocol, ProtocolCAM, ProtocolSeg)
			}
			in, _, err := a.datasetInput(ctx, "dataset", spec, a.heartbeat(ctx))
			return []Input{in, upstream("labels", req.From)}, err
		},
		run: func(ctx context.Context, dir string) (*EvalResult, []string, map[string]float64, error) {
			out, err := evaluate.Run(ctx, req.Config, evaluate.Inputs{Labels: req.Labels, Dataset: spec, OutDir: dir}, a.heartbeat(ctx))
			if err != nil {
				return nil, nil, nil, err
			}
			res, metrics := summarize(out, req.Protocol)
			return res, nil, metrics, nil
		},
	}))
}

// summarize picks the headline row of an evaluation: the best threshold of
// a CAM sweep, else the labels row, and the variants' scores.
func summarize(out evaluate.Outputs, protocol string) (*EvalResult, map[string]float64) {
	res := &EvalResult{JSON: out.JSON, ClassNames: out.ClassNames, Protocol: protocol,
		Threshold: segmetrics.Metric(nan()), MIoU: segmetrics.Metric(nan())}
	metrics := map[string]float64{}
	head := out.Best
	for i, r := range out.Results {
		switch r.Kind {
		case evaluate.KindLabels:
			if head < 0 {
				head = i
			}
		case evaluate.KindVariant:
			res.Variants = append(res.Variants, VariantScore{Name: r.Variant, MIoU: r.MIoUCAM})
			metrics["variant_"+r.Variant+"_miou"] = float64(r.MIoUCAM)
		}
	}
	if head >= 0 {
		r := out.Results[head]
		res.Images, res.Threshold, res.IoU = r.Images, r.Threshold, r.IoU
		res.MIoU = r.MIoUCAM
		if protocol == ProtocolSeg {
			res.MIoU = r.MIoUSeg
		}
		metrics["miou"] = float64(res.MIoU)
		metrics["miou_cam"], metrics["miou_seg"] = float64(r.MIoUCAM), float64(r.MIoUSeg)
		metrics["pixel_acc"] = float64(r.PixelAcc)
		metrics["threshold"] = float64(r.Threshold)
		for k, v := range r.IoU {
			name := fmt.Sprint(k)
			if k < len(out.ClassNames) {
				name = out.ClassNames[k]
			}
			metrics["iou_"+name] = float64(v)
		}
	}
	return res, metrics
}
