package cam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/safetensors"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/schemas"
	"github.com/l2g/l2g/stages"
)

// Checkpoint metadata keys, as the training stage writes them.
const (
	MetaArch       = "arch"
	MetaNumClasses = "num_classes"
	MetaWidth      = "width" // ResNet-38 base width; absent or 0: 64
	MetaNet        = "net"   // "global" or "local" in the final weight files
)

// globalPrefix marks the global net's tensors in a resumable training
// checkpoint (iter_*.safetensors), which also holds the local net and the
// optimizer state.
const globalPrefix = "global/"

// Run loads the checkpoint, computes the CAMs of every image of the list
// and writes OutDir/cams.parquet (and OutDir/cams/<id>_<k>.png with
// WritePNG). Nothing is left at those paths unless the whole run succeeds.
func Run(ctx context.Context, cfg Config, in Inputs, progress stages.ProgressFunc) (Outputs, error) {
	if err := cfg.Validate(); err != nil {
		return Outputs{}, err
	}
	if in.Device != "" {
		cfg.Device = in.Device
	}
	dev, err := resolveDevice(cfg.Device)
	if err != nil {
		return Outputs{}, badinput.New("", "device", "%v", err)
	}
	split, err := data.Open(ctx, data.Spec{Root: in.DataRoot, Kind: in.Kind, List: in.List, Workers: cfg.Workers})
	if err != nil {
		return Outputs{}, fmt.Errorf("cam: %w", err)
	}
	net, err := LoadCheckpoint(in.Checkpoint, dev)
	if err != nil {
		return Outputs{}, fmt.Errorf("cam: %w", err)
	}
	defer net.Store().Close()
	return RunNet(ctx, cfg, net, split, in, progress)
}

// LoadCheckpoint builds the global classifier a training-stage file
// describes (safetensors metadata "arch", "num_classes" and optionally
// "width") on dev and loads its weights, every name matching. It takes the
// final global weight file or a training checkpoint, whose "global/"
// tensors it uses; a local net's weight file is refused. Problems are
// *badinput.Error naming the file and key.
func LoadCheckpoint(path string, dev torch.Device) (nn.Classifier, error) {
	if path == "" {
		return nil, badinput.New("", "checkpoint", "no checkpoint given")
	}
	st, meta, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	field := func(k string) string { return "__metadata__." + k }
	arch := meta[MetaArch]
	if arch == "" {
		return nil, badinput.New(path, field(MetaArch), "missing: the checkpoint must name its architecture")
	}
	nc, err := strconv.Atoi(meta[MetaNumClasses])
	if err != nil || nc < 1 {
		return nil, badinput.New(path, field(MetaNumClasses), "%q is not a positive class count", meta[MetaNumClasses])
	}
	if n := meta[MetaNet]; n != "" && n != "global" {
		return nil, badinput.New(path, field(MetaNet), "%q: CAMs come from the global net", n)
	}
	var opts []nn.Option
	if ws, ok := meta[MetaWidth]; ok {
		w, err := strconv.Atoi(ws)
		if err != nil || w < 0 {
			return nil, badinput.New(path, field(MetaWidth), "%q is not a width (0: the default)", ws)
		}
		if w > 0 {
			opts = append(opts, nn.WithWidth(int64(w)))
		}
	}
	net, err := nn.NewClassifier(arch, nc, dev, opts...)
	if err != nil {
		return nil, badinput.Wrap(path, field(MetaArch), err)
	}
	host, err := nn.HostFromSafetensors(path, st)
	if err == nil {
		lo := nn.LoadOpts{Strict: true, Source: path}
		if hasPrefix(host, globalPrefix) {
			lo.Rename = func(k string) string {
				if name, ok := strings.CutPrefix(k, globalPrefix); ok {
					return name
				}
				return "" // the local net, optimizer and RNG state
			}
		}
		_, _, err = net.Store().LoadHost(host, lo)
	}
	if err != nil {
		net.Store().Close()
		return nil, err
	}
	return net, nil
}

