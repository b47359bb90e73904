// Package report writes a run's HTML report: one self-contained file with
// the comparison table, loss curves and per-class IoU bars as inline SVG,
// and overlays (image, ground truth, CAM, pseudo-label, segmentation) as
// base64 PNGs, so it can be mailed or archived alone.
package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"os"
	"time"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/data"
)

// Input is what the report shows; paths are a run's artifacts.
type Input struct {
	RunID string
	Dir   string
	Took  time.Duration
	// ClassNames are the label names, background first.
	ClassNames []string
	DataRoot   string
	Kind       data.Kind
	EvalList   string // CAMs and pseudo-labels are shown on its images
	ValList    string // segmentation predictions are shown on its images
	Branches   []Branch
	Seg        Seg
	// Images is how many images each overlay table shows (0: 4).
	Images int
}

// Branch is one training mode's outputs and scores.
type Branch struct {
	Mode      string
	Label     string // human name: "CAM baseline"
	TrainLog  string // log.jsonl of the training stage
	CAMs      string // CAM Parquet dataset
	Labels    string // pseudo-label Parquet dataset
	CAMMIoU   float64
	Threshold float64
	LabelMIoU float64
	LabelIoU  []float64 // per class, background first (NaN: class absent)
}

// Seg is the segmentation net's outputs and scores.
type Seg struct {
	Mode string // the branch whose pseudo-labels it learned
	Log  string // log.jsonl
	Pred string // prediction Parquet (pseudo-label schema)
	MIoU float64
	IoU  []float64
}

// Write renders in to path (atomically).
func Write(ctx context.Context, path string, in Input) error {
	if in.Images <= 0 {
		in.Images = 4
	}
	page := pageData{Input: in, Generated: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	for _, b := range in.Branches {
		page.Rows = append(page.Rows, row{Name: b.Label, Mode: b.Mode, CAM: pct(b.CAMMIoU), Thr: fmt.Sprintf("%.2f", b.Threshold), Labels: pct(b.LabelMIoU)})
	}
	page.SegMIoU = pct(in.Seg.MIoU)

	// Loss curves: one chart per training stage.
	for _, b := range in.Branches {
		series, err := lossSeries(b.TrainLog)
		if err != nil {
			return err
		}
		page.Charts = append(page.Charts, template.HTML(lineChart("training loss: "+b.Label+" ("+b.Mode+")", "iteration", series)))
	}
	if in.Seg.Log != "" {
		series, err := lossSeries(in.Seg.Log)
		if err != nil {
			return err
		}
		page.Charts = append(page.Charts, template.HTML(lineChart("segmentation training loss", "iteration", series)))
	}

	// Per-class IoU: the pseudo-labels of each branch, then segmentation.
	var groups []series
	for _, b := range in.Branches {
		groups = append(groups, series{Name: "pseudo-labels, " + b.Mode, Y: b.LabelIoU})
	}
	if len(in.Seg.IoU) > 0 {
		groups = append(groups, series{Name: "segmentation (val)", Y: in.Seg.IoU})
	}
	page.Bars = template.HTML(barChart("per-class IoU", in.ClassNames, groups))

	var err error
	if page.Overlays, err = branchOverlays(ctx, in); err != nil {
		return err
	}
	if page.SegOverlays, err = segOverlays(ctx, in); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return artifacts.WriteFile(path, buf.Bytes())
}

type row struct{ Name, Mode, CAM, Thr, Labels string }

type pageData struct {
	Input
	Generated   string
	Rows        []row
	SegMIoU     string
	Charts      []template.HTML
	Bars        template.HTML
	Overlays    *overlayTable
	SegOverlays *overlayTable
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", 100*v)
}

// lossSeries reads a JSONL loss log ({"iteration": …, "losses": {…}}) into
// one series per loss term, in name order.
func lossSeries(path string) ([]series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: loss log: %w", err)
	}
	defer f.Close()
	byName := map[string]*series{}
	var names []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			Iteration int                `json:"iteration"`
			Losses    map[string]float64 `json:"losses"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("report: %s: %w", path, err)
		}
		for k, v := range r.Losses {
			s := byName[k]
			if s == nil {
				s = &series{Name: k}
				byName[k] = s
				names = append(names, k)
			}
			s.X = append(s.X, float64(r.Iteration))
			s.Y = append(s.Y, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	sortStrings(names)
	out := make([]series, len(names))
	for i, n := range names {
		out[i] = *byName[n]
	}
	return out, nil
}
