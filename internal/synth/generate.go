// Package synth generates the synthetic VOC-layout dataset used by the demo
// and the tests: cluttered textured backgrounds with 1–3 objects, each a
// large, weakly class-coloured body carrying a small, class-distinctive
// part, so that a classifier can name the class from the part while the
// segmentation target is the whole object (see SYNTH-RECIPE.md, "v3").
package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
)

// Options describe a dataset. Everything except Workers is written to
// synth.json: the same options give byte-identical files.
type Options struct {
	Classes  int       `json:"classes"`
	Train    int       `json:"train"`
	Val      int       `json:"val"`
	Width    int       `json:"width"`
	Height   int       `json:"height"`
	Seed     uint64    `json:"seed"`
	Quality  int       `json:"jpeg_quality"` // 0 = 95
	Saliency bool      `json:"saliency"`     // also write Sal/<id>.png
	Geometry *Geometry `json:"geometry"`     // nil = DefaultGeometry(Width, Height, Classes)
	Workers  int       `json:"-"`            // rendering goroutines; 0 = all cores
}

// DefaultOptions is the v3 dataset: 5 classes, 4000 training and 300
// validation images of 96×96.
func DefaultOptions() Options {
	return Options{Classes: 5, Train: 4000, Val: 300, Width: 96, Height: 96, Quality: 95}
}

// Split tells training images from validation images; it is part of every
// image's random stream.
type Split int

const (
	Train Split = iota
	Val
)

func (s Split) String() string {
	if s == Val {
		return "val"
	}
	return "train"
}

// ID returns the id of image i of split s: synth_000123 or synth_val_000012.
func ID(s Split, i int) string {
	if s == Val {
		return fmt.Sprintf("synth_val_%06d", i)
	}
	return fmt.Sprintf("synth_%06d", i)
}

// ClassNames returns the names of k classes ("red_square", …).
func ClassNames(k int) []string {
	out := make([]string, k)
	for c := range out {
		out[c] = Style(c).Name
	}
	return out
}

// resolve validates o and fills in defaults; problems are bad input named
// by the CLI flag or geometry field.
func (o Options) resolve() (Options, error) {
	switch {
	case o.Classes < 1 || o.Classes > MaxClasses:
		return o, badinput.New("", "classes", "%d classes, want 1..%d", o.Classes, MaxClasses)
	case o.Train < 1:
		return o, badinput.New("", "train", "%d training images, want at least 1", o.Train)
	case o.Val < 0:
		return o, badinput.New("", "val", "%d validation images", o.Val)
	case o.Width < 16 || o.Height < 16:
		return o, badinput.New("", "size", "%dx%d, want at least 16x16", o.Width, o.Height)
	case o.Quality < 0 || o.Quality > 100:
		return o, badinput.New("", "quality", "JPEG quality %d, want 1..100", o.Quality)
	}
	if o.Quality == 0 {
		o.Quality = 95
	}
	g := DefaultGeometry(o.Width, o.Height, o.Classes)
	if o.Geometry != nil {
		g = *o.Geometry
	}
	if err := g.validate(o.Width, o.Height); err != nil {
		return o, badinput.Wrap("", "", err)
	}
	o.Geometry = &g
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	return o, nil
}

// splitmix64 is a strong 64-bit mixer; it turns (seed, split, index) into
// unrelated PCG seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// rngFor is the random stream of one image (stream 0: the image, 1: its
// saliency noise). It depends only on its arguments, so the output does not
// depend on how images are spread over workers.
func rngFor(seed uint64, s Split, index int, stream uint64) *rand.Rand {
	h := splitmix64(seed ^ splitmix64(uint64(s)<<56^uint64(index)<<2^stream))
	return rand.New(rand.NewPCG(h, splitmix64(h)))
}

// Render draws image index of split s exactly as Generate writes it.
func Render(o Options, s Split, index int) (Sample, error) {
	o, err := o.resolve()
	if err != nil {
		return Sample{}, err
	}
	r := newRenderer(*o.Geometry, o.Width, o.Height, o.Classes)
	smp, _ := r.renderAt(o, s, index)
	return smp, nil
}

func (r *renderer) renderAt(o Options, s Split, index int) (Sample, []object) {
	var salRng *rand.Rand
	if o.Saliency {
		salRng = rngFor(o.Seed, s, index, 1)
	}
	return r.render(rngFor(o.Seed, s, index, 0), salRng)
}

// Summary describes a generated dataset.
type Summary struct {
	Dir   string
	Train int
	Val   int
	Files int // files written
}

// ioWriters is how many files are written at once: each write is fsynced
// (internal/artifacts), and concurrent fsyncs share journal commits, which
// is what makes thousands of small files take seconds.
const ioWriters = 32

type fileWrite struct {
	path string
	data []byte
}

// MetaFile is the file describing a generated dataset; it is written last,
// so its presence marks a complete dataset.
const MetaFile = "synth.json"

