// Package runconfig reads a pipeline config (configs/pipeline/*.yaml): the
// dataset, the training modes to compare, and one section per stage that
// decodes over the stage's own defaults into its Config. A bad key or value
// is a *badinput.Error naming the file and the dotted field
// ("train.optim.lr"), so the CLI fails before a workflow starts.
package runconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/stages/cam"
	"github.com/l2g/l2g/stages/evaluate"
	"github.com/l2g/l2g/stages/pseudolabel"
	"github.com/l2g/l2g/stages/saliency"
	"github.com/l2g/l2g/stages/segtrain"
	"github.com/l2g/l2g/stages/train"
)

// Config is a whole pipeline: everything a run needs besides the Temporal
// settings. It travels as JSON in the workflow input, so workers never read
// the file.
type Config struct {
	// Name prefixes the run ids (workflow ids) of runs of this config.
	Name string `yaml:"name" json:"name"`
	Data Data   `yaml:"data" json:"data"`
	// Modes are the training modes compared, each a branch train → cam →
	// cam_eval → pseudolabel → evaluate (default: train.mode alone).
	Modes []train.Mode `yaml:"modes" json:"modes"`
	// SegMode is the branch whose pseudo-labels train the segmentation net
	// (default: the last of Modes).
	SegMode train.Mode `yaml:"seg_mode" json:"seg_mode"`
	// Device is what the GPU stages run on when the worker does not assign
	// one: cpu, cuda, cuda:N or auto.
	Device string `yaml:"device" json:"device"`
	// Weights are starting weights; relative paths in the file are taken
	// from the file's directory.
	Weights Weights `yaml:"weights" json:"weights"`

	Saliency    saliency.Config    `yaml:"saliency" json:"saliency"`
	Train       train.Config       `yaml:"train" json:"train"`
	CAM         cam.Config         `yaml:"cam" json:"cam"`
	CAMEval     evaluate.Config    `yaml:"cam_eval" json:"cam_eval"`
	Pseudolabel pseudolabel.Config `yaml:"pseudolabel" json:"pseudolabel"`
	SegTrain    segtrain.Config    `yaml:"segtrain" json:"segtrain"`
	Evaluate    evaluate.Config    `yaml:"evaluate" json:"evaluate"`

	// Path is the file the config came from ("" when built in code).
	Path string `yaml:"-" json:"path,omitempty"`
}

// Data names the dataset and its lists (relative to Root unless absolute).
type Data struct {
	// Root is the dataset directory; relative paths in the file are taken
	// from the file's directory. `l2g run --data` overrides it.
	Root string `yaml:"root" json:"root"`
	Kind string `yaml:"kind" json:"kind"` // voc or coco: built-in class names
	// TrainList is the class-label list of the classifier stages
	// (saliency, train, cam).
	TrainList string `yaml:"train_list" json:"train_list"`
	// EvalList has ground-truth masks to score CAMs and pseudo-labels with
	// (VOC: train.txt, the 1464 annotated training images).
	EvalList string `yaml:"eval_list" json:"eval_list"`
	// SegTrainList is what the segmentation net trains on.
	SegTrainList string `yaml:"segtrain_list" json:"segtrain_list"`
	// ValList is predicted by the segmentation net and scored.
	ValList string `yaml:"val_list" json:"val_list"`
}

// Weights name the initial weights of the networks (.safetensors, the
// stages' InitWeights). Each file is an input of its stage's hash.
type Weights struct {
	// Train initialises every classifier (ImageNet-pretrained ResNet-38
	// converted with l2g's weights importer, or a small net pretrained on
	// other synthetic data).
	Train string `yaml:"train" json:"train,omitempty"`
	// SegTrain initialises the segmentation network.
	SegTrain string `yaml:"segtrain" json:"segtrain,omitempty"`
}

// DataKind parses Kind (checked by Validate; voc when invalid).
func (d Data) DataKind() data.Kind {
	k, err := data.ParseKind(d.Kind)
	if err != nil {
		return data.VOC
	}
	return k
}

// Default returns the built-in defaults: each stage's DefaultConfig, the
// VOC lists, and the paper's method alone.
func Default() Config {
	return Config{
		Data: Data{
			Kind: "voc", TrainList: "train_cls.txt", EvalList: "train.txt",
			SegTrainList: "train_aug.txt", ValList: "val.txt",
		},
		Device:      "auto",
		Saliency:    saliency.DefaultConfig(),
		Train:       train.DefaultConfig(),
		CAM:         cam.DefaultConfig(),
		CAMEval:     evaluate.DefaultConfig(),
		Pseudolabel: pseudolabel.DefaultConfig(),
		SegTrain:    segtrain.VOCConfig(),
		Evaluate:    evaluate.DefaultConfig(),
	}
}

