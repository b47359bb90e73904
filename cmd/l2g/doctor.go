package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/temporalcfg"
	"github.com/l2g/l2g/internal/temporalserver"
	"github.com/l2g/l2g/internal/torch"
)

func newDoctorCmd() *cobra.Command {
	var ov temporalcfg.Overrides
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check libtorch, BLAS, threads, GPUs and the embedded Temporal defaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return doctor(cmd.OutOrStdout(), ov)
		},
	}
	ov.AddFlags(cmd.Flags())
	return cmd
}

// doctor prints one line per check, with a remedy for each problem, and
// fails when a check that blocks the pipeline fails.
func doctor(w io.Writer, ov temporalcfg.Overrides) error {
	problems := 0
	line := func(ok bool, what, detail, remedy string) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			problems++
		}
		fmt.Fprintf(w, "%s %-16s %s\n", mark, what, detail)
		if !ok && remedy != "" {
			fmt.Fprintf(w, "     %-16s -> %s\n", "", remedy)
		}
	}
	warn := func(what, detail, remedy string) {
		fmt.Fprintf(w, "warn %-16s %s\n     %-16s -> %s\n", what, detail, "", remedy)
	}

	v, err := torch.Version()
	line(err == nil, "libtorch", v+errText(err), "install libtorch-dev (apt-get install libtorch-dev) or rebuild with LIBTORCH=/path (see README)")
	n, err := torch.NumThreads()
	line(err == nil, "threads", fmt.Sprintf("%d intra-op threads on %d CPUs%s", n, runtime.NumCPU(), errText(err)), "")
	if info, err := torch.ParallelInfo(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if strings.Contains(l, "backend") {
				fmt.Fprintf(w, "     %-16s %s\n", "", strings.TrimSpace(l))
			}
		}
	}
	gpus, err := torch.CUDADeviceCount()
	switch {
	case err != nil:
		line(false, "cuda", err.Error(), "")
	case gpus == 0:
		fmt.Fprintf(w, "ok   %-16s not available (CPU build or no GPU): stages run on the CPU\n", "cuda")
	default:
		fmt.Fprintf(w, "ok   %-16s %d device(s)\n", "cuda", gpus)
	}
	blas, ref, err := torch.BLAS()
	switch {
	case err != nil:
		fmt.Fprintf(w, "ok   %-16s %v\n", "blas", err)
	case ref:
		warn("blas", blas+" is netlib's reference BLAS (training ~6x slower)",
			"apt-get install libopenblas0-pthread (it takes over libblas.so.3 through Debian's alternatives)")
	default:
		fmt.Fprintf(w, "ok   %-16s %s\n", "blas", blas)
	}
	if v := os.Getenv("L2G_MALLOC"); v != "" && v != "system" {
		warn("L2G_MALLOC", fmt.Sprintf("%q is not a known value: the tuned allocator is in use", v),
			"unset it, or set L2G_MALLOC=system for glibc's defaults")
	}
	switch a := torch.Allocator(); a {
	case "tuned":
		fmt.Fprintf(w, "ok   %-16s tuned: freed tensor memory stays in the heap (L2G_MALLOC=system for glibc's defaults)\n", "allocator")
	case "system":
		warn("allocator", "glibc defaults: large tensors are mmapped and page-faulted anew every step (up to ~10x slower training)",
			"unset L2G_MALLOC (l2g tunes glibc's allocator unless L2G_MALLOC=system)")
	default:
		fmt.Fprintf(w, "ok   %-16s %s (not glibc)\n", "allocator", a)
	}

	cfg, err := temporalcfg.Load(ov, os.LookupEnv)
	if err != nil {
		line(false, "temporal.yaml", err.Error(), "fix the named field")
	} else if !cfg.Connection.Embedded() {
		fmt.Fprintf(w, "ok   %-16s external cluster %s (namespace %s): embedded server not used\n", "temporal", cfg.Connection.Address, cfg.Connection.Namespace)
	} else {
		for _, f := range temporalserver.Check(temporalserver.OptionsFromConfig(cfg, slog.New(slog.DiscardHandler))) {
			line(f.OK, f.Check, f.Detail, f.Remedy)
		}
	}
	if problems > 0 {
		return fmt.Errorf("doctor: %d problem(s)", problems)
	}
	return nil
}

func errText(err error) string {
	if err != nil {
		return " (" + err.Error() + ")"
	}
	return ""
}
