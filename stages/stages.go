// Package stages holds what every pipeline stage shares: the progress report
// that a terminal bar and a Temporal heartbeat both consume. Each stage lives
// in its own sub-package with Config, Inputs, Outputs and Run, and never
// imports Temporal.
package stages

// Progress is reported by long stages at least once per iteration or image.
type Progress struct {
	Stage      string             `json:"stage"`
	Iteration  int                `json:"iteration"` // completed iterations (or items)
	Total      int                `json:"total"`     // total iterations (or items), 0 if unknown
	Losses     map[string]float64 `json:"losses,omitempty"`
	LR         float64            `json:"lr,omitempty"`
	ItemsPerS  float64            `json:"items_per_s,omitempty"`
	ETASeconds float64            `json:"eta_s,omitempty"`
	Checkpoint string             `json:"checkpoint,omitempty"` // last checkpoint written, for resume
	Message    string             `json:"message,omitempty"`
}

// ProgressFunc receives progress reports; nil means nobody listens.
type ProgressFunc func(Progress)

// Report calls f when it is set.
func (f ProgressFunc) Report(p Progress) {
	if f != nil {
		f(p)
	}
}
