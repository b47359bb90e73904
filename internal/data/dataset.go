// Package data reads PASCAL VOC and MS-COCO style datasets as the L2G
// reference lays them out (root/{JPEGImages,SegmentationClass,
// SegmentationClassAug,Sal} plus list files), decodes and encodes their
// images, masks and saliency maps, checks whole datasets, and prefetches
// decoded items on all cores in a caller-chosen order.
package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/imaging"
)

// Directory names of the VOC/COCO layout.
const (
	DirImages   = "JPEGImages"
	DirMasks    = "SegmentationClass"
	DirMasksAug = "SegmentationClassAug"
	DirSal      = "Sal"
	// ClassesFile is the optional class-name file in the dataset root.
	ClassesFile = "classes.txt"
)

// IgnoreLabel marks mask pixels (object boundaries) excluded from training
// and evaluation.
const IgnoreLabel = 255

// Spec says which list of which dataset to open. Paths other than Root are
// relative to Root unless absolute; they come from configuration and are
// trusted, unlike the paths inside list files.
type Spec struct {
	Root string
	Kind Kind // built-in class names and default mask directory
	// List is the list file: a class-label list ("<id> <k1> <k2> …"), a
	// pair list ("/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png") or
	// a list of ids or image paths, one per line. The format is detected.
	List string
	// Labels is the class-label list giving the labels of a pair or id
	// list, matched by id. Empty: "<stem>_cls.txt" next to List if it
	// exists (train_aug.txt and train.txt → train_cls.txt, val.txt →
	// val_cls.txt), else the labels are derived from the masks.
	Labels string
	// Classes is the class-name file; empty: Root/classes.txt if it exists,
	// else the built-in names of Kind.
	Classes string
	// MaskDir, when set, holds the masks as <id>.png and overrides the
	// list's mask paths (e.g. pseudo-labels for the segmentation stage).
	// Empty: the pair list's paths, else SegmentationClassAug (VOC) or
	// SegmentationClass if that directory exists, else no masks.
	MaskDir string
	// SalDir holds saliency maps <id>.png; empty: Root/Sal if it exists.
	SalDir string
	// Workers decode masks when labels are derived from them; 0 = all cores.
	Workers int
}

// Item is one list entry with resolved paths.
type Item struct {
	ID        string
	ImagePath string
	MaskPath  string // "" when the dataset has no mask for it
	SalPath   string // "" when the dataset has no saliency maps
	Labels    []int  // zero-based foreground classes, sorted, unique
	Line      int    // line of the list file, for error messages
}

// MultiHot returns the label vector of length numClasses (1 for present
// classes), the reference's classification target.
func (it Item) MultiHot(numClasses int) []float32 {
	v := make([]float32, numClasses)
	for _, k := range it.Labels {
		v[k] = 1
	}
	return v
}

// Split is an opened list of a dataset.
type Split struct {
	Root string // absolute dataset root
	Kind Kind
	List string // list file
	// LabelsFrom is the class-label list the labels came from, "" when
	// they were derived from the masks.
	LabelsFrom string
	Classes    []string
	Items      []Item
	byID       map[string]int
}

// NumClasses is the number of foreground classes C (masks hold 0..C, 255).
func (s *Split) NumClasses() int { return len(s.Classes) }

// Lookup returns the position of id in Items.
func (s *Split) Lookup(id string) (int, bool) {
	i, ok := s.byID[id]
	return i, ok
}

