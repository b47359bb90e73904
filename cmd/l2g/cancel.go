package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/temporalcfg"
)

func newCancelCmd() *cobra.Command {
	var ov temporalcfg.Overrides
	cmd := &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a run: its running stages stop (training writes a checkpoint) and it ends as canceled",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, _, err := dialTemporal(ctx, ov)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.CancelWorkflow(ctx, args[0], ""); err != nil {
				return fmt.Errorf("cancel run %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cancellation requested for run %s; `l2g status %s` shows when its stages have stopped\n", args[0], args[0])
			return nil
		},
	}
	ov.AddFlags(cmd.Flags())
	return cmd
}
