// Package activities adapts the pipeline stages to Temporal: one method per
// stage on Activities (Saliency, Train, CAM, CAMEval, Pseudolabel, SegTrain,
// Evaluate). Each method hashes its inputs and config, skips the stage when
// a manifest with that hash exists, runs the stage with a progress callback
// that heartbeats, resumes training from the checkpoint in the last
// heartbeat, writes a manifest (input digests, output checksums, metrics)
// and returns a small result that locates the artifacts. Errors are
// classified once (classify): bad input and libtorch errors fail the
// workflow at once, everything else is retried.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/stages"
)

// Application error types set by classify; temporal.yaml's retry policies
// list InvalidInput among the non-retryable types.
const (
	ErrInvalidInput = "InvalidInput"
	ErrTorch        = "TorchError"
	ErrOutOfMemory  = "OutOfMemory"
)

// Activities holds what the stage activities share in one worker process.
type Activities struct {
	logger *slog.Logger
	hash   *hasher
	// devices hands out the accelerators: one GPU activity per device.
	// nil runs every activity on the device its request names.
	devices  chan string
	progress stages.ProgressFunc
}

// Options configure New.
type Options struct {
	// Devices are the torch devices this worker's GPU stages run on
	// (cuda:0, cuda:1, …); each runs one activity at a time. Empty: the
	// device in each request.
	Devices []string
	Logger  *slog.Logger
	// Progress also receives every report (l2g stage draws a bar with it).
	Progress stages.ProgressFunc
}

// New returns the activities of one worker process.
func New(o Options) *Activities {
	a := &Activities{logger: o.Logger, hash: newHasher(), progress: o.Progress}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	if len(o.Devices) > 0 {
		a.devices = make(chan string, len(o.Devices))
		for _, d := range o.Devices {
			a.devices <- d
		}
	}
	return a
}