// Generate writes a VOC-layout dataset under out: JPEGImages/<id>.jpg,
// SegmentationClass/<id>.png and SegmentationClassAug/<id>.png (identical
// VOC palette PNGs), Sal/<id>.png when asked for, the lists train_cls.txt,
// val_cls.txt, train_aug.txt, train.txt, val.txt, classes.txt and, last,
// synth.json. Each file is written atomically; images are rendered on
// Workers goroutines.
func Generate(ctx context.Context, out string, o Options) (Summary, error) {
	o, err := o.resolve()
	if err != nil {
		return Summary{}, err
	}
	// A dataset without synth.json is incomplete.
	err = os.Remove(filepath.Join(out, MetaFile))
	rerun := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Summary{}, fmt.Errorf("synth: %w", err)
	}
	r := newRenderer(*o.Geometry, o.Width, o.Height, o.Classes)
	pngs := data.NewPNGEncoder()
	labels := [2][][]int{make([][]int, o.Train), make([][]int, o.Val)}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type job struct {
		s Split
		i int
	}
	jobs := make(chan job)
	writes := make(chan fileWrite, 4*ioWriters)
	var gen, wr sync.WaitGroup
	var nfiles int
	var mu sync.Mutex

	wr.Add(ioWriters)
	for range ioWriters {
		go func() {
			defer wr.Done()
			for f := range writes {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := artifacts.WriteFile(f.path, f.data); err != nil {
					cancel(fmt.Errorf("synth: %w", err))
					continue
				}
				mu.Lock()
				nfiles++
				mu.Unlock()
			}
		}()
	}
	gen.Add(o.Workers)
	for range o.Workers {
		go func() {
			defer gen.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				fw, lab, err := encode(r, pngs, o, out, j.s, j.i)
				if err != nil {
					cancel(err)
					continue
				}
				labels[j.s][j.i] = lab
				for _, f := range fw {
					writes <- f
				}
			}
		}()
	}
feed:
	for _, s := range []Split{Train, Val} {
		n := o.Train
		if s == Val {
			n = o.Val
		}
		for i := range n {
			select {
			case jobs <- job{s, i}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	gen.Wait()
	close(writes)
	wr.Wait()
	if err := context.Cause(ctx); err != nil {
		return Summary{}, err
	}

	lists := listFiles(o, labels)
	for _, name := range []string{"val_cls.txt", "val.txt"} {
		if _, ok := lists[name]; !ok && rerun {
			// No validation split: drop the lists of an earlier synth run
			// (only then: out might be someone's real dataset).
			if err := os.Remove(filepath.Join(out, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return Summary{}, fmt.Errorf("synth: %w", err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(lists)) {
		if err := artifacts.WriteFile(filepath.Join(out, name), lists[name]); err != nil {
			return Summary{}, fmt.Errorf("synth: %w", err)
		}
		nfiles++
	}
	meta, err := json.MarshalIndent(struct {
		Recipe  string  `json:"recipe"`
		Options Options `json:"options"`
	}{"v3", o}, "", "  ")
	if err != nil {
		return Summary{}, fmt.Errorf("synth: %w", err)
	}
	if err := artifacts.WriteFile(filepath.Join(out, MetaFile), append(meta, '\n')); err != nil {
		return Summary{}, fmt.Errorf("synth: %w", err)
	}
	return Summary{Dir: out, Train: o.Train, Val: o.Val, Files: nfiles + 1}, nil
}

// encode renders one image and returns its files and labels.
func encode(r *renderer, pngs *data.PNGEncoder, o Options, out string, s Split, i int) ([]fileWrite, []int, error) {
	smp, _ := r.renderAt(o, s, i)
	id := ID(s, i)
	var jb, mb bytes.Buffer
	if err := data.EncodeJPEG(&jb, smp.Image, o.Quality); err != nil {
		return nil, nil, fmt.Errorf("synth: %s: %w", id, err)
	}
	if err := pngs.Index(&mb, smp.Mask); err != nil {
		return nil, nil, fmt.Errorf("synth: %s: %w", id, err)
	}
	fw := []fileWrite{
		{filepath.Join(out, data.DirImages, id+".jpg"), jb.Bytes()},
		{filepath.Join(out, data.DirMasks, id+".png"), mb.Bytes()},
		{filepath.Join(out, data.DirMasksAug, id+".png"), mb.Bytes()},
	}
	if smp.Sal != nil {
		var sb bytes.Buffer
		if err := pngs.Gray(&sb, smp.Sal); err != nil {
			return nil, nil, fmt.Errorf("synth: %s: %w", id, err)
		}
		fw = append(fw, fileWrite{filepath.Join(out, data.DirSal, id+".png"), sb.Bytes()})
	}
	return fw, smp.Labels, nil
}

// listFiles renders the list files in the reference formats.
func listFiles(o Options, labels [2][][]int) map[string][]byte {
	out := map[string][]byte{}
	var cls, pairs [2]bytes.Buffer
	for _, s := range []Split{Train, Val} {
		for i, lab := range labels[s] {
			id := ID(s, i)
			cls[s].WriteString(id)
			for _, k := range lab {
				cls[s].WriteString(" " + strconv.Itoa(k))
			}
			cls[s].WriteByte('\n')
			fmt.Fprintf(&pairs[s], "/%s/%s.jpg /%s/%s.png\n", data.DirImages, id, data.DirMasksAug, id)
		}
	}
	out["train_cls.txt"] = cls[Train].Bytes()
	out["train_aug.txt"] = pairs[Train].Bytes()
	out["train.txt"] = pairs[Train].Bytes()
	if o.Val > 0 {
		out["val_cls.txt"] = cls[Val].Bytes()
		out["val.txt"] = pairs[Val].Bytes()
	}
	out[data.ClassesFile] = []byte(strings.Join(ClassNames(o.Classes), "\n") + "\n")
	return out
}
