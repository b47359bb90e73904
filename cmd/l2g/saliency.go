package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/stages/saliency"
)

// datasetFlags name the images a saliency command covers.
type datasetFlags struct {
	root, list, kind string
	masks            string // ground-truth mask directory; "" = the dataset's
	workers          int
}

func (d *datasetFlags) add(cmd *cobra.Command) {
	d.addRoot(cmd, "root", "dataset root (VOC/COCO layout)")
}

// addRoot registers the flags with the dataset root under name (eval
// commands call it --gt).
func (d *datasetFlags) addRoot(cmd *cobra.Command, name, usage string) {
	cmd.Flags().StringVar(&d.root, name, "", usage)
	cmd.Flags().StringVar(&d.list, "list", "train_cls.txt", "list file, relative to --"+name)
	cmd.Flags().StringVar(&d.kind, "kind", "voc", "dataset kind: voc or coco")
	cmd.Flags().IntVar(&d.workers, "workers", 0, "images in flight (0 = all cores)")
	cmd.MarkFlagRequired(name)
}

func (d *datasetFlags) open(ctx context.Context) (*data.Split, error) {
	kind, err := data.ParseKind(d.kind)
	if err != nil {
		return nil, badinput.Wrap("", "--kind", err)
	}
	return data.Open(ctx, data.Spec{Root: d.root, Kind: kind, List: d.list, MaskDir: d.masks, Workers: d.workers})
}

func newSaliencyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "saliency",
		Short: "Provide the class-agnostic saliency maps (Sal/<id>.png) L2G's shape transfer needs",
	}
	cmd.AddCommand(newSaliencyComputeCmd(), newSaliencyImportCmd())
	return cmd
}

func newSaliencyComputeCmd() *cobra.Command {
	var (
		ds                 datasetFlags
		out, cfgPath, mani string
		model, device      string
		batch              int
		resume, poolnet    bool
	)
	cmd := &cobra.Command{
		Use:   "compute",
		Short: "Compute saliency maps with MB+ (minimum barrier distance, Zhang et al. ICCV 2015) in Go, or a TorchScript network",
		Long: "Without --model, computes MB+ maps in pure Go on all cores. With --model, runs a user-exported\n" +
			"TorchScript saliency network (e.g. a traced PoolNet, with --poolnet for its input normalization);\n" +
			"other normalizations go in --config under model: {scale, bgr, mean, std, activation, input_size}.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSaliencyConfig(cfgPath)
			if err != nil {
				return err
			}
			if model != "" {
				cfg.Method, cfg.Model.Path = saliency.MethodModel, model
			}
			if poolnet {
				cfg.Model = cfg.Model.PoolNet()
			}
			if cmd.Flags().Changed("device") {
				cfg.Model.Device = device
			}
			if cmd.Flags().Changed("batch-size") {
				cfg.Model.BatchSize = batch
			}
			if cfg.Method == "" && cfg.Model.Path == "" {
				cfg.Method = saliency.MethodMBD
			}
			if cmd.Flags().Changed("workers") {
				cfg.Workers = ds.workers
			}
			return runSaliency(cmd, ds, cfg, out, mani, resume)
		},
	}
	ds.add(cmd)
	cmd.Flags().StringVar(&out, "out", "", "output directory for <id>.png (default <root>/Sal)")
	cmd.Flags().StringVar(&cfgPath, "config", "", "YAML file with the saliency stage config (method, mbd: {...})")
	cmd.Flags().StringVar(&mani, "manifest", "", "write the list of maps with sizes and SHA-256 as JSON here")
	cmd.Flags().BoolVar(&resume, "resume", false, "keep maps already in the output directory")
	cmd.Flags().StringVar(&model, "model", "", "TorchScript saliency network to run instead of MB+")
	cmd.Flags().StringVar(&device, "device", "auto", "device for --model: auto (GPU when present), cpu, cuda, cuda:N")
	cmd.Flags().IntVar(&batch, "batch-size", 8, "images per forward for --model")
	cmd.Flags().BoolVar(&poolnet, "poolnet", false, "PoolNet input normalization for --model (BGR 0..255 minus the Caffe mean, sigmoid out)")
	return cmd
}

