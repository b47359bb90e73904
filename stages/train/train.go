// Package train is the classifier-training stage of the L2G pipeline (spec
// §3–§4): a global and a local ResNet-38 (or the small CPU net) trained with
// local-to-global attention and shape transfer, or one of the paper's
// baselines (CAM, local crops only). It writes the global net for the CAM
// stage, a JSONL loss log, and resumable checkpoints.
package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/checkpoint"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/safetensors"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/internal/weights"
	"github.com/l2g/l2g/stages"
)

// StageName is the name reported in progress.
const StageName = "train"

// Output file names under Inputs.OutDir.
const (
	GlobalFile    = "global.safetensors"
	LocalFile     = "local.safetensors"
	LogFile       = "log.jsonl"
	CheckpointDir = "checkpoints"
)

// Inputs name the data, optional starting weights, and the output folder.
type Inputs struct {
	DataRoot string
	// TrainList is the class-label list, relative to DataRoot unless
	// absolute; "" means train_cls.txt.
	TrainList string
	// SalDir holds the saliency maps <id>.png; "" means DataRoot/Sal. Only
	// mode l2g-shape reads them, and it needs one per image.
	SalDir string
	// InitWeights initialises every net by name, non-strictly (the heads may
	// stay random; Config.InitExclude drops more): the ImageNet ResNet-38
	// (.params, MXNet), a converted state_dict (.pth), or a .safetensors
	// file of state_dict names (or a training checkpoint: its global net).
	InitWeights string
	// InitSource names the kind of InitWeights (internal/weights: e.g.
	// resnet38-mxnet, resnet38-pth, l2g-global, l2g-local); "" guesses
	// from the extension.
	InitSource string
	// ResumeFrom is a checkpoint written by an earlier run with the same
	// config and list; training continues exactly where it stopped.
	ResumeFrom string
	OutDir     string
	Device     string // cpu (default), cuda or cuda:N
}

// Outputs locate what the stage wrote.
type Outputs struct {
	// Checkpoint is the final global net (the one net in modes cam and
	// local): safetensors with state_dict names and metadata arch,
	// num_classes and width, which the CAM stage rebuilds the net from.
	Checkpoint string `json:"checkpoint"`
	// LocalCheckpoint is the final local net ("" when there is none of its
	// own: modes cam and local, or a shared backbone).
	LocalCheckpoint string `json:"local_checkpoint,omitempty"`
	// Log holds one JSON record per iteration (see LogRecord).
	Log         string             `json:"log"`
	Iterations  int                `json:"iterations"`
	FinalLosses map[string]float64 `json:"final_losses"` // mean of the last ≤100 iterations
	Seconds     float64            `json:"seconds"`
}

// LogRecord is one line of the loss log.
type LogRecord struct {
	Iteration  int                `json:"iteration"` // completed iterations, from 1
	Epoch      int                `json:"epoch"`     // from 0
	LR         float64            `json:"lr"`
	Losses     map[string]float64 `json:"losses"`
	ImagesPerS float64            `json:"images_per_s"`
}

// finalWindow is how many of the last iterations FinalLosses averages.
const finalWindow = 100

// trainer holds one run's nets, optimizer and data.
type trainer struct {
	cfg    Config
	split  *data.Split
	dev    torch.Device
	global nn.Classifier // the net whose weights the CAM stage uses
	local  nn.Classifier // nil in mode cam; == global in mode local or with a shared backbone
	opt    *nn.SGD
	loader *loader
	perEp  int // iterations per epoch, ⌈n/B⌉ (the last partial batch is kept)
	total  int
	run    checkpoint.Run
	saver  *checkpoint.Saver
}

