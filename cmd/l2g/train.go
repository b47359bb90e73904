package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/stages/train"
)

func newTrainCmd() *cobra.Command {
	var (
		configPath string
		in         train.Inputs
		threads    int
		quiet      bool
	)
	cmd := &cobra.Command{
		Use:   "train --config FILE --data DIR --out DIR",
		Short: "Train the L2G classifiers (or a CAM / local-crop baseline)",
		Long: `Trains the global and local classifiers of L2G (spec §3–§4), or one of the
baselines the config's mode names, and writes OUT/global.safetensors (the net
the CAM stage uses), OUT/local.safetensors, OUT/log.jsonl and resumable
checkpoints in OUT/checkpoints. Interrupting (Ctrl-C) writes a checkpoint of
the finished iterations; --resume continues from it exactly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return trainHandler(cmd, configPath, in, threads, quiet)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "training config (configs/voc12.yaml, coco14.yaml, demo.yaml)")
	f.StringVar(&in.DataRoot, "data", "", "dataset root (VOC layout)")
	f.StringVar(&in.OutDir, "out", "", "output directory")
	f.StringVar(&in.TrainList, "list", "", "class-label list, relative to --data (default train_cls.txt)")
	f.StringVar(&in.SalDir, "sal", "", "saliency directory (default DATA/Sal; mode l2g-shape)")
	f.StringVar(&in.InitWeights, "init", "", "initial weights for every net (.params, .pth or .safetensors)")
	f.StringVar(&in.InitSource, "init-source", "", "kind of --init file (resnet38-mxnet, resnet38-pth, l2g-global, l2g-local; default from the extension)")
	f.StringVar(&in.ResumeFrom, "resume", "", "checkpoint to continue from")
	f.StringVar(&in.Device, "device", "cpu", "cpu, cuda or cuda:N")
	f.IntVar(&threads, "threads", -1, "libtorch threads, overriding the config (0: all cores)")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("data")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func trainHandler(cmd *cobra.Command, configPath string, in train.Inputs, threads int, quiet bool) error {
	cfg, err := train.LoadConfig(configPath)
	if err != nil {
		return err
	}
	if threads >= 0 {
		cfg.Threads = threads
		if err := cfg.Validate(configPath); err != nil {
			return err
		}
	} else if threads < -1 {
		return badinput.New("", "threads", "%d, want >= 0", threads)
	}
	var report stages.ProgressFunc
	bar := &trainBar{w: cmd.ErrOrStderr()}
	if !quiet {
		report = bar.report
	}
	out, err := train.Run(cmd.Context(), cfg, in, report)
	bar.finish()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// trainBar is a terminal progress bar fed by the stage's progress
// callback: iterations done, the loss terms, the learning rate, images/s
// and ETA. It is created at the first report, which carries the total.
type trainBar struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (b *trainBar) report(p stages.Progress) {
	if p.Message != "" {
		fmt.Fprintln(b.w, p.Message)
	}
	if p.Total <= 0 {
		return
	}
	if b.bar == nil {
		b.bar = progressbar.NewOptions(p.Total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(20),
			progressbar.OptionSetPredictTime(false), // the stage's ETA is shown instead
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionThrottle(200*time.Millisecond),
		)
	}
	b.bar.Describe(describeProgress(p))
	_ = b.bar.Set(p.Iteration)
}

func (b *trainBar) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
		fmt.Fprintln(b.w)
	}
}

// describeProgress renders the losses, lr, images/s and ETA of a report.
func describeProgress(p stages.Progress) string {
	names := make([]string, 0, len(p.Losses))
	for k := range p.Losses {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s %.4f ", k, p.Losses[k])
	}
	fmt.Fprintf(&b, "lr %.3g %.1f img/s ETA %s", p.LR, p.ItemsPerS, fmtSeconds(p.ETASeconds))
	return b.String()
}

func fmtSeconds(s float64) string {
	t := int(s + 0.5)
	if t >= 3600 {
		return fmt.Sprintf("%dh%02dm", t/3600, t/60%60)
	}
	return fmt.Sprintf("%dm%02ds", t/60, t%60)
}
