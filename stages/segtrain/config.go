package segtrain

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"runtime"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/crf"
	"github.com/l2g/l2g/internal/nn"
)

// Dataset presets (spec §8): configs/voc12_resnet_dplv2.yaml and
// coco_resnet_dplv2.yaml of deeplab-pytorch.
const (
	PresetVOC  = "voc"
	PresetCOCO = "coco"
)

// ModelConfig builds the segmentation network (internal/nn).
type ModelConfig struct {
	// Arch is deeplabv2_resnet101 (the reference) or small (CPU tests).
	Arch string `yaml:"arch" json:"arch"`
	// NumClasses counts the background: 21 for VOC, 81 for COCO.
	NumClasses int `yaml:"num_classes" json:"num_classes"`
	// Width is the ResNet base width (0: 64); smaller widths keep the
	// layout and the parameter names.
	Width int `yaml:"width,omitempty" json:"width,omitempty"`
	// Blocks are the ResNet block counts of layer2..layer5 (empty: 3, 4,
	// 23, 3).
	Blocks []int `yaml:"blocks,omitempty" json:"blocks,omitempty"`
	// ASPPRates are the ASPP dilations (empty: 6, 12, 18, 24; small: 2, 4,
	// 6, 8).
	ASPPRates []int64 `yaml:"aspp_rates,omitempty" json:"aspp_rates,omitempty"`
	// SmallWidths are the seven layer widths of the small net (empty: its
	// default).
	SmallWidths []int64 `yaml:"small_widths,omitempty" json:"small_widths,omitempty"`
}

// AugmentConfig is the training augmentation (deeplab-pytorch
// libs/datasets/base.py:_augmentation).
type AugmentConfig struct {
	Scales  []float64  `yaml:"scales"`
	Crop    int        `yaml:"crop"`
	MeanBGR [3]float64 `yaml:"mean_bgr"` // subtracted from the 0–255 BGR image; the padding colour
	Flip    bool       `yaml:"flip"`
	// InputScale multiplies the mean-subtracted image, in training and at
	// test time. The reference feeds 0–255 values (1) to a net whose Caffe
	// initialisation expects them; a net trained from scratch without
	// BatchNorm (the small CPU net) needs unit-scale inputs (1/58 ≈ the
	// pixel standard deviation).
	InputScale float64 `yaml:"input_scale"`
}

// OptimConfig is SGD with the 1×/10×/20× groups and the step-wise poly
// schedule of deeplab-pytorch (PolynomialLR with step_size).
type OptimConfig struct {
	LR       float64                 `yaml:"lr"`
	Momentum float64                 `yaml:"momentum"`
	Groups   map[string]nn.GroupOpts `yaml:"groups"`
	// The rate is base·(1 − t/T)^PolyPower, t the completed iterations
	// rounded down to a multiple of PolyEvery.
	PolyPower float64 `yaml:"poly_power"`
	PolyEvery int     `yaml:"poly_every"`
}

// CRFConfig is the dense CRF block of the DeepLab config (crf.Params).
type CRFConfig struct {
	PosXYStd float32 `yaml:"pos_xy_std"`
	PosW     float32 `yaml:"pos_w"`
	BiXYStd  float32 `yaml:"bi_xy_std"`
	BiRGBStd float32 `yaml:"bi_rgb_std"`
	BiW      float32 `yaml:"bi_w"`
	Iters    int     `yaml:"iters"`
}

// Params converts to the crf package's settings.
func (c CRFConfig) Params(workers int) crf.Params {
	return crf.Params{PosXYStd: c.PosXYStd, PosW: c.PosW, BiXYStd: c.BiXYStd, BiRGBStd: c.BiRGBStd, BiW: c.BiW,
		Iters: c.Iters, Workers: workers}
}

// TestConfig is the test-time inference (main.py:test and crf).
type TestConfig struct {
	// CRF post-processes the predictions with the dense CRF; metrics
	// then report both.
	CRF       bool      `yaml:"crf"`
	CRFParams CRFConfig `yaml:"crf_params"`
	// WritePNG writes the VOC palette PNGs next to the Parquet output.
	WritePNG bool `yaml:"write_png"`
}

