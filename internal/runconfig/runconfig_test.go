package runconfig

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/stages/train"
)

// TestPresetsLoad loads every pipeline preset and checks that the train
// sections of voc12 and coco14 are the train presets of configs/.
func TestPresetsLoad(t *testing.T) {
	for _, name := range []string{"demo", "voc12", "coco14"} {
		cfg, err := Load(filepath.Join("..", "..", "configs", "pipeline", name+".yaml"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Name != name || cfg.SegMode == "" || len(cfg.Modes) == 0 {
			t.Errorf("%s: name %q modes %v seg_mode %q", name, cfg.Name, cfg.Modes, cfg.SegMode)
		}
		if name == "demo" {
			if !reflect.DeepEqual(cfg.Modes, []train.Mode{train.ModeCAM, train.ModeL2G, train.ModeL2GShape}) || !cfg.NeedsSaliency() {
				t.Errorf("demo modes %v", cfg.Modes)
			}
			continue
		}
		want, err := train.LoadConfig(filepath.Join("..", "..", "configs", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cfg.Train, want) {
			t.Errorf("%s: the train section differs from configs/%s.yaml:\n%+v\n%+v", name, name, cfg.Train, want)
		}
	}
}

func TestDefaultsAndDerivedFields(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(`
data: {root: data/x}
weights: {train: w/pre.safetensors, segtrain: /abs/seg.safetensors}
train: {optim: {lr: 0.05}}
segtrain: {dataset: coco, model: {num_classes: 21}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Data.Root != filepath.Join(".", "data", "x") || cfg.Data.TrainList != "train_cls.txt" {
		t.Errorf("data %+v", cfg.Data)
	}
	// Paths in the file are relative to the file.
	cfg2, err := Parse("configs/p.yaml", []byte("weights: {train: w/pre.safetensors, segtrain: /abs/seg.safetensors}"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg2.Weights.Train != filepath.Join("configs", "w", "pre.safetensors") || cfg2.Weights.SegTrain != "/abs/seg.safetensors" {
		t.Errorf("weights %+v", cfg2.Weights)
	}
	if len(cfg.Modes) != 1 || cfg.Modes[0] != train.ModeL2GShape || cfg.SegMode != train.ModeL2GShape {
		t.Errorf("modes %v seg_mode %s, want the train mode alone", cfg.Modes, cfg.SegMode)
	}
	// A key left out keeps the default; groups not given keep the defaults.
	if cfg.Train.Optim.LR != 0.05 || cfg.Train.Optim.Momentum != 0.9 || len(cfg.Train.Optim.Groups) != 2 {
		t.Errorf("train optim %+v", cfg.Train.Optim)
	}
	// The segtrain preset follows segtrain.dataset.
	if cfg.SegTrain.Iterations != 50000 || cfg.SegTrain.BatchSize != 20 {
		t.Errorf("segtrain preset not coco: %d iterations, batch %d", cfg.SegTrain.Iterations, cfg.SegTrain.BatchSize)
	}
	// The branch's mode replaces the section's, dropping two-net options.
	c := cfg
	c.Train.SharedBackbone = true
	if tc := c.TrainConfig(train.ModeCAM); tc.Mode != train.ModeCAM || tc.SharedBackbone {
		t.Errorf("TrainConfig(cam) = mode %s shared %v", tc.Mode, tc.SharedBackbone)
	}
}

// TestBadFieldsNamed: every section's validation error names the file and
// the dotted field, with the line for YAML errors.
func TestBadFieldsNamed(t *testing.T) {
	cases := []struct {
		doc, field, msg string
	}{
		{"train: {optim: {lr: -1}}", "train.optim.lr", "-1"},
		{"train: {mode: local, local: {n: 0}}", "train", ""},
		{"cam: {scales: []}", "cam.scales", "no scales"},
		{"cam_eval: {thresholds: [2]}", "cam_eval.thresholds[0]", "not in [0, 1]"},
		{"pseudolabel: {bg_threshold: 2}", "pseudolabel.bg_threshold", "not in [0, 1]"},
		{"saliency: {method: magic}", "saliency.method", "magic"},
		{"segtrain: {batch_size: 0}", "segtrain.batch_size", ""},
		{"segtrain: {model: {num_classes: 5}}", "segtrain.model.num_classes", "train.num_classes + 1"},
		{"evaluate: {workers: -1}", "evaluate.workers", "negative"},
		{"modes: [cam, cam]", "modes[1]", "twice"},
		{"modes: [cam]\nseg_mode: l2g", "seg_mode", "not one of"},
		{"modes: [cam, bogus]", "train", "bogus"},
		{"data: {kind: imagenet}", "data.kind", "imagenet"},
		{"data: {val_list: ''}", "data.val_list", "no list"},
		{"device: tpu", "device", "tpu"},
		{"name: a/b", "name", "slashes"},
		{"train:\n  optim:\n    lr: 0.1\n    typo: 3\n", "", "line 4"},
	}
	for _, c := range cases {
		_, err := Parse("configs/x.yaml", []byte(c.doc))
		var be *badinput.Error
		if !errors.As(err, &be) {
			t.Errorf("%q: error %v, want bad input", c.doc, err)
			continue
		}
		if be.Path != "configs/x.yaml" {
			t.Errorf("%q: path %q", c.doc, be.Path)
		}
		if c.field != "" && be.Field != c.field && !strings.HasPrefix(be.Field, c.field+".") {
			t.Errorf("%q: field %q, want %q (%v)", c.doc, be.Field, c.field, err)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %q lacks %q", c.doc, err, c.msg)
		}
	}
	if _, err := Load("no/such/file.yaml"); !badinput.Is(err) || !strings.Contains(err.Error(), "no/such/file.yaml") {
		t.Errorf("missing file: %v", err)
	}
}
