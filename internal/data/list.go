package data

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/l2g/l2g/internal/badinput"
)

// listFormat is what a list file holds; it is detected per file.
type listFormat int

const (
	// idList: one token per line, an id or an image path.
	idList listFormat = iota
	// clsList: "<id> <k1> <k2> …", zero-based class indices.
	clsList
	// pairList: "/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png".
	pairList
)

func (f listFormat) String() string {
	return [...]string{"id list", "class-label list", "image/mask pair list"}[f]
}

// listEntry is one parsed line. image and mask are resolved paths, "" when
// the line does not give them.
type listEntry struct {
	line   int
	id     string
	image  string
	mask   string
	labels []int // sorted, unique; only for clsList
}

// readList parses a list file under root. Every problem is added to errs
// (so that Check can report them all); lines with problems are dropped.
// numClasses bounds the label indices of a class-label list.
func readList(root, path string, numClasses int, errs *badinput.List) (listFormat, []listEntry) {
	b, err := os.ReadFile(path)
	if err != nil {
		errs.Add(&badinput.Error{Path: path, Err: err})
		return idList, nil
	}
	type rawLine struct {
		n   int
		tok []string
	}
	var lines []rawLine
	format := idList
	detected := false
	for i, s := range strings.Split(string(b), "\n") {
		tok := strings.Fields(s)
		if len(tok) == 0 {
			continue
		}
		lines = append(lines, rawLine{i + 1, tok})
		if !detected && len(tok) >= 2 {
			detected = true
			format = pairList
			if _, err := strconv.Atoi(tok[1]); err == nil {
				format = clsList
			}
		}
	}
	if len(lines) == 0 {
		errs.Add(badinput.New(path, "", "empty list file"))
		return format, nil
	}
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		errs.Add(&badinput.Error{Path: root, Err: err})
		return format, nil
	}
	seen := make(map[string]int, len(lines))
	out := make([]listEntry, 0, len(lines))
	for _, l := range lines {
		e := listEntry{line: l.n}
		var perr *badinput.Error
		switch format {
		case clsList:
			e.id = l.tok[0]
			perr = validateID(e.id)
			for _, t := range l.tok[1:] {
				if perr != nil {
					break
				}
				k, err := strconv.Atoi(t)
				switch {
				case err != nil:
					perr = badinput.New("", "label", "%q is not a class index", t)
				case k < 0 || k >= numClasses:
					perr = badinput.New("", "label", "class index %d out of range 0..%d", k, numClasses-1)
				default:
					e.labels = insertSorted(e.labels, k)
				}
			}
		case pairList:
			if len(l.tok) != 2 {
				perr = badinput.New("", "", "want 2 paths (image mask), got %d fields", len(l.tok))
				break
			}
			e.image, perr = resolveInRoot(rootAbs, l.tok[0])
			if perr == nil {
				e.mask, perr = resolveInRoot(rootAbs, l.tok[1])
			}
			if perr == nil {
				e.id = stem(e.image)
				if m := stem(e.mask); m != e.id {
					perr = badinput.New("", "", "mask %q does not belong to image id %q", m, e.id)
				}
			}
			if perr == nil {
				perr = validateID(e.id)
			}
		case idList:
			if len(l.tok) != 1 {
				perr = badinput.New("", "", "want 1 field, got %d", len(l.tok))
				break
			}
			t := l.tok[0]
			if strings.ContainsAny(t, `/\`) || isImageName(t) {
				e.image, perr = resolveInRoot(rootAbs, t)
				e.id = stem(t)
			} else {
				e.id = t
			}
			if perr == nil {
				perr = validateID(e.id)
			}
		}
		if perr == nil {
			if first, dup := seen[e.id]; dup {
				perr = badinput.New("", "", "duplicate id %q (first on line %d)", e.id, first)
			}
		}
		if perr != nil {
			perr.Path, perr.Line = path, l.n
			errs.Add(perr)
			continue
		}
		seen[e.id] = l.n
		out = append(out, e)
	}
	return format, out
}

func insertSorted(s []int, k int) []int {
	i := 0
	for i < len(s) && s[i] < k {
		i++
	}
	if i < len(s) && s[i] == k {
		return s
	}
	s = append(s, 0)
	copy(s[i+1:], s[i:])
	s[i] = k
	return s
}

func isImageName(s string) bool {
	switch strings.ToLower(filepath.Ext(s)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

func stem(p string) string {
	b := filepath.Base(p)
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// validateID accepts a bare file name: the id becomes part of paths such as
// JPEGImages/<id>.jpg, so separators or dot-dot would escape the root.
func validateID(id string) *badinput.Error {
	switch {
	case id == "" || id == "." || id == "..":
		return badinput.New("", "id", "invalid id %q", id)
	case strings.ContainsAny(id, `/\`):
		return badinput.New("", "id", "id %q contains a path separator (would escape the dataset root)", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return badinput.New("", "id", "id %q contains a control character", id)
		}
	}
	return nil
}

// resolveInRoot maps a list-file path to a file under root. As in the
// reference (which concatenates root + path), a leading "/" means the
// dataset root, so "/JPEGImages/x.jpg" is root/JPEGImages/x.jpg; an absolute
// path that already lies under root is taken as is. Any path that would
// leave the root after cleaning ("..") is rejected.
func resolveInRoot(rootAbs, p string) (string, *badinput.Error) {
	if strings.ContainsRune(p, 0) {
		return "", badinput.New("", "path", "path %q contains NUL", p)
	}
	rel := p
	if filepath.IsAbs(p) {
		if r, err := filepath.Rel(rootAbs, filepath.Clean(p)); err == nil && filepath.IsLocal(r) {
			rel = r
		} else {
			rel = strings.TrimLeft(p, `/\`)
		}
	}
	if !filepath.IsLocal(rel) {
		return "", badinput.New("", "path", "path %q escapes the dataset root", p)
	}
	return filepath.Join(rootAbs, rel), nil
}
