package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/workflows"
)

// newScheduleCmd is `l2g schedule`: Temporal Schedules that start full
// reproductions (a Pipeline run per firing; its id, and so its folder, is
// the schedule name plus the firing time).
func newScheduleCmd() *cobra.Command {
	var ov temporalcfg.Overrides
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Create, list, pause and delete schedules of full pipeline runs (Temporal Schedules)",
	}
	ov.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newScheduleCreateCmd(&ov), newScheduleListCmd(&ov),
		newSchedulePauseCmd(&ov, true), newSchedulePauseCmd(&ov, false), newScheduleDeleteCmd(&ov))
	return cmd
}

func newScheduleCreateCmd(ov *temporalcfg.Overrides) *cobra.Command {
	var (
		f       pipelineFlags
		cron    string
		every   time.Duration
		paused  bool
		trigger bool
		note    string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --config FILE (--cron EXPR | --every DURATION)",
		Short: "Create a schedule that runs the whole pipeline of a config",
		Long: `Creates the Temporal Schedule NAME. Each firing starts a Pipeline run with the
config as it is now (the input is stored in the schedule); a firing while the
previous run is still going is skipped. --trigger also starts one run at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := client.ScheduleSpec{}
			switch {
			case (cron == "") == (every == 0):
				return badinput.New("", "--cron", "give exactly one of --cron and --every")
			case cron != "":
				spec.CronExpressions = []string{cron}
			default:
				spec.Intervals = []client.ScheduleIntervalSpec{{Every: every}}
			}
			cfg, err := f.loadRunConfig()
			if err != nil {
				return err
			}
			runs, err := f.runsRoot()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, tcfg, err := dialTemporal(ctx, *ov)
			if err != nil {
				return err
			}
			defer c.Close()
			in, err := pipelineInput(cfg, runs, tcfg)
			if err != nil {
				return err
			}
			if note == "" {
				note = "l2g run --config " + f.config
			}
			_, err = c.ScheduleClient().Create(ctx, client.ScheduleOptions{
				ID:   args[0],
				Spec: spec,
				Action: &client.ScheduleWorkflowAction{
					ID: args[0], Workflow: workflows.Pipeline, Args: []any{in}, TaskQueue: tcfg.TaskQueues.CPU.Name,
				},
				Overlap:            enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
				Paused:             paused,
				TriggerImmediately: trigger,
				Note:               note,
			})
			if err != nil {
				return fmt.Errorf("create schedule %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s created: runs go to %s/%s-<time>\n", args[0], runs, args[0])
			return nil
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&cron, "cron", "", `cron expression, e.g. "0 3 * * 0" (Sundays 03:00 UTC)`)
	cmd.Flags().DurationVar(&every, "every", 0, "interval between runs, e.g. 24h")
	cmd.Flags().BoolVar(&paused, "paused", false, "create the schedule paused")
	cmd.Flags().BoolVar(&trigger, "trigger", false, "also start one run now")
	cmd.Flags().StringVar(&note, "note", "", "note shown by list")
	return cmd
}

func newScheduleListCmd(ov *temporalcfg.Overrides) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the schedules with their state, next firing and recent runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, _, err := dialTemporal(ctx, *ov)
			if err != nil {
				return err
			}
			defer c.Close()
			return listSchedules(ctx, c, cmd.OutOrStdout())
		},
	}
}

func listSchedules(ctx context.Context, c client.Client, out io.Writer) error {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tSPEC\tNEXT\tRECENT RUNS\tNOTE")
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		state := "active"
		if e.Paused {
			state = "paused"
		}
		next := "-"
		if len(e.NextActionTimes) > 0 {
			next = e.NextActionTimes[0].Local().Format("2006-01-02 15:04")
		}
		var recent []string
		for _, a := range e.RecentActions {
			if a.StartWorkflowResult != nil {
				recent = append(recent, a.StartWorkflowResult.WorkflowID)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, state, specText(e.Spec), next, strings.Join(recent, " "), e.Note)
	}
	return tw.Flush()
}

func specText(s *client.ScheduleSpec) string {
	if s == nil {
		return "-"
	}
	var parts []string
	parts = append(parts, s.CronExpressions...)
	for _, iv := range s.Intervals {
		parts = append(parts, "every "+iv.Every.String())
	}
	if len(parts) == 0 && len(s.Calendars) > 0 {
		parts = append(parts, fmt.Sprintf("%d calendar specs", len(s.Calendars)))
	}
	return strings.Join(parts, "; ")
}

func newSchedulePauseCmd(ov *temporalcfg.Overrides, pause bool) *cobra.Command {
	var note string
	use, short := "pause NAME", "Pause a schedule: no more runs until unpause"
	if !pause {
		use, short = "unpause NAME", "Resume a paused schedule"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, _, err := dialTemporal(ctx, *ov)
			if err != nil {
				return err
			}
			defer c.Close()
			h := c.ScheduleClient().GetHandle(ctx, args[0])
			if pause {
				err = h.Pause(ctx, client.SchedulePauseOptions{Note: note})
			} else {
				err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
			}
			if err != nil {
				return fmt.Errorf("schedule %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s %sd\n", args[0], strings.Fields(use)[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why (shown by list)")
	return cmd
}

func newScheduleDeleteCmd(ov *temporalcfg.Overrides) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a schedule (its runs and their folders stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, _, err := dialTemporal(ctx, *ov)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.ScheduleClient().GetHandle(ctx, args[0]).Delete(ctx); err != nil {
				return fmt.Errorf("delete schedule %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s deleted\n", args[0])
			return nil
		},
	}
}
