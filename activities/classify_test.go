package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/torch"
)

func TestClassify(t *testing.T) {
	var list badinput.List
	list.Add(badinput.New("a.jpg", "", "corrupt"))
	list.Add(badinput.New("b.jpg", "", "corrupt"))
	cases := []struct {
		name         string
		err          error
		appType      string // "" when the error must come back unchanged
		nonRetryable bool
	}{
		{"bad config field", fmt.Errorf("train: %w", badinput.New("demo.yaml", "optim.lr", "-1, want > 0")), ErrInvalidInput, true},
		{"corrupt images", fmt.Errorf("saliency: %w", list.Err()), ErrInvalidInput, true},
		{"torch error", fmt.Errorf("iter 3: %w", &torch.Error{Op: "conv2d", Msg: "expected 4D input"}), ErrTorch, true},
		{"out of memory", fmt.Errorf("iter 3: %w", &torch.Error{Op: "conv2d", Msg: "CUDA out of memory. Tried to allocate 2 GiB"}), ErrOutOfMemory, false},
		{"I/O error", fmt.Errorf("write: %w", io.ErrShortWrite), "", false},
		{"cancelled", fmt.Errorf("train: stopped: %w", context.Canceled), "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := classify("train-l2g", c.err)
			var app *temporal.ApplicationError
			if c.appType == "" {
				if errors.As(got, &app) || !errors.Is(got, c.err) {
					t.Fatalf("classify made %v into %#v, want it returned as is", c.err, got)
				}
				return
			}
			if !errors.As(got, &app) {
				t.Fatalf("classify(%v) = %T, want an application error", c.err, got)
			}
			if app.Type() != c.appType || app.NonRetryable() != c.nonRetryable {
				t.Errorf("type %q non-retryable %v, want %q %v", app.Type(), app.NonRetryable(), c.appType, c.nonRetryable)
			}
			if app.Message() != "train-l2g" || !strings.HasSuffix(app.Error(), ": "+c.err.Error()) {
				t.Errorf("error %q, want the stage name and then the stage's message %q", app.Error(), c.err.Error())
			}
			if !errors.Is(got, c.err) {
				t.Errorf("the cause %v is not kept", c.err)
			}
		})
	}
	if classify("x", nil) != nil {
		t.Error("classify of nil is not nil")
	}
}
