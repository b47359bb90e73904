// Package cam is the stage that turns the trained global classifier into
// class activation maps (spec §5): every image is resized with PIL bicubic
// to each test scale (0.5, 1, 1.5, 2 by default) and also flipped, each pass's
// featmap is upsampled bicubically (align_corners=False) to the image size
// and flipped back, the raw maps are averaged, negatives are clipped and
// each channel is divided by its maximum + 1e-8. The maps of the classes in
// the image label go into a CAM Parquet dataset (schemas.CAM, uint8 ×255 as
// the reference's PNGs, or float16), and optionally into the reference's
// <id>_<k>.png files.
//
// Two exact rewrites make it cheaper than the reference without changing
// the result beyond float rounding: only the channels of present classes
// are upsampled (upsampling and normalization are per channel), and a flip
// pair is summed at featmap size and upsampled once (bicubic upsampling is
// linear and commutes with a horizontal flip).
package cam

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/schemas"
)

// StageName labels progress reports.
const StageName = "cam"

// Output names inside Inputs.OutDir.
const (
	CAMFile = "cams.parquet" // the CAM dataset
	PNGDir  = "cams"         // <id>_<k>.png when Config.WritePNG is set
)

// Normalization presets (spec §1).
const (
	NormVOC  = "voc"
	NormCOCO = "coco"
)

// Config is the CAM stage's configuration.
type Config struct {
	// Scales are the test-time resize factors (default 0.5, 1, 1.5, 2).
	Scales []float64 `yaml:"scales"`
	// Flip adds the horizontal flip of every scale (default true).
	Flip bool `yaml:"flip"`
	// Norm is the input normalization preset, voc or coco; empty follows
	// the dataset kind.
	Norm string `yaml:"norm"`
	// DType stores CAMs as uint8 (round(v·255), the reference's PNG values)
	// or float16.
	DType string `yaml:"dtype"`
	// WritePNG also writes the reference's <id>_<k>.png files (8-bit, ×255)
	// under OutDir/cams.
	WritePNG bool        `yaml:"write_png"`
	Batch    BatchConfig `yaml:"batch"`
	// Threads is libtorch's intra-op thread count (0: libtorch's default).
	Threads int `yaml:"threads"`
	// Workers decode and resize images while the network runs (0: all cores).
	Workers int `yaml:"workers"`
	// Device is auto (the first GPU when libtorch sees one), cpu, cuda or
	// cuda:N.
	Device string `yaml:"device"`
}

// BatchConfig says which forward passes share one batch. Batching is exact
// (BatchNorm is in eval mode and the PCM attention is per sample), so it
// only trades memory for speed.
type BatchConfig struct {
	// Images is how many consecutive images of equal size share each
	// scale's forward (with their flips); 1 runs one flip pair at a time.
	// Images of different sizes never share a batch: padding would change
	// the maps.
	Images int `yaml:"images"`
	// MaxPixels caps the input pixels (batch × height × width) of one
	// forward; larger batches are split, down to single passes (a flip pair
	// too). 0: no cap.
	MaxPixels int `yaml:"max_pixels"`
}

// DefaultConfig is the reference's inference: four scales with flips,
// uint8 CAMs, one flip pair per forward, on the GPU when there is one.
func DefaultConfig() Config {
	return Config{
		Scales: augment.DefaultTestScales(),
		Flip:   true,
		DType:  schemas.CAMUint8,
		Batch:  BatchConfig{Images: 1},
		Device: "auto",
	}
}

// Validate checks every field; errors are *badinput.Error naming it.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return badinput.New("", "cam."+field, format, args...)
	}
	if len(c.Scales) == 0 {
		return bad("scales", "no scales given")
	}
	for i, s := range c.Scales {
		if !(s > 0) || math.IsInf(s, 0) {
			return bad(fmt.Sprintf("scales[%d]", i), "%v is not a positive number", s)
		}
	}
	switch c.Norm {
	case "", NormVOC, NormCOCO:
	default:
		return bad("norm", "%q, want %s or %s", c.Norm, NormVOC, NormCOCO)
	}
	switch c.DType {
	case schemas.CAMUint8, schemas.CAMFloat16:
	default:
		return bad("dtype", "%q, want %s or %s", c.DType, schemas.CAMUint8, schemas.CAMFloat16)
	}
	switch {
	case c.Batch.Images < 1:
		return bad("batch.images", "%d, want >= 1", c.Batch.Images)
	case c.Batch.MaxPixels < 0:
		return bad("batch.max_pixels", "%d, want >= 0 (0: no cap)", c.Batch.MaxPixels)
	case c.Threads < 0:
		return bad("threads", "%d, want >= 0 (0: libtorch's default)", c.Threads)
	case c.Workers < 0:
		return bad("workers", "%d, want >= 0 (0: all cores)", c.Workers)
	}
	if _, err := resolveDevice(c.Device); err != nil {
		return bad("device", "%v", err)
	}
	return nil
}

