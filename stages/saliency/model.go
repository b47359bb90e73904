package saliency

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/stages"
)

// Output activations of a saliency network.
const (
	ActSigmoid = "sigmoid" // the net returns logits (PoolNet)
	ActNone    = "none"    // the net returns scores in [0, 1]
	ActMinMax  = "minmax"  // any scale: each map is min-max normalized
)

// ModelConfig runs a user-exported TorchScript saliency network: forward
// takes x (N, 3, H, W) float32 and returns (N, 1, h, w) or (N, h, w) scores
// (a tuple or list output is read from its first tensor). A traced PoolNet
// wants the settings of the PoolNet method.
type ModelConfig struct {
	Path      string `yaml:"path"`       // TorchScript file (torch.jit.save)
	Device    string `yaml:"device"`     // auto (first GPU when present), cpu, cuda or cuda:N
	BatchSize int    `yaml:"batch_size"` // images per forward
	// InputSize [H, W] resizes every image (bilinear) so any batch can be
	// formed; empty feeds native sizes and batches consecutive images of
	// equal size. Maps are resized back to the image size either way.
	InputSize  []int     `yaml:"input_size"`
	Scale      float64   `yaml:"scale"` // pixel (0..255) multiplier before mean/std
	BGR        bool      `yaml:"bgr"`   // channel order B, G, R (Caffe-style nets)
	Mean       []float64 `yaml:"mean"`  // per input channel, after Scale
	Std        []float64 `yaml:"std"`
	Activation string    `yaml:"activation"` // sigmoid, none or minmax
}

// DefaultModelConfig is ImageNet normalization of RGB in [0, 1], logits out.
func DefaultModelConfig() ModelConfig {
	return ModelConfig{
		Device:     "auto",
		BatchSize:  8,
		Scale:      1.0 / 255,
		Mean:       []float64{0.485, 0.456, 0.406},
		Std:        []float64{0.229, 0.224, 0.225},
		Activation: ActSigmoid,
	}
}

// PoolNet sets the input normalization and activation of PoolNet (Liu et
// al., CVPR 2019), the network behind the reference's maps: BGR 0..255
// minus the Caffe mean, logits out, native image size.
func (m ModelConfig) PoolNet() ModelConfig {
	m.Scale, m.BGR = 1, true
	m.Mean = []float64{104.00699, 116.66877, 122.67892}
	m.Std = []float64{1, 1, 1}
	m.Activation, m.InputSize = ActSigmoid, nil
	return m
}

func (m ModelConfig) validate() error {
	bad := func(field, format string, args ...any) error {
		return badinput.New(m.Path, "saliency.model."+field, format, args...)
	}
	switch {
	case m.Path == "":
		return bad("path", "method torchscript needs a TorchScript file")
	case m.BatchSize < 1:
		return bad("batch_size", "%d, want >= 1", m.BatchSize)
	case len(m.InputSize) != 0 && (len(m.InputSize) != 2 || m.InputSize[0] < 1 || m.InputSize[1] < 1):
		return bad("input_size", "%v, want [H, W] with positive sides, or empty", m.InputSize)
	case !(m.Scale > 0):
		return bad("scale", "%g, want > 0", m.Scale)
	case len(m.Mean) != 3:
		return bad("mean", "%d values, want 3", len(m.Mean))
	case len(m.Std) != 3 || m.Std[0] == 0 || m.Std[1] == 0 || m.Std[2] == 0:
		return bad("std", "%v, want 3 non-zero values", m.Std)
	}
	switch m.Activation {
	case ActSigmoid, ActNone, ActMinMax:
	default:
		return bad("activation", "%q, want %s, %s or %s", m.Activation, ActSigmoid, ActNone, ActMinMax)
	}
	if _, err := m.device(); err != nil {
		return bad("device", "%v", err)
	}
	return nil
}