// Run trains as cfg says. It reports progress after every iteration,
// checks ctx between iterations and, when cancelled, writes a checkpoint
// of the finished iterations before returning ctx's error.
//
// libtorch's RNG and thread count belong to the process, so one Run at a
// time per process: two would draw from, and reseed, the same generator.
func Run(ctx context.Context, cfg Config, in Inputs, progress stages.ProgressFunc) (Outputs, error) {
	// libtorch's CPU results were seen to differ in the last bits when a
	// goroutine changes OS thread between calls; one thread per run keeps
	// exact resume exact (as stages/segtrain does).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	if err := cfg.Validate(""); err != nil {
		return Outputs{}, err
	}
	if in.DataRoot == "" {
		return Outputs{}, badinput.New("", "data_root", "no dataset root given")
	}
	if in.OutDir == "" {
		return Outputs{}, badinput.New("", "out_dir", "no output directory given")
	}
	dev, err := torch.ParseDevice(in.Device)
	if err != nil {
		return Outputs{}, badinput.Wrap("", "device", err)
	}
	if err := torch.SetNumThreads(cfg.threads()); err != nil {
		return Outputs{}, fmt.Errorf("train: %w", err)
	}
	split, err := openSplit(ctx, cfg, in)
	if err != nil {
		return Outputs{}, err
	}
	t, err := newTrainer(cfg, split, dev)
	if err != nil {
		return Outputs{}, err
	}
	defer t.close()
	t.saver = &checkpoint.Saver{Dir: filepath.Join(in.OutDir, CheckpointDir), Keep: cfg.KeepCheckpoints}

	if in.InitWeights != "" && in.ResumeFrom == "" {
		msg, err := t.loadInit(in.InitWeights, in.InitSource)
		if err != nil {
			return Outputs{}, err
		}
		progress.Report(stages.Progress{Stage: StageName, Total: t.total, Message: msg})
	}
	done := 0
	var records []LogRecord
	logPath := filepath.Join(in.OutDir, LogFile)
	if in.ResumeFrom != "" {
		if done, _, err = checkpoint.Restore(in.ResumeFrom, t.run, t.parts()); err != nil {
			return Outputs{}, err
		}
		if done > t.total {
			return Outputs{}, badinput.New(in.ResumeFrom, MetaIteration, "checkpoint is at iteration %d, past the run's %d", done, t.total)
		}
		if records, err = readLog(logPath, done); err != nil {
			return Outputs{}, err
		}
		t.saver.Resumed(in.ResumeFrom, done)
		progress.Report(stages.Progress{Stage: StageName, Iteration: done, Total: t.total, Checkpoint: in.ResumeFrom,
			Message: fmt.Sprintf("resumed from %s at iteration %d", in.ResumeFrom, done)})
	}
	records, err = t.loop(ctx, done, records, in.OutDir, progress)
	if err != nil {
		return Outputs{}, err
	}
	out, err := t.finish(in.OutDir, records)
	if err != nil {
		return Outputs{}, err
	}
	out.Seconds = time.Since(start).Seconds()
	return out, nil
}

// openSplit opens the training list and checks it against the config.
func openSplit(ctx context.Context, cfg Config, in Inputs) (*data.Split, error) {
	kind, err := data.ParseKind(cfg.Dataset)
	if err != nil {
		return nil, badinput.Wrap("", "dataset", err)
	}
	list := in.TrainList
	if list == "" {
		list = "train_cls.txt"
	}
	sp, err := data.Open(ctx, data.Spec{Root: in.DataRoot, Kind: kind, List: list, SalDir: in.SalDir})
	if err != nil {
		return nil, err
	}
	if len(sp.Items) == 0 {
		return nil, badinput.New(sp.List, "", "the training list is empty")
	}
	if sp.NumClasses() != cfg.NumClasses {
		return nil, badinput.New(sp.List, "num_classes", "the dataset has %d classes, the config says %d", sp.NumClasses(), cfg.NumClasses)
	}
	for i := range sp.Items {
		it := &sp.Items[i]
		if cfg.Mode != ModeL2GShape {
			it.SalPath = "" // not read: decoding it would only cost time
			continue
		}
		// Checked up front: a missing map would otherwise stop the run
		// hours in, when its image comes up.
		if _, err := os.Stat(it.SalPath); it.SalPath == "" || err != nil {
			dir := in.SalDir
			if dir == "" {
				dir = filepath.Join(sp.Root, data.DirSal)
			}
			return nil, badinput.New(dir, "sal_dir", "mode l2g-shape needs saliency maps; none for %s (line %d of %s)", it.ID, it.Line, sp.List)
		}
	}
	return sp, nil
}

