// Package artifacts writes stage outputs so that a reader never sees a
// partial file: everything goes to a temporary file in the destination
// directory, is fsynced, then renamed into place.
package artifacts

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is an output being written; Commit makes it visible under its final
// name, Abort (safe after Commit) removes the temporary file.
type File struct {
	f     *os.File
	w     *bufio.Writer
	final string
	done  bool
}

// Create starts writing path atomically. Parent directories are created.
func Create(path string) (*File, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &File{f: f, w: bufio.NewWriterSize(f, 64<<10), final: path}, nil
}

// Write implements io.Writer (buffered).
func (a *File) Write(p []byte) (int, error) { return a.w.Write(p) }

// Name is the final path.
func (a *File) Name() string { return a.final }

// Commit flushes, fsyncs and renames the file into place, then fsyncs the
// directory so the rename survives a crash.
func (a *File) Commit() error {
	if a.done {
		return fmt.Errorf("commit %s: already finished", a.final)
	}
	a.done = true
	tmp := a.f.Name()
	err := a.w.Flush()
	if err == nil {
		// CreateTemp makes 0600 files; outputs are meant to be shared.
		err = a.f.Chmod(0o644)
	}
	if err == nil {
		err = a.f.Sync()
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, a.final)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", a.final, err)
	}
	syncDir(filepath.Dir(a.final))
	return nil
}

// Abort discards the temporary file. It is a no-op after Commit, so it can be
// deferred unconditionally.
func (a *File) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.f.Name())
}

// WriteFile writes data to path atomically. The bytes go straight to the
// file: a buffer would only add a copy (and small files are the common case).
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// WriteWith streams the output of fn to path atomically; if fn fails nothing
// is left behind.
func WriteWith(path string, fn func(io.Writer) error) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := fn(f); err != nil {
		return err
	}
	return f.Commit()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
