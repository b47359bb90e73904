package train

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
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/nn"
)

// Mode selects what is trained: the paper's method or one of its baselines.
type Mode string

const (
	// ModeCAM is one net trained with the classification loss on the whole
	// image (the CAM baseline).
	ModeCAM Mode = "cam"
	// ModeLocal is one net trained with the classification loss on the
	// local crops only.
	ModeLocal Mode = "local"
	// ModeL2G is local-to-global attention transfer without saliency.
	ModeL2G Mode = "l2g"
	// ModeL2GShape is L2G with saliency shape transfer (the paper's method).
	ModeL2GShape Mode = "l2g-shape"
)

// twoNets reports whether the mode trains a global and a local net.
func (m Mode) twoNets() bool { return m == ModeL2G || m == ModeL2GShape }

// usesCrops reports whether the mode needs local crops.
func (m Mode) usesCrops() bool { return m != ModeCAM }

// Schedule names a learning-rate schedule.
type Schedule string

const (
	// ScheduleStep multiplies the rate by StepGamma at the start of every
	// epoch in StepEpochs (VOC: ×0.1 at epoch 5).
	ScheduleStep Schedule = "step"
	// SchedulePoly is lr0·(1 − t/T)^PolyPower per iteration (COCO).
	SchedulePoly Schedule = "poly"
	// ScheduleConstant keeps the base rate.
	ScheduleConstant Schedule = "constant"
)

// BgTarget selects the background channel of the local target (spec §3.2g).
type BgTarget string

const (
	// BgMask is M_bg·(1 − S): the thresholded mask (VOC).
	BgMask BgTarget = "mask"
	// BgSoft is T_bg·(1 − S): the normalised local CAM value (COCO).
	BgSoft BgTarget = "soft"
)

// ViewConfig is the global training view (spec §1).
type ViewConfig struct {
	// Kind "voc": resize the short side to ShortSide, random Size×Size crop;
	// "coco": resize to a Size×Size square.
	Kind      string `yaml:"kind"`
	ShortSide int    `yaml:"short_side"`
	Size      int    `yaml:"size"`
	// ReferenceCropQuirk reproduces the reference's swapped crop axes.
	ReferenceCropQuirk bool                `yaml:"reference_crop_quirk"`
	ColorJitter        imaging.ColorJitter `yaml:"color_jitter"`
	Mean               [3]float32          `yaml:"mean"`
	Std                [3]float32          `yaml:"std"`
}

// LocalConfig places the local crops in the global view.
type LocalConfig struct {
	Scheme     string `yaml:"scheme"` // voc, coco, grid or random (internal/augment)
	N          int    `yaml:"n"`
	Crop       int    `yaml:"crop"`
	IncludeMax bool   `yaml:"include_max"`
}

// LossConfig holds the transfer-loss settings (spec §3).
type LossConfig struct {
	KDWeight    float64  `yaml:"kd_weight"`    // λ
	BgThreshold float64  `yaml:"bg_threshold"` // M = 1[T > bg_threshold]
	BgTarget    BgTarget `yaml:"bg_target"`
	// GlobalCls adds the global net's classification loss to the total
	// (an ablation; the reference only logs it).
	GlobalCls bool `yaml:"global_cls"`
}

// OptimConfig is SGD with per-group rates (spec §4).
type OptimConfig struct {
	LR       float64                 `yaml:"lr"`
	Momentum float64                 `yaml:"momentum"`
	Nesterov bool                    `yaml:"nesterov"`
	Groups   map[string]nn.GroupOpts `yaml:"groups"`
	Schedule Schedule                `yaml:"schedule"`
	// StepEpochs are the epochs at whose start the rate is multiplied by
	// StepGamma.
	StepEpochs []int   `yaml:"step_epochs"`
	StepGamma  float64 `yaml:"step_gamma"`
	PolyPower  float64 `yaml:"poly_power"`
}

// Config is the training stage's configuration (configs/*.yaml).
type Config struct {
	Mode Mode   `yaml:"mode"`
	Arch string `yaml:"arch"` // resnet38 or small (internal/nn)
	// Width is ResNet-38's base width (0: the reference's 64); smaller
	// widths keep the layout and parameter names, for CPU tests.
	Width      int `yaml:"width"`
	NumClasses int `yaml:"num_classes"`
	// Dataset "voc" or "coco" gives the built-in class names when the data
	// has no classes.txt.
	Dataset string `yaml:"dataset"`
	// SharedBackbone uses one net as both the global and the local net.
	SharedBackbone bool `yaml:"shared_backbone"`
	// InitExclude lists parameter-name prefixes not loaded from the init
	// weights (a pre-trained head of another task, say).
	InitExclude []string `yaml:"init_exclude"`

	View  ViewConfig  `yaml:"view"`
	Local LocalConfig `yaml:"local"`
	Loss  LossConfig  `yaml:"loss"`
	Optim OptimConfig `yaml:"optim"`

	BatchSize int `yaml:"batch_size"`
	Epochs    int `yaml:"epochs"`
	// MaxIterations stops training early (0: Epochs full epochs). The
	// schedule spans the iterations actually run.
	MaxIterations int `yaml:"max_iterations"`
	// Shuffle draws a new image order each epoch; the reference did not
	// (shuffle=False).
	Shuffle bool   `yaml:"shuffle"`
	Seed    uint64 `yaml:"seed"`

	// Threads is libtorch's intra-op thread count (0: all cores).
	Threads int `yaml:"threads"`
	// Workers decode and augment images ahead of the step (0: all cores);
	// results do not depend on it.
	Workers int `yaml:"workers"`
	// CheckpointEvery writes a checkpoint every this many iterations (0:
	// only at epoch ends and at the end).
	CheckpointEvery int `yaml:"checkpoint_every"`
	// KeepCheckpoints is how many of the newest checkpoints are kept (0: all).
	KeepCheckpoints int `yaml:"keep_checkpoints"`
}

