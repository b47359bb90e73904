package activities

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/segmetrics"
)

// Run locates a pipeline run: its artifacts live in Root/ID, a directory
// every worker sees at the same path (a shared filesystem).
type Run struct {
	ID   string `json:"id"`   // the workflow id
	Root string `json:"root"` // absolute; holds one folder per run and the manifest index
}

// Dir is the run's folder.
func (r Run) Dir() string { return filepath.Join(r.Root, r.ID) }

// Stage is the part of every request that says which stage instance runs.
type Stage struct {
	Run Run `json:"run"`
	// Name is the instance and its folder under the run: "saliency",
	// "train-l2g", "evaluate-seg".
	Name string `json:"name"`
	// Force recomputes even when a manifest with the same input hash exists
	// (l2g rerun --from).
	Force bool `json:"force,omitempty"`
}

// Dir is the stage's output folder.
func (s Stage) Dir() string { return filepath.Join(s.Run.Dir(), s.Name) }

func (s Stage) validate() error {
	bad := func(field, format string, args ...any) error {
		return badinput.New("", field, format, args...)
	}
	switch {
	case s.Run.Root == "" || !filepath.IsAbs(s.Run.Root):
		return bad("run.root", "%q: the runs folder must be an absolute path", s.Run.Root)
	case !safeName(s.Run.ID):
		return bad("run.id", "%q is not a usable folder name", s.Run.ID)
	case !safeName(s.Name):
		return bad("name", "%q is not a usable folder name", s.Name)
	}
	return nil
}

func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00") && !strings.HasPrefix(s, ".")
}

// Ref is what every activity result carries: where the stage's outputs and
// manifest are, and the digest of its outputs that downstream stages hash
// as their input. Artifacts themselves never travel in payloads.
type Ref struct {
	Name      string `json:"name"`
	Dir       string `json:"dir"`
	Manifest  string `json:"manifest"`
	Digest    string `json:"digest"`
	InputHash string `json:"input_hash"`
	// Skipped is set when an existing manifest matched the inputs and the
	// stage did not run; ReusedFrom is that manifest when it belongs to
	// another run.
	Skipped    bool    `json:"skipped,omitempty"`
	ReusedFrom string  `json:"reused_from,omitempty"`
	Seconds    float64 `json:"seconds"`
}

func (r *Ref) ref() *Ref { return r }

// result is implemented by every activity result through its embedded Ref.
type result interface{ ref() *Ref }

// SaliencyResult locates the saliency maps.
type SaliencyResult struct {
	Ref
	MapsDir string `json:"maps_dir"` // <id>.png
	Maps    int    `json:"maps"`
	Method  string `json:"method"`
}

// TrainResult locates the trained classifier.
type TrainResult struct {
	Ref
	Mode            string             `json:"mode"`
	Checkpoint      string             `json:"checkpoint"`
	LocalCheckpoint string             `json:"local_checkpoint,omitempty"`
	Log             string             `json:"log"`
	Iterations      int                `json:"iterations"`
	FinalLosses     map[string]float64 `json:"final_losses"`
	FinalLoss       float64            `json:"final_loss"` // the total of FinalLosses
	// ResumedFrom is the checkpoint a retried attempt continued from (the
	// one in the last heartbeat), ResumedAt its iteration.
	ResumedFrom string `json:"resumed_from,omitempty"`
	ResumedAt   int    `json:"resumed_at,omitempty"`
}

// CAMResult locates the CAM dataset.
type CAMResult struct {
	Ref
	CAMs   string `json:"cams"`
	PNGDir string `json:"png_dir,omitempty"`
	Images int    `json:"images"`
}

// PseudolabelResult locates the pseudo-labels.
type PseudolabelResult struct {
	Ref
	Parquet        string    `json:"parquet"`
	PNGDir         string    `json:"png_dir,omitempty"`
	Images         int       `json:"images"`
	LabelFractions []float64 `json:"label_fractions"`
	IgnoreFraction float64   `json:"ignore_fraction"`
}

// EvalResult summarises an evaluation; the full results (confusion
// matrices, every threshold) are in JSON.
type EvalResult struct {
	Ref
	JSON       string   `json:"json"`
	Images     int      `json:"images"`
	ClassNames []string `json:"class_names"`
	// Threshold is the background threshold of the best CAM sweep row
	// (null for labels).
	Threshold segmetrics.Metric `json:"threshold"`
	// MIoU is the headline number: the CAM protocol (NaN-mean over all
	// classes, evaluate_mthr_voc.py) for CAMs and pseudo-labels, the
	// segmentation protocol (classes present in the ground truth) for
	// segmentation predictions (Protocol says which).
	MIoU     segmetrics.Metric   `json:"miou"`
	Protocol string              `json:"protocol"`
	IoU      []segmetrics.Metric `json:"iou"`
	// Variants are the pseudo-label rules scored from the CAMs (cam_eval).
	Variants []VariantScore `json:"variants,omitempty"`
}

// VariantScore is one pseudo-label rule's mIoU (CAM protocol).
type VariantScore struct {
	Name string            `json:"name"`
	MIoU segmetrics.Metric `json:"miou"`
}

// SegTrainResult locates the segmentation net and its predictions.
type SegTrainResult struct {
	Ref
	Checkpoint  string            `json:"checkpoint"`
	Log         string            `json:"log"`
	Iterations  int               `json:"iterations"`
	FinalLoss   float64           `json:"final_loss"`
	PredDir     string            `json:"pred_dir,omitempty"`
	PredParquet string            `json:"pred_parquet,omitempty"`
	MIoU        segmetrics.Metric `json:"miou"` // val, segmentation protocol, after the CRF when on
	ResumedFrom string            `json:"resumed_from,omitempty"`
	ResumedAt   int               `json:"resumed_at,omitempty"`
}

// Evaluation protocols named in EvalResult.Protocol.
const (
	ProtocolCAM = "cam"
	ProtocolSeg = "seg"
)

func (r Ref) String() string { return fmt.Sprintf("%s (%s)", r.Name, r.Dir) }

// StageHeader returns the request's stage header.
func (r SaliencyRequest) StageHeader() Stage { return r.Stage }

// StageHeader returns the request's stage header.
func (r TrainRequest) StageHeader() Stage { return r.Stage }

// StageHeader returns the request's stage header.
func (r CAMRequest) StageHeader() Stage { return r.Stage }

// StageHeader returns the request's stage header.
func (r CAMEvalRequest) StageHeader() Stage { return r.Stage }

// StageHeader returns the request's stage header.
func (r PseudolabelRequest) StageHeader() Stage { return r.Stage }

// StageHeader returns the request's stage header.
func (r EvaluateRequest) StageHeader() Stage { return r.Stage }

// StageHeader returns the request's stage header.
func (r SegTrainRequest) StageHeader() Stage { return r.Stage }
