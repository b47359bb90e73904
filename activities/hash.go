package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/stages"
)

// hasher computes file SHA-256s and remembers them by path, size and
// modification time, so a worker hashes a dataset once for all the stages
// that read it. A rewritten file changes size or mtime and is hashed again.
type hasher struct {
	mu   sync.Mutex
	memo map[string]hashEntry
}

type hashEntry struct {
	size  int64
	mtime time.Time
	sum   string
}

func newHasher() *hasher { return &hasher{memo: map[string]hashEntry{}} }

// File returns the hex SHA-256 and size of path.
func (h *hasher) File(path string) (string, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", path)
	}
	h.mu.Lock()
	e, ok := h.memo[path]
	h.mu.Unlock()
	if ok && e.size == fi.Size() && e.mtime.Equal(fi.ModTime()) {
		return e.sum, e.size, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	d := sha256.New()
	n, err := io.Copy(d, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	sum := hex.EncodeToString(d.Sum(nil))
	h.mu.Lock()
	h.memo[path] = hashEntry{size: n, mtime: fi.ModTime(), sum: sum}
	h.mu.Unlock()
	return sum, n, nil
}

// Files hashes paths on all cores, reporting progress every few hundred
// files (a heartbeat while a large dataset is read), in the order given.
func (h *hasher) Files(ctx context.Context, paths []string, progress stages.ProgressFunc) ([]File, error) {
	out := make([]File, len(paths))
	errs := make([]error, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	var done sync.Mutex
	finished := 0
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sum, n, err := h.File(paths[i])
				out[i], errs[i] = File{Path: paths[i], Bytes: n, SHA256: sum}, err
				done.Lock()
				finished++
				if finished%500 == 0 {
					progress.Report(stages.Progress{Iteration: finished, Total: len(paths), Message: "hashing inputs"})
				}
				done.Unlock()
			}
		}()
	}
	var cerr error
feed:
	for i := range paths {
		select {
		case next <- i:
		case <-ctx.Done():
			cerr = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if cerr != nil {
		return nil, cerr
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// digestFiles is the digest of a file set: SHA-256 over the sorted
// (name, checksum) pairs, names relative to base when inside it, so that
// the same content in another run folder has the same digest.
func digestFiles(base string, files []File) string {
	type pair struct{ name, sum string }
	ps := make([]pair, len(files))
	for i, f := range files {
		name := f.Path
		if rel, err := filepath.Rel(base, f.Path); err == nil && filepath.IsLocal(rel) {
			name = rel
		}
		ps[i] = pair{filepath.ToSlash(name), f.SHA256}
	}
	slices.SortFunc(ps, func(a, b pair) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	d := sha256.New()
	for _, p := range ps {
		fmt.Fprintf(d, "%s\x00%s\n", p.name, p.sum)
	}
	return hex.EncodeToString(d.Sum(nil))
}

// datasetFiles lists the files a split is read from: the list, the
// class-label list, the class names and every image and mask it names.
func datasetFiles(sp *data.Split) []string {
	var files []string
	add := func(p string) {
		if p != "" {
			files = append(files, p)
		}
	}
	add(sp.List)
	if sp.LabelsFrom != sp.List {
		add(sp.LabelsFrom)
	}
	if p := filepath.Join(sp.Root, data.ClassesFile); fileExists(p) {
		add(p)
	}
	for _, it := range sp.Items {
		add(it.ImagePath)
		add(it.MaskPath)
	}
	return files
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// datasetInput opens a split and hashes everything it is read from. Files
// are named relative to the dataset root, so a dataset moved or mounted
// elsewhere keeps its digest.
func (a *Activities) datasetInput(ctx context.Context, name string, spec data.Spec, progress stages.ProgressFunc) (Input, *data.Split, error) {
	sp, err := data.Open(ctx, spec)
	if err != nil {
		return Input{}, nil, err
	}
	files, err := a.hash.Files(ctx, datasetFiles(sp), progress)
	if err != nil {
		return Input{}, nil, err
	}
	return Input{Name: name, Path: sp.List, Digest: digestFiles(sp.Root, files)}, sp, nil
}

// fileInput is one file given by the config (initial weights), by content.
func (a *Activities) fileInput(ctx context.Context, name, path string) (Input, error) {
	sum, _, err := a.hash.File(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Input{}, badinput.New(path, name, "file not found")
		}
		return Input{}, fmt.Errorf("%s: %w", name, err)
	}
	return Input{Name: name, Path: path, Digest: sum}, nil
}

// inputHash identifies a stage execution: the stage kind, the activity
// code version, the config as canonical JSON (struct field order, sorted
// map keys) and the digest of every input.
func inputHash(kind string, config any, inputs []Input) (string, error) {
	cfg, err := json.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("encode %s config: %w", kind, err)
	}
	d := sha256.New()
	fmt.Fprintf(d, "l2g-stage\x00%s\x00%d\x00", kind, codeVersion)
	d.Write(cfg)
	in := slices.Clone(inputs)
	slices.SortFunc(in, func(a, b Input) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	for _, i := range in {
		fmt.Fprintf(d, "\x00%s=%s", i.Name, i.Digest)
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}

// codeVersion is part of every input hash: raise it when a stage's output
// for the same inputs and config changes, so old manifests stop matching.
const codeVersion = 1
