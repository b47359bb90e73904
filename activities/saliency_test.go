package activities

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/stages/saliency"
)

func runSaliency(t *testing.T, a *Activities, req SaliencyRequest) (SaliencyResult, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.Saliency, req)
	if err != nil {
		return SaliencyResult{}, err
	}
	var res SaliencyResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestManifestSkipReuseAndForce runs the saliency activity and checks its
// manifest against the files on disk; then that a repeat is skipped, that
// another run reuses the outputs (with its own manifest saying so), that
// Force recomputes, and that a damaged output is recomputed.
func TestManifestSkipReuseAndForce(t *testing.T) {
	root := t.TempDir()
	cfg := saliency.DefaultConfig()
	cfg.Workers = 2
	req := SaliencyRequest{Stage: testStage(root, "run1", "saliency"), Data: testData(synthDir), Config: cfg}
	a := New(Options{})

	first, err := runSaliency(t, a, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.Skipped || first.Maps != 16 || first.Method != saliency.MethodMBD {
		t.Fatalf("first run: %+v", first)
	}
	m, err := ReadManifest(first.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if m.Stage != "saliency" || m.Name != "saliency" || m.RunID != "run1" || m.InputHash != first.InputHash || m.Digest != first.Digest {
		t.Errorf("manifest header %+v does not match the result %+v", m, first.Ref)
	}
	if len(m.Inputs) != 1 || m.Inputs[0].Name != "dataset" || len(m.Inputs[0].Digest) != 64 {
		t.Errorf("inputs %+v, want the dataset digest", m.Inputs)
	}
	// Every map and maps.json are outputs, each with its true checksum.
	if len(m.Outputs) != 17 {
		t.Errorf("%d outputs, want 16 maps and maps.json", len(m.Outputs))
	}
	for _, f := range m.Outputs {
		if got := sha256File(t, f.Path); got != f.SHA256 {
			t.Errorf("%s: manifest says %s, file hashes to %s", f.Path, f.SHA256, got)
		}
		if !strings.HasPrefix(f.Path, first.Dir) {
			t.Errorf("output %s outside the stage folder %s", f.Path, first.Dir)
		}
	}
	if m.Metrics["maps"] != 16 {
		t.Errorf("metrics %v", m.Metrics)
	}

	// The same inputs again: skipped, same outputs, manifest untouched.
	fi, _ := os.Stat(first.Manifest)
	again, err := runSaliency(t, New(Options{}), req)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Skipped || again.Digest != first.Digest || again.ReusedFrom != "" {
		t.Errorf("repeat: %+v, want skipped with digest %s", again.Ref, first.Digest)
	}
	if fi2, _ := os.Stat(first.Manifest); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Error("a skipped stage rewrote its manifest")
	}

	// Another run with the same inputs reuses run1's maps through the index.
	req2 := req
	req2.Stage = testStage(root, "run2", "saliency")
	other, err := runSaliency(t, a, req2)
	if err != nil {
		t.Fatal(err)
	}
	if !other.Skipped || other.ReusedFrom != first.Manifest || other.MapsDir != first.MapsDir || other.Digest != first.Digest {
		t.Errorf("run2: %+v, want run1's maps reused", other)
	}
	m2, err := ReadManifest(filepath.Join(root, "run2", "saliency", ManifestFile))
	if err != nil {
		t.Fatalf("run2 has no manifest of its own: %v", err)
	}
	if m2.ReusedFrom != first.Manifest || m2.RunID != "run2" || m2.Digest != m.Digest {
		t.Errorf("run2 manifest: reused_from %q run %q", m2.ReusedFrom, m2.RunID)
	}

	// Force recomputes (MB+ is deterministic: same digest).
	forced := req
	forced.Stage.Force = true
	re, err := runSaliency(t, a, forced)
	if err != nil {
		t.Fatal(err)
	}
	if re.Skipped || re.Digest != first.Digest {
		t.Errorf("forced: %+v", re.Ref)
	}

	// A damaged output no longer matches its manifest: recomputed.
	victim := m.Outputs[3].Path
	if err := os.WriteFile(victim, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	fixed, err := runSaliency(t, a, req)
	if err != nil {
		t.Fatal(err)
	}
	if fixed.Skipped || sha256File(t, victim) != m.Outputs[3].SHA256 {
		t.Errorf("damaged output: skipped %v, file restored %v", fixed.Skipped, sha256File(t, victim) == m.Outputs[3].SHA256)
	}

	// A changed config is a different stage execution.
	changed := req
	changed.Config.MBD.Passes = 2
	ch, err := runSaliency(t, a, changed)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Skipped || ch.InputHash == first.InputHash {
		t.Errorf("changed config: %+v", ch.Ref)
	}
}

// TestCorruptImageIsNamedAndNotRetried corrupts one training image: the
// activity fails with a non-retryable InvalidInput error naming the file.
func TestCorruptImageIsNamedAndNotRetried(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(synthDir)); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, data.DirImages, "synth_000005.jpg")
	if err := os.WriteFile(bad, []byte("\xff\xd8\xff garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runSaliency(t, New(Options{}), SaliencyRequest{
		Stage: testStage(t.TempDir(), "run1", "saliency"), Data: testData(dir), Config: saliency.DefaultConfig(),
	})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("error %v (%T), want an application error", err, err)
	}
	if app.Type() != ErrInvalidInput || !app.NonRetryable() {
		t.Errorf("type %s non-retryable %v", app.Type(), app.NonRetryable())
	}
	if !strings.Contains(err.Error(), bad) {
		t.Errorf("error %q does not name %s", err, bad)
	}
}
