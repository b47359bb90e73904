// Package workers runs the l2g worker process: one Temporal SDK worker per
// task queue kind (gpu, cpu), each limited as temporal.yaml says. What each
// worker runs comes from Registrations, which cmd/l2g fills as stages land.
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/l2g/l2g/internal/temporalcfg"
)

// Register adds a queue's workflows and activities to its worker.
type Register func(r worker.Registry)

// Registrations maps queue kinds (temporalcfg.QueueGPU, QueueCPU) to what
// their workers run.
type Registrations map[string]Register

// Check reports the kinds that have nothing registered.
func (r Registrations) Check(kinds []string) error {
	var missing []string
	for _, k := range kinds {
		if r[k] == nil {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("nothing is registered for the %s task queue",
			strings.Join(missing, ", "))
	}
	return nil
}

// ParseKinds parses a --queues value such as "gpu,cpu".
func ParseKinds(s string) ([]string, error) {
	var kinds []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if !slices.Contains(temporalcfg.QueueKinds(), k) {
			return nil, fmt.Errorf("--queues: unknown queue %q (want %s)", k, strings.Join(temporalcfg.QueueKinds(), ", "))
		}
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("--queues: no queue given (want %s)", strings.Join(temporalcfg.QueueKinds(), ", "))
	}
	return kinds, nil
}

// Run starts one worker per kind on c, polls until ctx ends, then stops them
// (each Stop waits for running activities to see cancellation). A worker's
// fatal error, such as its namespace disappearing, stops all and is returned.
func Run(ctx context.Context, c client.Client, queues temporalcfg.TaskQueues, kinds []string, regs Registrations, logger *slog.Logger) error {
	if err := regs.Check(kinds); err != nil {
		return err
	}
	if logger == nil {
		logger = slog.Default()
	}
	fatal := make(chan error, len(kinds))
	var started []worker.Worker
	stopAll := func() {
		for _, w := range slices.Backward(started) {
			w.Stop()
		}
	}
	for _, kind := range kinds {
		q, ok := queues.Get(kind)
		if !ok {
			stopAll()
			return fmt.Errorf("workers: unknown queue kind %q", kind)
		}
		w := worker.New(c, q.Name, worker.Options{
			MaxConcurrentActivityExecutionSize: q.MaxConcurrentActivities,
			OnFatalError: func(err error) {
				fatal <- fmt.Errorf("worker for %s queue %s: %w", kind, q.Name, err)
			},
		})
		regs[kind](w)
		if err := w.Start(); err != nil {
			stopAll()
			return fmt.Errorf("workers: start %s queue %s: %w", kind, q.Name, err)
		}
		started = append(started, w)
		logger.Info("worker polling", "queue", q.Name, "kind", kind, "max_concurrent_activities", q.MaxConcurrentActivities)
	}
	select {
	case <-ctx.Done():
		stopAll()
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil // an interrupt is the normal way to stop a worker
		}
		return ctx.Err()
	case err := <-fatal:
		stopAll()
		return err
	}
}
