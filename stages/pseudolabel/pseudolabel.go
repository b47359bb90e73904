// Package pseudolabel is stage C of the pipeline: it turns the normalized
// CAMs of stage cam into one label mask per image (spec §6) and writes them
// as VOC palette PNGs and as a Parquet dataset (schemas.PseudoLabel) that
// the segmentation stage trains on.
//
// By default it is the reference's gen_gt.py: per pixel the argmax over
// [bg_threshold, CAM_k of the present classes], ties to the background, so
// every pixel gets a label. Two options go beyond the reference:
//
//   - background: saliency — the background score becomes
//     max(bg_threshold, 1 − s) with s = saliency/255: pixels the saliency
//     map calls background need a CAM near 1 to become foreground, while
//     salient pixels keep the plain threshold rule.
//   - ignore_margin: δ > 0 marks pixels 255 (ignore) where the best and
//     second-best scores (background included) differ by less than δ, so
//     training skips the pixels the CAMs cannot decide.
package pseudolabel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/schemas"
)

// Background modes.
const (
	// BackgroundThreshold is the reference: a constant background score.
	BackgroundThreshold = "threshold"
	// BackgroundSaliency scores the background max(bg_threshold, 1 − s).
	BackgroundSaliency = "saliency"
)

// Config of the stage.
type Config struct {
	// BgThreshold is the background score (spec §6: 0.25 for VOC and COCO).
	BgThreshold float64 `yaml:"bg_threshold" json:"bg_threshold"`
	// Background is BackgroundThreshold (default) or BackgroundSaliency.
	Background string `yaml:"background" json:"background"`
	// IgnoreMargin > 0 labels 255 where the top two scores differ by less.
	IgnoreMargin float64 `yaml:"ignore_margin" json:"ignore_margin"`
	// WritePNG also writes <out>/png/<id>.png (VOC palette PNGs).
	WritePNG bool `yaml:"write_png" json:"write_png"`
	// Workers label and encode images in parallel; 0 = all cores.
	Workers int `yaml:"workers" json:"workers"`
}

// DefaultConfig is the reference's gen_gt.py.
func DefaultConfig() Config {
	return Config{BgThreshold: 0.25, Background: BackgroundThreshold, WritePNG: true}
}

// Validate reports a bad field as a *badinput.Error (field = YAML key).
func (c Config) Validate() error {
	if math.IsNaN(c.BgThreshold) || c.BgThreshold < 0 || c.BgThreshold > 1 {
		return badinput.New("", "bg_threshold", "%v is not in [0, 1]", c.BgThreshold)
	}
	if c.Background != BackgroundThreshold && c.Background != BackgroundSaliency {
		return badinput.New("", "background", "%q, want %q or %q", c.Background, BackgroundThreshold, BackgroundSaliency)
	}
	if math.IsNaN(c.IgnoreMargin) || c.IgnoreMargin < 0 || c.IgnoreMargin > 1 {
		return badinput.New("", "ignore_margin", "%v is not in [0, 1]", c.IgnoreMargin)
	}
	if c.Workers < 0 {
		return badinput.New("", "workers", "%d is negative", c.Workers)
	}
	return nil
}

// Hash identifies the settings that change the labels (not WritePNG or
// Workers); it is stored in every row as config_hash.
func (c Config) Hash() string {
	b, _ := json.Marshal(struct {
		BgThreshold  float64 `json:"bg_threshold"`
		Background   string  `json:"background"`
		IgnoreMargin float64 `json:"ignore_margin"`
	}{c.BgThreshold, c.Background, c.IgnoreMargin})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Labeler applies a Config to CAM records, reusing its scratch buffers; one
// per goroutine.
type Labeler struct {
	cfg  Config
	best []uint8
	t1   []uint16
	t2   []uint16
	lut  [256]float64 // uint8 code → value
}

// NewLabeler returns a Labeler for c (assumed valid, see Validate).
func NewLabeler(c Config) *Labeler {
	l := &Labeler{cfg: c}
	for i := range l.lut {
		l.lut[i] = float64(i) / 255 // as numpy divides the PNG by 255.
	}
	return l
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// Label computes the label mask of one image into dst (grown as needed)
// and returns it: 0 = background, k+1 for zero-based class k, 255 in the
// ignore band. sal is required with BackgroundSaliency and must have the
// CAMs' size, else a *badinput.Error names salPath.
func (l *Labeler) Label(rec *camio.Record, sal *imaging.Gray, salPath string, dst []uint8) ([]uint8, error) {
	n := rec.NumPixels()
	useSal := l.cfg.Background == BackgroundSaliency
	if useSal {
		if sal == nil {
			return nil, badinput.New(salPath, "background", "image %q: saliency background needs a saliency map", rec.ID)
		}
		if sal.W != rec.W || sal.H != rec.H {
			return nil, badinput.New(salPath, "size", "saliency map is %dx%d, CAMs of image %q are %dx%d", sal.W, sal.H, rec.ID, rec.W, rec.H)
		}
	}
	dst = grow(dst, n)
	l.best, l.t1 = grow(l.best, n), grow(l.t1, n)
	margin := l.cfg.IgnoreMargin
	if margin > 0 {
		l.t2 = grow(l.t2, n)
		rec.Top(l.best, l.t1, l.t2)
	} else {
		rec.Top(l.best, l.t1, nil)
	}
	if len(rec.ClassIDs) == 0 {
		clear(dst) // no class: all background, as the reference's volume
		return dst, nil
	}
	var labels [256]uint8 // plane → label
	for p, k := range rec.ClassIDs {
		labels[p] = uint8(k + 1)
	}
	value := func(code uint16) float64 { return camio.Value(rec.DType, code) }
	if rec.DType == schemas.CAMUint8 {
		value = func(code uint16) float64 { return l.lut[code] }
	}
	thr := l.cfg.BgThreshold
	for i := range dst {
		bg := thr
		if useSal {
			bg = max(thr, 1-float64(sal.Pix[i])/255)
		}
		v1 := value(l.t1[i])
		if !(v1 > bg) { // ties go to the background (lowest index)
			dst[i] = 0
			if margin > 0 && bg-v1 < margin {
				dst[i] = schemas.IgnoreLabel
			}
			continue
		}
		dst[i] = labels[l.best[i]]
		if margin > 0 {
			second := bg
			if len(rec.ClassIDs) > 1 {
				second = max(second, value(l.t2[i]))
			}
			if v1-second < margin {
				dst[i] = schemas.IgnoreLabel
			}
		}
	}
	return dst, nil
}

// Variant is a named labelling rule; stage evaluate scores variants
// against ground truth in one pass over the CAMs.
type Variant struct {
	Name   string `yaml:"name" json:"name"`
	Config `yaml:",inline"`
}

// DefaultVariants are the reference rule at bgThreshold and the two
// options beyond it, alone and combined: what the option measurement runs.
func DefaultVariants(bgThreshold float64) []Variant {
	v := func(name, bg string, margin float64) Variant {
		return Variant{Name: name, Config: Config{BgThreshold: bgThreshold, Background: bg, IgnoreMargin: margin}}
	}
	return []Variant{
		v("reference", BackgroundThreshold, 0),
		v("ignore-0.05", BackgroundThreshold, 0.05),
		v("ignore-0.10", BackgroundThreshold, 0.10),
		v("saliency", BackgroundSaliency, 0),
		v("saliency+ignore-0.05", BackgroundSaliency, 0.05),
	}
}
