package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/activities"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/stages/train"
	"github.com/l2g/l2g/workflows"
)

func newStageCmd() *cobra.Command {
	var (
		f     pipelineFlags
		runID string
		force bool
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "stage NAME --config FILE --run ID",
		Short: "Run one stage of a run directly, without Temporal, from the manifests of its upstream stages",
		Long: `Runs one stage instance as the Pipeline workflow would, in this process and
without Temporal: NAME is a stage as l2g status lists it (saliency, train-l2g,
cam-l2g, cam_eval-l2g, pseudolabel-l2g, evaluate-l2g, segtrain, evaluate-seg;
the branch stages take a mode of the config). Its inputs are the results in the
manifests of its upstream stages in RUNS/ID; it writes RUNS/ID/NAME with a
manifest, and is skipped when a manifest with the same input hash exists
(--force runs it anyway).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return stageHandler(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, runID, args[0], force, quiet)
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&runID, "run", "", "run id: the folder under --runs")
	cmd.Flags().BoolVar(&force, "force", false, "run even when a manifest matches the inputs")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	_ = cmd.MarkFlagRequired("run")
	return cmd
}

func stageHandler(ctx context.Context, out, msg io.Writer, f pipelineFlags, runID, name string, force, quiet bool) error {
	cfg, err := f.loadRunConfig()
	if err != nil {
		return err
	}
	runs, err := f.runsRoot()
	if err != nil {
		return err
	}
	plan := workflows.Plan{
		In:  workflows.PipelineInput{RunsRoot: runs, Config: cfg},
		Run: activities.Run{ID: runID, Root: runs},
	}
	var opts activities.Options
	bar := &trainBar{w: msg}
	if !quiet {
		opts.Progress = bar.report
	}
	a := activities.New(opts)
	res, err := runStage(ctx, a, plan, name, force)
	bar.finish()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// runStage builds stage name's request from its upstream manifests and runs
// its activity.
func runStage(ctx context.Context, a *activities.Activities, plan workflows.Plan, name string, force bool) (any, error) {
	cfg := plan.In.Config
	dir := plan.Run.Dir()
	forced := func(s activities.Stage) activities.Stage { s.Force = force; return s }
	saliency := func() (*activities.SaliencyResult, error) {
		if !cfg.NeedsSaliency() {
			return nil, nil
		}
		var r activities.SaliencyResult
		return &r, upstreamResult(dir, workflows.NameSaliency, &r)
	}
	switch name {
	case workflows.NameSaliency:
		req := plan.Saliency()
		req.Stage = forced(req.Stage)
		return a.Saliency(ctx, req)
	case workflows.NameSegTrain:
		var pl activities.PseudolabelResult
		if err := upstreamResult(dir, workflows.BranchName(temporalcfg.StagePseudolabel, string(cfg.SegMode)), &pl); err != nil {
			return nil, err
		}
		req := plan.SegTrain(pl)
		req.Stage = forced(req.Stage)
		return a.SegTrain(ctx, req)
	case workflows.NameSegEval:
		var seg activities.SegTrainResult
		if err := upstreamResult(dir, workflows.NameSegTrain, &seg); err != nil {
			return nil, err
		}
		req := plan.SegEval(seg)
		req.Stage = forced(req.Stage)
		return a.Evaluate(ctx, req)
	}
	kind, mode := branchOf(name)
	i := slices.IndexFunc(cfg.Modes, func(m train.Mode) bool { return string(m) == mode })
	if kind == "" || i < 0 {
		return nil, badinput.New("", "NAME", "%q is not a stage of this config (saliency, segtrain, evaluate-seg, or <%s>-<mode> with a mode of %v)",
			name, strings.Join(workflows.BranchKinds(), "|"), cfg.Modes)
	}
	sal, err := saliency()
	if err != nil {
		return nil, err
	}
	switch kind {
	case temporalcfg.StageTrain:
		req := plan.Train(i, sal)
		req.Stage = forced(req.Stage)
		return a.Train(ctx, req)
	case temporalcfg.StageCAM:
		var tr activities.TrainResult
		if err := upstreamResult(dir, workflows.BranchName(temporalcfg.StageTrain, mode), &tr); err != nil {
			return nil, err
		}
		req := plan.CAM(i, tr)
		req.Stage = forced(req.Stage)
		return a.CAM(ctx, req)
	case temporalcfg.StageCAMEval, temporalcfg.StagePseudolabel:
		var cm activities.CAMResult
		if err := upstreamResult(dir, workflows.BranchName(temporalcfg.StageCAM, mode), &cm); err != nil {
			return nil, err
		}
		if kind == temporalcfg.StageCAMEval {
			req := plan.CAMEval(i, cm, sal)
			req.Stage = forced(req.Stage)
			return a.CAMEval(ctx, req)
		}
		req := plan.Pseudolabel(i, cm, sal)
		req.Stage = forced(req.Stage)
		return a.Pseudolabel(ctx, req)
	default: // evaluate
		var pl activities.PseudolabelResult
		if err := upstreamResult(dir, workflows.BranchName(temporalcfg.StagePseudolabel, mode), &pl); err != nil {
			return nil, err
		}
		req := plan.LabelEval(i, pl)
		req.Stage = forced(req.Stage)
		return a.Evaluate(ctx, req)
	}
}

// branchOf splits "cam_eval-l2g-shape" into its kind and mode.
func branchOf(name string) (kind, mode string) {
	for _, k := range workflows.BranchKinds() {
		if m, ok := strings.CutPrefix(name, k+"-"); ok && m != "" {
			return k, m
		}
	}
	return "", ""
}

// upstreamResult decodes the result recorded in a stage's manifest.
func upstreamResult(runDir, stage string, dst any) error {
	path := filepath.Join(runDir, stage, activities.ManifestFile)
	m, err := activities.ReadManifest(path)
	if err != nil {
		return badinput.Wrap(path, "", fmt.Errorf("upstream stage %s has not finished in this run (run it first): %w", stage, err))
	}
	if err := json.Unmarshal(m.Result, dst); err != nil {
		return badinput.Wrap(path, "result", err)
	}
	return nil
}
