package train

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/nn"
)

// TestPresetsHoldTheSpecNumbers loads configs/*.yaml and compares them with
// the values of L2G-SPEC.md §1–§4 written out here.
func TestPresetsHoldTheSpecNumbers(t *testing.T) {
	voc, err := LoadConfig("../../configs/voc12.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(voc, DefaultConfig()) {
		t.Errorf("voc12.yaml differs from DefaultConfig:\n%+v\n%+v", voc, DefaultConfig())
	}
	want := Config{
		Mode: ModeL2GShape, Arch: "resnet38", NumClasses: 20, Dataset: "voc",
		View: ViewConfig{Kind: "voc", ShortSide: 512, Size: 448,
			Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}},
		Local: LocalConfig{Scheme: "voc", N: 6, Crop: 320},
		Loss:  LossConfig{KDWeight: 10, BgThreshold: 0.001, BgTarget: BgMask},
		Optim: OptimConfig{LR: 1e-3, Momentum: 0.9, Nesterov: true,
			Groups:   map[string]nn.GroupOpts{"backbone": {LRMult: 1, WeightDecay: 5e-4}, "new": {LRMult: 10, WeightDecay: 5e-4}},
			Schedule: ScheduleStep, StepEpochs: []int{5}, StepGamma: 0.1, PolyPower: 0.9},
		BatchSize: 3, Epochs: 10, Shuffle: true, CheckpointEvery: 1000, KeepCheckpoints: 2,
	}
	want.View.ColorJitter.Brightness, want.View.ColorJitter.Contrast = 0.3, 0.3
	want.View.ColorJitter.Saturation, want.View.ColorJitter.Hue = 0.3, 0.1
	if !reflect.DeepEqual(voc, want) {
		t.Errorf("voc12.yaml:\n got %+v\nwant %+v", voc, want)
	}

	coco, err := LoadConfig("../../configs/coco14.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want.NumClasses, want.Dataset = 80, "coco"
	want.View.Kind, want.View.ShortSide = "coco", 448
	want.View.Mean, want.View.Std = [3]float32{0.471, 0.448, 0.408}, [3]float32{0.234, 0.239, 0.242}
	want.Local = LocalConfig{Scheme: "coco", N: 4, Crop: 320}
	want.Loss = LossConfig{KDWeight: 30, BgThreshold: 0.1, BgTarget: BgSoft}
	want.Optim = OptimConfig{LR: 0.1, Momentum: 5e-4, Nesterov: false,
		Groups:   map[string]nn.GroupOpts{"backbone": {LRMult: 1}, "new": {LRMult: 10}},
		Schedule: SchedulePoly, StepEpochs: []int{}, StepGamma: 0.1, PolyPower: 0.7}
	want.BatchSize, want.Epochs = 12, 15
	if !reflect.DeepEqual(coco, want) {
		t.Errorf("coco14.yaml:\n got %+v\nwant %+v", coco, want)
	}

	if _, err := LoadConfig("../../configs/demo.yaml"); err != nil {
		t.Errorf("demo.yaml: %v", err)
	}
}

func TestConfigErrorsNameFileAndField(t *testing.T) {
	cases := []struct {
		name, yaml, field string
	}{
		{"unknown key", "epochz: 3\n", ""},
		{"mode", "mode: gradcam\n", "mode"},
		{"classes", "num_classes: 0\n", "num_classes"},
		{"width on small", "arch: small\nwidth: 8\n", "width"},
		{"view kind", "view: {kind: square}\n", "view.kind"},
		{"crop larger than view", "local: {crop: 500}\n", "local.crop"},
		{"voc scheme needs corners", "local: {n: 3}\n", "local.n"},
		{"jitter", "view: {color_jitter: {hue: 0.7}}\n", "view.color_jitter.hue"},
		{"std", "view: {std: [0.2, 0, 0.2]}\n", "view.std[1]"},
		{"threshold", "loss: {bg_threshold: 1.5}\n", "loss.bg_threshold"},
		{"bg target", "loss: {bg_target: fuzzy}\n", "loss.bg_target"},
		{"global cls in cam", "mode: cam\nloss: {global_cls: true}\n", "loss.global_cls"},
		{"shared in cam", "mode: cam\nshared_backbone: true\n", "shared_backbone"},
		{"lr", "optim: {lr: -1}\n", "optim.lr"},
		{"nesterov without momentum", "optim: {momentum: 0}\n", "optim.nesterov"},
		{"group wd", "optim: {groups: {backbone: {lr_mult: 1, weight_decay: -1}}}\n", "optim.groups.backbone.weight_decay"},
		{"schedule", "optim: {schedule: cosine}\n", "optim.schedule"},
		{"step epoch", "optim: {step_epochs: [0]}\n", "optim.step_epochs[0]"},
		{"batch", "batch_size: 0\n", "batch_size"},
		{"keep", "keep_checkpoints: -1\n", "keep_checkpoints"},
		{"init exclude", "init_exclude: ['']\n", "init_exclude[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("my.yaml", []byte(tc.yaml))
			var be *badinput.Error
			if !errors.As(err, &be) {
				t.Fatalf("got %v, want a bad-input error", err)
			}
			if be.Path != "my.yaml" || be.Field != tc.field {
				t.Fatalf("error names %q field %q, want my.yaml field %q (%v)", be.Path, be.Field, tc.field, err)
			}
		})
	}
}

func TestGroupsReplaceDefaults(t *testing.T) {
	c, err := ParseConfig("g.yaml", []byte("optim: {groups: {all: {lr_mult: 2}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Optim.Groups) != 1 || c.Optim.Groups["all"].LRMult != 2 {
		t.Fatalf("groups %v, want only the file's", c.Optim.Groups)
	}
}

func TestLRSchedules(t *testing.T) {
	step := OptimConfig{LR: 1e-3, Schedule: ScheduleStep, StepEpochs: []int{5, 8}, StepGamma: 0.1}
	for _, c := range []struct {
		epoch int
		want  float64
	}{{0, 1e-3}, {4, 1e-3}, {5, 1e-4}, {7, 1e-4}, {8, 1e-5}, {9, 1e-5}} {
		if got := step.LRAt(123, c.epoch, 1000); math.Abs(got-c.want) > 1e-18 {
			t.Errorf("step schedule, epoch %d: %v, want %v", c.epoch, got, c.want)
		}
	}
	// COCO: lr0·(1 − t/T)^0.7 with T = 15·6841.
	poly := OptimConfig{LR: 0.1, Schedule: SchedulePoly, PolyPower: 0.7}
	const total = 15 * 6841
	for _, c := range []struct {
		it   int
		want float64
	}{{0, 0.1}, {total / 3, 0.1 * math.Pow(2.0/3, 0.7)}, {total - 1, 0.1 * math.Pow(1.0/total, 0.7)}} {
		if got := poly.LRAt(c.it, c.it/6841, total); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("poly schedule, iteration %d: %v, want %v", c.it, got, c.want)
		}
	}
	if got := (OptimConfig{LR: 0.5, Schedule: ScheduleConstant}).LRAt(9, 9, 10); got != 0.5 {
		t.Errorf("constant schedule: %v", got)
	}
}
