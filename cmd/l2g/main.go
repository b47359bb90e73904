// Command l2g runs the L2G weakly supervised segmentation pipeline: its
// stages one by one, or all of them as a durable Temporal workflow.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/torch"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "l2g",
		Short:         "L2G local-to-global knowledge transfer for weakly supervised segmentation",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	threads := root.PersistentFlags().Int("threads", envInt("L2G_THREADS"),
		"libtorch intra-op threads (default $L2G_THREADS, else libtorch's choice: one per physical core)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if *threads > 0 {
			return torch.SetNumThreads(*threads)
		}
		return nil
	}
	// One constructor per command, each in its own file.
	root.AddCommand(
		newDatasetCmd(),
		newSaliencyCmd(),
		newEvalCmd(),
		newVersionCmd(),
		newDoctorCmd(),
		newBenchCmd(),
		newTrainCmd(),
		newCAMCmd(),
		newRunCmd(),
		newStatusCmd(),
		newRerunCmd(),
		newStageCmd(),
		newScheduleCmd(),
		newCancelCmd(),
		newSegtrainCmd(),
		newSegtestCmd(),
		newServerCmd(),
		newWorkerCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the l2g version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "l2g", version)
		},
	}
}

func envInt(key string) int {
	n, _ := strconv.Atoi(os.Getenv(key))
	return n
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "l2g:", err)
		os.Exit(1)
	}
}
