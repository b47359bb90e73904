// Package segtrain is the segmentation stage of the L2G pipeline (spec §8):
// DeepLab-v2 (ResNet-101, multi-scale inputs) trained on the pseudo-labels
// — read from the pseudo-label Parquet export, or from a directory of PNG
// masks — with deeplab-pytorch's augmentation, loss and schedule, resumable
// checkpoints, and test-time inference at full size with optional dense
// CRF post-processing, writing VOC palette PNGs, a Parquet dataset in the
// pseudo-label schema and segmentation-protocol metrics.
package segtrain

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"time"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/checkpoint"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/stages"
)

// Stage names reported in progress.
const (
	StageName     = "segtrain"
	TestStageName = "segtest"
)

// Output names under Inputs.OutDir.
const (
	ModelFile     = "model.safetensors"
	LogFile       = "log.jsonl"
	CheckpointDir = "checkpoints"
	PredDir       = "pred"         // <id>.png, VOC palette
	PredParquet   = "pred.parquet" // schemas.PseudoLabel
	MetricsFile   = "metrics.json"
)

// Inputs name the data, the pseudo-labels, optional starting weights and
// the output folder.
type Inputs struct {
	DataRoot string
	// TrainList is the training list, relative to DataRoot unless absolute;
	// "" means train_aug.txt. Its image-level labels are not used, but a
	// pair or id list needs a class-label list next to it (internal/data).
	TrainList string
	// Labels are the training masks: a pseudo-label Parquet dataset or a
	// directory of <id>.png. Every image of the list needs one.
	Labels string
	// ValList, when set, is predicted after training (see Test); its
	// ground-truth masks, when present, are scored.
	ValList string
	// InitWeights initialises the network (non-strictly): .safetensors
	// or .pth with deeplab-pytorch state_dict names, with or without
	// "base." (see InitSource).
	InitWeights string
	// InitSource is the weights.Source of InitWeights: deeplab-pth or
	// torchvision-resnet101; "" goes by the extension (.safetensors, .pth
	// = deeplab-pth).
	InitSource string
	// ResumeFrom is a checkpoint written by an earlier run with the same
	// config and list; training continues exactly where it stopped.
	ResumeFrom string
	OutDir     string
	// Device is cpu (default), cuda, cuda:N or auto (the first GPU if any).
	Device string
	RunID  string // recorded in the prediction Parquet
}

// Outputs locate what the stage wrote.
type Outputs struct {
	// Checkpoint is the trained network: safetensors with deeplab-pytorch
	// state_dict names and metadata arch, num_classes and model.
	Checkpoint string `json:"checkpoint"`
	// Log holds one JSON record per iteration (LogRecord).
	Log        string  `json:"log"`
	Iterations int     `json:"iterations"`
	FinalLoss  float64 `json:"final_loss"` // mean of the last ≤100 iterations
	// The test-time outputs, when Inputs.ValList is set.
	PredDir     string   `json:"pred_dir,omitempty"`
	PredParquet string   `json:"pred_parquet,omitempty"`
	MetricsFile string   `json:"metrics_file,omitempty"`
	Metrics     *Metrics `json:"metrics,omitempty"`
	Seconds     float64  `json:"seconds"`
}

// LogRecord is one line of the loss log.
type LogRecord struct {
	Iteration  int                `json:"iteration"` // completed iterations, from 1
	Epoch      int                `json:"epoch"`     // of the iteration's first sub-batch, from 0
	LR         float64            `json:"lr"`
	Losses     map[string]float64 `json:"losses"`
	ImagesPerS float64            `json:"images_per_s"`
}

// Loss names: the total and each MSC output's cross-entropy (each already
// divided by ITER_SIZE and summed over the sub-batches, as the total).
const LossTotal = "loss"

var outputLossNames = []string{"ce_1.0", "ce_0.5", "ce_0.75", "ce_max"}

// finalWindow is how many of the last iterations FinalLoss averages.
const finalWindow = 100

// trainer holds one run's network, optimizer and data.
type trainer struct {
	cfg    Config
	split  *data.Split
	dev    torch.Device
	net    nn.Segmenter
	opt    *nn.SGD
	loader *loader
	sched  schedule
	run    checkpoint.Run
	saver  *checkpoint.Saver
}