func newTrainer(cfg Config, split *data.Split, dev torch.Device) (*trainer, error) {
	run, err := runID(cfg, split)
	if err != nil {
		return nil, err
	}
	t := &trainer{cfg: cfg, split: split, dev: dev, run: run}
	// Seed before building: the random head initialisation is part of the
	// run (the global net is drawn first, then the local one).
	if err := torch.ManualSeed(cfg.Seed); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var opts []nn.Option
	if cfg.Width > 0 {
		opts = append(opts, nn.WithWidth(int64(cfg.Width)))
	}
	build := func() (nn.Classifier, error) {
		c, err := nn.NewClassifier(cfg.Arch, cfg.NumClasses, dev, opts...)
		if err != nil {
			return nil, badinput.Wrap("", "arch", err)
		}
		return c, nil
	}
	if t.global, err = build(); err != nil {
		return nil, err
	}
	stores := []*nn.Store{t.global.Store()}
	switch {
	case cfg.Mode == ModeLocal || (cfg.Mode.twoNets() && cfg.SharedBackbone):
		t.local = t.global
	case cfg.Mode.twoNets():
		if t.local, err = build(); err != nil {
			t.close()
			return nil, err
		}
		stores = append(stores, t.local.Store())
	}
	if t.opt, err = nn.NewSGD(stores, cfg.Optim.Groups, cfg.Optim.Momentum, cfg.Optim.Nesterov); err != nil {
		t.close()
		return nil, badinput.Wrap("", "optim.groups", err)
	}
	n := len(split.Items)
	t.perEp = (n + cfg.BatchSize - 1) / cfg.BatchSize
	t.total = cfg.Epochs * t.perEp
	if cfg.MaxIterations > 0 && cfg.MaxIterations < t.total {
		t.total = cfg.MaxIterations
	}
	t.loader = &loader{cfg: cfg, split: split, sampler: augment.Sampler{Seed: cfg.Seed, NoShuffle: !cfg.Shuffle}}
	return t, nil
}

func (t *trainer) close() {
	if t.opt != nil {
		t.opt.Close()
	}
	if t.local != nil && t.local != t.global {
		t.local.Store().Close()
	}
	if t.global != nil {
		t.global.Store().Close()
	}
}

// loadInit copies matching tensors of a weight file into every net, by
// name, leaving the others (a new head) as initialised.
func (t *trainer) loadInit(path, source string) (string, error) {
	if source == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".safetensors":
		case ".params":
			source = string(weights.ResNet38MXNet)
		case ".pth":
			source = string(weights.ResNet38Pth)
		default:
			return "", badinput.New(path, "init_weights", "cannot tell the kind of weight file %q: name it with init_source", filepath.Base(path))
		}
	}
	var host map[string]nn.HostTensor
	var rename func(string) string
	if source == "" {
		st, meta, err := safetensors.Read(path)
		if err != nil {
			return "", err
		}
		if host, err = nn.HostFromSafetensors(path, st); err != nil {
			return "", err
		}
		if meta[MetaFormat] == CheckpointFormat {
			// A training checkpoint: start from its global net.
			rename = func(k string) string {
				if !strings.HasPrefix(k, prefixGlobal) {
					return ""
				}
				return strings.TrimPrefix(k, prefixGlobal)
			}
		}
	} else {
		src, err := weights.ParseSource(source)
		if err != nil {
			return "", badinput.Wrap(path, "init_source", err)
		}
		if host, rename, err = weights.Read(path, src); err != nil {
			return "", err
		}
	}
	exclude := func(k string) string {
		if rename != nil {
			k = rename(k)
		}
		for _, p := range t.cfg.InitExclude {
			if k != "" && strings.HasPrefix(k, p) {
				return ""
			}
		}
		return k
	}
	nets := []nn.Classifier{t.global}
	if t.local != nil && t.local != t.global {
		nets = append(nets, t.local)
	}
	var loaded, total int
	for _, c := range nets {
		missing, _, err := c.Store().LoadHost(host, nn.LoadOpts{Rename: exclude, Source: path})
		if err != nil {
			return "", err
		}
		total = len(c.Store().Entries())
		loaded = total - len(missing)
	}
	if loaded == 0 {
		return "", badinput.New(path, "init_weights", "no tensor matches a parameter of the %s network", t.cfg.Arch)
	}
	return fmt.Sprintf("initialised %d of %d tensors of each net from %s", loaded, total, path), nil
}

// order lists the prefetch codes of iterations from..total-1.
func (t *trainer) order(from int) []int {
	n, b := len(t.split.Items), t.cfg.BatchSize
	var codes []int
	var perm []int
	permEpoch := -1
	for it := from; it < t.total; it++ {
		e := it / t.perEp
		if e != permEpoch {
			perm, permEpoch = t.loader.sampler.Order(e, n), e
		}
		k := it % t.perEp
		for _, idx := range perm[k*b : min((k+1)*b, n)] {
			codes = append(codes, t.loader.code(e, idx))
		}
	}
	return codes
}

// batchLen is the number of images of iteration it.
func (t *trainer) batchLen(it int) int {
	k := it % t.perEp
	return min((k+1)*t.cfg.BatchSize, len(t.split.Items)) - k*t.cfg.BatchSize
}

