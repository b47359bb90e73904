// Package badinput is the one error type for invalid user input: a corrupt
// or missing file, a malformed line, a bad config field, a path that escapes
// its root. Such errors are deterministic, so the Temporal adapter marks them
// non-retryable (errors.As on *Error).
package badinput

import (
	"errors"
	"fmt"
)

// Error names where the bad input is: the file, and when known the line and
// the field (a config key, a column, a list-file entry).
type Error struct {
	Path  string // file or directory the input came from
	Line  int    // 1-based line number in Path, 0 when not applicable
	Field string // config key, column or entry name, "" when not applicable
	Err   error
}

func (e *Error) Error() string {
	loc := e.Path
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
	}
	if e.Field != "" {
		if loc != "" {
			loc += ": "
		}
		loc += e.Field
	}
	if loc == "" {
		return "invalid input: " + e.Err.Error()
	}
	return fmt.Sprintf("invalid input: %s: %v", loc, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error for path (and field, may be "") with a formatted message.
func New(path, field, format string, args ...any) *Error {
	return &Error{Path: path, Field: field, Err: fmt.Errorf(format, args...)}
}

// AtLine returns an *Error for a line of a list or text file.
func AtLine(path string, line int, format string, args ...any) *Error {
	return &Error{Path: path, Line: line, Err: fmt.Errorf(format, args...)}
}

// Wrap marks err as bad input found in path; nil stays nil.
func Wrap(path, field string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Path: path, Field: field, Err: err}
}

// Is reports whether err is, or wraps, a bad-input error.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// List collects many input problems so that a scan can report all of them at
// once; Err returns nil when it is empty.
type List struct {
	Errs []*Error
}

// Add appends e.
func (l *List) Add(e *Error) { l.Errs = append(l.Errs, e) }

// Err returns the collected problems as one error, or nil.
func (l *List) Err() error {
	if len(l.Errs) == 0 {
		return nil
	}
	return l
}

func (l *List) Error() string {
	if len(l.Errs) == 1 {
		return l.Errs[0].Error()
	}
	s := fmt.Sprintf("%d input problems:", len(l.Errs))
	for _, e := range l.Errs {
		s += "\n  " + e.Error()
	}
	return s
}

// Unwrap exposes the individual problems to errors.As / errors.Is.
func (l *List) Unwrap() []error {
	out := make([]error, len(l.Errs))
	for i, e := range l.Errs {
		out[i] = e
	}
	return out
}