// Run trains as cfg says, then predicts in.ValList when it is set. It
// reports progress after every iteration (and image), checks ctx between
// iterations and, when cancelled, writes a checkpoint of the finished
// iterations before returning ctx's error.
func Run(ctx context.Context, cfg Config, in Inputs, progress stages.ProgressFunc) (Outputs, error) {
	start := time.Now()
	// libtorch's CPU results differ in the last bits when consecutive calls
	// run on different OS threads (measured: conv bias gradients after a
	// goroutine migrated between steps); one thread per run keeps a resumed
	// run bit-identical to a straight one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cfg.Validate(""); err != nil {
		return Outputs{}, err
	}
	if in.DataRoot == "" {
		return Outputs{}, badinput.New("", "data_root", "no dataset root given")
	}
	if in.OutDir == "" {
		return Outputs{}, badinput.New("", "out_dir", "no output directory given")
	}
	dev, err := resolveDevice(in.Device)
	if err != nil {
		return Outputs{}, badinput.Wrap("", "device", err)
	}
	if err := torch.SetNumThreads(cfg.threads()); err != nil {
		return Outputs{}, fmt.Errorf("segtrain: %w", err)
	}
	list := in.TrainList
	if list == "" {
		list = "train_aug.txt"
	}
	split, err := openSplit(ctx, cfg, in.DataRoot, list)
	if err != nil {
		return Outputs{}, err
	}
	if len(split.Items) == 0 {
		return Outputs{}, badinput.New(split.List, "", "the training list is empty")
	}
	labels, err := openLabels(ctx, in.Labels, split, cfg.Model.NumClasses)
	if err != nil {
		return Outputs{}, err
	}
	t, err := newTrainer(cfg, split, labels, dev, in.OutDir)
	if err != nil {
		return Outputs{}, err
	}
	defer t.close()

	if in.InitWeights != "" && in.ResumeFrom == "" {
		msg, err := loadInit(t.net, in.InitWeights, in.InitSource, cfg.InitExclude)
		if err != nil {
			return Outputs{}, err
		}
		progress.Report(stages.Progress{Stage: StageName, Total: cfg.Iterations, Message: msg})
	}
	done := 0
	var records []LogRecord
	logPath := filepath.Join(in.OutDir, LogFile)
	if in.ResumeFrom != "" {
		if done, _, err = checkpoint.Restore(in.ResumeFrom, t.run, t.parts()); err != nil {
			return Outputs{}, err
		}
		if done > cfg.Iterations {
			return Outputs{}, badinput.New(in.ResumeFrom, MetaIteration, "checkpoint is at iteration %d, past the run's %d", done, cfg.Iterations)
		}
		if records, err = checkpoint.ReadLog(logPath, done, func(r LogRecord) int { return r.Iteration }); err != nil {
			return Outputs{}, err
		}
		t.saver.Resumed(in.ResumeFrom, done)
		progress.Report(stages.Progress{Stage: StageName, Iteration: done, Total: cfg.Iterations, Checkpoint: in.ResumeFrom,
			Message: fmt.Sprintf("resumed from %s at iteration %d", in.ResumeFrom, done)})
	}
	records, err = t.loop(ctx, done, records, logPath, progress)
	if err != nil {
		return Outputs{}, err
	}
	out, err := t.finish(in.OutDir, logPath, records)
	if err != nil {
		return Outputs{}, err
	}
	if in.ValList != "" {
		val, err := openSplit(ctx, cfg, in.DataRoot, in.ValList)
		if err != nil {
			return Outputs{}, err
		}
		tout, err := TestNet(ctx, cfg, t.net, dev, val, TestInputs{OutDir: in.OutDir, RunID: in.RunID, Model: out.Checkpoint}, progress)
		if err != nil {
			return Outputs{}, err
		}
		out.PredDir, out.PredParquet, out.MetricsFile, out.Metrics = tout.PredDir, tout.PredParquet, tout.MetricsFile, tout.Metrics
	}
	out.Seconds = time.Since(start).Seconds()
	return out, nil
}

// resolveDevice parses a device name; "auto" is the first GPU when libtorch
// sees one, else the CPU.
func resolveDevice(s string) (torch.Device, error) {
	if s == "auto" {
		if n, err := torch.CUDADeviceCount(); err == nil && n > 0 {
			return torch.CUDA(0), nil
		}
		return torch.CPU(), nil
	}
	return torch.ParseDevice(s)
}