func hasPrefix(m map[string]nn.HostTensor, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// result is one image's normalized CAMs, on its way to the writer.
type result struct {
	idx    int
	w, h   int
	planes [][]float32
}

// RunNet is Run with the network already built (the training stage's
// experiments, tests): it covers split's items and uses in.OutDir, Split
// and RunID. Images are decoded and resized on cfg.Workers goroutines while
// the network runs on this one; CAMs are encoded and written on another.
func RunNet(ctx context.Context, cfg Config, net nn.Classifier, split *data.Split, in Inputs, progress stages.ProgressFunc) (Outputs, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return Outputs{}, err
	}
	if net.NumClasses() != split.NumClasses() {
		return Outputs{}, badinput.New(split.List, "classes", "the network has %d classes, the dataset %d", net.NumClasses(), split.NumClasses())
	}
	if cfg.Threads > 0 {
		if err := torch.SetNumThreads(cfg.Threads); err != nil {
			return Outputs{}, fmt.Errorf("cam: %w", err)
		}
	}
	if in.OutDir == "" {
		return Outputs{}, badinput.New("", "out_dir", "no output directory given")
	}
	outDir, err := filepath.Abs(in.OutDir)
	if err != nil {
		return Outputs{}, fmt.Errorf("cam: output directory: %w", err)
	}
	opt := cfg.Options(split.Kind)
	splitCol := in.Split
	if splitCol == "" {
		splitCol = splitName(split.List)
	}
	out := Outputs{CAMs: filepath.Join(outDir, CAMFile)}
	w, err := camio.Create(out.CAMs, schemas.CAMMeta{
		DType: cfg.DType, ClassNames: split.Classes, Scales: cfg.Scales,
		RunID: in.RunID, ConfigHash: configHash(opt, cfg.DType),
	})
	if err != nil {
		return Outputs{}, err
	}
	defer w.Abort()
	var pngTmp string
	if cfg.WritePNG {
		// PNGs go to a hidden directory renamed into place at the end, so
		// a failed run leaves no partial set behind.
		if pngTmp, err = os.MkdirTemp(outDir, "."+PNGDir+".tmp-"); err != nil {
			return Outputs{}, fmt.Errorf("cam: %w", err)
		}
		defer os.RemoveAll(pngTmp)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sink := newSink(cfg, w, split, splitCol, pngTmp, progress, start)
	results := make(chan result, 4)
	sinkDone := make(chan struct{})
	go func() {
		defer close(sinkDone)
		sink.consume(results, cancel)
	}()
	n, runErr := runImages(ctx, cfg, opt, net, split, results)
	close(results)
	<-sinkDone
	if sink.err != nil { // the cause of a cancellation, if any
		return Outputs{}, sink.err
	}
	if runErr != nil {
		return Outputs{}, runErr
	}
	if err := ctx.Err(); err != nil { // cancelled after the last image
		return Outputs{}, fmt.Errorf("cam: %w", err)
	}
	if err := w.Close(); err != nil {
		return Outputs{}, err
	}
	if cfg.WritePNG {
		out.PNGDir = filepath.Join(outDir, PNGDir)
		if err := os.RemoveAll(out.PNGDir); err != nil {
			return Outputs{}, fmt.Errorf("cam: replace %s: %w", out.PNGDir, err)
		}
		if err := os.Rename(pngTmp, out.PNGDir); err != nil {
			return Outputs{}, fmt.Errorf("cam: %w", err)
		}
	}
	out.Images = n
	out.Seconds = time.Since(start).Seconds()
	return out, nil
}

// runImages prefetches prepared images, runs consecutive images of equal
// size together and hands the results to the sink in list order.
func runImages(ctx context.Context, cfg Config, opt Options, net nn.Classifier, split *data.Split, results chan<- result) (int, error) {
	order := make([]int, len(split.Items))
	for i := range order {
		order[i] = i
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.NumCPU()
	}
	// Enough prepared images to fill a batch while the workers make more;
	// each holds every scale (~17 MB for a VOC image at the default scales).
	pf := data.Prefetch(ctx, order, data.PrefetchOptions{Workers: workers, Depth: workers + cfg.Batch.Images},
		func(ctx context.Context, i int) (*prepared, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			path := split.Items[i].ImagePath
			img, err := data.DecodeImage(path)
			if err != nil {
				return nil, err
			}
			p, err := prepare(img, opt)
			var bad *badinput.Error
			if errors.As(err, &bad) && bad.Path == "" {
				bad.Path = path
			}
			return p, err
		})
	defer pf.Close()

	var (
		group []*prepared
		gidx  []int
		sent  int
	)
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		cls := make([][]int, len(group))
		for j, i := range gidx {
			cls[j] = split.Items[i].Labels
		}
		planes, err := inferGroup(net, group, cls, opt)
		if err != nil {
			return fmt.Errorf("cam: image %s: %w", split.Items[gidx[0]].ImagePath, err)
		}
		for j, i := range gidx {
			select {
			case results <- result{idx: i, w: group[j].w, h: group[j].h, planes: planes[j]}:
				sent++
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		group, gidx = nil, nil
		return nil
	}
	for {
		r, err := pf.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sent, fmt.Errorf("cam: %w", err)
		}
		p := r.Value
		if len(group) > 0 && (len(group) == cfg.Batch.Images || p.w != group[0].w || p.h != group[0].h) {
			if err := flush(); err != nil {
				return sent, err
			}
		}
		group = append(group, p)
		gidx = append(gidx, r.Index)
	}
	return sent, flush()
}

// sink encodes and writes results in arrival (list) order: the Parquet
// rows on its own goroutine, the PNGs on a few more, since each file is
// fsynced.
type sink struct {
	cfg      Config
	w        *camio.Writer
	split    *data.Split
	splitCol string
	pngDir   string
	progress stages.ProgressFunc
	start    time.Time

	err   error // first error; set before cancel, read after consume returns
	pngs  sync.WaitGroup
	slots chan struct{}
	mu    sync.Mutex
	pngEr error
}

// pngWriters is how many PNG files are written at once.
const pngWriters = 4

func newSink(cfg Config, w *camio.Writer, split *data.Split, splitCol, pngDir string, progress stages.ProgressFunc, start time.Time) *sink {
	return &sink{cfg: cfg, w: w, split: split, splitCol: splitCol, pngDir: pngDir, progress: progress,
		start: start, slots: make(chan struct{}, pngWriters)}
}

// consume writes every result; on the first error it records it, cancels
// the run and drains the channel.
func (s *sink) consume(results <-chan result, cancel context.CancelFunc) {
	done := 0
	total := len(s.split.Items)
	for r := range results {
		if s.err != nil {
			continue
		}
		if err := s.write(r); err != nil {
			s.err = err
			cancel()
			continue
		}
		done++
		rate := float64(done) / time.Since(s.start).Seconds()
		s.progress.Report(stages.Progress{
			Stage: StageName, Iteration: done, Total: total, ItemsPerS: rate,
			ETASeconds: float64(total-done) / rate, Message: "computing CAMs",
		})
	}
	s.pngs.Wait()
	if s.err == nil {
		s.err = s.pngEr
	}
}

func (s *sink) write(r result) error {
	it := s.split.Items[r.idx]
	var rec *camio.Record
	if s.cfg.DType == schemas.CAMUint8 || s.pngDir != "" {
		var err error
		if rec, err = uint8Record(it, s.splitCol, r); err != nil {
			return err
		}
	}
	var err error
	if s.cfg.DType == schemas.CAMUint8 {
		err = s.w.AppendRecord(rec)
	} else {
		err = s.w.Append(it.ID, s.splitCol, r.h, r.w, it.Labels, r.planes)
	}
	if err != nil {
		return err
	}
	if s.pngDir == "" || len(rec.ClassIDs) == 0 {
		return nil
	}
	s.mu.Lock()
	perr := s.pngEr
	s.mu.Unlock()
	if perr != nil {
		return perr
	}
	s.slots <- struct{}{}
	s.pngs.Add(1)
	go func() {
		defer func() { <-s.slots; s.pngs.Done() }()
		if err := camio.WritePNGs(s.pngDir, rec); err != nil {
			s.mu.Lock()
			if s.pngEr == nil {
				s.pngEr = fmt.Errorf("cam: PNGs of %s: %w", it.ID, err)
			}
			s.mu.Unlock()
		}
	}()
	return nil
}

// uint8Record encodes an image's CAMs as camio stores uint8 values: the
// float32 product v·255, clamped to [0, 255] and rounded half to even
// (OpenCV's saturate_cast in the reference's cv2.imwrite). A test checks
// that it matches camio.Writer.Append byte for byte.
func uint8Record(it data.Item, split string, r result) (*camio.Record, error) {
	n := r.w * r.h
	rec := &camio.Record{ID: it.ID, Split: split, H: r.h, W: r.w, ClassIDs: it.Labels, DType: schemas.CAMUint8,
		Data: make([]byte, len(r.planes)*n)}
	for p, plane := range r.planes {
		if len(plane) != n {
			return nil, fmt.Errorf("cam: image %q: plane %d has %d values, want %d", it.ID, p, len(plane), n)
		}
		dst := rec.Data[p*n : (p+1)*n]
		for i, v := range plane {
			if v != v {
				return nil, fmt.Errorf("cam: image %q class %d: value %d is NaN", it.ID, it.Labels[p], i)
			}
			dst[i] = uint8(math.RoundToEven(float64(min(max(v*255, 0), 255))))
		}
	}
	return rec, nil
}
