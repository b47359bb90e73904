package artifacts_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/l2g/l2g/internal/artifacts"
)

func TestWriteFileAndFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "a.bin")
	if err := artifacts.WriteFile(p, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "hello" {
		t.Fatalf("got %q", b)
	}
	q := filepath.Join(dir, "b.bin")
	err := artifacts.WriteWith(q, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return errors.New("boom")
	})
	if err == nil {
		t.Fatal("error swallowed")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "sub" {
			t.Fatalf("left %s behind", e.Name())
		}
	}
	// Overwrite is atomic: the old content stays until commit.
	f, _ := artifacts.Create(p)
	f.Write([]byte("new"))
	if b, _ := os.ReadFile(p); string(b) != "hello" {
		t.Fatalf("visible before commit: %q", b)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Fatalf("after commit: %q", b)
	}
}

func TestCommittedFilesAreWorldReadable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.bin")
	if err := artifacts.WriteFile(p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", st.Mode().Perm())
	}
}
