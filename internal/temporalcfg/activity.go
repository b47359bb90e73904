package temporalcfg

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ActivityOptions are one stage's options resolved by the CLI. They travel
// in the workflow input (JSON), so the workflow never reads a file.
type ActivityOptions struct {
	TaskQueue string `json:"task_queue"`
	StageOptions
}

// Activity resolves the options of stage, including the task queue it runs on.
func (c *Config) Activity(stage string) (ActivityOptions, error) {
	opts, ok := c.Stages.Get(stage)
	if !ok {
		return ActivityOptions{}, fmt.Errorf("temporal config: unknown stage %q", stage)
	}
	for _, kind := range QueueKinds() {
		q, _ := c.TaskQueues.Get(kind)
		for _, s := range q.Stages {
			if s == stage {
				return ActivityOptions{TaskQueue: q.Name, StageOptions: opts}, nil
			}
		}
	}
	return ActivityOptions{}, fmt.Errorf("temporal config: stage %q is on no task queue", stage)
}

// Activities resolves every stage, keyed by stage name.
func (c *Config) Activities() (map[string]ActivityOptions, error) {
	out := make(map[string]ActivityOptions, len(StageNames()))
	for _, s := range StageNames() {
		a, err := c.Activity(s)
		if err != nil {
			return nil, err
		}
		out[s] = a
	}
	return out, nil
}

// Workflow converts to the SDK form for workflow.WithActivityOptions.
func (o ActivityOptions) Workflow() workflow.ActivityOptions {
	r := o.Retry
	return workflow.ActivityOptions{
		TaskQueue:           o.TaskQueue,
		StartToCloseTimeout: o.StartToCloseTimeout,
		HeartbeatTimeout:    o.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        r.InitialInterval,
			BackoffCoefficient:     r.BackoffCoefficient,
			MaximumInterval:        r.MaximumInterval,
			MaximumAttempts:        r.MaximumAttempts,
			NonRetryableErrorTypes: append([]string(nil), r.NonRetryableErrorTypes...),
		},
	}
}