// DefaultConfig is the VOC setting of the reference (train_l2g_sal_voc.sh,
// spec §1–§4): configs/voc12.yaml holds the same values.
func DefaultConfig() Config {
	return Config{
		Mode:       ModeL2GShape,
		Arch:       "resnet38",
		NumClasses: 20,
		Dataset:    "voc",
		View: ViewConfig{
			Kind: "voc", ShortSide: 512, Size: 448,
			ColorJitter: augment.ReferenceJitter(),
			Mean:        augment.VOCNorm().Mean, Std: augment.VOCNorm().Std,
		},
		Local: LocalConfig{Scheme: "voc", N: 6, Crop: 320},
		Loss:  LossConfig{KDWeight: 10, BgThreshold: 0.001, BgTarget: BgMask},
		Optim: OptimConfig{
			LR: 1e-3, Momentum: 0.9, Nesterov: true,
			Groups: nn.ClassifierGroups(5e-4), // backbone ×1, new (fc8, f8_3, f8_4, f9) ×10

			Schedule: ScheduleStep, StepEpochs: []int{5}, StepGamma: 0.1, PolyPower: 0.9,
		},
		BatchSize:       3,
		Epochs:          10,
		Shuffle:         true,
		CheckpointEvery: 1000,
		KeepCheckpoints: 2,
	}
}