// resolveDevice turns "auto" (or "") into the first GPU when libtorch has
// one, else the CPU.
func resolveDevice(s string) (torch.Device, error) {
	if s == "" || s == "auto" {
		if n, err := torch.CUDADeviceCount(); err == nil && n > 0 {
			return torch.CUDA(0), nil
		}
		return torch.CPU(), nil
	}
	return torch.ParseDevice(s)
}

// Options returns the inference settings for a dataset of the given kind
// (whose normalization an empty Norm selects).
func (c Config) Options(kind data.Kind) Options {
	norm := c.Norm
	if norm == "" {
		norm = NormVOC
		if kind == data.COCO {
			norm = NormCOCO
		}
	}
	n := augment.VOCNorm()
	if norm == NormCOCO {
		n = augment.COCONorm()
	}
	return Options{Scales: c.Scales, Flip: c.Flip, Norm: n, MaxPixels: c.Batch.MaxPixels}
}

// Options are what multi-scale inference needs.
type Options struct {
	Scales []float64
	Flip   bool
	Norm   augment.Norm
	// MaxPixels caps the input pixels of one forward (0: no cap); see
	// BatchConfig.MaxPixels.
	MaxPixels int
}

// DefaultOptions is the reference's inference on VOC.
func DefaultOptions() Options { return DefaultConfig().Options(data.VOC) }

func (o Options) validate() error {
	if len(o.Scales) == 0 {
		return badinput.New("", "scales", "no scales given")
	}
	for i, s := range o.Scales {
		if !(s > 0) || math.IsInf(s, 0) {
			return badinput.New("", fmt.Sprintf("scales[%d]", i), "%v is not a positive number", s)
		}
	}
	for c := range 3 {
		if sd := o.Norm.Std[c]; !(sd > 0) || math.IsInf(float64(sd), 0) {
			return badinput.New("", fmt.Sprintf("norm.std[%d]", c), "%v, want a finite value > 0", sd)
		}
	}
	if o.MaxPixels < 0 {
		return badinput.New("", "max_pixels", "%d, want >= 0", o.MaxPixels)
	}
	return nil
}

// passes is the number of forward passes averaged per image.
func (o Options) passes() int {
	if o.Flip {
		return 2 * len(o.Scales)
	}
	return len(o.Scales)
}

// Inputs name the network, the images and where the CAMs go.
type Inputs struct {
	// Checkpoint is the global net as the training stage saves it:
	// safetensors with the net's state_dict names and metadata "arch"
	// (internal/nn) and "num_classes".
	Checkpoint string
	DataRoot   string
	Kind       data.Kind // class names (without classes.txt) and default norm
	// List is the class-label list (train_cls.txt): its labels choose the
	// classes whose CAMs are saved. Relative to DataRoot unless absolute.
	List   string
	OutDir string
	// Device overrides Config.Device when set.
	Device string
	// Split fills the split column; empty: the list's name without
	// extension and "_cls" (train_cls.txt → train).
	Split string
	RunID string // recorded in the dataset metadata
}

// Outputs locate the CAMs.
type Outputs struct {
	CAMs    string  `json:"cams"`              // the Parquet dataset
	PNGDir  string  `json:"png_dir,omitempty"` // <id>_<k>.png, when written
	Images  int     `json:"images"`
	Seconds float64 `json:"seconds"`
}

// splitName derives the split column from a list file name.
func splitName(list string) string {
	base := strings.TrimSuffix(filepath.Base(list), filepath.Ext(list))
	return strings.TrimSuffix(base, "_cls")
}

// configHash identifies the settings that determine the stored values.
func configHash(o Options, dtype string) string {
	b, _ := json.Marshal(struct {
		Scales    []float64
		Flip      bool
		Mean, Std [3]float32
		DType     string
	}{o.Scales, o.Flip, o.Norm.Mean, o.Norm.Std, dtype})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