// Load reads path over Default and validates it.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Config{}, badinput.New(path, "", "config file not found")
		}
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes a YAML document over Default (a key left out keeps its
// default; an unknown key is an error with its line) and validates it.
// path names the file in errors and anchors a relative data.root.
func Parse(path string, b []byte) (Config, error) {
	// The segmentation defaults are a preset chosen by segtrain.dataset.
	var head struct {
		SegTrain struct {
			Dataset string `yaml:"dataset"`
		} `yaml:"segtrain"`
	}
	if err := yaml.Unmarshal(b, &head); err != nil {
		return Config{}, badinput.Wrap(path, "", fmt.Errorf("parse: %w", err))
	}
	cfg := Default()
	if head.SegTrain.Dataset != "" {
		p, err := segtrain.Preset(head.SegTrain.Dataset)
		if err != nil {
			return Config{}, badinput.Wrap(path, "segtrain.dataset", err)
		}
		cfg.SegTrain = p
	}
	// yaml.v3 merges maps key by key; optimizer groups given in the file
	// replace the defaults wholesale, as the stages' own loaders do.
	trainGroups, segGroups := cfg.Train.Optim.Groups, cfg.SegTrain.Optim.Groups
	cfg.Train.Optim.Groups, cfg.SegTrain.Optim.Groups = nil, nil
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, badinput.Wrap(path, "", fmt.Errorf("parse: %w", err))
	}
	if cfg.Train.Optim.Groups == nil {
		cfg.Train.Optim.Groups = trainGroups
	}
	if cfg.SegTrain.Optim.Groups == nil {
		cfg.SegTrain.Optim.Groups = segGroups
	}
	cfg.Path = path
	for _, p := range []*string{&cfg.Data.Root, &cfg.Weights.Train, &cfg.Weights.SegTrain} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(filepath.Dir(path), *p)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// TrainConfig is the train section with the branch's mode.
func (c Config) TrainConfig(m train.Mode) train.Config {
	t := c.Train
	t.Mode = m
	if t.SharedBackbone && m != train.ModeL2G && m != train.ModeL2GShape {
		t.SharedBackbone = false // one net already; the option means nothing here
	}
	if t.Loss.GlobalCls && m != train.ModeL2G && m != train.ModeL2GShape {
		t.Loss.GlobalCls = false
	}
	return t
}

// ModeUsesSaliency reports whether training in mode m reads saliency maps.
func ModeUsesSaliency(m train.Mode) bool { return m == train.ModeL2GShape }

// NeedsSaliency reports whether any stage reads saliency maps.
func (c Config) NeedsSaliency() bool {
	return slices.ContainsFunc(c.Modes, ModeUsesSaliency) || c.Pseudolabel.Background == pseudolabel.BackgroundSaliency ||
		slices.ContainsFunc(c.CAMEval.Variants, func(v pseudolabel.Variant) bool { return v.Background == pseudolabel.BackgroundSaliency })
}

// Validate fills the derived defaults (modes, seg_mode) and checks every
// section; errors name c.Path and the dotted field.
func (c *Config) Validate() error {
	path := c.Path
	bad := func(field, format string, args ...any) error {
		return badinput.New(path, field, format, args...)
	}
	if strings.ContainsAny(c.Name, "/\\ \t\n") {
		return bad("name", "%q: a run name may not hold slashes or spaces", c.Name)
	}
	if _, err := data.ParseKind(c.Data.Kind); err != nil {
		return bad("data.kind", "%v", err)
	}
	for _, l := range []struct{ field, v string }{
		{"data.train_list", c.Data.TrainList}, {"data.eval_list", c.Data.EvalList},
		{"data.segtrain_list", c.Data.SegTrainList}, {"data.val_list", c.Data.ValList},
	} {
		if l.v == "" {
			return bad(l.field, "no list file given")
		}
	}
	if len(c.Modes) == 0 {
		c.Modes = []train.Mode{c.Train.Mode}
	}
	for i, m := range c.Modes {
		if slices.Index(c.Modes, m) != i {
			return bad(fmt.Sprintf("modes[%d]", i), "mode %s is listed twice", m)
		}
		if err := c.TrainConfig(m).Validate(path); err != nil {
			return section(path, "train", err, fmt.Sprintf(" (in mode %s, modes[%d])", m, i))
		}
	}
	if c.SegMode == "" {
		c.SegMode = c.Modes[len(c.Modes)-1]
	}
	if !slices.Contains(c.Modes, c.SegMode) {
		return bad("seg_mode", "%s is not one of modes %v", c.SegMode, c.Modes)
	}
	switch c.Device {
	case "", "auto", "cpu", "cuda":
	default:
		if !strings.HasPrefix(c.Device, "cuda:") {
			return bad("device", "%q, want auto, cpu, cuda or cuda:N", c.Device)
		}
	}
	if err := c.Saliency.Validate(); err != nil {
		return section(path, "saliency", err, "")
	}
	if err := c.CAM.Validate(); err != nil {
		return section(path, "cam", err, "")
	}
	if err := c.CAMEval.Validate(); err != nil {
		return section(path, "cam_eval", err, "")
	}
	if err := c.Pseudolabel.Validate(); err != nil {
		return section(path, "pseudolabel", err, "")
	}
	if err := c.SegTrain.Validate(path); err != nil {
		return section(path, "segtrain", err, "")
	}
	if n := c.SegTrain.Model.NumClasses; n != c.Train.NumClasses+1 {
		return bad("segtrain.model.num_classes", "%d, want train.num_classes + 1 = %d (the background)", n, c.Train.NumClasses+1)
	}
	if err := c.Evaluate.Validate(); err != nil {
		return section(path, "evaluate", err, "")
	}
	return nil
}

// section puts a stage's validation error under its section: the file is
// set and the field gets the section prefix unless the stage already gave
// it. Other errors are wrapped as bad input of the section.
func section(path, name string, err error, note string) error {
	var be *badinput.Error
	if !errors.As(err, &be) {
		return badinput.Wrap(path, name, err)
	}
	field := be.Field
	switch {
	case field == "":
		field = name
	case field != name && !strings.HasPrefix(field, name+"."):
		field = name + "." + field
	}
	e := be.Err
	if note != "" {
		e = fmt.Errorf("%w%s", be.Err, note)
	}
	return &badinput.Error{Path: path, Line: be.Line, Field: field, Err: e}
}
