package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/l2g/l2g/internal/artifacts"
)

// ManifestFormat marks a stage manifest.
const ManifestFormat = "l2g-manifest/1"

// File names in a stage folder and the runs root.
const (
	ManifestFile = "manifest.json"
	// IndexDir, under the runs root, maps input hashes to manifests so that
	// a stage whose inputs were seen in any earlier run is skipped.
	IndexDir = ".index"
)

// Manifest records one stage execution: what went in (input digests and
// the config), what came out (every file with its size and SHA-256) and
// the metrics. It is written last, so its presence means the outputs are
// complete.
type Manifest struct {
	Format    string          `json:"format"`
	Stage     string          `json:"stage"` // kind: saliency, train, cam, …
	Name      string          `json:"name"`  // instance: train-l2g
	RunID     string          `json:"run_id"`
	InputHash string          `json:"input_hash"`
	Inputs    []Input         `json:"inputs"`
	Config    json.RawMessage `json:"config"`
	Outputs   []File          `json:"outputs"`
	// Digest covers Outputs (names relative to the stage folder).
	Digest  string             `json:"digest"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Result is the activity's result, returned again when the stage is
	// skipped.
	Result json.RawMessage `json:"result"`
	// ReusedFrom is the manifest of an earlier run whose outputs these are.
	ReusedFrom string    `json:"reused_from,omitempty"`
	Attempt    int32     `json:"attempt,omitempty"`
	Worker     string    `json:"worker,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
}

// Input is one input of a stage: the dataset, or an upstream stage's
// outputs, by digest.
type Input struct {
	Name   string `json:"name"`
	Path   string `json:"path,omitempty"`
	Digest string `json:"digest"`
}

// File is one output file.
type File struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// ReadManifest reads a manifest file.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("manifest %s: format %q, want %q", path, m.Format, ManifestFormat)
	}
	return &m, nil
}

func writeManifest(path string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest %s: %w", path, err)
	}
	return artifacts.WriteFile(path, append(b, '\n'))
}

// finiteMetrics drops NaN and infinite values, which JSON cannot hold (a
// class absent from the ground truth has no IoU).
func finiteMetrics(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}

// listOutputs hashes every file under dir except the manifest, temporary
// files (dot names) and the transient checkpoints folder, plus extra files
// kept outside it (imported saliency maps), sorted by path.
func (a *Activities) listOutputs(ctx context.Context, dir string, extra []string) ([]File, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if filepath.Dir(p) == dir && name == checkpointsDir {
				return filepath.SkipDir
			}
			return nil
		}
		if p == filepath.Join(dir, ManifestFile) || !d.Type().IsRegular() {
			return nil
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list outputs of %s: %w", dir, err)
	}
	paths = append(paths, extra...)
	slices.Sort(paths)
	paths = slices.Compact(paths)
	return a.hash.Files(ctx, paths, nil)
}

// checkpointsDir is the training stages' checkpoint folder: working state
// for resuming, not an output.
const checkpointsDir = "checkpoints"

// verify reports whether every output of m is present with its checksum.
func (a *Activities) verify(ctx context.Context, m *Manifest) bool {
	paths := make([]string, len(m.Outputs))
	for i, f := range m.Outputs {
		paths[i] = f.Path
	}
	got, err := a.hash.Files(ctx, paths, nil)
	if err != nil {
		return false
	}
	for i, f := range got {
		if f.SHA256 != m.Outputs[i].SHA256 || f.Bytes != m.Outputs[i].Bytes {
			return false
		}
	}
	return true
}

// indexPath is where the index records the manifest of an input hash.
func indexPath(root, hash string) string {
	return filepath.Join(root, IndexDir, hash+".json")
}

type indexEntry struct {
	Manifest string `json:"manifest"`
}

// findManifest looks for a complete earlier execution with the same input
// hash: first in the stage's own folder (a retried or repeated run), then
// through the runs root's index (any earlier run).
func (a *Activities) findManifest(ctx context.Context, s Stage, hash string) (*Manifest, string, bool) {
	candidates := []string{filepath.Join(s.Dir(), ManifestFile)}
	if b, err := os.ReadFile(indexPath(s.Run.Root, hash)); err == nil {
		var e indexEntry
		if json.Unmarshal(b, &e) == nil && e.Manifest != "" {
			candidates = append(candidates, e.Manifest)
		}
	}
	for _, p := range candidates {
		m, err := ReadManifest(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.logger.Warn("ignoring unreadable manifest", "path", p, "error", err)
			}
			continue
		}
		if m.InputHash == hash && a.verify(ctx, m) {
			return m, p, true
		}
	}
	return nil, "", false
}

func writeIndex(root, hash, manifest string) error {
	b, err := json.Marshal(indexEntry{Manifest: manifest})
	if err != nil {
		return err
	}
	return artifacts.WriteFile(indexPath(root, hash), b)
}
