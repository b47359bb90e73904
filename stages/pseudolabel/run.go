package pseudolabel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/schemas"
	"github.com/l2g/l2g/stages"
)

// Output names inside Inputs.OutDir.
const (
	ParquetName = "pseudo_labels.parquet"
	PNGDirName  = "png"
)

// Inputs of the stage.
type Inputs struct {
	// CAMs is the CAM Parquet dataset written by stage cam.
	CAMs string `json:"cams"`
	// SalDir holds <id>.png saliency maps; needed for BackgroundSaliency.
	SalDir string `json:"sal_dir,omitempty"`
	// OutDir receives ParquetName and, with WritePNG, PNGDirName/<id>.png.
	OutDir string `json:"out_dir"`
	// RunID is recorded as source_run_id; empty: the CAM file's run id.
	RunID string `json:"run_id,omitempty"`
}

// Outputs lists what the stage wrote.
type Outputs struct {
	Parquet     string   `json:"parquet"`
	PNGDir      string   `json:"png_dir,omitempty"`
	Images      int      `json:"images"`
	ClassNames  []string `json:"class_names"` // background first
	SourceRunID string   `json:"source_run_id"`
	ConfigHash  string   `json:"config_hash"`
	// LabelFractions is the share of all pixels per label (index = label).
	LabelFractions []float64 `json:"label_fractions"`
	IgnoreFraction float64   `json:"ignore_fraction"`
}

// Run labels every image of the CAM dataset. Records stream through a
// bounded batch, so memory does not depend on the dataset size. Outputs
// appear only when everything succeeded: the Parquet file is committed
// atomically and the PNG directory is staged and renamed into place.
func Run(ctx context.Context, cfg Config, in Inputs, progress stages.ProgressFunc) (Outputs, error) {
	if err := cfg.Validate(); err != nil {
		return Outputs{}, err
	}
	if in.CAMs == "" {
		return Outputs{}, badinput.New("", "cams", "no CAM dataset given")
	}
	if in.OutDir == "" {
		return Outputs{}, badinput.New("", "out_dir", "no output directory given")
	}
	if cfg.Background == BackgroundSaliency && in.SalDir == "" {
		return Outputs{}, badinput.New("", "sal_dir", "background %q needs a saliency directory", BackgroundSaliency)
	}
	cams, err := camio.Open(in.CAMs)
	if err != nil {
		return Outputs{}, err
	}
	defer cams.Close()
	meta := labelio.Meta(cams.Meta().ClassNames)
	out := Outputs{
		Parquet: filepath.Join(in.OutDir, ParquetName), ClassNames: meta.ClassNames,
		SourceRunID: in.RunID, ConfigHash: cfg.Hash(),
	}
	if out.SourceRunID == "" {
		out.SourceRunID = cams.Meta().RunID
	}
	if err := os.MkdirAll(in.OutDir, 0o755); err != nil {
		return Outputs{}, fmt.Errorf("pseudolabel: %w", err)
	}
	w, err := labelio.Create(out.Parquet, meta)
	if err != nil {
		return Outputs{}, err
	}
	defer w.Abort()
	var pngTmp string
	if cfg.WritePNG {
		if pngTmp, err = os.MkdirTemp(in.OutDir, "."+PNGDirName+".tmp-"); err != nil {
			return Outputs{}, fmt.Errorf("pseudolabel: %w", err)
		}
		defer os.RemoveAll(pngTmp) // gone after the rename below
	}

	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	labelers := make([]*Labeler, workers)
	for i := range labelers {
		labelers[i] = NewLabeler(cfg)
	}
	hist := make([]int64, 256)
	var pixels int64
	total := cams.NumRows()
	start := time.Now()
	batch := make([]*camio.Record, 0, 2*workers)
	masks := make([][]uint8, cap(batch))
	for {
		batch = batch[:0]
		for len(batch) < cap(batch) {
			rec, err := cams.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return Outputs{}, err
			}
			if err := checkID(in.CAMs, rec.ID); err != nil {
				return Outputs{}, err
			}
			batch = append(batch, rec)
		}
		if len(batch) == 0 {
			break
		}
		if err := labelBatch(ctx, labelers, batch, masks, in.SalDir, cfg.Background == BackgroundSaliency, pngTmp); err != nil {
			return Outputs{}, err
		}
		for j, rec := range batch {
			if err := w.Append(labelio.Record{
				ID: rec.ID, Split: rec.Split, H: rec.H, W: rec.W, Mask: masks[j],
				BgThreshold: cfg.BgThreshold, SourceRunID: out.SourceRunID, ConfigHash: out.ConfigHash,
			}); err != nil {
				return Outputs{}, err
			}
			for _, v := range masks[j] {
				hist[v]++
			}
			pixels += int64(len(masks[j]))
		}
		out.Images += len(batch)
		el := time.Since(start).Seconds()
		p := stages.Progress{Stage: "pseudolabel", Iteration: out.Images, Total: total, Message: "images"}
		if el > 0 {
			p.ItemsPerS = float64(out.Images) / el
			p.ETASeconds = float64(total-out.Images) / p.ItemsPerS
		}
		progress.Report(p)
	}
	if out.Images == 0 {
		return Outputs{}, badinput.New(in.CAMs, "", "CAM dataset has no images")
	}
	if err := w.Close(); err != nil {
		return Outputs{}, err
	}
	if cfg.WritePNG {
		out.PNGDir = filepath.Join(in.OutDir, PNGDirName)
		if err := os.RemoveAll(out.PNGDir); err != nil {
			return Outputs{}, fmt.Errorf("pseudolabel: replace %s: %w", out.PNGDir, err)
		}
		if err := os.Rename(pngTmp, out.PNGDir); err != nil {
			return Outputs{}, fmt.Errorf("pseudolabel: %w", err)
		}
	}
	out.LabelFractions = make([]float64, len(meta.ClassNames))
	for v := range out.LabelFractions {
		out.LabelFractions[v] = float64(hist[v]) / float64(pixels)
	}
	out.IgnoreFraction = float64(hist[schemas.IgnoreLabel]) / float64(pixels)
	return out, nil
}

