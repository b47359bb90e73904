package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/l2g/l2g/internal/report"
	"github.com/l2g/l2g/workflows"
)

// modeLabel is the name the table and the report give a training mode.
func modeLabel(m string) string {
	switch m {
	case "cam":
		return "CAM baseline"
	case "local":
		return "local crops only"
	case "l2g":
		return "L2G"
	case "l2g-shape":
		return "L2G + shape"
	}
	return m
}

// writeReport writes RUN/report.html from a finished run's result; the run
// folder must be reachable from here (a shared filesystem).
func writeReport(ctx context.Context, in workflows.PipelineInput, res workflows.PipelineResult, took time.Duration) (string, error) {
	cfg := in.Config
	r := report.Input{
		RunID: res.RunID, Dir: res.Dir, Took: took.Round(time.Second),
		ClassNames: res.SegEval.ClassNames, DataRoot: cfg.Data.Root, Kind: cfg.Data.DataKind(),
		EvalList: cfg.Data.EvalList, ValList: cfg.Data.ValList,
		Seg: report.Seg{
			Mode: res.SegMode, Log: res.SegTrain.Log, Pred: res.SegTrain.PredParquet,
			MIoU: float64(res.SegEval.MIoU), IoU: metricsFloats(res.SegEval.IoU),
		},
	}
	for _, b := range res.Branches {
		if len(r.ClassNames) == 0 {
			r.ClassNames = b.Eval.ClassNames
		}
		r.Branches = append(r.Branches, report.Branch{
			Mode: b.Mode, Label: modeLabel(b.Mode), TrainLog: b.Train.Log, CAMs: b.CAM.CAMs, Labels: b.Pseudolabel.Parquet,
			CAMMIoU: float64(b.CAMEval.MIoU), Threshold: float64(b.CAMEval.Threshold),
			LabelMIoU: float64(b.Eval.MIoU), LabelIoU: metricsFloats(b.Eval.IoU),
		})
	}
	path := filepath.Join(res.Dir, "report.html")
	return path, report.Write(ctx, path, r)
}