// Open reads a list of a dataset. Labels from a separate class-label list
// are matched by id, not by line number: the reference indexes
// train_cls.txt by the line number of train_aug.txt, which silently mixes
// up labels when the two files are not in the same order. All problems in
// the list files are returned at once (a *badinput.List); files are not
// decoded except masks when labels are derived from them.
func Open(ctx context.Context, sp Spec) (*Split, error) {
	var errs badinput.List
	s, err := build(ctx, sp, &errs, true)
	if err != nil {
		return nil, err
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// inRoot resolves a configured path against root.
func inRoot(root, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// classNames resolves the class names of a dataset.
func classNames(root string, kind Kind, file string) ([]string, error) {
	if file == "" {
		if p := filepath.Join(root, ClassesFile); fileExists(p) {
			file = p
		}
	} else {
		file = inRoot(root, file)
	}
	if file == "" {
		return kind.Classes(), nil
	}
	return ReadClasses(file)
}

// labelsFileFor is the class-label list that goes with a pair or id list.
func labelsFileFor(list string) string {
	base := strings.TrimSuffix(filepath.Base(list), filepath.Ext(list))
	base = strings.TrimSuffix(base, "_aug")
	return filepath.Join(filepath.Dir(list), base+"_cls.txt")
}

// build opens a split, adding input problems to errs; the returned error is
// for everything else (cancellation). With derive false, items without a
// label source keep nil labels (Check decodes the masks itself).
func build(ctx context.Context, sp Spec, errs *badinput.List, derive bool) (*Split, error) {
	if sp.Root == "" {
		errs.Add(badinput.New("", "root", "no dataset root given"))
		return nil, nil
	}
	root, err := filepath.Abs(sp.Root)
	if err != nil {
		errs.Add(&badinput.Error{Path: sp.Root, Err: err})
		return nil, nil
	}
	if !isDir(root) {
		errs.Add(badinput.New(root, "", "dataset root is not a directory"))
		return nil, nil
	}
	classes, err := classNames(root, sp.Kind, sp.Classes)
	if err != nil {
		errs.Add(asBadInput(err))
		return nil, nil
	}
	if sp.List == "" {
		errs.Add(badinput.New(root, "list", "no list file given"))
		return nil, nil
	}
	list := inRoot(root, sp.List)
	format, entries := readList(root, list, len(classes), errs)
	s := &Split{Root: root, Kind: sp.Kind, List: list, Classes: classes, byID: make(map[string]int, len(entries))}

	var labels map[string][]int
	switch {
	case format == clsList:
		s.LabelsFrom = list
	case sp.Labels != "":
		s.LabelsFrom = inRoot(root, sp.Labels)
	case fileExists(labelsFileFor(list)):
		s.LabelsFrom = labelsFileFor(list)
	}
	if s.LabelsFrom != "" && s.LabelsFrom != list {
		lf, les := readList(root, s.LabelsFrom, len(classes), errs)
		if lf != clsList && len(les) > 0 {
			errs.Add(badinput.New(s.LabelsFrom, "", "is a %s, not a class-label list", lf))
		}
		labels = make(map[string][]int, len(les))
		for _, e := range les {
			labels[e.id] = e.labels
		}
	}

	maskDir := inRoot(root, sp.MaskDir)
	if maskDir == "" && format != pairList {
		for _, d := range []string{DirMasksAug, DirMasks} {
			if (d == DirMasksAug && sp.Kind == COCO) || !isDir(filepath.Join(root, d)) {
				continue
			}
			maskDir = filepath.Join(root, d)
			break
		}
	}
	salDir := inRoot(root, sp.SalDir)
	if salDir == "" && isDir(filepath.Join(root, DirSal)) {
		salDir = filepath.Join(root, DirSal)
	}

	for _, e := range entries {
		it := Item{ID: e.id, ImagePath: e.image, MaskPath: e.mask, Labels: e.labels, Line: e.line}
		if it.ImagePath == "" {
			it.ImagePath = filepath.Join(root, DirImages, e.id+".jpg")
		}
		if maskDir != "" {
			it.MaskPath = filepath.Join(maskDir, e.id+".png")
		}
		if salDir != "" {
			it.SalPath = filepath.Join(salDir, e.id+".png")
		}
		if labels != nil {
			l, ok := labels[e.id]
			if !ok {
				errs.Add(badinput.AtLine(list, e.line, "id %q has no entry in %s", e.id, s.LabelsFrom))
				continue
			}
			it.Labels = l
		}
		s.byID[it.ID] = len(s.Items)
		s.Items = append(s.Items, it)
	}
	if s.LabelsFrom == "" && derive && len(errs.Errs) == 0 {
		if err := s.deriveLabels(ctx, sp.Workers, errs); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// deriveLabels sets every item's labels to the classes present in its mask
// (excluding 0 = background and 255 = ignore).
func (s *Split) deriveLabels(ctx context.Context, workers int, errs *badinput.List) error {
	order := make([]int, len(s.Items))
	for i := range order {
		order[i] = i
		if s.Items[i].MaskPath == "" {
			errs.Add(badinput.AtLine(s.List, s.Items[i].Line, "id %q: no labels in the list, no class-label list and no mask to derive them from", s.Items[i].ID))
		}
	}
	if len(errs.Errs) > 0 {
		return nil
	}
	c := s.NumClasses()
	p := Prefetch(ctx, order, PrefetchOptions{Workers: workers}, func(_ context.Context, i int) ([]int, error) {
		it := s.Items[i]
		m, err := DecodeMask(it.MaskPath)
		if err != nil {
			return nil, err
		}
		return maskLabels(m, c, it.MaskPath)
	})
	defer p.Close()
	for {
		r, err := p.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var bad *badinput.Error
			if errors.As(err, &bad) {
				errs.Add(bad)
				return nil
			}
			return err
		}
		s.Items[r.Index].Labels = r.Value
	}
}

// maskLabels returns the zero-based classes present in m and checks that
// every value is a label 0..c or 255.
func maskLabels(m *imaging.Gray, c int, path string) ([]int, error) {
	var present [256]bool
	for _, v := range m.Pix {
		present[v] = true
	}
	var out []int
	for v := 1; v < 255; v++ {
		if !present[v] {
			continue
		}
		if v > c {
			return nil, badinput.New(path, "value", "mask value %d is not a label 0..%d or %d", v, c, IgnoreLabel)
		}
		out = append(out, v-1)
	}
	return out, nil
}

// MaskLabels returns the zero-based foreground classes present in a mask
// (values 1..numClasses; 0 and 255 are not classes), or an error naming the
// first value that is not a label.
func MaskLabels(m *imaging.Gray, numClasses int) ([]int, error) {
	return maskLabels(m, numClasses, "")
}

func asBadInput(err error) *badinput.Error {
	var bad *badinput.Error
	if errors.As(err, &bad) {
		return bad
	}
	return &badinput.Error{Err: err}
}

// Sample is a decoded item.
type Sample struct {
	Item
	Image *imaging.RGB
	Mask  *imaging.Gray // nil when the item has no mask
	Sal   *imaging.Gray // nil when the item has no saliency map
}

// Load decodes item i: image, mask and saliency when present. The mask and
// saliency must have the image's size and the mask values must be labels.
// It has the signature Prefetch wants.
func (s *Split) Load(ctx context.Context, i int) (*Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if i < 0 || i >= len(s.Items) {
		return nil, fmt.Errorf("load: item %d out of range 0..%d", i, len(s.Items)-1)
	}
	it := s.Items[i]
	out := &Sample{Item: it}
	var err error
	if out.Image, err = DecodeImage(it.ImagePath); err != nil {
		return nil, err
	}
	if it.MaskPath != "" {
		if out.Mask, err = DecodeMask(it.MaskPath); err != nil {
			return nil, err
		}
		if err := sameSize(it.MaskPath, out.Mask, it.ImagePath, out.Image); err != nil {
			return nil, err
		}
		if _, err := maskLabels(out.Mask, s.NumClasses(), it.MaskPath); err != nil {
			return nil, err
		}
	}
	if it.SalPath != "" {
		if out.Sal, err = DecodeSaliency(it.SalPath); err != nil {
			return nil, err
		}
		if err := sameSize(it.SalPath, out.Sal, it.ImagePath, out.Image); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sameSize(path string, g *imaging.Gray, imgPath string, img *imaging.RGB) *badinput.Error {
	if g.W == img.W && g.H == img.H {
		return nil
	}
	return badinput.New(path, "size", "%dx%d, but image %s is %dx%d", g.W, g.H, imgPath, img.W, img.H)
}
