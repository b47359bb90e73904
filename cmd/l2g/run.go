package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/workflows"
)

func newRunCmd() *cobra.Command {
	var (
		f      pipelineFlags
		ov     temporalcfg.Overrides
		id     string
		detach bool
		local  bool
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:   "run --config FILE [--data DIR]",
		Short: "Run the whole pipeline as a durable Temporal workflow and show its progress",
		Long: `Starts the Pipeline workflow for a pipeline config (configs/pipeline/*.yaml):
saliency, then for every training mode of the config train, cam, cam_eval,
pseudolabel and evaluate side by side, then segtrain and its evaluation. The
run's artifacts go to RUNS/<run id>/<stage>/ with a manifest per stage; a
stage whose inputs hash to an existing manifest is skipped.

Workers (l2g worker) run the stages; --local starts the embedded server (unless
one answers) and a worker for the length of the run. The command follows the
run with a progress bar per running stage and prints the comparison table at
the end; Ctrl-C stops following (with --local it also stops the worker and the
server: the run continues when they are started again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHandler(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, ov, id, detach, local, quiet)
		},
	}
	f.add(cmd.Flags())
	ov.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&id, "id", "", "run id (the workflow id and folder name; default <config name>-<UTC time>)")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the run and return")
	cmd.Flags().BoolVar(&local, "local", false, "start the embedded server (unless one answers) and a worker for this run")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress display")
	return cmd
}

func runHandler(ctx context.Context, out, msg io.Writer, f pipelineFlags, ov temporalcfg.Overrides, id string, detach, local, quiet bool) error {
	cfg, err := f.loadRunConfig()
	if err != nil {
		return err
	}
	runs, err := f.runsRoot()
	if err != nil {
		return err
	}
	tcfg, err := temporalcfg.Load(ov, os.LookupEnv)
	if err != nil {
		return err
	}
	in, err := pipelineInput(cfg, runs, tcfg)
	if err != nil {
		return err
	}
	if id == "" {
		id = newRunID(cfg.Name)
	}
	if local {
		if detach {
			return errors.New("--local and --detach: the local worker stops when this command ends")
		}
		stack, err := startLocal(ctx, ov, tcfg, filepath.Join(runs, id, "worker.log"), msg)
		if err != nil {
			return err
		}
		defer stack.stop()
	}
	c, err := temporalcfg.Dial(ctx, tcfg.Connection, quietLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := startPipeline(ctx, c, tcfg, id, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(msg, "started run %s: %s\n", id, filepath.Join(runs, id))
	if detach {
		fmt.Fprintf(out, "%s\nfollow it with `l2g status %s`, stop it with `l2g cancel %s`\n", id, id, id)
		return nil
	}
	return waitRun(ctx, c, run, in, out, msg, quiet, local)
}

// waitRun follows a started run to its end and prints the table.
func waitRun(ctx context.Context, c client.Client, run client.WorkflowRun, in workflows.PipelineInput, out, msg io.Writer, quiet, local bool) error {
	start := time.Now()
	id := run.GetID()
	fctx, stopFollow := context.WithCancel(ctx)
	done := make(chan error, 1)
	var res workflows.PipelineResult
	go func() {
		done <- run.Get(ctx, &res)
		stopFollow()
	}()
	if !quiet {
		_ = follow(fctx, c, id, newRunView(msg), time.Second)
	}
	err := <-done
	stopFollow()
	if ctx.Err() != nil {
		if local {
			fmt.Fprintf(msg, "\ninterrupted: the run %s is paused with the local worker and server; `l2g run --local` starts a new run, `l2g worker` resumes this one\n", id)
		} else {
			fmt.Fprintf(msg, "\nstopped following; the run %s continues: `l2g status %s`, `l2g cancel %s`\n", id, id, id)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("run %s failed: %s", id, failureText(err))
	}
	took := time.Since(start)
	printResult(out, res, took)
	path, err := writeReport(ctx, in, res, took)
	if err != nil {
		return fmt.Errorf("run %s finished, but its report: %w", id, err)
	}
	fmt.Fprintf(out, "\nreport: %s\n", path)
	return nil
}

// failureText shortens a workflow failure to the failing stage and its
// message: the chain the server returns repeats every cause.
func failureText(err error) string {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return err.Error()
	}
	text := app.Message()
	if t := app.Type(); t != "" {
		text += " [" + t + "]"
	}
	var cause *temporal.ApplicationError
	if errors.As(app.Unwrap(), &cause) {
		text += ": " + cause.Message()
	}
	return text
}
