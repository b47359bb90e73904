package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/l2g/l2g/activities"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/internal/workers"
	"github.com/l2g/l2g/workflows"
)

// Environment variables of the pipeline commands.
const (
	envRunsDir = "L2G_RUNS_DIR" // default of --runs
	envDevices = "L2G_DEVICES"  // a worker's GPU devices, e.g. cuda:0,cuda:1
)

// pipelineFlags are the flags of the commands that build a run input.
type pipelineFlags struct {
	config string
	data   string
	runs   string
}

func (f *pipelineFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "pipeline config (configs/pipeline/demo.yaml, voc12.yaml, coco14.yaml)")
	fs.StringVar(&f.data, "data", "", "dataset root, overriding data.root of the config")
	f.addRuns(fs)
}

func (f *pipelineFlags) addRuns(fs *pflag.FlagSet) {
	fs.StringVar(&f.runs, "runs", "", "folder of the run folders, shared by all workers (default $"+envRunsDir+", else ./runs)")
}

// runsRoot resolves --runs to an absolute path.
func (f pipelineFlags) runsRoot() (string, error) {
	r := f.runs
	if r == "" {
		r = os.Getenv(envRunsDir)
	}
	if r == "" {
		r = "runs"
	}
	abs, err := filepath.Abs(r)
	if err != nil {
		return "", badinput.Wrap(r, "--runs", err)
	}
	return abs, nil
}

// loadRunConfig reads the pipeline config and applies --data.
func (f pipelineFlags) loadRunConfig() (runconfig.Config, error) {
	if f.config == "" {
		return runconfig.Config{}, badinput.New("", "--config", "no pipeline config given (e.g. configs/pipeline/demo.yaml)")
	}
	cfg, err := runconfig.Load(f.config)
	if err != nil {
		return cfg, err
	}
	if f.data != "" {
		cfg.Data.Root = f.data
	}
	if cfg.Data.Root == "" {
		return cfg, badinput.New(f.config, "data.root", "no dataset given: set data.root or pass --data")
	}
	if cfg.Data.Root, err = filepath.Abs(cfg.Data.Root); err != nil {
		return cfg, badinput.Wrap(cfg.Data.Root, "data.root", err)
	}
	if fi, err := os.Stat(cfg.Data.Root); err != nil || !fi.IsDir() {
		return cfg, badinput.New(cfg.Data.Root, "data.root", "dataset root is not a directory (make one with `l2g dataset synth`)")
	}
	return cfg, nil
}

// pipelineInput is the workflow input: the run config and the activity
// options of temporal.yaml, resolved here so the workflow reads no file.
func pipelineInput(cfg runconfig.Config, runsRoot string, tcfg *temporalcfg.Config) (workflows.PipelineInput, error) {
	opts, err := tcfg.Activities()
	if err != nil {
		return workflows.PipelineInput{}, badinput.Wrap(tcfg.Path, "task_queues", err)
	}
	return workflows.PipelineInput{RunsRoot: runsRoot, Config: cfg, Activities: opts}, nil
}

// newRunID names a run after its config and the start time (UTC).
func newRunID(name string) string {
	if name == "" {
		name = "run"
	}
	return name + "-" + time.Now().UTC().Format("20060102-150405")
}

// dialTemporal loads temporal.yaml (with environment and flags) and dials.
func dialTemporal(ctx context.Context, ov temporalcfg.Overrides) (client.Client, *temporalcfg.Config, error) {
	tcfg, err := temporalcfg.Load(ov, os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	c, err := temporalcfg.Dial(ctx, tcfg.Connection, quietLogger())
	if err != nil {
		return nil, nil, err
	}
	return c, tcfg, nil
}

// quietLogger keeps the SDK's info logs (every poll start) off the
// terminal of the operator commands.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startPipeline starts a Pipeline workflow with id on the CPU queue. An id
// is used once: its run folder belongs to that run.
func startPipeline(ctx context.Context, c client.Client, tcfg *temporalcfg.Config, id string, in workflows.PipelineInput) (client.WorkflowRun, error) {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             tcfg.TaskQueues.CPU.Name,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.Pipeline, in)
	if err != nil {
		return nil, fmt.Errorf("start run %s: %w", id, err)
	}
	return run, nil
}

// pipelineRegistrations is what `l2g worker` runs: every stage activity on
// both queues (a queue only receives the stages temporal.yaml puts on it)
// and the Pipeline workflow on the CPU queue. GPU stages take a device
// from $L2G_DEVICES, else one per GPU libtorch sees, one activity per
// device; without GPUs they run on the request's device.
func pipelineRegistrations() (workers.Registrations, error) {
	devices, err := workerDevices()
	if err != nil {
		return nil, err
	}
	acts := activities.New(activities.Options{Devices: devices})
	return workers.Registrations{
		temporalcfg.QueueGPU: func(r worker.Registry) { r.RegisterActivity(acts) },
		temporalcfg.QueueCPU: func(r worker.Registry) {
			r.RegisterWorkflow(workflows.Pipeline)
			r.RegisterActivity(acts)
		},
	}, nil
}

func workerDevices() ([]string, error) {
	if v := os.Getenv(envDevices); v != "" {
		var out []string
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			if _, err := torch.ParseDevice(d); err != nil {
				return nil, badinput.New("", "$"+envDevices, "%q: %v", d, err)
			}
			out = append(out, d)
		}
		return out, nil
	}
	n, err := torch.CUDADeviceCount()
	if err != nil || n == 0 {
		return nil, nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cuda:%d", i)
	}
	return out, nil
}

// printResult prints the comparison table of a finished run: per training
// mode the CAM mIoU (best background threshold) and the pseudo-label mIoU
// on the eval list, then the segmentation net's val mIoU.
func printResult(w io.Writer, res workflows.PipelineResult, took time.Duration) {
	fmt.Fprintf(w, "\nrun %s finished in %s: %s\n\n", res.RunID, took.Round(time.Second), res.Dir)
	fmt.Fprintf(w, "%-28s %18s %20s\n", "training mode", "CAM mIoU (thr)", "pseudo-label mIoU")
	for _, b := range res.Branches {
		name := fmt.Sprintf("%s (%s)", modeLabel(b.Mode), b.Mode)
		fmt.Fprintf(w, "%-28s %11s (%.2f) %20s\n", name, pct(float64(b.CAMEval.MIoU)), float64(b.CAMEval.Threshold), pct(float64(b.Eval.MIoU)))
	}
	fmt.Fprintf(w, "\nsegmentation net on %s pseudo-labels: val mIoU %s (%d images)\n",
		res.SegMode, pct(float64(res.SegEval.MIoU)), res.SegEval.Images)
}

func pct(v float64) string {
	if v != v {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

// notFound reports whether err says a workflow or schedule does not exist.
func notFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// metricsFloats converts scores (NaN for a class without pixels) to floats.
func metricsFloats(m []segmetrics.Metric) []float64 {
	out := make([]float64, len(m))
	for i, v := range m {
		out[i] = float64(v)
	}
	return out
}
