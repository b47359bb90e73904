package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/temporalcfg"
)

func newStatusCmd() *cobra.Command {
	var (
		ov     temporalcfg.Overrides
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status RUN",
		Short: "Show a run's stages: state, progress of the running ones (last heartbeat), metrics",
		Long: `Asks the run's Pipeline workflow for its status (a workflow query, answered by a
worker on the cpu queue; a finished run is shown from its result) and the server
for its running activities' last heartbeats: iteration, losses, checkpoint.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return statusHandler(cmd.Context(), cmd.OutOrStdout(), ov, args[0], asJSON)
		},
	}
	ov.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func statusHandler(ctx context.Context, out io.Writer, ov temporalcfg.Overrides, id string, asJSON bool) error {
	c, _, err := dialTemporal(ctx, ov)
	if err != nil {
		return err
	}
	defer c.Close()
	snap, err := fetchSnapshot(ctx, c, id)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(snap)
	}
	st := snap.Status
	fmt.Fprintf(out, "run %s: %s", id, st.State)
	if !st.Started.IsZero() {
		fmt.Fprintf(out, " (started %s", st.Started.Local().Format("2006-01-02 15:04:05"))
		if !st.Finished.IsZero() {
			fmt.Fprintf(out, ", took %s", st.Finished.Sub(st.Started).Round(1e9))
		}
		fmt.Fprint(out, ")")
	}
	fmt.Fprintln(out)
	if st.Dir != "" {
		fmt.Fprintf(out, "folder %s\n", st.Dir)
	}
	if st.Error != "" {
		fmt.Fprintf(out, "error: %s\n", st.Error)
	}
	for _, ls := range snap.Stages {
		fmt.Fprintln(out, stageLine(ls))
		if ls.Progress != nil && ls.Progress.Checkpoint != "" && ls.State == "running" {
			fmt.Fprintf(out, "%-24s %-9s checkpoint %s\n", "", "", ls.Progress.Checkpoint)
		}
	}
	return nil
}
