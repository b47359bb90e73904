package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/synth"
)

func newDatasetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "Check a VOC/COCO-layout dataset or generate a synthetic one",
	}
	cmd.AddCommand(newDatasetCheckCmd(), newDatasetSynthCmd())
	return cmd
}

func newDatasetCheckCmd() *cobra.Command {
	var lists []string
	var kind, classes string
	var workers int
	cmd := &cobra.Command{
		Use:   "check DIR",
		Short: "Decode every file named by the dataset's lists and report all problems",
		Long: `Scans every line of the list files (default: those of train_cls.txt, val_cls.txt,
train_aug.txt, val_aug.txt, train.txt and val.txt that exist), decodes every image,
mask and saliency map they name, and checks sizes, label indices and mask values.
Prints every problem and exits non-zero when there is any.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := data.ParseKind(kind)
			if err != nil {
				return err
			}
			rep, err := data.Check(cmd.Context(), args[0], data.CheckOptions{Kind: k, Lists: lists, Classes: classes, Workers: workers})
			var probs *badinput.List
			if errors.As(err, &probs) {
				for _, e := range probs.Errs {
					fmt.Fprintln(cmd.OutOrStdout(), e)
				}
				return fmt.Errorf("dataset %s: %d problems", args[0], len(probs.Errs))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d lists, %d entries, %d files\n", len(rep.Lists), rep.Items, rep.Files)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&lists, "list", nil, "list file(s) relative to DIR (repeatable; default: the standard lists present)")
	cmd.Flags().StringVar(&kind, "kind", "voc", "dataset kind: voc or coco (built-in class names)")
	cmd.Flags().StringVar(&classes, "classes", "", "class-name file (default: DIR/classes.txt if present)")
	cmd.Flags().IntVar(&workers, "workers", 0, "decoding goroutines (0 = all cores)")
	return cmd
}

func newDatasetSynthCmd() *cobra.Command {
	o := synth.DefaultOptions()
	var out, size, geometry string
	cmd := &cobra.Command{
		Use:   "synth --out DIR",
		Short: "Generate the synthetic VOC-layout dataset (deterministic per seed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, h, err := parseSize(size)
			if err != nil {
				return err
			}
			o.Width, o.Height = w, h
			if geometry != "" {
				if o.Geometry, err = synth.LoadGeometry(geometry, w, h, o.Classes); err != nil {
					return err
				}
			}
			sum, err := synth.Generate(cmd.Context(), out, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d train and %d val images (%d files) to %s\n", sum.Train, sum.Val, sum.Files, sum.Dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "output directory")
	f.IntVar(&o.Classes, "classes", o.Classes, fmt.Sprintf("number of foreground classes (1..%d)", synth.MaxClasses))
	f.IntVar(&o.Train, "train", o.Train, "training images")
	f.IntVar(&o.Val, "val", o.Val, "validation images")
	f.StringVar(&size, "size", fmt.Sprintf("%dx%d", o.Width, o.Height), "image size WxH")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "random seed")
	f.IntVar(&o.Quality, "quality", o.Quality, "JPEG quality")
	f.StringVar(&geometry, "geometry", "", "JSON file of drawing-recipe fields laid over the defaults (internal/synth Geometry), e.g. {\"object_scale\": {\"min\": 0.6, \"max\": 1.6}}")
	f.BoolVar(&o.Saliency, "sal", false, "also write crude saliency maps Sal/<id>.png (blurred ground truth plus noise)")
	f.IntVar(&o.Workers, "workers", 0, "rendering goroutines (0 = all cores); does not change the output")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// parseSize parses "WxH" (or "N" for a square).
func parseSize(s string) (int, int, error) {
	ws, hs, ok := strings.Cut(strings.ToLower(s), "x")
	if !ok {
		hs = ws
	}
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, badinput.New("", "size", "%q is not WxH", s)
	}
	return w, h, nil
}