// Config is the segmentation stage's configuration (the "segtrain" section
// of a pipeline config, or a file of its own).
type Config struct {
	// Dataset selects the preset the other keys override (voc or coco) and
	// the built-in class names when the data has no classes.txt.
	Dataset string      `yaml:"dataset"`
	Model   ModelConfig `yaml:"model"`
	// InitExclude lists parameter-name prefixes not loaded from the init
	// weights (an ASPP trained for other classes, say).
	InitExclude []string `yaml:"init_exclude"`

	Augment AugmentConfig `yaml:"augment"`
	Optim   OptimConfig   `yaml:"optim"`

	BatchSize int `yaml:"batch_size"`
	// IterSize sub-batches are accumulated per update (ITER_SIZE).
	IterSize   int    `yaml:"iter_size"`
	Iterations int    `yaml:"iterations"`
	Shuffle    bool   `yaml:"shuffle"`
	Seed       uint64 `yaml:"seed"`

	Test TestConfig `yaml:"test"`

	// Threads is libtorch's intra-op thread count (0: all cores).
	Threads int `yaml:"threads"`
	// Workers decode and augment images ahead of the step and run the
	// CRF (0: all cores); results do not depend on it.
	Workers int `yaml:"workers"`
	// CheckpointEvery writes a checkpoint every this many iterations (0:
	// only when interrupted and at the end).
	CheckpointEvery int `yaml:"checkpoint_every"`
	// KeepCheckpoints is how many of the newest checkpoints are kept (0: all).
	KeepCheckpoints int `yaml:"keep_checkpoints"`
}

// VOCConfig is configs/voc12_resnet_dplv2.yaml (spec §8): 21 classes,
// batch 5 × ITER_SIZE 2, 20000 iterations, lr 2.5e-4, momentum 0.9,
// weight decay 5e-4, poly 0.9 every 10 iterations, crop 321, scales
// 0.5–1.5, CRF 1/3 and 67/3/4, 10 iterations.
func VOCConfig() Config {
	return Config{
		Dataset: PresetVOC,
		Model:   ModelConfig{Arch: nn.ArchDeepLabV2ResNet101, NumClasses: 21},
		Augment: AugmentConfig{
			Scales:     []float64{0.5, 0.75, 1.0, 1.25, 1.5},
			Crop:       321,
			MeanBGR:    augment.DeepLabMeanBGR(),
			Flip:       true,
			InputScale: 1,
		},
		Optim: OptimConfig{
			LR: 2.5e-4, Momentum: 0.9,
			Groups:    nn.SegmenterGroups(5e-4), // backbone ×1, ASPP weights ×10, ASPP biases ×20 without decay
			PolyPower: 0.9, PolyEvery: 10,
		},
		BatchSize:  5,
		IterSize:   2,
		Iterations: 20000,
		Shuffle:    true,
		Test: TestConfig{
			CRFParams: crfConfig(crf.DefaultParams()),
			WritePNG:  true,
		},
		CheckpointEvery: 1000,
		KeepCheckpoints: 2,
	}
}

// COCOConfig is configs/coco_resnet_dplv2.yaml: as VOC but 81 classes,
// batch 20 × 1 and 50000 iterations.
func COCOConfig() Config {
	c := VOCConfig()
	c.Dataset = PresetCOCO
	c.Model.NumClasses = 81
	c.BatchSize, c.IterSize = 20, 1
	c.Iterations = 50000
	return c
}

// Preset returns the preset of a dataset kind.
func Preset(name string) (Config, error) {
	switch name {
	case PresetVOC:
		return VOCConfig(), nil
	case PresetCOCO:
		return COCOConfig(), nil
	}
	return Config{}, fmt.Errorf("unknown preset %q (want %s or %s)", name, PresetVOC, PresetCOCO)
}

func crfConfig(p crf.Params) CRFConfig {
	return CRFConfig{PosXYStd: p.PosXYStd, PosW: p.PosW, BiXYStd: p.BiXYStd, BiRGBStd: p.BiRGBStd, BiW: p.BiW, Iters: p.Iters}
}

