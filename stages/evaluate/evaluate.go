// Package evaluate scores CAMs and label masks against ground-truth masks
// (spec §7): a background-threshold sweep over CAMs in one pass (the
// reference's evaluate_mthr_voc.py), optional pseudo-label rules
// (pseudolabel.Variant) in the same pass, or a set of label masks
// (pseudo-labels or segmentation output). Each result carries the
// confusion matrix and both mIoU protocols; results are written as JSON and
// as Parquet (schemas.Eval).
package evaluate

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/stages/pseudolabel"
)

// Output names inside Inputs.OutDir.
const (
	JSONName    = "eval.json"
	ParquetName = "eval.parquet"
)

// Result kinds.
const (
	KindCAMs    = "cams"
	KindLabels  = "labels"
	KindVariant = "variant"
)

// Config of the stage.
type Config struct {
	// Thresholds are the background thresholds of a CAM sweep (spec §7:
	// 0.10–0.30 for VOC).
	Thresholds []float64 `yaml:"thresholds" json:"thresholds"`
	// Variants are pseudo-label rules also scored from the CAMs.
	Variants []pseudolabel.Variant `yaml:"variants" json:"variants,omitempty"`
	// Workers decode and score images in parallel; 0 = all cores.
	Workers int `yaml:"workers" json:"workers"`
}

// DefaultConfig is evaluate_mthr_voc.py's sweep.
func DefaultConfig() Config {
	return Config{Thresholds: []float64{0.10, 0.15, 0.20, 0.25, 0.30}}
}

// Validate reports a bad field as a *badinput.Error (field = YAML key).
func (c Config) Validate() error {
	if len(c.Thresholds) > 255 {
		return badinput.New("", "thresholds", "%d thresholds, at most 255", len(c.Thresholds))
	}
	for i, t := range c.Thresholds {
		if math.IsNaN(t) || t < 0 || t > 1 {
			return badinput.New("", fmt.Sprintf("thresholds[%d]", i), "%v is not in [0, 1]", t)
		}
	}
	names := map[string]bool{}
	for i, v := range c.Variants {
		if v.Name == "" || names[v.Name] {
			return badinput.New("", fmt.Sprintf("variants[%d].name", i), "name %q is empty or repeated", v.Name)
		}
		names[v.Name] = true
		if err := v.Config.Validate(); err != nil {
			if b, ok := err.(*badinput.Error); ok {
				b.Field = fmt.Sprintf("variants[%d].%s", i, b.Field)
			}
			return err
		}
	}
	if c.Workers < 0 {
		return badinput.New("", "workers", "%d is negative", c.Workers)
	}
	return nil
}

// Inputs of the stage: exactly one of CAMs and Labels.
type Inputs struct {
	// CAMs is a CAM Parquet dataset, or a directory of the reference's
	// <id>_<k>.png files (classes taken from the dataset's labels).
	CAMs string `json:"cams,omitempty"`
	// Labels is a pseudo-label Parquet dataset, or a directory of <id>.png
	// label masks (palette or 8-bit gray).
	Labels string `json:"labels,omitempty"`
	// Dataset gives the images scored and their ground-truth masks.
	Dataset data.Spec `json:"dataset"`
	// OutDir receives JSONName and ParquetName; empty writes nothing.
	OutDir string `json:"out_dir,omitempty"`
}

// Result is one scored prediction set.
type Result struct {
	Kind    string `json:"kind"`
	Variant string `json:"variant,omitempty"`
	// Threshold is the background threshold (NaN, JSON null, for labels).
	Threshold segmetrics.Metric `json:"threshold"`
	Images    int               `json:"images"`
	segmetrics.Scores
	// Confusion is K×K row-major, rows = ground truth.
	Confusion []int64 `json:"confusion"`
}

// Outputs of the stage.
type Outputs struct {
	JSON       string   `json:"json,omitempty"`
	Parquet    string   `json:"parquet,omitempty"`
	Source     string   `json:"source"`
	ClassNames []string `json:"class_names"` // background first
	Results    []Result `json:"results"`
	// Best is the index in Results of the threshold with the highest mIoU
	// (CAM protocol), -1 without a sweep.
	Best int `json:"best"`
}

// Run scores Inputs.CAMs (sweep + variants) or Inputs.Labels against the
// dataset's masks. Every image of the dataset list must have a prediction;
// predictions for other images are skipped. Input problems are
// *badinput.Error naming the file and field.
func Run(ctx context.Context, cfg Config, in Inputs, progress stages.ProgressFunc) (Outputs, error) {
	if err := cfg.Validate(); err != nil {
		return Outputs{}, err
	}
	if (in.CAMs == "") == (in.Labels == "") {
		return Outputs{}, badinput.New("", "cams", "give exactly one of CAMs and labels to evaluate")
	}
	split, err := data.Open(ctx, in.Dataset)
	if err != nil {
		return Outputs{}, err
	}
	var out Outputs
	if in.CAMs != "" {
		out, err = EvaluateCAMs(ctx, in.CAMs, split, cfg, progress)
	} else {
		out, err = EvaluateLabels(ctx, in.Labels, split, cfg.Workers, progress)
	}
	if err != nil {
		return Outputs{}, err
	}
	if in.OutDir == "" {
		return out, nil
	}
	out.JSON = filepath.Join(in.OutDir, JSONName)
	out.Parquet = filepath.Join(in.OutDir, ParquetName)
	if err := writeJSON(out.JSON, out); err != nil {
		return Outputs{}, err
	}
	if err := writeParquet(out.Parquet, out); err != nil {
		os.Remove(out.JSON) // both or neither
		return Outputs{}, err
	}
	return out, nil
}

// classNames is the dataset's names with the background first.
func classNames(split *data.Split) []string {
	return append([]string{"background"}, split.Classes...)
}

// bestCAM is the sweep row with the highest CAM-protocol mIoU.
func bestCAM(rs []Result) int {
	best := -1
	for i, r := range rs {
		if r.Kind != KindCAMs || math.IsNaN(float64(r.MIoUCAM)) {
			continue
		}
		if best < 0 || r.MIoUCAM > rs[best].MIoUCAM {
			best = i
		}
	}
	return best
}

func result(kind, variant string, thr float64, images int, c *segmetrics.Confusion) Result {
	return Result{Kind: kind, Variant: variant, Threshold: segmetrics.Metric(thr), Images: images,
		Scores: c.Scores(), Confusion: slices.Clone(c.M)}
}
