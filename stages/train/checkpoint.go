package train

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/l2g/l2g/internal/checkpoint"
	"github.com/l2g/l2g/internal/data"
)

// CheckpointFormat marks a training checkpoint's metadata.
const CheckpointFormat = "l2g-train-checkpoint/1"

// Metadata keys of the weight files and checkpoints. The CAM stage rebuilds
// the global net from MetaArch, MetaNumClasses and MetaWidth. The
// checkpoint bookkeeping keys are internal/checkpoint's.
const (
	MetaFormat     = checkpoint.MetaFormat
	MetaArch       = "arch"
	MetaNumClasses = "num_classes"
	MetaWidth      = "width" // ResNet-38 base width; 0 = the default 64
	MetaMode       = "mode"
	MetaNet        = "net" // "global" or "local" in the final weight files
	MetaIteration  = checkpoint.MetaIteration
	MetaConfig     = checkpoint.MetaConfig
	MetaData       = checkpoint.MetaData
	MetaItems      = checkpoint.MetaItems
)

// Tensor-name prefixes inside a checkpoint.
const (
	prefixGlobal = "global/"
	prefixLocal  = "local/"
	prefixOptim  = "optim/"
)

// runDefining returns the config fields that determine the trained
// weights: everything except threads, workers and checkpoint cadence. A
// resumed run must agree on all of them.
func (c Config) runDefining() Config {
	c.Threads, c.Workers, c.CheckpointEvery, c.KeepCheckpoints = 0, 0, 0, 0
	return c
}

func (c Config) definingYAML() (string, error) {
	b, err := yaml.Marshal(c.runDefining())
	if err != nil {
		return "", fmt.Errorf("train: encode config: %w", err)
	}
	return string(b), nil
}

// runID identifies this training run to internal/checkpoint: a checkpoint
// resumes only a run with the same run-defining config and training list.
func runID(cfg Config, split *data.Split) (checkpoint.Run, error) {
	def, err := cfg.definingYAML()
	if err != nil {
		return checkpoint.Run{}, err
	}
	ids := make([]string, len(split.Items))
	for i, it := range split.Items {
		ids[i] = it.ID
	}
	return checkpoint.Run{Format: CheckpointFormat, Config: def,
		Fingerprint: checkpoint.Fingerprint(ids), Items: len(ids)}, nil
}

// parts are what a checkpoint holds besides the RNG state: the global net,
// the local net when it is a separate one, and the optimizer's momentum.
func (t *trainer) parts() []checkpoint.Part {
	p := []checkpoint.Part{checkpoint.StorePart(prefixGlobal, t.global.Store())}
	if t.local != nil && t.local != t.global {
		p = append(p, checkpoint.StorePart(prefixLocal, t.local.Store()))
	}
	return append(p, checkpoint.OptimPart(prefixOptim, t.opt))
}

// meta is the metadata shared by checkpoints and final weight files.
func (t *trainer) meta(it int) map[string]string {
	return map[string]string{
		MetaArch:       t.cfg.Arch,
		MetaNumClasses: strconv.Itoa(t.cfg.NumClasses),
		MetaWidth:      strconv.Itoa(t.cfg.Width),
		MetaMode:       string(t.cfg.Mode),
		MetaIteration:  strconv.Itoa(it),
	}
}

// readLog returns the records of the loss log at path up to iteration
// upTo; a missing file (a resume into a new folder) gives none.
func readLog(path string, upTo int) ([]LogRecord, error) {
	return checkpoint.ReadLog(path, upTo, func(r LogRecord) int { return r.Iteration })
}
