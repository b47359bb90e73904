package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/stages/cam"
)

// newCAMCmd is `l2g cam`: multi-scale CAM inference with the trained global
// net (spec §5) into a CAM Parquet dataset.
func newCAMCmd() *cobra.Command {
	var (
		in            cam.Inputs
		cfgPath, kind string
		scales, dtype string
		png           bool
		device        string
		batch         int
		workers       int
	)
	cmd := &cobra.Command{
		Use:   "cam",
		Short: "Compute multi-scale CAMs of the present classes with the trained global net (OUT/cams.parquet)",
		Long: "Runs the checkpoint's network on every image of --list at each --scales factor (PIL bicubic resize)\n" +
			"and its horizontal flip, averages the maps upsampled to the image size, clips negatives and divides\n" +
			"each class by its maximum. The CAMs of the classes in each image's label go to OUT/cams.parquet\n" +
			"(uint8 ×255 like the reference's PNGs, or float16); --png also writes OUT/cams/<id>_<k>.png.",
		Args: cobra.NoArgs,
		// libtorch's threads: the global --threads flag, or threads: in --config.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadCAMConfig(cfgPath)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("scales") {
				if cfg.Scales, err = parseScales(scales); err != nil {
					return err
				}
			}
			if f.Changed("dtype") {
				cfg.DType = dtype
			}
			if f.Changed("png") {
				cfg.WritePNG = png
			}
			if f.Changed("batch-images") {
				cfg.Batch.Images = batch
			}
			if f.Changed("workers") {
				cfg.Workers = workers
			}
			if f.Changed("device") {
				in.Device = device
			}
			if in.Kind, err = data.ParseKind(kind); err != nil {
				return badinput.Wrap("", "--kind", err)
			}
			out, err := cam.Run(cmd.Context(), cfg, in, progressPrinter(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cam: %d images in %.1fs (%.2f images/s): %s\n",
				out.Images, out.Seconds, float64(out.Images)/out.Seconds, out.CAMs)
			if out.PNGDir != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "cam: PNGs in %s\n", out.PNGDir)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Checkpoint, "checkpoint", "", "global net checkpoint (safetensors with arch and num_classes metadata)")
	f.StringVar(&in.DataRoot, "data", "", "dataset root (VOC/COCO layout)")
	f.StringVar(&in.List, "list", "train_cls.txt", "class-label list, relative to --data")
	f.StringVar(&in.OutDir, "out", "", "output directory")
	f.StringVar(&kind, "kind", "voc", "dataset kind: voc or coco (class names, default normalization)")
	f.StringVar(&cfgPath, "config", "", "YAML file with the cam stage config")
	f.StringVar(&scales, "scales", "0.5,1,1.5,2", "comma-separated test scales")
	f.StringVar(&dtype, "dtype", "uint8", "stored CAM type: uint8 or float16")
	f.BoolVar(&png, "png", false, "also write the reference's <id>_<k>.png files")
	f.StringVar(&device, "device", "auto", "auto (GPU when present), cpu, cuda or cuda:N")
	f.IntVar(&batch, "batch-images", 1, "consecutive images of equal size per forward")
	f.IntVar(&workers, "workers", 0, "image decode/resize goroutines (0 = all cores)")
	for _, name := range []string{"checkpoint", "data", "out"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}

func parseScales(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, badinput.New("", "--scales", "%q is not a number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// loadCAMConfig reads a cam stage config over the defaults; unknown keys
// are errors naming the file.
func loadCAMConfig(path string) (cam.Config, error) {
	cfg := cam.DefaultConfig()
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
		var be *badinput.Error
		if errors.As(err, &be) {
			be.Path = path
		}
		return cfg, err
	}
	return cfg, nil
}