// openSplit opens a list of the dataset and checks its classes against the
// model's.
func openSplit(ctx context.Context, cfg Config, root, list string) (*data.Split, error) {
	kind, err := data.ParseKind(cfg.Dataset)
	if err != nil {
		return nil, badinput.Wrap("", "dataset", err)
	}
	sp, err := data.Open(ctx, data.Spec{Root: root, Kind: kind, List: list, Workers: cfg.Workers})
	if err != nil {
		return nil, err
	}
	if n := sp.NumClasses() + 1; n != cfg.Model.NumClasses {
		return nil, badinput.New(sp.List, "num_classes", "the dataset has %d labels with the background, the model %d", n, cfg.Model.NumClasses)
	}
	return sp, nil
}

func newTrainer(cfg Config, split *data.Split, labels labelSource, dev torch.Device, outDir string) (*trainer, error) {
	ids := make([]string, len(split.Items))
	for i, it := range split.Items {
		ids[i] = it.ID
	}
	def, err := cfg.definingYAML()
	if err != nil {
		return nil, err
	}
	t := &trainer{cfg: cfg, split: split, dev: dev,
		run: checkpoint.Run{Format: CheckpointFormat, Config: def, Fingerprint: checkpoint.Fingerprint(ids), Items: len(ids)}}
	// Seed before building: the random ASPP initialisation is part of the run.
	if err := torch.ManualSeed(cfg.Seed); err != nil {
		return nil, fmt.Errorf("segtrain: %w", err)
	}
	if t.net, err = newModel(cfg.Model, dev); err != nil {
		return nil, err
	}
	if t.opt, err = nn.NewSGD([]*nn.Store{t.net.Store()}, cfg.Optim.Groups, cfg.Optim.Momentum, false); err != nil {
		t.close()
		return nil, badinput.Wrap("", "optim.groups", err)
	}
	smp := augment.Sampler{Seed: cfg.Seed, NoShuffle: !cfg.Shuffle}
	t.sched = schedule{n: len(split.Items), batch: cfg.BatchSize, iterSize: cfg.IterSize, sampler: smp}
	t.loader = &loader{aug: cfg.deepLab(), split: split, labels: labels, sampler: smp}
	t.saver = &checkpoint.Saver{Dir: filepath.Join(outDir, CheckpointDir), Keep: cfg.KeepCheckpoints}
	return t, nil
}

func (t *trainer) close() {
	if t.opt != nil {
		t.opt.Close()
	}
	if t.net != nil {
		t.net.Store().Close()
	}
}

// parts are what a checkpoint holds besides the RNG state.
func (t *trainer) parts() []checkpoint.Part {
	return []checkpoint.Part{checkpoint.StorePart(prefixNet, t.net.Store()), checkpoint.OptimPart(prefixOptim, t.opt)}
}

func (t *trainer) loop(ctx context.Context, done int, records []LogRecord, logPath string, progress stages.ProgressFunc) ([]LogRecord, error) {
	total := t.cfg.Iterations
	codes, sizes := t.sched.codes(done, total, t.loader.code)
	workers := t.cfg.workers()
	pf := data.Prefetch(ctx, codes, data.PrefetchOptions{Workers: workers, Depth: max(2*workers, 2*t.cfg.BatchSize*t.cfg.IterSize)}, t.loader.load)
	defer pf.Close()
	meta, err := modelMeta(t.cfg.Model, 0)
	if err != nil {
		return records, err
	}
	t.saver.Write = func(path string, it int) error {
		if err := checkpoint.Save(path, t.run, it, t.parts(), meta); err != nil {
			return fmt.Errorf("segtrain: %w", err)
		}
		return checkpoint.WriteLog(logPath, records)
	}
	sessionStart, sessionFirst := time.Now(), done
	images := 0
	for done < total {
		if err := ctx.Err(); err != nil {
			return records, t.saver.Interrupted(StageName, done, err)
		}
		subs := make([][]*example, t.cfg.IterSize)
		n := 0
		for j := range subs {
			subs[j] = make([]*example, sizes[(done-sessionFirst)*t.cfg.IterSize+j])
			for i := range subs[j] {
				r, err := pf.Next()
				if err != nil {
					if ctx.Err() != nil {
						return records, t.saver.Interrupted(StageName, done, ctx.Err())
					}
					return records, fmt.Errorf("segtrain: iteration %d: %w", done+1, err)
				}
				subs[j][i] = r.Value
			}
			n += len(subs[j])
		}
		lr := t.cfg.Optim.LRAt(done, total)
		stepStart := time.Now()
		losses, err := t.step(subs, lr)
		if err != nil {
			return records, fmt.Errorf("segtrain: iteration %d: %w", done+1, err)
		}
		done++
		images += n
		records = append(records, LogRecord{Iteration: done, Epoch: (done - 1) * t.cfg.IterSize / t.sched.perEpoch(), LR: lr,
			Losses: losses, ImagesPerS: float64(n) / time.Since(stepStart).Seconds()})
		if done == total || (t.cfg.CheckpointEvery > 0 && done%t.cfg.CheckpointEvery == 0) {
			if err := t.saver.Save(done); err != nil {
				return records, err
			}
		}
		elapsed := time.Since(sessionStart).Seconds()
		progress.Report(stages.Progress{
			Stage: StageName, Iteration: done, Total: total, Losses: losses, LR: lr,
			ItemsPerS: float64(images) / elapsed, ETASeconds: elapsed / float64(done-sessionFirst) * float64(total-done),
			Checkpoint: t.saver.Last,
		})
	}
	return records, nil
}

