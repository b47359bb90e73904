package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/stages/segtrain"
)

func newSegtrainCmd() *cobra.Command {
	var (
		configPath string
		in         segtrain.Inputs
		threads    int
		quiet      bool
	)
	cmd := &cobra.Command{
		Use:   "segtrain --config FILE --data DIR --labels pseudo.parquet|DIR --out DIR",
		Short: "Train DeepLab-v2 on the pseudo-labels (and predict a validation list)",
		Long: `Trains the segmentation network (spec §8: DeepLab-v2 ResNet-101 with multi-scale
inputs, or the small CPU net) on the pseudo-labels — the Parquet file the
pseudolabel stage exports, or a directory of <id>.png masks — and writes
OUT/model.safetensors, OUT/log.jsonl and resumable checkpoints in
OUT/checkpoints. With --val it then predicts that list at full size (dense CRF
when the config's test.crf is set) into OUT/pred.parquet and OUT/pred/<id>.png
and scores it into OUT/metrics.json. Interrupting (Ctrl-C) writes a checkpoint
of the finished iterations; --resume continues from it exactly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return segtrainHandler(cmd, configPath, in, threads, quiet)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "segmentation config (dataset: voc or coco selects the preset)")
	f.StringVar(&in.DataRoot, "data", "", "dataset root (VOC layout)")
	f.StringVar(&in.Labels, "labels", "", "pseudo-labels: Parquet file or directory of <id>.png")
	f.StringVar(&in.OutDir, "out", "", "output directory")
	f.StringVar(&in.TrainList, "list", "", "training list, relative to --data (default train_aug.txt)")
	f.StringVar(&in.ValList, "val", "", "list to predict and score after training, e.g. val.txt")
	f.StringVar(&in.InitWeights, "init", "", "initial weights (.safetensors or .pth, deeplab-pytorch names)")
	f.StringVar(&in.InitSource, "init-source", "", "kind of --init: deeplab-pth or torchvision-resnet101 (default: by extension)")
	f.StringVar(&in.ResumeFrom, "resume", "", "checkpoint to continue from")
	f.StringVar(&in.Device, "device", "cpu", "cpu, cuda, cuda:N or auto")
	f.StringVar(&in.RunID, "run-id", "", "run id recorded in the prediction Parquet")
	f.IntVar(&threads, "threads", -1, "libtorch threads, overriding the config (0: all cores)")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	for _, n := range []string{"config", "data", "labels", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newSegtestCmd() *cobra.Command {
	var (
		configPath string
		in         segtrain.TestInputs
		crf        bool
		threads    int
		quiet      bool
	)
	cmd := &cobra.Command{
		Use:   "segtest --model FILE --data DIR --out DIR [--crf]",
		Short: "Predict a list with a trained segmentation network and score it",
		Long: `Runs a model file (or training checkpoint) of segtrain over a list at full
size with the multi-scale network, optionally post-processes with the dense CRF
(spec §8 parameters, on the original RGB image), and writes OUT/pred.parquet
(pseudo-label schema), OUT/pred/<id>.png (VOC palette) and, when the list has
ground-truth masks, OUT/metrics.json (segmentation-protocol mIoU, before and
after the CRF).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := segtrain.VOCConfig()
			if configPath != "" {
				var err error
				if cfg, err = segtrain.LoadConfig(configPath); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("crf") {
				cfg.Test.CRF = crf
			}
			if err := applyThreads(&cfg, configPath, threads); err != nil {
				return err
			}
			bar := &trainBar{w: cmd.ErrOrStderr()}
			out, err := segtrain.Test(cmd.Context(), cfg, in, progressFunc(bar, quiet))
			bar.finish()
			if err != nil {
				return err
			}
			return printJSON(cmd, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "segmentation config (default: the VOC preset)")
	f.StringVar(&in.Model, "model", "", "model file or checkpoint written by segtrain")
	f.StringVar(&in.DataRoot, "data", "", "dataset root (VOC layout)")
	f.StringVar(&in.List, "list", "", "list to predict, relative to --data (default val.txt)")
	f.StringVar(&in.OutDir, "out", "", "output directory")
	f.StringVar(&in.Device, "device", "cpu", "cpu, cuda, cuda:N or auto")
	f.StringVar(&in.RunID, "run-id", "", "run id recorded in the prediction Parquet")
	f.BoolVar(&crf, "crf", false, "dense CRF post-processing (overrides the config's test.crf)")
	f.IntVar(&threads, "threads", -1, "libtorch threads, overriding the config (0: all cores)")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	for _, n := range []string{"model", "data", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func segtrainHandler(cmd *cobra.Command, configPath string, in segtrain.Inputs, threads int, quiet bool) error {
	cfg, err := segtrain.LoadConfig(configPath)
	if err != nil {
		return err
	}
	if err := applyThreads(&cfg, configPath, threads); err != nil {
		return err
	}
	bar := &trainBar{w: cmd.ErrOrStderr()}
	out, err := segtrain.Run(cmd.Context(), cfg, in, progressFunc(bar, quiet))
	bar.finish()
	if err != nil {
		return err
	}
	return printJSON(cmd, out)
}

// applyThreads overrides the config's thread count with --threads (-1: keep).
func applyThreads(cfg *segtrain.Config, configPath string, threads int) error {
	switch {
	case threads >= 0:
		cfg.Threads = threads
		return cfg.Validate(configPath)
	case threads < -1:
		return badinput.New("", "threads", "%d, want >= 0", threads)
	}
	return nil
}

// progressFunc feeds the bar unless quiet. The bar restarts when a report's
// stage changes (training, then prediction).
func progressFunc(bar *trainBar, quiet bool) stages.ProgressFunc {
	if quiet {
		return nil
	}
	stage := ""
	return func(p stages.Progress) {
		if p.Stage != stage && stage != "" {
			bar.finish()
			bar.bar = nil
		}
		stage = p.Stage
		bar.report(p)
	}
}

func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
