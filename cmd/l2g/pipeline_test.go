package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/temporalcfg"
)

func TestBranchOf(t *testing.T) {
	for _, c := range []struct{ name, kind, mode string }{
		{"train-l2g-shape", "train", "l2g-shape"},
		{"cam-cam", "cam", "cam"},
		{"cam_eval-l2g", "cam_eval", "l2g"},
		{"pseudolabel-local", "pseudolabel", "local"},
		{"evaluate-l2g", "evaluate", "l2g"},
		{"segtrain", "", ""},
		{"train-", "", ""},
	} {
		if k, m := branchOf(c.name); k != c.kind || m != c.mode {
			t.Errorf("branchOf(%q) = %q, %q; want %q, %q", c.name, k, m, c.kind, c.mode)
		}
	}
}

// TestFailureText: a run failure shows the stage and the stage's own
// message once, not the chain of wrapped causes.
func TestFailureText(t *testing.T) {
	stageErr := badinput.New("/data/JPEGImages/x.jpg", "", "decode: unexpected EOF")
	err := fmt.Errorf("workflow failed: %w", temporal.NewNonRetryableApplicationError("saliency", "InvalidInput",
		temporal.NewApplicationError(stageErr.Error(), "")))
	got := failureText(err)
	want := "saliency [InvalidInput]: invalid input: /data/JPEGImages/x.jpg: decode: unexpected EOF"
	if got != want {
		t.Errorf("failureText = %q, want %q", got, want)
	}
	plain := errors.New("connection refused")
	if failureText(plain) != plain.Error() {
		t.Errorf("a plain error changed: %q", failureText(plain))
	}
}

// TestOverrideArgs: the local worker gets the Temporal flags of the
// command, but never the API key on its command line.
func TestOverrideArgs(t *testing.T) {
	got := strings.Join(overrideArgs(temporalcfg.Overrides{ConfigPath: "t.yaml", Address: "h:1", APIKey: "secret"}), " ")
	if got != "--temporal-config t.yaml --temporal-address h:1" {
		t.Errorf("overrideArgs = %q", got)
	}
}

// TestLoadRunConfigData: --data wins over data.root and must be a folder;
// a missing root names the field.
func TestLoadRunConfigData(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(cfg, []byte("name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (pipelineFlags{config: cfg}).loadRunConfig(); !badinput.Is(err) || !strings.Contains(err.Error(), "data.root") {
		t.Errorf("no data: %v", err)
	}
	if _, err := (pipelineFlags{config: cfg, data: filepath.Join(dir, "none")}).loadRunConfig(); !badinput.Is(err) {
		t.Errorf("missing data folder: %v", err)
	}
	got, err := (pipelineFlags{config: cfg, data: dir}).loadRunConfig()
	if err != nil || got.Data.Root != dir {
		t.Errorf("data root %q, %v", got.Data.Root, err)
	}
}
