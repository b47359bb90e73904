package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/stages/evaluate"
	"github.com/l2g/l2g/stages/pseudolabel"
)

// newEvalCmd is `l2g eval`: score CAMs, label masks and saliency maps
// against ground truth.
func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score CAMs (threshold sweep), label masks or saliency maps against ground-truth masks",
	}
	cmd.AddCommand(newEvalCAMsCmd(), newEvalLabelsCmd(), newEvalSaliencyCmd())
	return cmd
}

// gtFlags name the ground truth: a dataset root and list, as datasetFlags
// but with the root given as --gt.
type gtFlags struct {
	ds      datasetFlags
	masks   string
	sal     string
	out     string
	asJSON  bool
	cfgPath string
}

func (g *gtFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&g.ds.root, "gt", "", "dataset root holding the ground-truth masks (VOC/COCO layout)")
	f.StringVar(&g.ds.list, "list", "train_cls.txt", "list file of the images to score, relative to --gt (cls or pair list)")
	f.StringVar(&g.ds.kind, "kind", "voc", "dataset kind: voc or coco (class names and mask directory)")
	f.IntVar(&g.ds.workers, "workers", 0, "images in flight (0 = all cores)")
	f.StringVar(&g.masks, "gt-masks", "", "directory of <id>.png ground-truth masks (default: from the list, else SegmentationClassAug)")
	f.StringVar(&g.out, "out", "", "also write eval.json and eval.parquet into this directory")
	f.BoolVar(&g.asJSON, "json", false, "print the results as JSON instead of a table")
	f.StringVar(&g.cfgPath, "config", "", "YAML file with the evaluate stage config (thresholds, variants, workers)")
	cmd.MarkFlagRequired("gt")
}

func (g *gtFlags) spec() (data.Spec, error) {
	kind, err := data.ParseKind(g.ds.kind)
	if err != nil {
		return data.Spec{}, badinput.Wrap("", "--kind", err)
	}
	return data.Spec{Root: g.ds.root, Kind: kind, List: g.ds.list, MaskDir: g.masks, SalDir: g.sal, Workers: g.ds.workers}, nil
}

func newEvalCAMsCmd() *cobra.Command {
	var (
		g          gtFlags
		cams       string
		thresholds []float64
		variants   bool
		bg         float64
	)
	cmd := &cobra.Command{
		Use:   "cams",
		Short: "Sweep the background threshold over CAMs (Parquet dataset or <id>_<k>.png directory), reading them once",
		Long: "Builds the reference's pseudo-label (argmax over [threshold, CAMs of the image's classes], ties to\n" +
			"the background) at every threshold and scores it: mIoU over all classes (CAM protocol, spec §7),\n" +
			"mIoU over the classes present in the ground truth (segmentation protocol), pixel accuracy.\n" +
			"--variants also scores the pseudo-label options (saliency background, ignore band) at --bg.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadEvalConfig(g.cfgPath)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("thresholds") || len(cfg.Thresholds) == 0 {
				cfg.Thresholds = thresholds
			}
			if variants {
				cfg.Variants = append(cfg.Variants, pseudolabel.DefaultVariants(bg)...)
			}
			return runEval(cmd, g, cfg, evaluate.Inputs{CAMs: cams})
		},
	}
	g.add(cmd)
	cmd.Flags().StringVar(&cams, "cams", "", "CAM Parquet dataset, or directory of the reference's <id>_<k>.png")
	cmd.Flags().Float64SliceVar(&thresholds, "thresholds", evaluate.DefaultConfig().Thresholds, "background thresholds to score")
	cmd.Flags().BoolVar(&variants, "variants", false, "also score the pseudo-label rules: reference, ignore bands, saliency background")
	cmd.Flags().Float64Var(&bg, "bg", pseudolabel.DefaultConfig().BgThreshold, "background threshold of --variants")
	cmd.Flags().StringVar(&g.sal, "sal", "", "saliency maps <id>.png for --variants (default <gt>/Sal)")
	cmd.MarkFlagRequired("cams")
	return cmd
}