// step accumulates the gradients of the sub-batches and applies one
// update: per sub-batch, the cross-entropy (ignore 255, mean over labelled
// pixels) of each MSC output against the labels resized to its size, summed
// and divided by ITER_SIZE (deeplab-pytorch main.py:train).
func (t *trainer) step(subs [][]*example, lr float64) (map[string]float64, error) {
	if err := t.opt.ZeroGrad(); err != nil {
		return nil, err
	}
	losses := map[string]float64{LossTotal: 0}
	for _, exs := range subs {
		if err := t.subStep(exs, losses); err != nil {
			return nil, err
		}
	}
	if v := losses[LossTotal]; math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("loss diverged (%v); lower optim.lr", v)
	}
	if err := t.opt.Step(lr); err != nil {
		return nil, err
	}
	return losses, nil
}

func (t *trainer) subStep(exs []*example, losses map[string]float64) error {
	s := torch.NewScope()
	defer s.Close()
	crop := t.cfg.Augment.Crop
	outs := t.net.Forward(s, inputs(s, exs, crop, t.cfg.Augment.InputScale, t.dev), true)
	if err := s.Err(); err != nil {
		return err
	}
	inv := 1 / float64(t.cfg.IterSize)
	var total *torch.Tensor
	terms := make([]*torch.Tensor, len(outs))
	for i, o := range outs {
		lab, valid, err := targets(s, exs, crop, o.Size(2), o.Size(3), t.dev)
		if err != nil {
			return err
		}
		if valid == 0 {
			continue // every pixel ignored: the mean would be 0/0
		}
		terms[i] = s.MulScalar(s.CrossEntropy(o, lab, ignoreLabel, torch.ReduceMean), inv)
		if total == nil {
			total = terms[i]
		} else {
			total = s.Add(total, terms[i])
		}
	}
	if err := s.Err(); err != nil {
		return err
	}
	if total == nil {
		return nil
	}
	if err := total.Backward(); err != nil {
		return err
	}
	for i, x := range terms {
		if x == nil {
			continue
		}
		v, err := x.Item()
		if err != nil {
			return err
		}
		losses[lossName(i)] += v
		losses[LossTotal] += v
	}
	return nil
}

func lossName(i int) string {
	if i < len(outputLossNames) {
		return outputLossNames[i]
	}
	return fmt.Sprintf("ce_%d", i)
}

// finish writes the final weights and the log.
func (t *trainer) finish(outDir, logPath string, records []LogRecord) (Outputs, error) {
	out := Outputs{Checkpoint: filepath.Join(outDir, ModelFile), Log: logPath, Iterations: t.cfg.Iterations}
	meta, err := modelMeta(t.cfg.Model, t.cfg.Iterations)
	if err != nil {
		return Outputs{}, err
	}
	if err := t.net.Store().Save(out.Checkpoint, meta); err != nil {
		return Outputs{}, fmt.Errorf("segtrain: %w", err)
	}
	if err := checkpoint.WriteLog(logPath, records); err != nil {
		return Outputs{}, err
	}
	tail := records[max(len(records)-finalWindow, 0):]
	for _, r := range tail {
		out.FinalLoss += r.Losses[LossTotal] / float64(len(tail))
	}
	return out, nil
}
