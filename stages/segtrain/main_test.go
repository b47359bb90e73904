package segtrain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/internal/synth"
	"github.com/l2g/l2g/internal/torch"
)

// The synthetic dataset shared by the tests: 3 classes, 64×64 images, 200
// training and 40 validation images (class-coloured bodies), with
// pseudo-labels made from the
// ground truth by blockDegrade, as a Parquet dataset and a PNG directory.
var (
	synthDir     string
	labelParquet string
	labelDir     string
)

const (
	synthClasses = 3
	synthSide    = 64
	synthTrain   = 200
	synthVal     = 40
	// degradeBlock is the block size of the pseudo-labels' coarse
	// boundaries.
	degradeBlock = 4
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "l2g-segtrain-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	synthDir = filepath.Join(dir, "data")
	o := synth.DefaultOptions()
	o.Classes, o.Train, o.Val, o.Width, o.Height, o.Workers = synthClasses, synthTrain, synthVal, synthSide, synthSide, 2
	// Class-specific, saturated body colours: the v3 default names the
	// class mostly by a small part, which the recipe's net learned in 1000
	// Adam iterations with BatchNorm; this BN-free net gets 300 SGD
	// iterations here.
	g := synth.DefaultGeometry(synthSide, synthSide, synthClasses)
	g.HueSpread, g.BodySat = 0.02, 0.8
	o.Geometry = &g
	if _, err := synth.Generate(context.Background(), synthDir, o); err != nil {
		return 0, err
	}
	labelParquet = filepath.Join(dir, "pseudo.parquet")
	labelDir = filepath.Join(dir, "pseudo")
	if err := writePseudoLabels(labelParquet, labelDir); err != nil {
		return 0, err
	}
	// One thread: bit-identical results do not depend on libtorch's
	// parallel reductions, and the machine is shared.
	if err := torch.SetNumThreads(1); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// blockDegrade turns a ground-truth mask into a pseudo-label as a CAM
// stage would give it: no ignore band (255 → background, as the
// reference's pseudo-labels have none) and blocky boundaries (the label of
// each b×b block's top-left pixel).
func blockDegrade(m *imaging.Gray, b int) *imaging.Gray {
	out := imaging.NewGray(m.W, m.H)
	for y := range m.H {
		for x := range m.W {
			v := m.Pix[(y/b*b)*m.W+x/b*b]
			if v == ignoreLabel {
				v = 0
			}
			out.Pix[y*m.W+x] = v
		}
	}
	return out
}

// writePseudoLabels writes the degraded training masks through the
// pseudo-label Parquet writer and as PNGs.
func writePseudoLabels(parquet, dir string) error {
	w, err := labelio.Create(parquet, labelio.Meta(synth.ClassNames(synthClasses)))
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range synthTrain {
		id := synth.ID(synth.Train, i)
		gt, err := data.DecodeMask(filepath.Join(synthDir, data.DirMasksAug, id+".png"))
		if err != nil {
			return err
		}
		pl := blockDegrade(gt, degradeBlock)
		if err := w.Append(labelio.Record{ID: id, Split: "train", H: pl.H, W: pl.W, Mask: pl.Pix, BgThreshold: 0.25}); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(dir, id+".png"))
		if err != nil {
			return err
		}
		err = data.EncodeIndexPNG(f, pl)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return w.Close()
}

// smallConfig is the small net on the synthetic data: the VOC preset with
// 64-px crops at the reference's scales, unit-scale inputs (the net trains
// from scratch), batch 4 × ITER_SIZE 2, 300 iterations.
func smallConfig() Config {
	c := VOCConfig()
	c.Model = ModelConfig{Arch: "small", NumClasses: synthClasses + 1, SmallWidths: []int64{8, 16, 24, 24, 32, 32, 32}}
	c.Augment.Crop = 64
	c.Augment.InputScale = 1.0 / 58
	c.Optim.LR = 0.007
	c.BatchSize, c.IterSize = 4, 2
	c.Iterations = 300
	c.Threads, c.Workers = 1, 2
	c.CheckpointEvery, c.KeepCheckpoints = 0, 0
	c.Test.CRF = true
	return c
}
