package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/internal/temporalserver"
)

func newServerCmd() *cobra.Command {
	var (
		ov       temporalcfg.Overrides
		noUI     bool
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the embedded Temporal server (history in SQLite under the state dir) until interrupted",
		Long: `Run a Temporal server inside this process, with the frontend, history, matching
and worker services, the Web UI, and workflow history in a SQLite file under
the state directory, so that runs survive restarts. Settings come from
server.embedded in temporal.yaml. Stop it with Ctrl-C or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			return serverHandler(cmd.Context(), cmd.OutOrStdout(), ov, !noUI, level)
		},
	}
	ov.AddServerFlags(cmd.Flags())
	cmd.Flags().BoolVar(&noUI, "no-ui", false, "do not serve the Web UI (overrides server.embedded.ui)")
	cmd.Flags().StringVar(&logLevel, "log-level", "error", "server log level: debug, info, warn or error")
	return cmd
}

// serverHandler starts the server, prints where it is, and stops it when
// ctx ends (main cancels it on SIGINT and SIGTERM).
func serverHandler(ctx context.Context, out io.Writer, ov temporalcfg.Overrides, ui bool, level slog.Level) error {
	cfg, err := temporalcfg.Load(ov, os.LookupEnv)
	if err != nil {
		return err
	}
	opts := temporalserver.OptionsFromConfig(cfg, slog.Default())
	opts.UI = opts.UI && ui
	opts.LogLevel = level

	start := time.Now()
	srv, err := temporalserver.Start(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Temporal server at %s (namespaces %s), started in %.1fs\n",
		srv.Address(), strings.Join(srv.Namespaces(), ", "), time.Since(start).Seconds())
	fmt.Fprintf(out, "History in %s\n", srv.DBPath())
	if u := srv.UIURL(); u != "" {
		fmt.Fprintf(out, "Web UI at %s\n", u)
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop.")

	<-ctx.Done()
	fmt.Fprintln(out, "Stopping the Temporal server...")
	return srv.Stop()
}