func newEvalLabelsCmd() *cobra.Command {
	var (
		g    gtFlags
		pred string
	)
	cmd := &cobra.Command{
		Use:   "labels",
		Short: "Score label masks (pseudo-label Parquet or a directory of <id>.png) against ground truth",
		Long: "Prediction 255 (an ignore band) is not scored; the share of ground-truth pixels that got a\n" +
			"label is reported as coverage.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadEvalConfig(g.cfgPath)
			if err != nil {
				return err
			}
			return runEval(cmd, g, cfg, evaluate.Inputs{Labels: pred})
		},
	}
	g.add(cmd)
	cmd.Flags().StringVar(&pred, "pred", "", "pseudo-label Parquet dataset, or directory of <id>.png label masks")
	cmd.MarkFlagRequired("pred")
	return cmd
}

func runEval(cmd *cobra.Command, g gtFlags, cfg evaluate.Config, in evaluate.Inputs) error {
	spec, err := g.spec()
	if err != nil {
		return err
	}
	if cmd.Flags().Changed("workers") {
		cfg.Workers = g.ds.workers
	}
	in.Dataset, in.OutDir = spec, g.out
	out, err := evaluate.Run(cmd.Context(), cfg, in, progressPrinter(cmd.ErrOrStderr()))
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if g.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printEval(w, out)
	if out.JSON != "" {
		fmt.Fprintf(w, "\nwrote %s and %s\n", out.JSON, out.Parquet)
	}
	return nil
}

// printEval prints one line per result, then the per-class scores of the
// best threshold (or of the only result).
func printEval(w io.Writer, out evaluate.Outputs) {
	pct := func(m segmetrics.Metric) string {
		if math.IsNaN(float64(m)) {
			return "-"
		}
		return fmt.Sprintf("%.2f", 100*float64(m))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "result\tthreshold\tmIoU (all classes)\tmIoU (GT classes)\tpixel acc\tmean acc\tcoverage\timages\t\n")
	for i, r := range out.Results {
		name := r.Kind
		if r.Variant != "" {
			name = r.Variant
		}
		if i == out.Best {
			name = "* " + name
		}
		thr := "-"
		if !math.IsNaN(float64(r.Threshold)) {
			thr = fmt.Sprintf("%.2f", float64(r.Threshold))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", name, thr, pct(r.MIoUCAM), pct(r.MIoUSeg),
			pct(r.PixelAcc), pct(r.MeanClassAcc), pct(r.Coverage), r.Images)
	}
	tw.Flush()
	if len(out.Results) == 0 {
		return
	}
	best := out.Best
	if best < 0 {
		best = 0
	}
	r := out.Results[best]
	fmt.Fprintf(w, "\nper class (%s", r.Kind)
	if !math.IsNaN(float64(r.Threshold)) {
		fmt.Fprintf(w, ", threshold %.2f", float64(r.Threshold))
	}
	fmt.Fprintln(w, "), %:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "class\tIoU\tprecision\trecall\tGT pixels\t\n")
	for i, name := range out.ClassNames {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t\n", name, pct(r.IoU[i]), pct(r.Precision[i]), pct(r.Recall[i]), r.GTPixels[i])
	}
	tw.Flush()
	fmt.Fprintln(w, "mIoU (all classes) is the CAM protocol of evaluate_mthr_voc.py; (GT classes) is deeplab-pytorch's.")
}

// loadEvalConfig reads an evaluate stage config over the defaults; unknown
// keys are errors naming the file.
func loadEvalConfig(path string) (evaluate.Config, error) {
	cfg := evaluate.DefaultConfig()
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, badinput.Wrap(path, "", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, badinput.Wrap(path, "", err)
	}
	if err := cfg.Validate(); err != nil {
		var bad *badinput.Error
		if errors.As(err, &bad) && bad.Path == "" {
			bad.Path = path
		}
		return cfg, err
	}
	return cfg, nil
}