func newSaliencyImportCmd() *cobra.Command {
	var (
		ds            datasetFlags
		from, out     string
		mani, cfgPath string
		copyMaps      bool
	)
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Check a directory of published saliency maps (e.g. PoolNet) against the image list and register it",
		Long: "Checks that --from holds an 8-bit gray <id>.png of the image's size for every image of the list,\n" +
			"reporting every missing or mismatched file at once. The maps stay where they are (their size and\n" +
			"SHA-256 are recorded) unless --copy copies them into --out.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSaliencyConfig(cfgPath)
			if err != nil {
				return err
			}
			cfg.Method, cfg.ImportDir, cfg.Copy = saliency.MethodImport, from, copyMaps
			if cmd.Flags().Changed("workers") {
				cfg.Workers = ds.workers
			}
			return runSaliency(cmd, ds, cfg, out, mani, false)
		},
	}
	ds.add(cmd)
	cmd.Flags().StringVar(&from, "from", "", "directory of <id>.png saliency maps")
	cmd.Flags().BoolVar(&copyMaps, "copy", false, "copy the maps into --out instead of registering them in place")
	cmd.Flags().StringVar(&out, "out", "", "destination of --copy (default <root>/Sal)")
	cmd.Flags().StringVar(&cfgPath, "config", "", "YAML file with the saliency stage config")
	cmd.Flags().StringVar(&mani, "manifest", "", "write the list of maps with sizes and SHA-256 as JSON here")
	cmd.MarkFlagRequired("from")
	return cmd
}

func runSaliency(cmd *cobra.Command, ds datasetFlags, cfg saliency.Config, out, manifest string, resume bool) error {
	ctx := cmd.Context()
	split, err := ds.open(ctx)
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join(split.Root, data.DirSal)
	}
	res, err := saliency.Run(ctx, cfg, saliency.Inputs{Items: split.Items, OutDir: out, Resume: resume, ManifestPath: manifest},
		progressPrinter(cmd.ErrOrStderr()))
	if err != nil {
		return err
	}
	verb := "wrote"
	if res.Method == saliency.MethodImport {
		verb = "registered"
		if res.Copied {
			verb = "copied"
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "saliency (%s): %s %d maps in %s\n", res.Method, verb, len(res.Maps), res.Dir)
	return nil
}

// progressPrinter prints a progress line at most every two seconds, and the
// last one.
func progressPrinter(w io.Writer) stages.ProgressFunc {
	var last time.Time
	return func(p stages.Progress) {
		if p.Iteration < p.Total && time.Since(last) < 2*time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "%s: %s %d/%d (%.1f images/s, %.0fs left)\n", p.Stage, p.Message, p.Iteration, p.Total, p.ItemsPerS, p.ETASeconds)
	}
}

// loadSaliencyConfig reads a saliency stage config over the defaults;
// unknown keys are errors naming the file.
func loadSaliencyConfig(path string) (saliency.Config, error) {
	cfg := saliency.DefaultConfig()
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
	return cfg, nil
}

// newEvalSaliencyCmd is `l2g eval saliency`: MAE and max F-measure (β² = 0.3)
// of saliency maps against ground-truth foreground (mask 1..254), with the
// centre-prior baseline for reference.
func newEvalSaliencyCmd() *cobra.Command {
	var (
		ds       datasetFlags
		sal      string
		asJSON   bool
		baseline bool
	)
	cmd := &cobra.Command{
		Use:   "saliency",
		Short: "Score saliency maps against ground-truth foreground: MAE and max F-measure (β² = 0.3)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			split, err := ds.open(ctx)
			if err != nil {
				return err
			}
			if sal == "" {
				sal = filepath.Join(split.Root, data.DirSal)
			}
			res := map[string]saliency.Scores{}
			if res["maps"], err = saliency.Evaluate(ctx, split.Items, sal, ds.workers); err != nil {
				return err
			}
			if baseline {
				if res["centre_prior"], err = saliency.EvaluateCentrePrior(ctx, split.Items, ds.workers); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(w, "%-14s %6s %7s %8s %7s %9s %6s\n", "", "images", "MAE", "max F", "thresh", "precision", "recall")
			for _, name := range []string{"maps", "centre_prior"} {
				s, ok := res[name]
				if !ok {
					continue
				}
				fmt.Fprintf(w, "%-14s %6d %7.4f %8.4f %7d %9.4f %6.4f\n", name, s.Images, s.MAE, s.MaxF, s.Threshold, s.Precision, s.Recall)
			}
			return nil
		},
	}
	ds.addRoot(cmd, "gt", "dataset root holding the images' ground-truth masks (VOC/COCO layout)")
	cmd.Flags().StringVar(&ds.masks, "gt-masks", "", "directory of <id>.png ground-truth masks (default: from the list, else SegmentationClassAug)")
	cmd.Flags().StringVar(&sal, "sal", "", "directory of <id>.png saliency maps (default <gt>/Sal)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&baseline, "baseline", true, "also score the centre-prior baseline")
	return cmd
}
