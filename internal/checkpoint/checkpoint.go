// Package checkpoint is the resumable-training mechanism the training
// stages share: one safetensors file per checkpoint holding every network's
// parameters and buffers and the optimizer state under name prefixes,
// libtorch's CPU RNG state, and metadata naming the run (format, the
// run-defining config, a fingerprint of the training list, the iteration).
// A resume must match the run on all of it; a mismatch is bad input naming
// the checkpoint and the first differing field. It also holds the loop's
// bookkeeping (file names, pruning, the save-on-interrupt Saver) and the
// JSONL loss log that is rewritten with every checkpoint.
//
// stages/train and stages/segtrain both checkpoint through it; the key and
// file names are those stages/train wrote first, so checkpoints written
// before the two shared it still resume.
package checkpoint

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
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/safetensors"
	"github.com/l2g/l2g/internal/torch"
)

// Metadata keys of a checkpoint.
const (
	MetaFormat    = "format"
	MetaIteration = "iteration"
	MetaConfig    = "config" // the run-defining config, YAML
	MetaData      = "data_fingerprint"
	MetaItems     = "items"
)

// KeyRNG is the tensor holding libtorch's CPU generator state.
const KeyRNG = "rng/cpu"

// Run identifies a training run; a checkpoint resumes only the run it was
// written by.
type Run struct {
	// Format marks the writer's checkpoints ("l2g-train-checkpoint/1").
	Format string
	// Config is the run-defining config as YAML (fields that do not change
	// the result, such as thread counts, left out).
	Config string
	// Fingerprint identifies the training data (see Fingerprint).
	Fingerprint string
	// Items is the number of training images, for error messages.
	Items int
}

// Part is one group of tensors in a checkpoint, stored under Prefix: a
// network's store or an optimizer's state.
type Part struct {
	Prefix string
	// Tensors are the tensors to save, by name within the part.
	Tensors func() map[string]*torch.Tensor
	// Restore copies saved tensors back; every one must be present.
	Restore func(host map[string]nn.HostTensor, source string) error
}

// StorePart saves and strictly restores every parameter and buffer of st.
func StorePart(prefix string, st *nn.Store) Part {
	return Part{
		Prefix:  prefix,
		Tensors: st.Tensors,
		Restore: func(host map[string]nn.HostTensor, source string) error {
			_, _, err := st.LoadHost(host, nn.LoadOpts{Strict: true, Source: source})
			return err
		},
	}
}

// OptimPart saves and restores the momentum buffers of o.
func OptimPart(prefix string, o *nn.SGD) Part {
	return Part{
		Prefix:  prefix,
		Tensors: o.State,
		Restore: func(host map[string]nn.HostTensor, source string) error {
			if err := o.LoadState(host, source); err != nil {
				return badinput.Wrap(source, strings.TrimSuffix(prefix, "/"), err)
			}
			return nil
		},
	}
}

// Save writes the parts, the RNG state and the run's metadata (plus meta)
// to path atomically, as the checkpoint after iteration it.
func Save(path string, run Run, it int, parts []Part, meta map[string]string) error {
	named := map[string]*torch.Tensor{}
	for _, p := range parts {
		for n, x := range p.Tensors() {
			named[p.Prefix+n] = x
		}
	}
	host, err := nn.ToSafetensors(named)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	rng, err := torch.RNGState()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	host[KeyRNG] = safetensors.Tensor{DType: "U8", Shape: []int64{int64(len(rng))}, Data: rng}
	m := make(map[string]string, len(meta)+5)
	for k, v := range meta {
		m[k] = v
	}
	m[MetaFormat] = run.Format
	m[MetaConfig] = run.Config
	m[MetaData] = run.Fingerprint
	m[MetaItems] = strconv.Itoa(run.Items)
	m[MetaIteration] = strconv.Itoa(it)
	if err := safetensors.Write(path, host, m); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// Restore reads a checkpoint written by Save for the same run, restores
// every part and the RNG state, and returns the number of completed
// iterations and the file's metadata. A checkpoint of another format,
// config or training list is a *badinput.Error naming the file and the
// first differing field.
func Restore(path string, run Run, parts []Part) (int, map[string]string, error) {
	st, meta, err := safetensors.Read(path)
	if err != nil {
		return 0, nil, err
	}
	if meta[MetaFormat] != run.Format {
		return 0, nil, badinput.New(path, MetaFormat, "%q is not a checkpoint of this stage (want %q)", meta[MetaFormat], run.Format)
	}
	if field, was, now, diff := ConfigDiff(meta[MetaConfig], run.Config); diff {
		return 0, nil, badinput.New(path, "config."+field, "checkpoint was trained with %s, the config now says %s", was, now)
	}
	if meta[MetaData] != run.Fingerprint {
		return 0, nil, badinput.New(path, MetaData, "checkpoint was trained on another image list (%s items, now %d)", meta[MetaItems], run.Items)
	}
	it, err := strconv.Atoi(meta[MetaIteration])
	if err != nil || it < 0 {
		return 0, nil, badinput.New(path, MetaIteration, "%q is not an iteration count", meta[MetaIteration])
	}
	host, err := nn.HostFromSafetensors(path, st)
	if err != nil {
		return 0, nil, err
	}
	for _, p := range parts {
		sub := map[string]nn.HostTensor{}
		for k, v := range host {
			if strings.HasPrefix(k, p.Prefix) {
				sub[strings.TrimPrefix(k, p.Prefix)] = v
			}
		}
		if err := p.Restore(sub, path); err != nil {
			return 0, nil, err
		}
	}
	rng, ok := host[KeyRNG]
	if !ok {
		return 0, nil, badinput.New(path, KeyRNG, "checkpoint has no RNG state")
	}
	if err := torch.SetRNGState(rng.Data); err != nil {
		return 0, nil, badinput.Wrap(path, KeyRNG, err)
	}
	return it, meta, nil
}

// Fingerprint identifies a training list by its image ids in order.
func Fingerprint(ids []string) string {
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Name is the checkpoint file of iteration it in dir.
func Name(dir string, it int) string {
	return filepath.Join(dir, fmt.Sprintf("iter_%08d.safetensors", it))
}

// Prune deletes all but the keep newest checkpoints of dir (keep 0: none
// deleted).
func Prune(dir string, keep int) error {
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
			return fmt.Errorf("checkpoint: prune: %w", err)
		}
		matches = matches[1:]
	}
	return nil
}

// ConfigDiff compares two configs in YAML and returns the first differing
// field (dotted path, keys in sorted order) with both values.
func ConfigDiff(was, now string) (field, wasV, nowV string, differ bool) {
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