// LoadConfig reads a YAML config over the preset its dataset key names
// (voc when absent) and validates it. Problems are *badinput.Error values
// naming the file and the field.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Config{}, badinput.New(path, "", "config file not found")
		}
		return Config{}, fmt.Errorf("segtrain: read config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig decodes a YAML document over its preset (a key left out keeps
// the preset's value; an unknown key is an error) and validates it; path
// is only used in error messages.
func ParseConfig(path string, b []byte) (Config, error) {
	var head struct {
		Dataset string `yaml:"dataset"`
	}
	if err := yaml.Unmarshal(b, &head); err != nil {
		return Config{}, badinput.Wrap(path, "", fmt.Errorf("parse: %w", err))
	}
	if head.Dataset == "" {
		head.Dataset = PresetVOC
	}
	cfg, err := Preset(head.Dataset)
	if err != nil {
		return Config{}, badinput.Wrap(path, "dataset", err)
	}
	// yaml.v3 merges maps key by key; groups given in the file replace the
	// preset's wholesale.
	groups := cfg.Optim.Groups
	cfg.Optim.Groups = nil
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, badinput.Wrap(path, "", fmt.Errorf("parse: %w", err))
	}
	if cfg.Optim.Groups == nil {
		cfg.Optim.Groups = groups
	}
	if err := cfg.Validate(path); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Validate checks every field; path names the config file in errors.
func (c Config) Validate(path string) error {
	bad := func(field, format string, args ...any) error {
		return badinput.New(path, field, format, args...)
	}
	if c.Dataset != PresetVOC && c.Dataset != PresetCOCO {
		return bad("dataset", "unknown dataset kind %q (want %s or %s)", c.Dataset, PresetVOC, PresetCOCO)
	}
	if err := c.Model.validate(path); err != nil {
		return err
	}
	for i, p := range c.InitExclude {
		if p == "" {
			return bad(fmt.Sprintf("init_exclude[%d]", i), "empty prefix would exclude every parameter")
		}
	}
	if err := c.deepLab().Validate(); err != nil {
		var be *badinput.Error
		if errors.As(err, &be) {
			return &badinput.Error{Path: path, Field: "augment." + be.Field, Err: be.Err}
		}
		return badinput.Wrap(path, "augment", err)
	}
	if s := c.Augment.InputScale; !finite(s) || s <= 0 {
		return bad("augment.input_scale", "%v, want a finite number > 0 (1: the reference's 0–255 range)", s)
	}
	for ch, m := range c.Augment.MeanBGR {
		if !finite(m) {
			return bad(fmt.Sprintf("augment.mean_bgr[%d]", ch), "%v, want a finite number", m)
		}
	}
	if err := c.Optim.validate(path); err != nil {
		return err
	}
	switch {
	case c.BatchSize < 1:
		return bad("batch_size", "%d, want >= 1", c.BatchSize)
	case c.IterSize < 1:
		return bad("iter_size", "%d, want >= 1", c.IterSize)
	case c.Iterations < 1:
		return bad("iterations", "%d, want >= 1", c.Iterations)
	case c.Threads < 0:
		return bad("threads", "%d, want >= 0 (0: all cores)", c.Threads)
	case c.Workers < 0:
		return bad("workers", "%d, want >= 0 (0: all cores)", c.Workers)
	case c.CheckpointEvery < 0:
		return bad("checkpoint_every", "%d, want >= 0", c.CheckpointEvery)
	case c.KeepCheckpoints < 0:
		return bad("keep_checkpoints", "%d, want >= 0 (0: keep all)", c.KeepCheckpoints)
	}
	return c.Test.validate(path)
}

func (m ModelConfig) validate(path string) error {
	bad := func(field, format string, args ...any) error {
		return badinput.New(path, "model."+field, format, args...)
	}
	switch m.Arch {
	case nn.ArchDeepLabV2ResNet101:
		if len(m.SmallWidths) > 0 {
			return bad("small_widths", "only the small arch takes layer widths")
		}
		if m.Width != 0 && (m.Width < 4 || m.Width%4 != 0) {
			return bad("width", "%d, want a positive multiple of 4 (0: 64)", m.Width)
		}
		if len(m.Blocks) != 0 && len(m.Blocks) != 4 {
			return bad("blocks", "%d counts, want 4 (layer2..layer5)", len(m.Blocks))
		}
		for i, b := range m.Blocks {
			if b < 1 {
				return bad(fmt.Sprintf("blocks[%d]", i), "%d, want >= 1", b)
			}
		}
	case nn.ArchSmall:
		if m.Width != 0 || len(m.Blocks) > 0 {
			return bad("width", "the small arch takes small_widths, not width or blocks")
		}
		if len(m.SmallWidths) != 0 && len(m.SmallWidths) != 7 {
			return bad("small_widths", "%d widths, want 7", len(m.SmallWidths))
		}
		for i, w := range m.SmallWidths {
			if w < 1 {
				return bad(fmt.Sprintf("small_widths[%d]", i), "%d, want >= 1", w)
			}
		}
	default:
		return bad("arch", "unknown architecture %q (want %s or %s)", m.Arch, nn.ArchDeepLabV2ResNet101, nn.ArchSmall)
	}
	if m.NumClasses < 2 || m.NumClasses > 255 {
		return bad("num_classes", "%d, want 2..255 (background included)", m.NumClasses)
	}
	for i, r := range m.ASPPRates {
		if r < 1 {
			return bad(fmt.Sprintf("aspp_rates[%d]", i), "%d, want >= 1", r)
		}
	}
	return nil
}

// options are the nn build options of the model.
func (m ModelConfig) options() []nn.Option {
	var o []nn.Option
	if m.Width > 0 {
		o = append(o, nn.WithWidth(int64(m.Width)))
	}
	if len(m.Blocks) == 4 {
		o = append(o, nn.WithBlocks(m.Blocks[0], m.Blocks[1], m.Blocks[2], m.Blocks[3]))
	}
	if len(m.ASPPRates) > 0 {
		o = append(o, nn.WithASPPRates(m.ASPPRates...))
	}
	if len(m.SmallWidths) == 7 {
		var w [7]int64
		copy(w[:], m.SmallWidths)
		o = append(o, nn.WithSmallWidths(w))
	}
	return o
}

func (o OptimConfig) validate(path string) error {
	bad := func(field, format string, args ...any) error {
		return badinput.New(path, "optim."+field, format, args...)
	}
	switch {
	case !finite(o.LR) || o.LR <= 0:
		return bad("lr", "%v, want a finite number > 0", o.LR)
	case !finite(o.Momentum) || o.Momentum < 0 || o.Momentum >= 1:
		return bad("momentum", "%v, want a number in [0, 1)", o.Momentum)
	case !finite(o.PolyPower) || o.PolyPower < 0:
		return bad("poly_power", "%v, want a finite number >= 0", o.PolyPower)
	case o.PolyEvery < 1:
		return bad("poly_every", "%d, want >= 1", o.PolyEvery)
	case len(o.Groups) == 0:
		return bad("groups", "at least one parameter group is needed")
	}
	names := make([]string, 0, len(o.Groups))
	for n := range o.Groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := o.Groups[n]
		if !finite(g.LRMult) || g.LRMult < 0 {
			return bad("groups."+n+".lr_mult", "%v, want a finite number >= 0", g.LRMult)
		}
		if !finite(g.WeightDecay) || g.WeightDecay < 0 {
			return bad("groups."+n+".weight_decay", "%v, want a finite number >= 0", g.WeightDecay)
		}
	}
	return nil
}

