package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/l2g/l2g/internal/bench"
	"github.com/l2g/l2g/internal/torch"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks that compare l2g with Python torch"}
	var o stepBenchOpts
	step := &cobra.Command{
		Use:   "step",
		Short: "Time a conv-BN-ReLU-conv training step in Go and in Python torch; print the ratio",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchStep(cmd, o)
		},
	}
	step.Flags().IntVar(&o.threads, "threads", runtime.NumCPU(), "intra-op threads for both sides")
	step.Flags().IntVar(&o.batch, "batch", 8, "batch size")
	step.Flags().IntVar(&o.size, "size", 224, "input side")
	step.Flags().IntVar(&o.iters, "iters", 10, "timed steps per round")
	step.Flags().IntVar(&o.rounds, "rounds", 3, "alternating Go/Python rounds (medians are compared)")
	step.Flags().StringVar(&o.python, "python", "/usr/bin/python3", "Python with torch (Debian's python3-torch); empty to skip")
	step.Flags().StringVar(&o.script, "script", "scripts/bench_step.py", "the Python side")
	step.Flags().StringVar(&o.pyMalloc, "python-malloc", "same",
		"glibc allocator settings of the Python side: same (l2g's, through MALLOC_* variables: the ratio is the binding's overhead) or default (Python as usually run)")
	var steps int
	learn := &cobra.Command{
		Use:   "learn",
		Short: "Train the benchmark net briefly on random data and print the falling loss",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchLearn(cmd, steps)
		},
	}
	learn.Flags().IntVar(&steps, "steps", 40, "training steps")
	cmd.AddCommand(step, learn)
	return cmd
}

// benchLearn is the smoke test of the binding on a fresh machine: a small
// conv net fitting fixed random inputs must show a falling loss.
func benchLearn(cmd *cobra.Command, steps int) error {
	w := cmd.OutOrStdout()
	net, err := bench.NewNet(16, 0)
	if err != nil {
		return err
	}
	defer net.Close()
	s := torch.NewNoGradScope()
	defer s.Close()
	x := s.Rand([]int64{4, 3, 64, 64}, torch.Opts{})
	if err := s.Err(); err != nil {
		return err
	}
	var first, last float64
	for i := 0; i < steps; i++ {
		if err := cmd.Context().Err(); err != nil {
			return err
		}
		if last, err = net.Step(x, 0.05); err != nil {
			return err
		}
		if i == 0 {
			first = last
		}
		if i%5 == 0 || i == steps-1 {
			fmt.Fprintf(w, "step %3d  loss %.6f\n", i, last)
		}
	}
	if !(last < first) {
		return fmt.Errorf("bench learn: loss did not fall (%.6f -> %.6f)", first, last)
	}
	fmt.Fprintf(w, "loss fell from %.6f to %.6f over %d steps\n", first, last, steps)
	return nil
}

type stepBenchOpts struct {
	threads, batch, size, iters, rounds int
	python, script, pyMalloc            string
}

// glibcTunedEnv gives a Python process the allocator settings that the
// shim applies to l2g with mallopt (internal/torch/shim.cpp, tune_malloc).
var glibcTunedEnv = []string{"MALLOC_ARENA_MAX=1", "MALLOC_MMAP_MAX_=0",
	"MALLOC_TRIM_THRESHOLD_=2147483647", "MALLOC_TOP_PAD_=67108864"}

// benchStep alternates Go and Python rounds so that drift on a shared
// machine hits both sides, and reports the ratio of the median times.
func benchStep(cmd *cobra.Command, o stepBenchOpts) error {
	w := cmd.OutOrStdout()
	if o.pyMalloc != "same" && o.pyMalloc != "default" {
		return fmt.Errorf("bench: --python-malloc %q: want same or default", o.pyMalloc)
	}
	if err := torch.SetNumThreads(o.threads); err != nil {
		return err
	}
	pyEnv := os.Environ()
	pyAlloc := "glibc defaults"
	if o.pyMalloc == "same" && torch.Allocator() == "tuned" {
		pyEnv = append(pyEnv, glibcTunedEnv...)
		pyAlloc = "tuned like l2g's"
	}
	net, err := bench.NewNet(64, 0)
	if err != nil {
		return err
	}
	defer net.Close()
	s := torch.NewNoGradScope()
	defer s.Close()
	x := s.Rand([]int64{int64(o.batch), 3, int64(o.size), int64(o.size)}, torch.Opts{})
	if err := s.Err(); err != nil {
		return err
	}
	var goMs, pyMs []float64
	for r := 0; r < o.rounds; r++ {
		var times []float64
		for i := 0; i < o.iters+2; i++ {
			t0 := time.Now()
			if _, err := net.Step(x, 1e-3); err != nil {
				return err
			}
			if i >= 2 {
				times = append(times, float64(time.Since(t0).Microseconds())/1000)
			}
		}
		goMs = append(goMs, median(times))
		if ctxErr := cmd.Context().Err(); ctxErr != nil {
			return ctxErr
		}
		if o.python != "" {
			py := exec.CommandContext(cmd.Context(), o.python, o.script, strconv.Itoa(o.threads),
				strconv.Itoa(o.batch), strconv.Itoa(o.size), strconv.Itoa(o.iters), "2")
			py.Env = pyEnv
			out, err := py.Output()
			if err != nil {
				return fmt.Errorf("bench: python side (%s %s): %w", o.python, o.script, err)
			}
			var res struct {
				MS float64 `json:"ms_per_step"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				return fmt.Errorf("bench: python output %q: %w", out, err)
			}
			pyMs = append(pyMs, res.MS)
		}
	}
	g := median(goMs)
	fmt.Fprintf(w, "train step conv-BN-ReLU-conv %dx3x%dx%d, %d thread(s)\n", o.batch, o.size, o.size, o.threads)
	fmt.Fprintf(w, "go:     %8.1f ms/step (median of %d rounds × %d steps; allocator %s)\n", g, o.rounds, o.iters, torch.Allocator())
	if len(pyMs) > 0 {
		p := median(pyMs)
		fmt.Fprintf(w, "python: %8.1f ms/step (allocator: %s)\n", p, pyAlloc)
		fmt.Fprintf(w, "ratio go/python: %.3f\n", g/p)
	}
	return nil
}

func median(v []float64) float64 {
	c := slices.Clone(v)
	slices.Sort(c)
	if len(c) == 0 {
		return 0
	}
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}
