package segtrain

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/nn"
)

func TestPresetsAreTheReferenceConfigs(t *testing.T) {
	v := VOCConfig()
	if !reflect.DeepEqual(v.Model, ModelConfig{Arch: "deeplabv2_resnet101", NumClasses: 21}) {
		t.Errorf("VOC model %+v", v.Model)
	}
	if v.BatchSize != 5 || v.IterSize != 2 || v.Iterations != 20000 || !v.Shuffle {
		t.Errorf("VOC schedule: batch %d × %d, %d iterations, shuffle %v", v.BatchSize, v.IterSize, v.Iterations, v.Shuffle)
	}
	o := v.Optim
	if o.LR != 2.5e-4 || o.Momentum != 0.9 || o.PolyPower != 0.9 || o.PolyEvery != 10 {
		t.Errorf("VOC optim %+v", o)
	}
	wantGroups := map[string]nn.GroupOpts{
		"backbone":    {LRMult: 1, WeightDecay: 5e-4},
		"aspp_weight": {LRMult: 10, WeightDecay: 5e-4},
		"aspp_bias":   {LRMult: 20, WeightDecay: 0},
	}
	if !reflect.DeepEqual(o.Groups, wantGroups) {
		t.Errorf("VOC groups %v", o.Groups)
	}
	a := v.Augment
	if !reflect.DeepEqual(a.Scales, []float64{0.5, 0.75, 1, 1.25, 1.5}) || a.Crop != 321 || !a.Flip || a.InputScale != 1 ||
		a.MeanBGR != [3]float64{104.008, 116.669, 122.675} {
		t.Errorf("VOC augmentation %+v", a)
	}
	if v.Test.CRFParams != (CRFConfig{PosXYStd: 1, PosW: 3, BiXYStd: 67, BiRGBStd: 3, BiW: 4, Iters: 10}) || v.Test.CRF {
		t.Errorf("VOC test %+v", v.Test)
	}
	c := COCOConfig()
	if c.Model.NumClasses != 81 || c.BatchSize != 20 || c.IterSize != 1 || c.Iterations != 50000 || c.Optim.LR != 2.5e-4 || c.Dataset != "coco" {
		t.Errorf("COCO preset %+v", c)
	}
	for _, p := range []Config{v, c} {
		if err := p.Validate(""); err != nil {
			t.Errorf("preset %s: %v", p.Dataset, err)
		}
	}
}

func TestParseConfigOverPreset(t *testing.T) {
	doc := `dataset: coco
iterations: 100
model: {arch: small, num_classes: 4}
optim:
  lr: 0.01
  groups: {backbone: {lr_mult: 1, weight_decay: 0}, aspp_weight: {lr_mult: 1, weight_decay: 0}, aspp_bias: {lr_mult: 1, weight_decay: 0}}
test: {crf: true}
`
	cfg, err := ParseConfig("seg.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchSize != 20 || cfg.Iterations != 100 || cfg.Optim.LR != 0.01 || cfg.Optim.Momentum != 0.9 ||
		cfg.Model.Arch != "small" || !cfg.Test.CRF || cfg.Test.CRFParams.BiXYStd != 67 {
		t.Errorf("parsed %+v", cfg)
	}
	if len(cfg.Optim.Groups) != 3 || cfg.Optim.Groups["aspp_bias"].LRMult != 1 {
		t.Errorf("groups %v: the file's groups must replace the preset's", cfg.Optim.Groups)
	}
	path := filepath.Join(t.TempDir(), "seg.yaml")
	if err := os.WriteFile(path, []byte("iter_size: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		doc, field string
	}{
		{"iter_size: 0\n", "iter_size"},
		{"optim: {poly_every: 0}\n", "optim.poly_every"},
		{"augment: {scales: []}\n", "augment.scales"},
		{"augment: {input_scale: 0}\n", "augment.input_scale"},
		{"model: {arch: small, num_classes: 4, width: 8}\n", "model.width"},
		{"model: {num_classes: 1}\n", "model.num_classes"},
		{"test: {crf_params: {iters: 0}}\n", "test.crf_params.iters"},
		{"dataset: ade\n", "dataset"},
		{"batch_sz: 3\n", ""},
	} {
		if err := os.WriteFile(path, []byte(tc.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(path)
		var be *badinput.Error
		if !errors.As(err, &be) || be.Path != path || be.Field != tc.field {
			t.Errorf("%q: %v, want bad input at %s field %q", tc.doc, err, path, tc.field)
		}
	}
}

// TestLRAt checks deeplab-pytorch's PolynomialLR(step_size=10, iter_max,
// power 0.9) as main.py steps it after each iteration: the rate changes
// only when the completed count reaches a multiple of 10.
func TestLRAt(t *testing.T) {
	o := VOCConfig().Optim
	for _, tc := range []struct {
		done int
		want float64
	}{
		{0, 2.5e-4},
		{9, 2.5e-4},
		{10, 2.5e-4 * math.Pow(1-10.0/20000, 0.9)},
		{19, 2.5e-4 * math.Pow(1-10.0/20000, 0.9)},
		{10000, 2.5e-4 * math.Pow(0.5, 0.9)}, // 1.3397e-4
		{19999, 2.5e-4 * math.Pow(10.0/20000, 0.9)},
	} {
		if got := o.LRAt(tc.done, 20000); math.Abs(got-tc.want) > 1e-18 {
			t.Errorf("LRAt(%d) = %.10g, want %.10g", tc.done, got, tc.want)
		}
	}
	if got := o.LRAt(10000, 20000); math.Abs(got-1.3397168e-4) > 1e-10 {
		t.Errorf("half-way rate %.8g", got)
	}
}
