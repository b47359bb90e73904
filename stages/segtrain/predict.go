package segtrain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/crf"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/labelio"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/stages"
)

// TestInputs name the network, the images and where the predictions go.
type TestInputs struct {
	// Model is a model file or a training checkpoint of this stage.
	Model    string
	DataRoot string
	// List is the list to predict, relative to DataRoot unless absolute;
	// "" means val.txt. Its ground-truth masks, when every image has one,
	// are scored.
	List   string
	OutDir string
	// Device is cpu (default), cuda, cuda:N or auto.
	Device string
	RunID  string // recorded in the Parquet output
}

// TestOutputs locate the predictions.
type TestOutputs struct {
	PredDir     string   `json:"pred_dir,omitempty"` // <id>.png, when Test.WritePNG
	PredParquet string   `json:"pred_parquet"`
	MetricsFile string   `json:"metrics_file,omitempty"`
	Metrics     *Metrics `json:"metrics,omitempty"` // nil without ground truth
	Images      int      `json:"images"`
	Seconds     float64  `json:"seconds"`
}

// Metrics score the predictions of a list against its ground truth.
type Metrics struct {
	List       string   `json:"list"`
	Images     int      `json:"images"`
	ClassNames []string `json:"class_names"` // background first
	// MIoU is the segmentation-protocol mIoU (mean over the classes present
	// in the ground truth, deeplab-pytorch metric.py) of the predictions
	// written: after the CRF when it is on.
	MIoU segmetrics.Metric `json:"miou"`
	Raw  Scores            `json:"raw"`           // the network's argmax
	CRF  *Scores           `json:"crf,omitempty"` // after the dense CRF
}

// Scores are one prediction set's metrics and confusion matrix (K×K
// row-major, rows = ground truth).
type Scores struct {
	segmetrics.Scores
	Confusion []int64 `json:"confusion"`
}

// Test loads a trained network and predicts in.List (TestNet).
func Test(ctx context.Context, cfg Config, in TestInputs, progress stages.ProgressFunc) (TestOutputs, error) {
	runtime.LockOSThread() // reproducible libtorch results, as in Run
	defer runtime.UnlockOSThread()
	if err := cfg.Validate(""); err != nil {
		return TestOutputs{}, err
	}
	if in.DataRoot == "" {
		return TestOutputs{}, badinput.New("", "data_root", "no dataset root given")
	}
	dev, err := resolveDevice(in.Device)
	if err != nil {
		return TestOutputs{}, badinput.Wrap("", "device", err)
	}
	if err := torch.SetNumThreads(cfg.threads()); err != nil {
		return TestOutputs{}, fmt.Errorf("segtest: %w", err)
	}
	net, m, err := LoadModel(in.Model, dev)
	if err != nil {
		return TestOutputs{}, err
	}
	defer net.Store().Close()
	cfg.Model = m // the classes the split must have are the network's
	list := in.List
	if list == "" {
		list = "val.txt"
	}
	split, err := openSplit(ctx, cfg, in.DataRoot, list)
	if err != nil {
		return TestOutputs{}, err
	}
	return TestNet(ctx, cfg, net, dev, split, in, progress)
}

