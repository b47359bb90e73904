package data

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/l2g/l2g/internal/badinput"
)

// DefaultLists are the list files Check looks for in a dataset root when
// none are named: those of the reference's VOC and COCO layouts and of the
// synthetic datasets.
func DefaultLists() []string {
	return []string{"train_cls.txt", "val_cls.txt", "train_aug.txt", "val_aug.txt", "train.txt", "val.txt"}
}

// CheckOptions selects what Check scans.
type CheckOptions struct {
	Kind    Kind
	Lists   []string // list files relative to root; empty = DefaultLists that exist
	Classes string   // class-name file; empty = root/classes.txt or Kind's names
	Workers int      // decoding goroutines; 0 = all cores
}

// CheckReport summarises a scan.
type CheckReport struct {
	Lists []string // list files scanned
	Items int      // list entries
	Files int      // distinct image, mask and saliency files decoded
}

type fileRef struct {
	path string
	role string // "image", "mask" or "saliency"
	list string
	line int
}

type fileInfo struct {
	w, h int
	err  *badinput.Error
}

// Check scans a dataset: every line of every list, every referenced image,
// mask and saliency map (each file decoded once), image/mask/saliency sizes,
// label indices and mask values, and saliency for every item when root/Sal
// exists. It returns all problems at once as a *badinput.List; other errors
// (cancellation) are returned as they are.
func Check(ctx context.Context, root string, opt CheckOptions) (CheckReport, error) {
	var rep CheckReport
	var errs badinput.List
	if !isDir(root) {
		errs.Add(badinput.New(root, "", "dataset root is not a directory"))
		return rep, errs.Err()
	}
	lists := opt.Lists
	if len(lists) == 0 {
		for _, l := range DefaultLists() {
			if fileExists(filepath.Join(root, l)) {
				lists = append(lists, l)
			}
		}
		if len(lists) == 0 {
			errs.Add(badinput.New(root, "list", "no list files found (looked for %v)", DefaultLists()))
		}
	}
	var splits []*Split
	for _, l := range lists {
		s, err := build(ctx, Spec{Root: root, Kind: opt.Kind, List: l, Classes: opt.Classes}, &errs, false)
		if err != nil {
			return rep, err
		}
		if s == nil {
			// The root or the class names are unusable; every list would
			// report the same problem.
			break
		}
		splits = append(splits, s)
		rep.Lists = append(rep.Lists, s.List)
		rep.Items += len(s.Items)
	}

	// Each file is decoded once, however many lists name it; problems are
	// reported at its first reference.
	var refs []fileRef
	index := map[string]int{}
	add := func(path, role, list string, line int) {
		if path == "" {
			return
		}
		if _, ok := index[path]; !ok {
			index[path] = len(refs)
			refs = append(refs, fileRef{path, role, list, line})
		}
	}
	for _, s := range splits {
		for _, it := range s.Items {
			add(it.ImagePath, "image", s.List, it.Line)
			add(it.MaskPath, "mask", s.List, it.Line)
			add(it.SalPath, "saliency", s.List, it.Line)
		}
	}
	numClasses := 0
	if len(splits) > 0 {
		numClasses = splits[0].NumClasses()
	}
	infos := make([]fileInfo, len(refs))
	order := make([]int, len(refs))
	for i := range order {
		order[i] = i
	}
	p := Prefetch(ctx, order, PrefetchOptions{Workers: opt.Workers}, func(_ context.Context, i int) (fileInfo, error) {
		return checkFile(refs[i], numClasses), nil
	})
	defer p.Close()
	for {
		r, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rep, err
		}
		infos[r.Index] = r.Value
		if r.Value.err != nil {
			errs.Add(r.Value.err)
		}
	}
	rep.Files = len(refs)

	reported := map[string]bool{}
	for _, s := range splits {
		for _, it := range s.Items {
			img := infos[index[it.ImagePath]]
			if img.err != nil {
				continue
			}
			for _, g := range []string{it.MaskPath, it.SalPath} {
				if g == "" || reported[g] {
					continue
				}
				gi := infos[index[g]]
				if gi.err == nil && (gi.w != img.w || gi.h != img.h) {
					reported[g] = true
					errs.Add(badinput.New(g, "size", "%dx%d, but image %s is %dx%d", gi.w, gi.h, it.ImagePath, img.w, img.h))
				}
			}
		}
	}
	return rep, dedupe(&errs).Err()
}

// dedupe drops repeated problems: a class-label list read for its own sake
// and again as the labels of a pair list reports its problems twice.
func dedupe(l *badinput.List) *badinput.List {
	seen := make(map[string]bool, len(l.Errs))
	out := &badinput.List{}
	for _, e := range l.Errs {
		if k := e.Error(); !seen[k] {
			seen[k] = true
			out.Add(e)
		}
	}
	return out
}

// checkFile decodes one file; a missing file is reported at the list line
// that names it, a corrupt one at the file itself.
func checkFile(r fileRef, numClasses int) fileInfo {
	var w, h int
	var err error
	switch r.role {
	case "image":
		img, e := DecodeImage(r.path)
		if err = e; e == nil {
			w, h = img.W, img.H
		}
	case "mask":
		m, e := DecodeMask(r.path)
		if err = e; e == nil {
			w, h = m.W, m.H
			_, err = maskLabels(m, numClasses, r.path)
		}
	case "saliency":
		m, e := DecodeSaliency(r.path)
		if err = e; e == nil {
			w, h = m.W, m.H
		}
	}
	if err == nil {
		return fileInfo{w: w, h: h}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fileInfo{err: badinput.AtLine(r.list, r.line, "%s %s does not exist", r.role, r.path)}
	}
	return fileInfo{err: asBadInput(err)}
}