// device resolves "auto" to the first GPU when libtorch sees one.
func (m ModelConfig) device() (torch.Device, error) {
	if m.Device == "auto" || m.Device == "" {
		if n, err := torch.CUDADeviceCount(); err == nil && n > 0 {
			return torch.CUDA(0), nil
		}
		return torch.CPU(), nil
	}
	return torch.ParseDevice(m.Device)
}

// prepared is a decoded, normalized image waiting for its batch.
type prepared struct {
	idx    int
	w, h   int
	input  []float32 // (3, h, w), normalized
	reused *Map      // Resume found a finished map
	bad    *badinput.Error
}

// runModel decodes and normalizes images on the worker goroutines, runs the
// network on batches in item order on one goroutine, and encodes and writes
// the maps on the workers again.
func runModel(ctx context.Context, mc ModelConfig, workers int, in Inputs, progress stages.ProgressFunc) (Outputs, error) {
	dir, err := filepath.Abs(in.OutDir)
	if err != nil {
		return Outputs{}, fmt.Errorf("output directory: %w", err)
	}
	if _, err := os.Stat(mc.Path); err != nil {
		return Outputs{}, badinput.Wrap(mc.Path, "saliency.model.path", err)
	}
	dev, err := mc.device()
	if err != nil {
		return Outputs{}, badinput.New(mc.Path, "saliency.model.device", "%v", err)
	}
	mod, err := torch.LoadModule(mc.Path, dev)
	if err != nil {
		return Outputs{}, badinput.New(mc.Path, "saliency.model.path", "load TorchScript on %s: %w", dev, err)
	}
	defer mod.Close()

	order := make([]int, len(in.Items))
	for i := range order {
		order[i] = i
	}
	p := data.Prefetch(ctx, order, data.PrefetchOptions{Workers: workers}, func(ctx context.Context, i int) (prepared, error) {
		if err := ctx.Err(); err != nil {
			return prepared{}, err
		}
		it := in.Items[i]
		if in.Resume {
			if m, ok := reusable(mapPath(dir, it.ID), it); ok {
				return prepared{idx: i, reused: &m}, nil
			}
		}
		img, err := data.DecodeImage(it.ImagePath)
		if err != nil {
			return prepared{idx: i, bad: asBad(it.ImagePath, err)}, nil
		}
		return prepared{idx: i, w: img.W, h: img.H, input: mc.normalize(img)}, nil
	})
	defer p.Close()

	w := newWriter(workers)
	enc := data.NewPNGEncoder()
	maps := make([]Map, len(in.Items))
	var errs badinput.List
	start := time.Now()
	done := 0
	report := func(n int) {
		done += n
		rate := float64(done) / time.Since(start).Seconds()
		progress.Report(stages.Progress{
			Stage: StageName, Iteration: done, Total: len(in.Items), Message: "running saliency model",
			ItemsPerS: rate, ETASeconds: float64(len(in.Items)-done) / rate,
		})
	}
	var batch []prepared
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		outs, err := mc.forward(mod, dev, batch)
		if err != nil {
			return err
		}
		for k, g := range outs {
			idx := batch[k].idx
			id := in.Items[idx].ID
			w.write(func() error {
				m, err := writeMap(enc, mapPath(dir, id), id, g)
				maps[idx] = m // each goroutine writes its own element
				return err
			})
		}
		report(len(batch))
		batch = batch[:0:0]
		return nil
	}
	fail := func(err error) (Outputs, error) {
		w.wait()
		return Outputs{}, err
	}
	for {
		r, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		v := r.Value
		switch {
		case v.bad != nil:
			errs.Add(v.bad)
			report(1)
			continue
		case v.reused != nil:
			maps[v.idx] = *v.reused
			report(1)
			continue
		}
		if len(batch) > 0 && (len(batch) == mc.BatchSize || len(mc.InputSize) == 0 && (v.w != batch[0].w || v.h != batch[0].h)) {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
		batch = append(batch, v)
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if err := w.wait(); err != nil {
		return Outputs{}, err
	}
	if err := errs.Err(); err != nil {
		return Outputs{}, err
	}
	return Outputs{Dir: dir, Maps: maps}, nil
}

// normalize returns img as (3, H, W) float32 in the network's channel order
// and scale.
func (m ModelConfig) normalize(img *imaging.RGB) []float32 {
	n := img.W * img.H
	out := make([]float32, 3*n)
	for c := range 3 {
		src := c
		if m.BGR {
			src = 2 - c
		}
		k := float32(m.Scale / m.Std[c])
		b := float32(-m.Mean[c] / m.Std[c])
		plane := out[c*n : (c+1)*n]
		for i := range plane {
			plane[i] = float32(img.Pix[3*i+src])*k + b
		}
	}
	return out
}

// forward runs one batch and returns each image's map at its own size.
func (m ModelConfig) forward(mod *torch.Module, dev torch.Device, batch []prepared) ([]*imaging.Gray, error) {
	sc := torch.NewNoGradScope()
	defer sc.Close()
	xs := make([]*torch.Tensor, len(batch))
	for k, b := range batch {
		x := sc.To(sc.FromFloat32(b.input, 1, 3, int64(b.h), int64(b.w)), torch.Opts{DType: torch.Float32, Device: dev})
		if len(m.InputSize) == 2 && (m.InputSize[0] != b.h || m.InputSize[1] != b.w) {
			x = sc.Interpolate(x, int64(m.InputSize[0]), int64(m.InputSize[1]), torch.Bilinear, false)
		}
		xs[k] = x
	}
	x := xs[0]
	if len(xs) > 1 {
		x = sc.Cat(xs, 0)
	}
	y := sc.Forward(mod, x)
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("model %s: forward of %d images: %w", m.Path, len(batch), err)
	}
	shape := y.Shape()
	n := int64(len(batch))
	switch {
	case len(shape) == 3 && shape[0] == n:
		y = sc.Unsqueeze(y, 1)
	case len(shape) == 4 && shape[0] == n && shape[1] == 1:
	default:
		return nil, badinput.New(m.Path, "saliency.model.path", "output shape %v for %d input images: want (N, 1, h, w) or (N, h, w)", shape, n)
	}
	y = sc.To(y, torch.Opts{DType: torch.Float32, Device: dev})
	switch m.Activation {
	case ActSigmoid:
		y = sc.Sigmoid(y)
	case ActMinMax:
		dims := []int64{1, 2, 3}
		lo := sc.Amin(y, dims, true)
		span := sc.ClampMin(sc.Sub(sc.Amax(y, dims, true), lo), 1e-12)
		y = sc.Div(sc.Sub(y, lo), span)
	}
	outs := make([]*imaging.Gray, len(batch))
	for k, b := range batch {
		yk := sc.Narrow(y, 0, int64(k), 1)
		if yk != nil && (yk.Size(2) != int64(b.h) || yk.Size(3) != int64(b.w)) {
			yk = sc.Interpolate(yk, int64(b.h), int64(b.w), torch.Bilinear, false)
		}
		yk = sc.To(sc.Round(sc.MulScalar(sc.Clamp(yk, 0, 1), 255)), torch.Opts{DType: torch.Uint8, Device: torch.CPU()})
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("model %s: output %d: %w", m.Path, k, err)
		}
		pix, err := yk.Uint8s()
		if err != nil {
			return nil, fmt.Errorf("model %s: output %d: %w", m.Path, k, err)
		}
		outs[k] = &imaging.Gray{W: b.w, H: b.h, Pix: pix}
	}
	return outs, nil
}

// writer encodes and writes maps on up to n goroutines while the network
// runs; wait returns the first error.
type writer struct {
	sem chan struct{}
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func newWriter(n int) *writer {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	return &writer{sem: make(chan struct{}, n)}
}

func (w *writer) write(job func() error) {
	w.sem <- struct{}{}
	w.wg.Add(1)
	go func() {
		defer func() { <-w.sem; w.wg.Done() }()
		if err := job(); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}()
}

func (w *writer) wait() error {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
