package saliency

import (
	"context"
	"flag"
	"path/filepath"
	"testing"

	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/synth"
)

var (
	synthVal   = flag.Int("synth.val", 60, "validation images of the default synthetic dataset to score (its val split has 300)")
	synthTrain = flag.Bool("synth.train", false, "also score the 4000 training images (slow; for the measurement in the docs)")
)

// TestMBDBeatsCentrePriorOnSynth scores MB+ on the default synthetic
// dataset (its first -synth.val validation images, which are the same
// whatever the size of the training split) against the centre prior.
// Measured with -synth.val 300 -synth.train: val MAE 0.107 / max F 0.809
// against 0.441 / 0.280; train MAE 0.110 / max F 0.797 against
// 0.440 / 0.287.
func TestMBDBeatsCentrePriorOnSynth(t *testing.T) {
	o := synth.DefaultOptions()
	o.Val = *synthVal
	if !*synthTrain {
		o.Train = 1
	}
	root := t.TempDir()
	ctx := context.Background()
	if _, err := synth.Generate(ctx, root, o); err != nil {
		t.Fatal(err)
	}
	lists := []string{"val_cls.txt"}
	if *synthTrain {
		lists = append(lists, "train_cls.txt")
	}
	for _, list := range lists {
		split, err := data.Open(ctx, data.Spec{Root: root, Kind: data.VOC, List: list})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(root, "mbd")
		if _, err := Run(ctx, DefaultConfig(), Inputs{Items: split.Items, OutDir: out}, nil); err != nil {
			t.Fatal(err)
		}
		got, err := Evaluate(ctx, split.Items, out, 0)
		if err != nil {
			t.Fatal(err)
		}
		base, err := EvaluateCentrePrior(ctx, split.Items, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s (%d images): MB+ MAE %.4f max F %.4f (t=%d) | centre prior MAE %.4f max F %.4f (t=%d)",
			list, got.Images, got.MAE, got.MaxF, got.Threshold, base.MAE, base.MaxF, base.Threshold)
		if got.MAE > 0.5*base.MAE || got.MaxF < base.MaxF+0.3 {
			t.Errorf("%s: MB+ (MAE %.4f, max F %.4f) does not clearly beat the centre prior (MAE %.4f, max F %.4f)",
				list, got.MAE, got.MaxF, base.MAE, base.MaxF)
		}
	}
}