// labelBatch labels batch[j] into masks[j] on one goroutine per labeler and
// writes the PNGs into pngDir when it is set.
func labelBatch(ctx context.Context, labelers []*Labeler, batch []*camio.Record, masks [][]uint8, salDir string, useSal bool, pngDir string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(labelers))
	for wi, l := range labelers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := wi; j < len(batch); j += len(labelers) {
				if ctx.Err() != nil {
					errs[wi] = ctx.Err()
					return
				}
				if err := labelOne(l, batch[j], &masks[j], salDir, useSal, pngDir); err != nil {
					errs[wi] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func labelOne(l *Labeler, rec *camio.Record, mask *[]uint8, salDir string, useSal bool, pngDir string) error {
	var sal *imaging.Gray
	var salPath string
	if useSal {
		salPath = filepath.Join(salDir, rec.ID+".png")
		var err error
		if sal, err = data.DecodeSaliency(salPath); err != nil {
			return err
		}
	}
	m, err := l.Label(rec, sal, salPath, *mask)
	if err != nil {
		return err
	}
	*mask = m
	if pngDir == "" {
		return nil
	}
	return artifacts.WriteWith(filepath.Join(pngDir, rec.ID+".png"), func(w io.Writer) error {
		return data.EncodeIndexPNG(w, &imaging.Gray{W: rec.W, H: rec.H, Pix: m})
	})
}

// checkID rejects ids that cannot be a file name: <id>.png must stay in
// the output directory.
func checkID(path, id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\\\x00") {
		return badinput.New(path, schemas.ColImageID, "image id %q cannot name a file", id)
	}
	return nil
}