// TestNet predicts every image of split with net (main.py:test): the
// full-size image, BGR minus the mean, through the MSC network in eval
// mode; the max-fused logits upsampled bilinearly to the image size,
// softmax, argmax; with cfg.Test.CRF the dense CRF on −log p and the
// original RGB image (not the reference's wrapped uint8 cast), argmax of
// its marginals. It writes OutDir/pred.parquet (pseudo-label schema),
// OutDir/pred/<id>.png with WritePNG and, when every image has a ground-
// truth mask, OutDir/metrics.json. Nothing is left at those paths unless
// the whole run succeeds.
func TestNet(ctx context.Context, cfg Config, net nn.Segmenter, dev torch.Device, split *data.Split, in TestInputs, progress stages.ProgressFunc) (TestOutputs, error) {
	start := time.Now()
	if in.OutDir == "" {
		return TestOutputs{}, badinput.New("", "out_dir", "no output directory given")
	}
	if k := split.NumClasses() + 1; net.NumClasses() != k {
		return TestOutputs{}, badinput.New(split.List, "num_classes", "the network has %d labels, the dataset %d (with the background)", net.NumClasses(), k)
	}
	withGT := 0
	for _, it := range split.Items {
		if it.MaskPath != "" {
			withGT++
		}
	}
	if withGT > 0 && withGT < len(split.Items) {
		for _, it := range split.Items {
			if it.MaskPath == "" {
				return TestOutputs{}, badinput.AtLine(split.List, it.Line, "image %q has no ground-truth mask, %d others do", it.ID, withGT)
			}
		}
	}
	p := &predictor{cfg: cfg, net: net, dev: dev, split: split, ctx: ctx}
	if withGT > 0 {
		p.raw = segmetrics.New(net.NumClasses())
		if cfg.Test.CRF {
			p.crf = segmetrics.New(net.NumClasses())
		}
	}
	out := TestOutputs{PredParquet: filepath.Join(in.OutDir, PredParquet)}
	w, err := labelio.Create(out.PredParquet, labelio.Meta(split.Classes))
	if err != nil {
		return TestOutputs{}, err
	}
	defer w.Abort()
	var pngTmp string
	if cfg.Test.WritePNG {
		// PNGs go to a hidden directory renamed into place at the end, so a
		// failed run leaves no partial set behind.
		if err := os.MkdirAll(in.OutDir, 0o755); err != nil {
			return TestOutputs{}, fmt.Errorf("segtest: %w", err)
		}
		if pngTmp, err = os.MkdirTemp(in.OutDir, "."+PredDir+".tmp-"); err != nil {
			return TestOutputs{}, fmt.Errorf("segtest: %w", err)
		}
		defer os.RemoveAll(pngTmp)
	}
	hash, err := testHash(cfg, in.Model)
	if err != nil {
		return TestOutputs{}, err
	}
	splitCol := strings.TrimSuffix(filepath.Base(split.List), filepath.Ext(split.List))
	pngs := data.NewPNGEncoder()

	order := make([]int, len(split.Items))
	for i := range order {
		order[i] = i
	}
	workers := cfg.workers()
	pf := data.Prefetch(ctx, order, data.PrefetchOptions{Workers: workers, Depth: workers + 1}, p.load)
	defer pf.Close()
	for {
		r, err := pf.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return TestOutputs{}, fmt.Errorf("segtest: %w", err)
		}
		it := split.Items[r.Index]
		lab, err := p.predict(r.Value)
		if err != nil {
			return TestOutputs{}, fmt.Errorf("segtest: %s: %w", it.ImagePath, err)
		}
		if err := w.Append(labelio.Record{ID: it.ID, Split: splitCol, H: lab.H, W: lab.W, Mask: lab.Pix,
			SourceRunID: in.RunID, ConfigHash: hash}); err != nil {
			return TestOutputs{}, err
		}
		if pngTmp != "" {
			var b bytes.Buffer
			if err := pngs.Index(&b, lab); err != nil {
				return TestOutputs{}, fmt.Errorf("segtest: %s: %w", it.ID, err)
			}
			if err := artifacts.WriteFile(filepath.Join(pngTmp, it.ID+".png"), b.Bytes()); err != nil {
				return TestOutputs{}, fmt.Errorf("segtest: %w", err)
			}
		}
		out.Images++
		elapsed := time.Since(start).Seconds()
		progress.Report(stages.Progress{Stage: TestStageName, Iteration: out.Images, Total: len(split.Items),
			ItemsPerS: float64(out.Images) / elapsed, ETASeconds: elapsed / float64(out.Images) * float64(len(split.Items)-out.Images)})
	}
	if p.raw != nil {
		out.Metrics = p.metrics(split)
		out.MetricsFile = filepath.Join(in.OutDir, MetricsFile)
		b, err := json.MarshalIndent(out.Metrics, "", "  ")
		if err != nil {
			return TestOutputs{}, fmt.Errorf("segtest: metrics: %w", err)
		}
		if err := artifacts.WriteFile(out.MetricsFile, append(b, '\n')); err != nil {
			return TestOutputs{}, fmt.Errorf("segtest: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return TestOutputs{}, err
	}
	if pngTmp != "" {
		out.PredDir = filepath.Join(in.OutDir, PredDir)
		if err := os.RemoveAll(out.PredDir); err != nil {
			return TestOutputs{}, fmt.Errorf("segtest: replace %s: %w", out.PredDir, err)
		}
		if err := os.Rename(pngTmp, out.PredDir); err != nil {
			return TestOutputs{}, fmt.Errorf("segtest: %w", err)
		}
	}
	out.Seconds = time.Since(start).Seconds()
	return out, nil
}

// predictor runs the network on one image at a time and scores it.
type predictor struct {
	ctx      context.Context
	cfg      Config
	net      nn.Segmenter
	dev      torch.Device
	split    *data.Split
	raw, crf *segmetrics.Confusion // nil without ground truth
}

// testItem is a decoded image and its ground truth (nil without).
type testItem struct {
	img    *imaging.RGB
	gt     *imaging.Gray
	gtPath string
}

func (p *predictor) load(ctx context.Context, i int) (testItem, error) {
	if err := ctx.Err(); err != nil {
		return testItem{}, err
	}
	it := p.split.Items[i]
	img, err := data.DecodeImage(it.ImagePath)
	if err != nil {
		return testItem{}, err
	}
	ti := testItem{img: img, gtPath: it.MaskPath}
	if p.raw != nil {
		if ti.gt, err = data.DecodeMask(it.MaskPath); err != nil {
			return testItem{}, err
		}
		if ti.gt.W != img.W || ti.gt.H != img.H {
			return testItem{}, badinput.New(it.MaskPath, "size", "%dx%d, but image %s is %dx%d", ti.gt.W, ti.gt.H, it.ImagePath, img.W, img.H)
		}
	}
	return ti, nil
}

// predict labels one image, scores it when it has ground truth, and
// returns the label map to write.
func (p *predictor) predict(ti testItem) (*imaging.Gray, error) {
	prob, lab, err := Predict(p.net, p.dev, ti.img, p.cfg.Augment.MeanBGR, p.cfg.Augment.InputScale, p.cfg.Test.CRF)
	if err != nil {
		return nil, err
	}
	if p.raw != nil {
		if err := p.raw.Add(ti.gt.Pix, lab.Pix); err != nil {
			return nil, gtErr(err, ti.gtPath)
		}
	}
	if !p.cfg.Test.CRF {
		return lab, nil
	}
	unary, err := crf.UnaryFromProb(prob)
	if err != nil {
		return nil, err
	}
	q, err := crf.Infer(p.ctx, unary, ti.img, p.cfg.Test.CRFParams.Params(p.cfg.Workers))
	if err != nil {
		return nil, fmt.Errorf("crf: %w", err)
	}
	if lab, err = q.Argmax(); err != nil {
		return nil, err
	}
	if p.crf != nil {
		if err := p.crf.Add(ti.gt.Pix, lab.Pix); err != nil {
			return nil, gtErr(err, ti.gtPath)
		}
	}
	return lab, nil
}

// gtErr turns a bad ground-truth value into bad input naming the mask (the
// predictions are labels by construction).
func gtErr(err error, path string) error {
	var ve *segmetrics.ValueError
	if errors.As(err, &ve) && !ve.Pred {
		return badinput.New(path, "value", "%v", ve)
	}
	return err
}

func (p *predictor) metrics(split *data.Split) *Metrics {
	score := func(c *segmetrics.Confusion) Scores {
		return Scores{Scores: c.Scores(), Confusion: append([]int64(nil), c.M...)}
	}
	m := &Metrics{List: split.List, Images: len(split.Items),
		ClassNames: append([]string{"background"}, split.Classes...), Raw: score(p.raw)}
	m.MIoU = m.Raw.MIoUSeg
	if p.crf != nil {
		c := score(p.crf)
		m.CRF = &c
		m.MIoU = c.MIoUSeg
	}
	return m
}

// Predict runs net on one full-size image and returns the per-pixel label
// (argmax of the softmax of the max-fused MSC logits, upsampled
// bilinearly with align_corners=False to the image size) and, when
// withProb, the probabilities (K, H, W) for the CRF. The input is the BGR
// image minus meanBGR, times scale (AugmentConfig.InputScale).
func Predict(net nn.Segmenter, dev torch.Device, img *imaging.RGB, meanBGR [3]float64, scale float64, withProb bool) (crf.Field, *imaging.Gray, error) {
	x, err := augment.DeepLabInput(img, meanBGR)
	if err != nil {
		return crf.Field{}, nil, err
	}
	scaleInPlace(x, scale)
	s := torch.NewNoGradScope()
	defer s.Close()
	h, w := int64(img.H), int64(img.W)
	xt := s.FromFloat32(x, 1, 3, h, w)
	if dev.IsCUDA() {
		xt = s.To(xt, torch.Opts{Device: dev})
	}
	outs := net.Forward(s, xt, false)
	if err := s.Err(); err != nil {
		return crf.Field{}, nil, err
	}
	prob := s.Softmax(s.Interpolate(outs[0], h, w, torch.Bilinear, false), 1)
	idx := s.Argmax(prob, 1, false)
	cpu := torch.Opts{Device: torch.CPU()}
	if dev.IsCUDA() {
		idx = s.To(idx, cpu)
	}
	labels, err := idx.Int64s()
	if err == nil {
		err = s.Err()
	}
	if err != nil {
		return crf.Field{}, nil, err
	}
	lab := imaging.NewGray(img.W, img.H)
	for i, v := range labels {
		lab.Pix[i] = uint8(v)
	}
	if !withProb {
		return crf.Field{}, lab, nil
	}
	if dev.IsCUDA() {
		prob = s.To(prob, cpu)
	}
	pv, err := prob.Float32s()
	if err != nil {
		return crf.Field{}, nil, err
	}
	return crf.Field{C: net.NumClasses(), H: img.H, W: img.W, Data: pv}, lab, nil
}

// testHash identifies the settings that determine the predictions.
func testHash(cfg Config, model string) (string, error) {
	b, err := json.Marshal(struct {
		Model   ModelConfig
		Weights string
		MeanBGR [3]float64
		Scale   float64
		CRF     bool
		Params  CRFConfig
	}{cfg.Model, model, cfg.Augment.MeanBGR, cfg.Augment.InputScale, cfg.Test.CRF, cfg.Test.CRFParams})
	if err != nil {
		return "", fmt.Errorf("segtest: %w", err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}