func (t *trainer) loop(ctx context.Context, done int, records []LogRecord, outDir string, progress stages.ProgressFunc) ([]LogRecord, error) {
	workers := t.cfg.Workers
	if workers <= 0 {
		workers = t.cfg.threads()
	}
	pf := data.Prefetch(ctx, t.order(done), data.PrefetchOptions{Workers: workers, Depth: max(2*workers, 2*t.cfg.BatchSize)}, t.loader.load)
	defer pf.Close()
	logPath := filepath.Join(outDir, LogFile)
	t.saver.Write = func(path string, it int) error {
		if err := checkpoint.Save(path, t.run, it, t.parts(), t.meta(it)); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		return checkpoint.WriteLog(logPath, records)
	}
	interrupted := func(cause error) error { return t.saver.Interrupted(StageName, done, cause) }
	sessionStart, sessionFirst := time.Now(), done
	images := 0
	for done < t.total {
		if err := ctx.Err(); err != nil {
			return records, interrupted(err)
		}
		exs := make([]*example, t.batchLen(done))
		for i := range exs {
			r, err := pf.Next()
			if err != nil {
				if ctx.Err() != nil {
					return records, interrupted(ctx.Err())
				}
				return records, fmt.Errorf("train: iteration %d: %w", done+1, err)
			}
			exs[i] = r.Value
		}
		epoch := done / t.perEp
		lr := t.cfg.Optim.LRAt(done, epoch, t.total)
		stepStart := time.Now()
		losses, err := t.step(exs, lr)
		if err != nil {
			return records, fmt.Errorf("train: iteration %d: %w", done+1, err)
		}
		done++
		images += len(exs)
		elapsed := time.Since(sessionStart).Seconds()
		rec := LogRecord{Iteration: done, Epoch: epoch, LR: lr, Losses: losses,
			ImagesPerS: float64(len(exs)) / time.Since(stepStart).Seconds()}
		records = append(records, rec)
		if done%t.perEp == 0 || done == t.total || (t.cfg.CheckpointEvery > 0 && done%t.cfg.CheckpointEvery == 0) {
			if err := t.saver.Save(done); err != nil {
				return records, err
			}
		}
		eta := elapsed / float64(done-sessionFirst) * float64(t.total-done)
		progress.Report(stages.Progress{
			Stage: StageName, Iteration: done, Total: t.total, Losses: losses, LR: lr,
			ItemsPerS: float64(images) / elapsed, ETASeconds: eta, Checkpoint: t.saver.Last,
		})
	}
	return records, nil
}

// step runs one forward/backward/update and returns the loss values.
func (t *trainer) step(exs []*example, lr float64) (map[string]float64, error) {
	s := torch.NewScope()
	defer s.Close()
	b := t.cfg.tensors(s, exs, t.dev)
	var o outputs
	if t.cfg.Mode != ModeLocal {
		o.fg, o.zg = t.global.Forward(s, b.views, true)
	}
	if t.cfg.Mode.usesCrops() {
		o.fl, o.zl = t.local.Forward(s, b.crops, true)
	}
	terms, total := t.cfg.stepLosses(s, o, b, t.global.Stride())
	if err := s.Err(); err != nil {
		return nil, err
	}
	if err := t.opt.ZeroGrad(); err != nil {
		return nil, err
	}
	if err := total.Backward(); err != nil {
		return nil, err
	}
	if err := t.opt.Step(lr); err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(terms))
	for k, v := range terms {
		x, err := v.Item()
		if err != nil {
			return nil, err
		}
		out[k] = x
	}
	if v := out[LossTotal]; math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("loss diverged (%v); lower optim.lr", v)
	}
	return out, nil
}

// finish writes the final weights and log.
func (t *trainer) finish(outDir string, records []LogRecord) (Outputs, error) {
	out := Outputs{
		Checkpoint: filepath.Join(outDir, GlobalFile),
		Log:        filepath.Join(outDir, LogFile),
		Iterations: t.total,
	}
	meta := t.meta(t.total)
	meta[MetaNet] = "global"
	if err := t.global.Store().Save(out.Checkpoint, meta); err != nil {
		return Outputs{}, fmt.Errorf("train: %w", err)
	}
	if t.local != nil && t.local != t.global {
		out.LocalCheckpoint = filepath.Join(outDir, LocalFile)
		meta[MetaNet] = "local"
		if err := t.local.Store().Save(out.LocalCheckpoint, meta); err != nil {
			return Outputs{}, fmt.Errorf("train: %w", err)
		}
	}
	if err := checkpoint.WriteLog(out.Log, records); err != nil {
		return Outputs{}, fmt.Errorf("train: %w", err)
	}
	out.FinalLosses = map[string]float64{}
	tail := records[max(len(records)-finalWindow, 0):]
	for _, r := range tail {
		for k, v := range r.Losses {
			out.FinalLosses[k] += v / float64(len(tail))
		}
	}
	return out, nil
}
