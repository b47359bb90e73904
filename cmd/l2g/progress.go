package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"golang.org/x/term"

	"github.com/l2g/l2g/stages"
	"github.com/l2g/l2g/workflows"
)

// liveStage is one stage as l2g status and the run view show it: the
// workflow's record plus, while it runs, its activity's last heartbeat.
type liveStage struct {
	workflows.StageStatus
	Progress *stages.Progress `json:"progress,omitempty"`
	Attempt  int32            `json:"attempt,omitempty"`
	// Started is false while the activity waits for a worker.
	Running     bool   `json:"running,omitempty"`
	LastFailure string `json:"last_failure,omitempty"`
}

// snapshot is the state of a run: the status query (or the final status in
// the result of a closed run) and the pending activities.
type snapshot struct {
	Status workflows.Status `json:"status"`
	Stages []liveStage      `json:"stages"`
	Closed bool             `json:"closed"`
}

// fetchSnapshot asks the server about run id. The status query needs a
// worker on the CPU queue; a closed run falls back to its result.
func fetchSnapshot(ctx context.Context, c client.Client, id string) (snapshot, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return snapshot{}, fmt.Errorf("run %s: %w", id, err)
	}
	var snap snapshot
	info := desc.GetWorkflowExecutionInfo()
	snap.Closed = info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	v, qerr := c.QueryWorkflow(qctx, id, "", workflows.QueryStatus)
	cancel()
	if qerr == nil {
		qerr = v.Get(&snap.Status)
	}
	if qerr != nil {
		if !snap.Closed {
			return snapshot{}, fmt.Errorf("run %s: status query (is an `l2g worker` polling the cpu queue?): %w", id, qerr)
		}
		var res workflows.PipelineResult
		if err := c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
			// A failed run has no result; show what the server knows.
			snap.Status = workflows.Status{RunID: id, State: strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")), Error: err.Error()}
		} else {
			snap.Status = res.Status
		}
	}
	pending := map[string]liveStage{}
	dc := converter.GetDefaultDataConverter()
	for _, pa := range desc.GetPendingActivities() {
		ls := liveStage{Attempt: pa.GetAttempt(), Running: pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED}
		if f := pa.GetLastFailure(); f != nil {
			ls.LastFailure = f.GetMessage()
		}
		if d := pa.GetHeartbeatDetails(); d != nil {
			var p stages.Progress
			if dc.FromPayloads(d, &p) == nil {
				ls.Progress = &p
			}
		}
		pending[pa.GetActivityId()] = ls
	}
	for _, st := range snap.Status.Stages {
		ls := pending[st.Name]
		ls.StageStatus = st
		snap.Stages = append(snap.Stages, ls)
	}
	return snap, nil
}

// progressLine renders a running stage: a bar, the count, losses, speed
// and ETA from its last heartbeat.
func progressLine(ls liveStage, width int) string {
	p := ls.Progress
	if !ls.Running {
		return "waiting for a worker"
	}
	if p == nil || p.Total == 0 {
		if p != nil && p.Message != "" {
			return p.Message
		}
		return "started"
	}
	done := min(width, width*p.Iteration/p.Total)
	var b strings.Builder
	if p.Message != "" && len(p.Losses) == 0 {
		b.WriteString(p.Message + " ")
	}
	fmt.Fprintf(&b, "[%s%s] %d/%d", strings.Repeat("#", done), strings.Repeat(".", width-done), p.Iteration, p.Total)
	names := make([]string, 0, len(p.Losses))
	for k := range p.Losses {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, " %s %.3f", k, p.Losses[k])
	}
	if p.ItemsPerS > 0 {
		fmt.Fprintf(&b, " %.1f/s", p.ItemsPerS)
	}
	if p.ETASeconds > 0 {
		fmt.Fprintf(&b, " ETA %s", fmtSeconds(p.ETASeconds))
	}
	if ls.Attempt > 1 {
		fmt.Fprintf(&b, " (attempt %d)", ls.Attempt)
	}
	return b.String()
}

// metricsText renders a stage's headline numbers, sorted by name.
func metricsText(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		v := m[k]
		if v == float64(int64(v)) && (k == "iterations" || k == "images" || k == "maps") {
			parts[i] = fmt.Sprintf("%s %d", k, int64(v))
		} else {
			parts[i] = fmt.Sprintf("%s %.4g", k, v)
		}
	}
	return strings.Join(parts, ", ")
}

// stageLine is one row of the run view and of l2g status.
func stageLine(ls liveStage) string {
	detail := ""
	switch ls.State {
	case workflows.StateRunning:
		detail = progressLine(ls, 20)
	case workflows.StateDone, workflows.StateSkipped:
		detail = metricsText(ls.Metrics)
		if ls.ReusedFrom != "" {
			detail += " (reused " + ls.ReusedFrom + ")"
		}
	case workflows.StateFailed:
		detail = ls.Error
	}
	if ls.LastFailure != "" && ls.State == workflows.StateRunning {
		detail += " — last failure: " + ls.LastFailure
	}
	return fmt.Sprintf("%-24s %-9s %s", ls.Name, ls.State, detail)
}

// runView follows a run until it closes: on a terminal it redraws one
// line per stage (a progress bar for each running one); otherwise it
// prints a line when a stage changes state, and progress every 30 s.
type runView struct {
	w       io.Writer
	tty     bool
	drawn   int
	printed map[string]string
	last    map[string]time.Time
}

func newRunView(w io.Writer) *runView {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &runView{w: w, tty: tty, printed: map[string]string{}, last: map[string]time.Time{}}
}

func (v *runView) show(s snapshot) {
	if v.tty {
		if v.drawn > 0 {
			fmt.Fprintf(v.w, "\x1b[%dA", v.drawn)
		}
		width := 200
		if f, ok := v.w.(*os.File); ok {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
				width = w - 1
			}
		}
		for _, ls := range s.Stages {
			line := stageLine(ls)
			if len(line) > width {
				line = line[:width]
			}
			fmt.Fprintf(v.w, "\x1b[2K%s\n", line)
		}
		v.drawn = len(s.Stages)
		return
	}
	for _, ls := range s.Stages {
		if ls.State == workflows.StatePending {
			continue
		}
		// A state change at once; new progress of a running stage every
		// 30 s (the server holds only the last throttled heartbeat).
		line := stageLine(ls)
		changed := v.printed[ls.Name] == "" || !strings.HasPrefix(v.printed[ls.Name], fmt.Sprintf("%-24s %-9s", ls.Name, ls.State))
		due := line != v.printed[ls.Name] && time.Since(v.last[ls.Name]) > 30*time.Second
		if !changed && !due {
			continue
		}
		v.printed[ls.Name], v.last[ls.Name] = line, time.Now()
		fmt.Fprintln(v.w, line)
	}
}

// follow polls run id every interval and shows it until it closes or ctx
// ends.
func follow(ctx context.Context, c client.Client, id string, v *runView, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s, err := fetchSnapshot(ctx, c, id)
		if err == nil {
			v.show(s)
			if s.Closed {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
