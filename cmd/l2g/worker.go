package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/internal/workers"
)

func newWorkerCmd() *cobra.Command {
	var (
		ov     temporalcfg.Overrides
		queues string
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Poll the gpu and/or cpu task queues and run the stages' activities until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return workerHandler(cmd.Context(), ov, queues)
		},
	}
	ov.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&queues, "queues", "gpu,cpu", "task queue kinds to poll (gpu, cpu or gpu,cpu); names and limits come from task_queues in temporal.yaml")
	return cmd
}

// workerHandler dials the configured server and runs the workers of the
// given queue kinds until ctx ends (main cancels it on SIGINT and SIGTERM).
func workerHandler(ctx context.Context, ov temporalcfg.Overrides, queues string) error {
	kinds, err := workers.ParseKinds(queues)
	if err != nil {
		return err
	}
	regs, err := pipelineRegistrations()
	if err != nil {
		return err
	}
	if err := regs.Check(kinds); err != nil {
		return err
	}
	cfg, err := temporalcfg.Load(ov, os.LookupEnv)
	if err != nil {
		return err
	}
	c, err := temporalcfg.Dial(ctx, cfg.Connection, slog.Default())
	if err != nil {
		return err
	}
	defer c.Close()
	return workers.Run(ctx, c, cfg.TaskQueues, kinds, regs, slog.Default())
}
