// Package saliency is the stage that provides a class-agnostic saliency map
// per training image, the cue of L2G's shape transfer (spec §1, §3 step 2f):
// 8-bit gray PNGs <dir>/<id>.png (Sal/<id>.png in a dataset).
//
// Three sources: importing published maps (PoolNet maps for VOC and COCO)
// from a directory, checked against the image list and registered where
// they are unless copying is asked for; computing them in pure Go with MB+
// (Zhang et al., "Minimum Barrier Salient Object Detection at 80 FPS",
// ICCV 2015, package internal/saliency/mbd), the default; or running a
// user-exported TorchScript saliency network. Evaluate scores maps against
// ground-truth foreground (MAE and max F-measure).
package saliency

import (
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // image sizes from JPEG headers
	_ "image/png"  // and PNG headers
	"os"
	"path/filepath"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/saliency/mbd"
)

// Method names where the maps come from.
const (
	MethodMBD    = "mbd"         // compute with MB+ in Go
	MethodImport = "import"      // register (or copy) existing maps
	MethodModel  = "torchscript" // run a user-exported network
)

// StageName labels progress reports.
const StageName = "saliency"

// Config selects and tunes the source of the maps.
type Config struct {
	// Method is mbd, import or torchscript; empty picks import when
	// ImportDir is set, torchscript when Model.Path is set, else mbd.
	Method    string      `yaml:"method"`
	ImportDir string      `yaml:"import_dir"` // directory of <id>.png maps to import
	Copy      bool        `yaml:"copy"`       // import by copying into the output directory
	Workers   int         `yaml:"workers"`    // images in flight; 0 = all cores
	MBD       mbd.Options `yaml:"mbd"`
	Model     ModelConfig `yaml:"model"`
}

// DefaultConfig computes MB+ maps with the paper's parameters on all cores.
func DefaultConfig() Config {
	return Config{MBD: mbd.DefaultOptions(), Model: DefaultModelConfig()}
}

// Validate checks the method and its settings; errors are *badinput.Error
// naming the field (saliency.method, saliency.mbd, …).
func (c Config) Validate() error {
	_, err := c.method()
	return err
}

// method resolves the empty Method and checks that the fields agree.
func (c Config) method() (string, error) {
	m := c.Method
	if m == "" {
		switch {
		case c.ImportDir != "" && c.Model.Path != "":
			return "", badinput.New("", "saliency.import_dir", "both import_dir and model.path are set; choose one source")
		case c.ImportDir != "":
			m = MethodImport
		case c.Model.Path != "":
			m = MethodModel
		default:
			m = MethodMBD
		}
	}
	switch m {
	case MethodMBD:
		if err := c.MBD.Validate(); err != nil {
			return "", badinput.Wrap("", "saliency.mbd", err)
		}
	case MethodImport:
		if c.ImportDir == "" {
			return "", badinput.New("", "saliency.import_dir", "method import needs a directory of <id>.png maps")
		}
	case MethodModel:
		if err := c.Model.validate(); err != nil {
			return "", err
		}
	default:
		return "", badinput.New("", "saliency.method", "unknown method %q (want %s, %s or %s)", m, MethodMBD, MethodImport, MethodModel)
	}
	if c.Workers < 0 {
		return "", badinput.New("", "saliency.workers", "%d, want >= 0 (0 = all cores)", c.Workers)
	}
	return m, nil
}

// Inputs are the images to cover and where results go.
type Inputs struct {
	Items []data.Item // ID and ImagePath are used
	// OutDir receives <id>.png for computed or copied maps. Importing
	// without copying writes nothing there.
	OutDir string
	// Resume keeps maps already in OutDir that decode and have the image's
	// size (outputs are written atomically, so a present file is complete).
	Resume bool
	// ManifestPath, when set, receives Outputs as JSON.
	ManifestPath string
}

// Outputs register the maps: the directory holding them and each file's
// size and content hash, so a later stage can tell if they changed.
type Outputs struct {
	Dir    string `json:"dir"`    // directory holding <id>.png
	Method string `json:"method"` // mbd, import or torchscript
	Copied bool   `json:"copied"` // import: copied into OutDir
	Maps   []Map  `json:"maps"`   // in Items order
}

// Map is one registered saliency map.
type Map struct {
	ID     string `json:"id"`
	Path   string `json:"path"`
	W      int    `json:"w"`
	H      int    `json:"h"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func mapPath(dir, id string) string { return filepath.Join(dir, id+".png") }

// imageSize reads the image's size from its header without decoding it.
func imageSize(path string) (w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, badinput.Wrap(path, "", err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0, badinput.New(path, "", "read image header: %w", err)
	}
	return cfg.Width, cfg.Height, nil
}

func writeManifest(path string, out Outputs) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("saliency manifest: %w", err)
	}
	return artifacts.WriteFile(path, append(b, '\n'))
}
