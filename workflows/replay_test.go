package workflows

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// historyFile is a Pipeline run of test/integration/testdata/tiny.yaml
// recorded on a real server (TestRerunFromCAM with L2G_RECORD_HISTORY), from
// before the segtrain-early change (GetVersion "segtrain-early").
const historyFile = "testdata/pipeline_history.json"

// TestReplayRecordedHistory replays the recorded run with today's
// Pipeline: a change that is not behind workflow.GetVersion fails here.
func TestReplayRecordedHistory(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(Pipeline)
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, historyFile); err != nil {
		t.Fatal(err)
	}
}

// TestReplayCatchesReordering: the same history against a Pipeline that
// schedules its branches in another order must fail, so the replay test
// above can catch a nondeterministic change.
func TestReplayCatchesReordering(t *testing.T) {
	reordered := func(ctx workflow.Context, in PipelineInput) (PipelineResult, error) {
		m := in.Config.Modes
		for i, j := 0, len(m)-1; i < j; i, j = i+1, j-1 {
			m[i], m[j] = m[j], m[i]
		}
		return Pipeline(ctx, in)
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(reordered, workflow.RegisterOptions{Name: "Pipeline"})
	err := r.ReplayWorkflowHistoryFromJSONFile(nil, historyFile)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "nondetermin") {
		t.Fatalf("replay of a reordered Pipeline: %v, want a nondeterminism error", err)
	}
}