func (t TestConfig) validate(path string) error {
	p := t.CRFParams
	bad := func(field, format string, args ...any) error {
		return badinput.New(path, "test.crf_params."+field, format, args...)
	}
	pos := func(v float32) bool { return v > 0 && finite(float64(v)) }
	nonNeg := func(v float32) bool { return v >= 0 && finite(float64(v)) }
	switch {
	case !pos(p.PosXYStd):
		return bad("pos_xy_std", "%v, want a finite number > 0", p.PosXYStd)
	case !nonNeg(p.PosW):
		return bad("pos_w", "%v, want a finite number >= 0", p.PosW)
	case !pos(p.BiXYStd):
		return bad("bi_xy_std", "%v, want a finite number > 0", p.BiXYStd)
	case !pos(p.BiRGBStd):
		return bad("bi_rgb_std", "%v, want a finite number > 0", p.BiRGBStd)
	case !nonNeg(p.BiW):
		return bad("bi_w", "%v, want a finite number >= 0", p.BiW)
	case p.Iters < 1:
		return bad("iters", "%d, want >= 1", p.Iters)
	}
	return nil
}

// deepLab is the augmentation of the config.
func (c Config) deepLab() augment.DeepLab {
	return augment.DeepLab{Scales: c.Augment.Scales, Crop: c.Augment.Crop, MeanBGR: c.Augment.MeanBGR,
		Ignore: ignoreLabel, Flip: c.Augment.Flip}
}

// threads resolves Threads (0: all cores).
func (c Config) threads() int {
	if c.Threads > 0 {
		return c.Threads
	}
	return runtime.NumCPU()
}

// workers resolves Workers (0: all cores).
func (c Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.NumCPU()
}

// LRAt is the base learning rate of the iteration that follows done
// completed ones: deeplab-pytorch's PolynomialLR, stepped after every
// iteration, changes the rate only when the iteration count is a multiple
// of PolyEvery, to base·(1 − count/total)^power.
func (o OptimConfig) LRAt(done, total int) float64 {
	if total <= 0 {
		return o.LR
	}
	t := done - done%o.PolyEvery
	return o.LR * math.Pow(1-min(float64(t)/float64(total), 1), o.PolyPower)
}

// runDefining returns the fields that determine the trained weights: all
// but threads, workers, checkpoint cadence and the test settings. A resumed
// run must agree on them.
func (c Config) runDefining() Config {
	c.Threads, c.Workers, c.CheckpointEvery, c.KeepCheckpoints = 0, 0, 0, 0
	c.Test = TestConfig{}
	return c
}

func (c Config) definingYAML() (string, error) {
	b, err := yaml.Marshal(c.runDefining())
	if err != nil {
		return "", fmt.Errorf("segtrain: encode config: %w", err)
	}
	return string(b), nil
}