// classify turns the error of stage name into what Temporal should do with
// it. Bad input (a corrupt image, a bad config field) and libtorch errors
// are deterministic: retrying cannot help, so they are non-retryable and
// the workflow fails with the stage's message. Out-of-memory may pass when
// the device is less busy and stays retryable; so does everything else
// (I/O, a lost worker). The application error's message is the stage name
// and its cause the stage's error, so the failure reads
// "train-l2g (type: InvalidInput, retryable: false): invalid input: …".
func classify(name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if badinput.Is(err) {
		return temporal.NewNonRetryableApplicationError(name, ErrInvalidInput, err)
	}
	var te *torch.Error
	if errors.As(err, &te) {
		if torch.IsOutOfMemory(err) {
			return temporal.NewApplicationErrorWithCause(name, ErrOutOfMemory, err)
		}
		return temporal.NewNonRetryableApplicationError(name, ErrTorch, err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// heartbeat is the progress callback handed to the stages: every report is
// a heartbeat whose details carry the iteration, losses and last
// checkpoint. The SDK throttles what it sends; cancellation of the
// activity arrives through these calls and reaches the stage as ctx.
// Called outside an activity (l2g stage), it feeds Options.Progress.
func (a *Activities) heartbeat(ctx context.Context) stages.ProgressFunc {
	inActivity := activity.IsActivity(ctx)
	return func(p stages.Progress) {
		if inActivity {
			activity.RecordHeartbeat(ctx, p)
		}
		a.progress.Report(p)
	}
}

// lastHeartbeat returns the progress in the last heartbeat of an earlier
// attempt, if any.
func lastHeartbeat(ctx context.Context) (stages.Progress, bool) {
	if !activity.IsActivity(ctx) || !activity.HasHeartbeatDetails(ctx) {
		return stages.Progress{}, false
	}
	var p stages.Progress
	if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
		return stages.Progress{}, false
	}
	return p, true
}

// job is one stage execution for execute.
type job[R result] struct {
	kind   string // temporalcfg stage name: saliency, train, …
	stage  Stage
	config any // the stage config, part of the input hash
	// inputs hashes the stage's inputs (the dataset, upstream digests).
	inputs func(ctx context.Context) ([]Input, error)
	// run runs the stage into dir and returns the result, files it wrote
	// outside dir, and metrics for the manifest.
	run func(ctx context.Context, dir string) (R, []string, map[string]float64, error)
}

// execute is the part every activity shares: hash the inputs, skip when a
// manifest matches, run, list and checksum the outputs, write the
// manifest and index it.
func execute[R result](ctx context.Context, a *Activities, j job[R]) (R, error) {
	var zero R
	if err := j.stage.validate(); err != nil {
		return zero, classify(j.kind, err)
	}
	start := time.Now()
	fail := func(err error) (R, error) {
		return zero, classify(j.stage.Name, err)
	}
	inputs, err := j.inputs(ctx)
	if err != nil {
		return fail(err)
	}
	hash, err := inputHash(j.kind, j.config, inputs)
	if err != nil {
		return fail(err)
	}
	dir := j.stage.Dir()
	manifestPath := filepath.Join(dir, ManifestFile)
	if !j.stage.Force {
		if m, found, ok := a.findManifest(ctx, j.stage, hash); ok {
			return reuse(a, j, m, found, manifestPath)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	// A forced or changed stage replaces what an earlier execution left.
	if err := os.Remove(manifestPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	res, extra, metrics, err := j.run(ctx, dir)
	if err != nil {
		return fail(err)
	}
	outputs, err := a.listOutputs(ctx, dir, extra)
	if err != nil {
		return fail(err)
	}
	ref := res.ref()
	*ref = Ref{
		Name: j.stage.Name, Dir: dir, Manifest: manifestPath,
		Digest: digestFiles(dir, outputs), InputHash: hash,
		Seconds: time.Since(start).Seconds(),
	}
	m, err := newManifest(ctx, j.kind, j.stage, hash, inputs, j.config, outputs, metrics, res, start)
	if err != nil {
		return fail(err)
	}
	if err := writeManifest(manifestPath, m); err != nil {
		return fail(err)
	}
	if err := writeIndex(j.stage.Run.Root, hash, manifestPath); err != nil {
		return fail(err)
	}
	a.logger.Info("stage done", "stage", j.stage.Name, "run", j.stage.Run.ID, "seconds", ref.Seconds, "outputs", len(outputs))
	return res, nil
}

// reuse returns the result recorded in an earlier manifest. When that
// manifest is another run's, a copy that says so is written in this run's
// stage folder, so every run has a manifest for every stage.
func reuse[R result](a *Activities, j job[R], m *Manifest, found, manifestPath string) (R, error) {
	var res R
	if err := json.Unmarshal(m.Result, &res); err != nil {
		return res, fmt.Errorf("%s: manifest %s: result: %w", j.stage.Name, found, err)
	}
	ref := res.ref()
	ref.Skipped = true
	ref.Seconds = 0
	if found != manifestPath {
		ref.ReusedFrom = found
		ref.Name, ref.Manifest = j.stage.Name, manifestPath
		cp := *m
		cp.Name, cp.RunID, cp.ReusedFrom = j.stage.Name, j.stage.Run.ID, found
		b, err := json.Marshal(res)
		if err != nil {
			return res, fmt.Errorf("%s: %w", j.stage.Name, err)
		}
		cp.Result = b
		if err := writeManifest(manifestPath, &cp); err != nil {
			return res, fmt.Errorf("%s: %w", j.stage.Name, err)
		}
	}
	a.logger.Info("stage skipped: inputs match a manifest", "stage", j.stage.Name, "run", j.stage.Run.ID, "manifest", found)
	return res, nil
}

func newManifest(ctx context.Context, kind string, s Stage, hash string, inputs []Input, config any,
	outputs []File, metrics map[string]float64, res any, start time.Time) (*Manifest, error) {
	cfg, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	r, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Format: ManifestFormat, Stage: kind, Name: s.Name, RunID: s.Run.ID,
		InputHash: hash, Inputs: inputs, Config: cfg, Outputs: outputs,
		Digest: digestFiles(s.Dir(), outputs), Metrics: finiteMetrics(metrics), Result: r,
		Started: start.UTC(), Finished: time.Now().UTC(),
	}
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		m.Attempt = info.Attempt
	}
	host, _ := os.Hostname()
	m.Worker = fmt.Sprintf("%d@%s", os.Getpid(), host) // the SDK's identity format
	return m, nil
}

// device returns the device a GPU stage runs on and its release: one from
// the worker's pool (waiting, with heartbeats, while all are busy), else
// the requested one with auto resolved to the first GPU or the CPU.
func (a *Activities) device(ctx context.Context, requested string) (string, func(), error) {
	if a.devices == nil {
		if requested == "" || requested == "auto" {
			requested = "cpu"
			if n, err := torch.CUDADeviceCount(); err == nil && n > 0 {
				requested = "cuda:0"
			}
		}
		return requested, func() {}, nil
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case d := <-a.devices:
			return d, func() { a.devices <- d }, nil
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-tick.C:
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, stages.Progress{Message: "waiting for a free device"})
			}
		}
	}
}

// deref returns the value an execute result points to.
func deref[T any](p *T, err error) (T, error) {
	if p == nil {
		var zero T
		return zero, err
	}
	return *p, err
}

func nan() float64 { return math.NaN() }
