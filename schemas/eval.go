package schemas

import "github.com/apache/arrow-go/v18/arrow"

// Evaluation results: one row per scored prediction set (one per background
// threshold of a CAM sweep, one per pseudo-label rule, one for a set of
// label masks).
const (
	EvalName    = "l2g.eval"
	EvalVersion = 1
)

// Columns of the evaluation results.
const (
	ColSource       = "source"
	ColKind         = "kind"
	ColVariant      = "variant"
	ColThreshold    = "threshold"
	ColImages       = "images"
	ColPixels       = "pixels"
	ColUnlabeled    = "unlabeled"
	ColPixelAcc     = "pixel_acc"
	ColMeanClassAcc = "mean_class_acc"
	ColMIoUCAM      = "miou_cam"
	ColMIoUSeg      = "miou_seg"
	ColFWIoU        = "fwiou"
	ColCoverage     = "coverage"
	ColIoU          = "iou"
	ColPrecision    = "precision"
	ColRecall       = "recall"
	ColGTPixels     = "gt_pixels"
	ColPredPixels   = "pred_pixels"
	ColConfusion    = "confusion"
)

// EvalFields are the columns of an evaluation results file. Per-class lists
// have one entry per label (background first, as in class_names); an
// undefined ratio (0/0) is null. confusion is the (C+1)×(C+1) matrix
// row-major, rows = ground truth, columns = prediction.
//
//	source, kind                 string (kind "cams", "labels" or "variant")
//	variant                      string: name of a pseudo-label rule, "" otherwise
//	threshold                    float64: background threshold, null for label masks
//	images, pixels, unlabeled    int64 (pixels scored; valid GT pixels predicted 255)
//	pixel_acc, mean_class_acc,
//	miou_cam, miou_seg, fwiou,
//	coverage                     float64
//	iou, precision, recall       list<float64>
//	gt_pixels, pred_pixels,
//	confusion                    list<int64>
func EvalFields() []arrow.Field {
	f64 := arrow.PrimitiveTypes.Float64
	i64 := arrow.PrimitiveTypes.Int64
	return []arrow.Field{
		{Name: ColSource, Type: arrow.BinaryTypes.String},
		{Name: ColKind, Type: arrow.BinaryTypes.String},
		{Name: ColVariant, Type: arrow.BinaryTypes.String},
		{Name: ColThreshold, Type: f64, Nullable: true},
		{Name: ColImages, Type: i64},
		{Name: ColPixels, Type: i64},
		{Name: ColUnlabeled, Type: i64},
		{Name: ColPixelAcc, Type: f64, Nullable: true},
		{Name: ColMeanClassAcc, Type: f64, Nullable: true},
		{Name: ColMIoUCAM, Type: f64, Nullable: true},
		{Name: ColMIoUSeg, Type: f64, Nullable: true},
		{Name: ColFWIoU, Type: f64, Nullable: true},
		{Name: ColCoverage, Type: f64, Nullable: true},
		{Name: ColIoU, Type: arrow.ListOf(f64)},
		{Name: ColPrecision, Type: arrow.ListOf(f64)},
		{Name: ColRecall, Type: arrow.ListOf(f64)},
		{Name: ColGTPixels, Type: arrow.ListOf(i64)},
		{Name: ColPredPixels, Type: arrow.ListOf(i64)},
		{Name: ColConfusion, Type: arrow.ListOf(i64)},
	}
}

// Eval returns the schema of evaluation results; classNames include the
// background at index 0.
func Eval(classNames []string) (*arrow.Schema, error) {
	if len(classNames) < 2 {
		return nil, errorf(KeyClassNames, "%d class names (with background), want at least 2", len(classNames))
	}
	keys, vals, err := header(EvalName, EvalVersion, classNames)
	if err != nil {
		return nil, err
	}
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(EvalFields(), &md), nil
}

// ParseEval checks that s is an evaluation results schema of this version
// and returns its class names.
func ParseEval(s *arrow.Schema) ([]string, error) {
	if err := checkFields(s, arrow.NewSchema(EvalFields(), nil)); err != nil {
		return nil, err
	}
	return checkHeader(s.Metadata(), EvalName, EvalVersion)
}
