//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/l2g/l2g/activities"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/workflows"
)

var modes = []string{"cam", "l2g", "l2g-shape"}

// TestPipelineCompletes runs the tiny demo pipeline the way make demo runs
// the real one, `l2g run --local` (embedded server in the command, a worker
// child process), and checks the table, the report, and that every stage
// folder holds a manifest whose outputs exist with their checksums and
// whose inputs name the upstream stage's digest.
func TestPipelineCompletes(t *testing.T) {
	c := newCluster(t, 30*time.Second)
	start := time.Now()
	out, errOut, err := c.l2g("run", "--config", tiny, "--data", dataDir, "--runs", c.runs, "--id", "demo-1", "--local")
	if err != nil {
		t.Fatalf("l2g run --local: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	t.Logf("l2g run --local took %.0f s\n%s", time.Since(start).Seconds(), out)
	for _, want := range []string{"CAM baseline (cam)", "L2G (l2g)", "L2G + shape (l2g-shape)", "segmentation net on l2g-shape pseudo-labels: val mIoU", "report: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	runDir := filepath.Join(c.runs, "demo-1")
	if fi, err := os.Stat(filepath.Join(runDir, "report.html")); err != nil || fi.Size() < 10000 {
		t.Errorf("report: %v", err)
	}
	ms := manifests(t, runDir)
	for _, name := range stageNames(modes...) {
		m := ms[name]
		if m == nil {
			t.Errorf("stage %s has no manifest", name)
			continue
		}
		if m.RunID != "demo-1" || m.ReusedFrom != "" || len(m.Inputs) == 0 || len(m.InputHash) != 64 {
			t.Errorf("%s: manifest %+v", name, m)
		}
		checkOutputs(t, name, m)
	}
	if len(ms) != len(stageNames(modes...)) {
		t.Errorf("%d manifests, want %d", len(ms), len(stageNames(modes...)))
	}
	// Inputs chain by digest: cam-l2g's train input is train-l2g's output digest.
	if m := ms["cam-l2g"]; m != nil && ms["train-l2g"] != nil {
		found := false
		for _, in := range m.Inputs {
			found = found || (in.Name == "train" && in.Digest == ms["train-l2g"].Digest)
		}
		if !found {
			t.Errorf("cam-l2g inputs %+v lack train-l2g's digest %s", m.Inputs, ms["train-l2g"].Digest)
		}
	}
	if m := ms["segtrain"]; m != nil {
		if _, ok := m.Metrics["val_miou"]; !ok {
			t.Errorf("segtrain metrics %v lack val_miou", m.Metrics)
		}
	}
}

// TestWorkerKilledDuringTraining kills the only worker with SIGKILL while
// it trains; a second worker picks the activity up after its heartbeat
// timeout, resumes from the checkpoint named in the last heartbeat the
// server recorded (asserted iteration), and the run finishes.
func TestWorkerKilledDuringTraining(t *testing.T) {
	c := newCluster(t, 4*time.Second)
	c.startServer()
	first := c.startWorker()
	cl := c.client()
	// Long enough to outlast detecting a heartbeat on an idle machine
	// (about 30 s there), short enough on a busy one.
	const total = 600
	cfg := writeConfig(t, map[string]string{
		"modes":    "modes: [cam]",
		"seg_mode": "seg_mode: cam",
		"train": fmt.Sprintf(`train:
  arch: small
  num_classes: 3
  view: {kind: voc, short_side: 32, size: 32, color_jitter: {brightness: 0, contrast: 0, saturation: 0, hue: 0}}
  optim: {lr: 0.01, schedule: poly}
  batch_size: 16
  epochs: 400
  max_iterations: %d
  threads: 1
  workers: 1
  checkpoint_every: 5
  keep_checkpoints: 0`, total),
	})
	c.startRun("kill-1", cfg, dataDir)

	// Kill once the server has a heartbeat with a checkpoint past iteration 10.
	var seen stages.Progress
	err := poll(3*time.Minute, func() bool {
		p, ok := pendingProgress(t, cl, "kill-1", "train-cam")
		seen = p
		return ok && p.Checkpoint != "" && p.Iteration >= 10
	})
	if err != nil {
		out, errOut, _ := c.l2g("status", "kill-1")
		t.Fatalf("no training heartbeat with a checkpoint: last %+v\n%s%s", seen, out, errOut)
	}
	c.kill(first)
	// What the server hands the next attempt: the last heartbeat it got.
	last, ok := pendingProgress(t, cl, "kill-1", "train-cam")
	if !ok || last.Checkpoint == "" {
		t.Fatalf("after the kill the pending activity has no heartbeat checkpoint: %+v", last)
	}
	at := checkpointIteration(t, last.Checkpoint)
	if at >= total {
		t.Fatalf("killed too late: the checkpoint %s is the last one", last.Checkpoint)
	}
	t.Logf("killed the worker; last heartbeat: iteration %d, checkpoint %s", last.Iteration, last.Checkpoint)
	c.startWorker()
	res, err := c.wait(cl, "kill-1", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tr := res.Branches[0].Train
	if tr.ResumedFrom != last.Checkpoint || tr.ResumedAt != at {
		t.Errorf("the retried attempt resumed from %q at %d, want %q at %d", tr.ResumedFrom, tr.ResumedAt, last.Checkpoint, at)
	}
	if tr.Iterations != total {
		t.Errorf("%d iterations, want %d", tr.Iterations, total)
	}
	m, err := activities.ReadManifest(tr.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if m.Attempt < 2 {
		t.Errorf("manifest written by attempt %d, want a retry", m.Attempt)
	}
	if n := lines(t, tr.Log); n != total {
		t.Errorf("loss log has %d records, want %d (the resumed run keeps the first attempt's)", n, total)
	}
}

// pendingProgress is the heartbeat details the server holds for a running
// activity of run id.
func pendingProgress(t *testing.T, cl client.Client, id, activityID string) (stages.Progress, bool) {
	t.Helper()
	desc, err := cl.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		return stages.Progress{}, false
	}
	for _, pa := range desc.GetPendingActivities() {
		if pa.GetActivityId() != activityID || pa.GetHeartbeatDetails() == nil {
			continue
		}
		var p stages.Progress
		if err := converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &p); err != nil {
			t.Fatal(err)
		}
		return p, true
	}
	return stages.Progress{}, false
}

var iterName = regexp.MustCompile(`iter_(\d+)\.safetensors$`)

func checkpointIteration(t *testing.T, path string) int {
	t.Helper()
	m := iterName.FindStringSubmatch(path)
	if m == nil {
		t.Fatalf("%s is not a checkpoint name", path)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestServerRestart kills the server with SIGKILL once the first stages
// are done and starts it again on the same SQLite history: the worker
// reconnects and the run finishes.
func TestServerRestart(t *testing.T) {
	c := newCluster(t, 30*time.Second)
	srv := c.startServer()
	c.startWorker()
	cl := c.client()
	c.startRun("restart-1", tiny, dataDir)
	err := poll(3*time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(c.runs, "restart-1", "train-cam", activities.ManifestFile))
		return err == nil
	})
	if err != nil {
		t.Fatal("train-cam never finished")
	}
	c.kill(srv)
	t.Log("killed the server after train-cam")
	time.Sleep(2 * time.Second)
	c.startServer()
	cl2 := c.client()
	res, err := c.wait(cl2, "restart-1", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status.State != workflows.RunCompleted || len(res.Branches) != 3 {
		t.Errorf("result %+v", res.Status)
	}
	_ = cl
	ms := manifests(t, filepath.Join(c.runs, "restart-1"))
	for _, name := range stageNames(modes...) {
		if ms[name] == nil {
			t.Errorf("stage %s has no manifest", name)
		}
	}
}

// TestBadInputFailsFast: a bad config field is refused by the CLI before
// anything starts, naming the file and the field; a config the train stage
// rejects and a corrupt image fail the run at once — one attempt, a
// non-retryable InvalidInput error with the stage's message.
func TestBadInputFailsFast(t *testing.T) {
	c := newCluster(t, 30*time.Second)

	bad := writeConfig(t, map[string]string{"pseudolabel": "pseudolabel: {bg_threshold: 1.5}"})
	_, errOut, err := c.l2g("run", "--config", bad, "--data", dataDir, "--runs", c.runs, "--detach")
	if err == nil || !strings.Contains(errOut, bad) || !strings.Contains(errOut, "pseudolabel.bg_threshold") {
		t.Errorf("bad field: err %v, stderr %q; want the file and pseudolabel.bg_threshold", err, errOut)
	}

	c.startServer()
	c.startWorker()
	cl := c.client()

	// The dataset has 3 classes; the config says 4 (consistent with
	// segtrain, so only the stage can tell).
	wrong := writeConfig(t, map[string]string{
		"modes": "modes: [cam]", "seg_mode": "seg_mode: cam",
		"train": `train:
  arch: small
  num_classes: 4
  view: {kind: voc, short_side: 32, size: 32, color_jitter: {brightness: 0, contrast: 0, saturation: 0, hue: 0}}
  batch_size: 4
  max_iterations: 2`,
		"segtrain": `segtrain:
  model: {arch: small, num_classes: 5, small_widths: [8, 8, 8, 8, 8, 8, 8]}
  augment: {crop: 32}
  iterations: 2`,
	})
	start := time.Now()
	c.startRun("bad-classes", wrong, dataDir)
	_, err = c.wait(cl, "bad-classes", 3*time.Minute)
	took := time.Since(start)
	checkFailedFast(t, cl, "bad-classes", err, "train-cam", "the dataset has 3 classes, the config says 4")
	t.Logf("bad config failed after %.1f s", took.Seconds())

	corrupt := copyTree(t, dataDir)
	victim := filepath.Join(corrupt, data.DirImages, "synth_000007.jpg")
	if err := os.WriteFile(victim, []byte("\xff\xd8\xff\xe0 not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.startRun("bad-image", tiny, corrupt)
	_, err = c.wait(cl, "bad-image", 3*time.Minute)
	checkFailedFast(t, cl, "bad-image", err, "saliency", victim)
}

// checkFailedFast asserts that run id failed with stage's non-retryable
// InvalidInput error containing want, after a single attempt.
func checkFailedFast(t *testing.T, cl client.Client, id string, err error, stage, want string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrInvalidInput || !app.NonRetryable() {
		t.Fatalf("%s: error %v, want a non-retryable %s", id, err, activities.ErrInvalidInput)
	}
	if !strings.Contains(err.Error(), stage) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %q lacks the stage %q or %q", id, err, stage, want)
	}
	it := cl.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	started := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			started++
			if a.GetAttempt() != 1 {
				t.Errorf("%s: an activity ran %d attempts", id, a.GetAttempt())
			}
		}
	}
	if started == 0 {
		t.Errorf("%s: no activity started", id)
	}
}

// TestRerunFromCAM: rerun --from cam reuses saliency and train — the new
// run's manifests point at the first run's files, whose checksums are
// unchanged — and recomputes cam and every later stage in its own folder.
func TestRerunFromCAM(t *testing.T) {
	c := newCluster(t, 30*time.Second)
	c.startServer()
	c.startWorker()
	cl := c.client()
	c.startRun("first", tiny, dataDir)
	if _, err := c.wait(cl, "first", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if path := os.Getenv("L2G_RECORD_HISTORY"); path != "" {
		recordHistory(t, cl, "first", path)
	}
	before := manifests(t, filepath.Join(c.runs, "first"))
	rerunStart := time.Now()
	out, errOut, err := c.l2g("rerun", "first", "--from", "cam", "--id", "second", "--quiet")
	if err != nil {
		t.Fatalf("l2g rerun: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "report: ") {
		t.Errorf("rerun output:\n%s", out)
	}
	after := manifests(t, filepath.Join(c.runs, "second"))
	secondDir := filepath.Join(c.runs, "second")
	for _, name := range stageNames(modes...) {
		a, b := before[name], after[name]
		if a == nil || b == nil {
			t.Fatalf("%s: manifests %v / %v", name, a != nil, b != nil)
		}
		reused := name == "saliency" || strings.HasPrefix(name, "train-")
		if reused {
			if b.ReusedFrom != filepath.Join(c.runs, "first", name, activities.ManifestFile) {
				t.Errorf("%s: reused_from %q", name, b.ReusedFrom)
			}
			if len(a.Outputs) != len(b.Outputs) {
				t.Fatalf("%s: %d outputs, first run %d", name, len(b.Outputs), len(a.Outputs))
			}
			for i, f := range b.Outputs {
				if f != a.Outputs[i] || sha256File(t, f.Path) != a.Outputs[i].SHA256 {
					t.Errorf("%s: output %+v differs from the first run's %+v", name, f, a.Outputs[i])
				}
			}
			continue
		}
		if b.ReusedFrom != "" || b.Started.Before(rerunStart) {
			t.Errorf("%s: not recomputed (reused_from %q, started %v)", name, b.ReusedFrom, b.Started)
		}
		for _, f := range b.Outputs {
			if !strings.HasPrefix(f.Path, secondDir+string(os.PathSeparator)) {
				t.Errorf("%s: output %s outside the new run's folder", name, f.Path)
			}
		}
		checkOutputs(t, name, b)
	}
	// The recomputed CAMs read the first run's checkpoint: same input digest.
	for _, m := range modes {
		n := workflows.BranchName("cam", m)
		if before[n].InputHash != after[n].InputHash {
			t.Errorf("%s: input hash changed (%s → %s) though its inputs were reused", n, before[n].InputHash, after[n].InputHash)
		}
	}
}

// TestScheduleFiresRun creates a schedule that fires once at creation;
// the run it starts finishes with every manifest. Then list, pause and
// delete.
func TestScheduleFiresRun(t *testing.T) {
	c := newCluster(t, 30*time.Second)
	c.startServer()
	c.startWorker()
	cl := c.client()
	out, errOut, err := c.l2g("schedule", "create", "nightly", "--config", tiny, "--data", dataDir, "--runs", c.runs, "--every", "24h", "--trigger")
	if err != nil {
		t.Fatalf("schedule create: %v\n%s%s", err, out, errOut)
	}
	h := cl.ScheduleClient().GetHandle(context.Background(), "nightly")
	var runID string
	err = poll(time.Minute, func() bool {
		d, err := h.Describe(context.Background())
		if err != nil || len(d.Info.RecentActions) == 0 || d.Info.RecentActions[0].StartWorkflowResult == nil {
			return false
		}
		runID = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		return true
	})
	if err != nil {
		t.Fatal("the schedule never fired")
	}
	if !strings.HasPrefix(runID, "nightly-") {
		t.Errorf("scheduled run id %q", runID)
	}
	res, err := c.wait(cl, runID, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != filepath.Join(c.runs, runID) || len(manifests(t, res.Dir)) != len(stageNames(modes...)) {
		t.Errorf("scheduled run folder %s: %d manifests", res.Dir, len(manifests(t, res.Dir)))
	}

	out, _, err = c.l2g("schedule", "list")
	if err != nil || !strings.Contains(out, "nightly") || !strings.Contains(out, "active") || !strings.Contains(out, runID) {
		t.Errorf("schedule list: %v\n%s", err, out)
	}
	if _, _, err := c.l2g("schedule", "pause", "nightly"); err != nil {
		t.Fatal(err)
	}
	out, _, _ = c.l2g("schedule", "list")
	if !strings.Contains(out, "paused") {
		t.Errorf("after pause:\n%s", out)
	}
	if _, _, err := c.l2g("schedule", "delete", "nightly"); err != nil {
		t.Fatal(err)
	}
	out, _, _ = c.l2g("schedule", "list")
	if strings.Contains(out, "nightly") {
		t.Errorf("after delete:\n%s", out)
	}
	// l2g status reads the finished run from its result or the query.
	out, errOut, err = c.l2g("status", runID)
	if err != nil || !strings.Contains(out, "completed") || !strings.Contains(out, "evaluate-seg") {
		t.Errorf("l2g status: %v\n%s%s", err, out, errOut)
	}
}

// recordHistory writes run id's event history as JSON (the format of
// `temporal workflow show --output json`), for the workflows package's
// replay test: L2G_RECORD_HISTORY=$PWD/workflows/testdata/pipeline_history.json.
func recordHistory(t *testing.T, cl client.Client, id, path string) {
	t.Helper()
	var h historypb.History
	it := cl.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events of %s in %s", len(h.Events), id, path)
}
