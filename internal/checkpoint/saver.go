package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
)

// Saver is a training loop's checkpoint bookkeeping: where checkpoints go,
// how many are kept, and which one is the latest (reported in progress, so
// a restarted activity resumes from it).
type Saver struct {
	Dir  string
	Keep int // newest checkpoints kept; 0 keeps all
	// Write writes the checkpoint of iteration it to path, and anything
	// that must agree with it (the loss log).
	Write func(path string, it int) error

	Last  string // latest checkpoint written or resumed from
	Saved int    // its iteration
}

// Resumed records that the run continues from path at iteration it.
func (s *Saver) Resumed(path string, it int) { s.Last, s.Saved = path, it }

// Save writes the checkpoint of iteration it and prunes old ones.
func (s *Saver) Save(it int) error {
	p := Name(s.Dir, it)
	if err := s.Write(p, it); err != nil {
		return err
	}
	s.Last, s.Saved = p, it
	return Prune(s.Dir, s.Keep)
}

// Interrupted saves the finished iterations when they are newer than the
// last checkpoint and returns cause wrapped with where the run stopped, so
// errors.Is still finds it (context.Canceled).
func (s *Saver) Interrupted(stage string, done int, cause error) error {
	if done > s.Saved {
		if err := s.Save(done); err != nil {
			return errors.Join(cause, err)
		}
	}
	return fmt.Errorf("%s: stopped after iteration %d (checkpoint %s): %w", stage, done, s.Last, cause)
}

// WriteLog writes records as JSON lines to path atomically.
func WriteLog[T any](path string, records []T) error {
	err := artifacts.WriteWith(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, r := range records {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint: log: %w", err)
	}
	return nil
}

// ReadLog returns the records of a log written by WriteLog whose iteration
// is at most upTo (a resumed run drops those of iterations it will redo).
// A missing file (a resume into a new folder) gives none.
func ReadLog[T any](path string, upTo int, iteration func(T) int) ([]T, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: log: %w", err)
	}
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r T
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, badinput.AtLine(path, line, "not a log record: %v", err)
		}
		if iteration(r) <= upTo {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}