// LoadConfig reads a YAML config over DefaultConfig (a key left out keeps
// its default; an unknown key is an error) and validates it. Problems are
// *badinput.Error values naming the file and the field.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Config{}, badinput.New(path, "", "config file not found")
		}
		return Config{}, fmt.Errorf("train: read config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig decodes a YAML document over DefaultConfig and validates it;
// path is only used in error messages.
func ParseConfig(path string, b []byte) (Config, error) {
	cfg := DefaultConfig()
	// Maps merge key by key in yaml.v3; a preset's groups replace the
	// default groups wholesale instead.
	cfg.Optim.Groups = nil
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, badinput.Wrap(path, "", fmt.Errorf("parse: %w", err))
	}
	if cfg.Optim.Groups == nil {
		cfg.Optim.Groups = DefaultConfig().Optim.Groups
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
	switch c.Mode {
	case ModeCAM, ModeLocal, ModeL2G, ModeL2GShape:
	default:
		return bad("mode", "unknown mode %q (want cam, local, l2g or l2g-shape)", c.Mode)
	}
	if c.Arch == "" {
		return bad("arch", "must name a network (resnet38 or small)")
	}
	if c.Width != 0 && (c.Arch != "resnet38" || c.Width < 4 || c.Width%4 != 0) {
		return bad("width", "%d: only resnet38 takes a width, a positive multiple of 4 (0: 64)", c.Width)
	}
	if c.NumClasses < 1 {
		return bad("num_classes", "%d, want >= 1", c.NumClasses)
	}
	if c.Dataset != "voc" && c.Dataset != "coco" {
		return bad("dataset", "unknown dataset kind %q (want voc or coco)", c.Dataset)
	}
	if c.SharedBackbone && !c.Mode.twoNets() {
		return bad("shared_backbone", "only meaningful in modes l2g and l2g-shape, not %s", c.Mode)
	}
	if err := c.viewAndLocal(path); err != nil {
		return err
	}
	l := c.Loss
	if !finite(l.KDWeight) || l.KDWeight < 0 {
		return bad("loss.kd_weight", "%v, want a finite number >= 0", l.KDWeight)
	}
	if !finite(l.BgThreshold) || l.BgThreshold < 0 || l.BgThreshold >= 1 {
		return bad("loss.bg_threshold", "%v, want a number in [0, 1)", l.BgThreshold)
	}
	if l.BgTarget != BgMask && l.BgTarget != BgSoft {
		return bad("loss.bg_target", "unknown background target %q (want mask or soft)", l.BgTarget)
	}
	if l.GlobalCls && !c.Mode.twoNets() {
		return bad("loss.global_cls", "only meaningful in modes l2g and l2g-shape, not %s", c.Mode)
	}
	if err := c.Optim.validate(path); err != nil {
		return err
	}
	switch {
	case c.BatchSize < 1:
		return bad("batch_size", "%d, want >= 1", c.BatchSize)
	case c.Epochs < 1:
		return bad("epochs", "%d, want >= 1", c.Epochs)
	case c.MaxIterations < 0:
		return bad("max_iterations", "%d, want >= 0 (0: all epochs)", c.MaxIterations)
	case c.Threads < 0:
		return bad("threads", "%d, want >= 0 (0: all cores)", c.Threads)
	case c.Workers < 0:
		return bad("workers", "%d, want >= 0 (0: all cores)", c.Workers)
	case c.CheckpointEvery < 0:
		return bad("checkpoint_every", "%d, want >= 0", c.CheckpointEvery)
	case c.KeepCheckpoints < 0:
		return bad("keep_checkpoints", "%d, want >= 0 (0: keep all)", c.KeepCheckpoints)
	}
	for i, p := range c.InitExclude {
		if p == "" {
			return bad(fmt.Sprintf("init_exclude[%d]", i), "empty prefix would exclude every parameter")
		}
	}
	return nil
}

func (c Config) viewAndLocal(path string) error {
	// The augment settings name their own fields; add the file and section.
	rewrap := func(section string, err error) error {
		var be *badinput.Error
		if errors.As(err, &be) {
			field := section
			if be.Field != "" {
				field = section + "." + be.Field
			}
			return &badinput.Error{Path: path, Field: field, Err: be.Err}
		}
		return badinput.Wrap(path, section, err)
	}
	v := c.View
	for ch := range 3 {
		if !(v.Std[ch] > 0) || !finite(float64(v.Std[ch])) || !finite(float64(v.Mean[ch])) {
			return badinput.New(path, fmt.Sprintf("view.std[%d]", ch), "mean %v / std %v: std must be finite and > 0", v.Mean[ch], v.Std[ch])
		}
	}
	switch v.Kind {
	case "voc":
		if err := c.vocView().Validate(); err != nil {
			return rewrap("view", err)
		}
	case "coco":
		if err := c.cocoView().Validate(); err != nil {
			return rewrap("view", err)
		}
	default:
		return badinput.New(path, "view.kind", "unknown view %q (want voc or coco)", v.Kind)
	}
	if !c.Mode.usesCrops() {
		return nil
	}
	if err := c.localBoxes().Validate(); err != nil {
		var be *badinput.Error
		if errors.As(err, &be) {
			// augment already says "local.<field>".
			return &badinput.Error{Path: path, Field: be.Field, Err: be.Err}
		}
		return badinput.Wrap(path, "local", err)
	}
	return nil
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
	case o.Nesterov && o.Momentum == 0:
		return bad("nesterov", "Nesterov momentum needs momentum > 0")
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
	switch o.Schedule {
	case ScheduleConstant:
	case ScheduleStep:
		if !finite(o.StepGamma) || o.StepGamma <= 0 {
			return bad("step_gamma", "%v, want a finite number > 0", o.StepGamma)
		}
		for i, e := range o.StepEpochs {
			if e < 1 {
				return bad(fmt.Sprintf("step_epochs[%d]", i), "epoch %d, want >= 1", e)
			}
		}
	case SchedulePoly:
		if !finite(o.PolyPower) || o.PolyPower < 0 {
			return bad("poly_power", "%v, want a finite number >= 0", o.PolyPower)
		}
	default:
		return bad("schedule", "unknown schedule %q (want step, poly or constant)", o.Schedule)
	}
	return nil
}

func (c Config) norm() augment.Norm { return augment.Norm{Mean: c.View.Mean, Std: c.View.Std} }

func (c Config) vocView() augment.VOCView {
	return augment.VOCView{
		ShortSide: c.View.ShortSide, Crop: c.View.Size,
		ReferenceCropQuirk: c.View.ReferenceCropQuirk,
		Jitter:             c.View.ColorJitter, Norm: c.norm(),
	}
}

func (c Config) cocoView() augment.COCOView {
	return augment.COCOView{Size: c.View.Size, Jitter: c.View.ColorJitter, Norm: c.norm()}
}

func (c Config) localBoxes() augment.LocalBoxes {
	return augment.LocalBoxes{
		Scheme: augment.LocalScheme(c.Local.Scheme), N: c.Local.N,
		Crop: c.Local.Crop, View: c.View.Size, IncludeMax: c.Local.IncludeMax,
	}
}

// threads resolves Threads (0: all cores).
func (c Config) threads() int {
	if c.Threads > 0 {
		return c.Threads
	}
	return runtime.NumCPU()
}

// LRAt is the learning rate of iteration it (0-based) in epoch, for a run of
// total iterations.
func (o OptimConfig) LRAt(it, epoch, total int) float64 {
	switch o.Schedule {
	case ScheduleStep:
		lr := o.LR
		for _, e := range o.StepEpochs {
			if epoch >= e {
				lr *= o.StepGamma
			}
		}
		return lr
	case SchedulePoly:
		if total <= 0 {
			return o.LR
		}
		return o.LR * math.Pow(1-float64(it)/float64(total), o.PolyPower)
	}
	return o.LR
}
