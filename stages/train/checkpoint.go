package train

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/safetensors"
	"github.com/l2g/l2g/internal/torch"
)

// CheckpointFormat marks a training checkpoint's metadata.
const CheckpointFormat = "l2g-train-checkpoint/1"

// Metadata keys of the weight files and checkpoints. The CAM stage rebuilds
// the global net from MetaArch, MetaNumClasses and MetaWidth.
const (
	MetaFormat     = "format"
	MetaArch       = "arch"
	MetaNumClasses = "num_classes"
	MetaWidth      = "width" // ResNet-38 base width; 0 = the default 64
	MetaMode       = "mode"
	MetaNet        = "net" // "global" or "local" in the final weight files
	MetaIteration  = "iteration"
	MetaConfig     = "config" // the run-defining config, YAML
	MetaData       = "data_fingerprint"
	MetaItems      = "items"
)

// Tensor-name prefixes inside a checkpoint.
const (
	prefixGlobal = "global/"
	prefixLocal  = "local/"
	prefixOptim  = "optim/"
	keyRNG       = "rng/cpu"
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

// dataFingerprint identifies the training list: its ids in order.
func dataFingerprint(sp *data.Split) string {
	h := sha256.New()
	for _, it := range sp.Items {
		h.Write([]byte(it.ID))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkpointName is the file of the checkpoint after iteration it.
func checkpointName(dir string, it int) string {
	return filepath.Join(dir, fmt.Sprintf("iter_%08d.safetensors", it))
}

// saveCheckpoint writes both nets, the optimizer's momentum, libtorch's CPU
// RNG state and the position in the run, atomically.
func (t *trainer) saveCheckpoint(path string, it int) error {
	named := map[string]*torch.Tensor{}
	for n, x := range t.global.Store().Tensors() {
		named[prefixGlobal+n] = x
	}
	if t.local != nil && t.local != t.global {
		for n, x := range t.local.Store().Tensors() {
			named[prefixLocal+n] = x
		}
	}
	for n, x := range t.opt.State() {
		named[prefixOptim+n] = x
	}
	host, err := nn.ToSafetensors(named)
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	rng, err := torch.RNGState()
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	host[keyRNG] = safetensors.Tensor{DType: "U8", Shape: []int64{int64(len(rng))}, Data: rng}
	meta := t.meta(it)
	meta[MetaFormat] = CheckpointFormat
	meta[MetaConfig] = t.configYAML
	meta[MetaData] = t.fingerprint
	meta[MetaItems] = strconv.Itoa(len(t.split.Items))
	if err := safetensors.Write(path, host, meta); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	return nil
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

// resume restores a checkpoint written by saveCheckpoint and returns the
// number of completed iterations. The checkpoint must come from a run with
// the same run-defining config and the same training list; a difference is
// bad input naming the checkpoint and the first differing field.
func (t *trainer) resume(path string) (int, error) {
	st, meta, err := safetensors.Read(path)
	if err != nil {
		return 0, err
	}
	if meta[MetaFormat] != CheckpointFormat {
		return 0, badinput.New(path, MetaFormat, "%q is not a training checkpoint (want %q)", meta[MetaFormat], CheckpointFormat)
	}
	if field, was, now, diff := configDiff(meta[MetaConfig], t.configYAML); diff {
		return 0, badinput.New(path, "config."+field, "checkpoint was trained with %s, the config now says %s", was, now)
	}
	if meta[MetaData] != t.fingerprint {
		return 0, badinput.New(path, MetaData, "checkpoint was trained on another image list (%s items, now %d)", meta[MetaItems], len(t.split.Items))
	}
	it, err := strconv.Atoi(meta[MetaIteration])
	if err != nil || it < 0 {
		return 0, badinput.New(path, MetaIteration, "%q is not an iteration count", meta[MetaIteration])
	}
	host, err := nn.HostFromSafetensors(path, st)
	if err != nil {
		return 0, err
	}
	part := func(prefix string) map[string]nn.HostTensor {
		out := map[string]nn.HostTensor{}
		for k, v := range host {
			if strings.HasPrefix(k, prefix) {
				out[strings.TrimPrefix(k, prefix)] = v
			}
		}
		return out
	}
	if _, _, err := t.global.Store().LoadHost(part(prefixGlobal), nn.LoadOpts{Strict: true, Source: path}); err != nil {
		return 0, err
	}
	if t.local != nil && t.local != t.global {
		if _, _, err := t.local.Store().LoadHost(part(prefixLocal), nn.LoadOpts{Strict: true, Source: path}); err != nil {
			return 0, err
		}
	}
	if err := t.opt.LoadState(part(prefixOptim), path); err != nil {
		return 0, badinput.Wrap(path, "optim", err)
	}
	rng, ok := host[keyRNG]
	if !ok {
		return 0, badinput.New(path, keyRNG, "checkpoint has no RNG state")
	}
	if err := torch.SetRNGState(rng.Data); err != nil {
		return 0, badinput.Wrap(path, keyRNG, err)
	}
	return it, nil
}

// configDiff compares two run-defining configs in YAML and returns the
// first differing field (dotted path, sorted order) with both values.
func configDiff(was, now string) (field, wasV, nowV string, differ bool) {
	var a, b map[string]any
	if err := yaml.Unmarshal([]byte(was), &a); err != nil || a == nil {
		return "", "an unreadable config", "a valid one", true
	}
	if err := yaml.Unmarshal([]byte(now), &b); err != nil {
		return "", "a valid config", "an unreadable one", true
	}
	return diffAny("", a, b)
}

func diffAny(path string, a, b any) (string, string, string, bool) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if f, x, y, d := diffAny(p, am[k], bm[k]); d {
				return f, x, y, true
			}
		}
		return "", "", "", false
	}
	if reflect.DeepEqual(a, b) {
		return "", "", "", false
	}
	show := func(v any) string {
		if v == nil {
			return "nothing"
		}
		return fmt.Sprint(v)
	}
	return path, show(a), show(b), true
}

// pruneCheckpoints deletes all but the keep newest iter_*.safetensors files
// of dir (keep 0: none deleted).
func pruneCheckpoints(dir string, keep int) error {
	if keep <= 0 {
		return nil
	}
	matches, err := filepath.Glob(filepath.Join(dir, "iter_*.safetensors"))
	if err != nil {
		return err
	}
	sort.Strings(matches) // zero-padded iteration numbers sort in order
	for len(matches) > keep {
		if err := os.Remove(matches[0]); err != nil {
			return fmt.Errorf("train: prune checkpoints: %w", err)
		}
		matches = matches[1:]
	}
	return nil
}
