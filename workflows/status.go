package workflows

import (
	"math"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/l2g/l2g/internal/runconfig"
	"github.com/l2g/l2g/internal/temporalcfg"
)

// Stage states in Status.
const (
	StatePending  = "pending"
	StateRunning  = "running" // scheduled or running; l2g status tells them apart
	StateDone     = "done"
	StateSkipped  = "skipped" // a manifest matched: the earlier outputs are used
	StateFailed   = "failed"
	StateCanceled = "canceled"
)

// Run states in Status.
const (
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunCanceled  = "canceled"
)

// Status is what the status query returns.
type Status struct {
	RunID    string        `json:"run_id"`
	Dir      string        `json:"dir"`
	State    string        `json:"state"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished,omitzero"`
	Stages   []StageStatus `json:"stages"`
}

// StageStatus is one stage instance. Name is also its activity id.
type StageStatus struct {
	Name       string             `json:"name"`
	Kind       string             `json:"kind"`
	Mode       string             `json:"mode,omitempty"`
	State      string             `json:"state"`
	Started    time.Time          `json:"started,omitzero"`
	Finished   time.Time          `json:"finished,omitzero"`
	Seconds    float64            `json:"seconds,omitempty"` // the activity's own time (0 when skipped)
	Error      string             `json:"error,omitempty"`
	Dir        string             `json:"dir,omitempty"`
	Manifest   string             `json:"manifest,omitempty"`
	Skipped    bool               `json:"skipped,omitempty"`
	ReusedFrom string             `json:"reused_from,omitempty"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
}

// newStatus lists every stage instance of cfg in pipeline order, pending.
func newStatus(runID, dir string, cfg runconfig.Config, now time.Time) *Status {
	s := &Status{RunID: runID, Dir: dir, State: RunRunning, Started: now}
	add := func(kind, name, mode string) {
		s.Stages = append(s.Stages, StageStatus{Name: name, Kind: kind, Mode: mode, State: StatePending})
	}
	if cfg.NeedsSaliency() {
		add(temporalcfg.StageSaliency, "saliency", "")
	}
	for _, kind := range []string{temporalcfg.StageTrain, temporalcfg.StageCAM, temporalcfg.StageCAMEval, temporalcfg.StagePseudolabel, temporalcfg.StageEvaluate} {
		for _, m := range cfg.Modes {
			add(kind, kind+"-"+string(m), string(m))
		}
	}
	add(temporalcfg.StageSegTrain, "segtrain", string(cfg.SegMode))
	add(temporalcfg.StageEvaluate, "evaluate-seg", string(cfg.SegMode))
	return s
}

// set moves a stage to state at now and returns it for more fields.
func (s *Status) set(name, state string, now time.Time, err error) *StageStatus {
	for i := range s.Stages {
		st := &s.Stages[i]
		if st.Name != name {
			continue
		}
		st.State = state
		if state == StateRunning {
			st.Started = now
		} else {
			st.Finished = now
		}
		if err != nil {
			st.Error = err.Error()
		}
		return st
	}
	// Every name comes from newStatus; a miss is a bug, but status is
	// only a report, so it gets a row rather than a panic.
	s.Stages = append(s.Stages, StageStatus{Name: name, State: state, Started: now})
	return &s.Stages[len(s.Stages)-1]
}

// finish records the run's outcome.
func (s *Status) finish(now time.Time, err error) {
	s.Finished = now
	s.State = RunCompleted
	switch {
	case temporal.IsCanceledError(err):
		s.State = RunCanceled
	case err != nil:
		s.State, s.Error = RunFailed, err.Error()
	}
}

// metrics builds a stage's headline numbers from name/value pairs,
// leaving out NaN and infinite values (JSON cannot carry them; a class
// absent from the ground truth has no IoU). No map is iterated, so
// workflow code stays deterministic.
func metrics(kv ...any) map[string]float64 {
	m := make(map[string]float64, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		v, _ := kv[i+1].(float64)
		if k != "" && !math.IsNaN(v) && !math.IsInf(v, 0) {
			m[k] = v
		}
	}
	return m
}
