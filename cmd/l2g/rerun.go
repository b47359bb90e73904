package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/workflows"
)

func newRerunCmd() *cobra.Command {
	var (
		f      pipelineFlags
		ov     temporalcfg.Overrides
		from   string
		id     string
		detach bool
		local  bool
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:   "rerun RUN --from STAGE",
		Short: "Start a new run that reuses RUN's artifacts before STAGE and recomputes STAGE and everything after it",
		Long: `Starts a new Pipeline run with RUN's input (or --config, to change the later
stages' settings): the stages before --from find RUN's manifests by their input
hashes and reuse its artifacts; --from and every later stage run again.
STAGE is one of ` + strings.Join(temporalcfg.StageNames(), ", ") + `.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rerunHandler(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, ov, args[0], from, id, detach, local, quiet)
		},
	}
	cmd.Flags().StringVar(&f.config, "config", "", "pipeline config for the new run (default: RUN's)")
	cmd.Flags().StringVar(&f.data, "data", "", "dataset root with --config (default: RUN's)")
	f.addRuns(cmd.Flags()) // where --local writes the worker log
	ov.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&from, "from", "", "first stage to recompute")
	cmd.Flags().StringVar(&id, "id", "", "id of the new run (default RUN-rerun-<UTC time>)")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the run and return")
	cmd.Flags().BoolVar(&local, "local", false, "start the embedded server (unless one answers) and a worker for this run")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress display")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func rerunHandler(ctx context.Context, out, msg io.Writer, f pipelineFlags, ov temporalcfg.Overrides, old, from, id string, detach, local, quiet bool) error {
	if err := workflows.ValidateFrom(from); err != nil {
		return badinput.Wrap("", "--from", err)
	}
	tcfg, err := temporalcfg.Load(ov, nil)
	if err != nil {
		return err
	}
	if id == "" {
		id = newRunID(old + "-rerun")
	}
	if local {
		if detach {
			return fmt.Errorf("--local and --detach: the local worker stops when this command ends")
		}
		runs, err := f.runsRoot()
		if err != nil {
			return err
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
	in, err := runInput(ctx, c, old)
	if err != nil {
		return err
	}
	if f.config != "" {
		cfg, err := f.loadRunConfig()
		if err != nil {
			return err
		}
		in.Config = cfg
	}
	// Activity options are today's temporal.yaml, not the old run's.
	if in.Activities, err = tcfg.Activities(); err != nil {
		return err
	}
	in.From, in.RerunOf = from, old
	run, err := startPipeline(ctx, c, tcfg, id, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(msg, "started run %s from %s, reusing %s's artifacts before %s: %s/%s\n", id, from, old, from, in.RunsRoot, id)
	if detach {
		fmt.Fprintln(out, id)
		return nil
	}
	return waitRun(ctx, c, run, in, out, msg, quiet, local)
}

// runInput reads a run's workflow input from the first event of its
// history.
func runInput(ctx context.Context, c client.Client, id string) (workflows.PipelineInput, error) {
	var in workflows.PipelineInput
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return in, fmt.Errorf("run %s: no history", id)
	}
	ev, err := it.Next()
	if err != nil {
		return in, fmt.Errorf("run %s: %w", id, err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil || attrs.GetWorkflowType().GetName() != "Pipeline" {
		return in, fmt.Errorf("run %s is not a Pipeline run", id)
	}
	if err := converter.GetDefaultDataConverter().FromPayloads(attrs.GetInput(), &in); err != nil {
		return in, fmt.Errorf("run %s: input: %w", id, err)
	}
	return in, nil
}
