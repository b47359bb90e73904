package augment

import (
	"math/rand/v2"

	"github.com/l2g/l2g/internal/badinput"
)

// LocalScheme selects how local-view boxes are placed in the global view.
type LocalScheme string

const (
	// LocalVOC is the reference VOC scheme: the four corner boxes, then
	// N−4 random ones.
	LocalVOC LocalScheme = "voc"
	// LocalCOCO is the reference COCO scheme: N random boxes.
	LocalCOCO LocalScheme = "coco"
	// LocalGrid is a deterministic rows×cols sliding window that covers the
	// view, with evenly spaced offsets.
	LocalGrid LocalScheme = "grid"
	// LocalRandom is N random boxes over every position, {0..m}².
	LocalRandom LocalScheme = "random"
)

// LocalBoxes places N boxes of Crop×Crop inside the View×View global view.
// With m = View − Crop, random offsets are drawn independently for y then x
// (numpy's ind_h, ind_w) from {0..m−1} as in the reference, whose numpy
// randint excludes its upper bound, or from {0..m} with IncludeMax.
type LocalBoxes struct {
	Scheme     LocalScheme
	N          int
	Crop       int // c, 320 in the reference
	View       int // C, 448 in the reference
	IncludeMax bool
}

// DefaultVOCLocal is the reference VOC setting: 6 boxes of 320 in 448.
func DefaultVOCLocal() LocalBoxes {
	return LocalBoxes{Scheme: LocalVOC, N: 6, Crop: 320, View: 448}
}

// DefaultCOCOLocal is the reference COCO setting: 4 random boxes of 320.
func DefaultCOCOLocal() LocalBoxes {
	return LocalBoxes{Scheme: LocalCOCO, N: 4, Crop: 320, View: 448}
}

// Validate reports bad settings as bad input naming the field.
func (l LocalBoxes) Validate() error {
	if l.Crop < 1 || l.Crop > l.View {
		return badinput.New("", "local.crop", "local crop %d must be in [1, view size %d]", l.Crop, l.View)
	}
	if l.N < 1 {
		return badinput.New("", "local.n", "number of local views %d must be >= 1", l.N)
	}
	m := l.View - l.Crop
	randomN := 0
	switch l.Scheme {
	case LocalVOC:
		if l.N < 4 {
			return badinput.New("", "local.n", "scheme voc needs >= 4 boxes (the corners), got %d", l.N)
		}
		randomN = l.N - 4
	case LocalCOCO:
		randomN = l.N
	case LocalRandom:
	case LocalGrid:
		if _, _, err := l.grid(); err != nil {
			return err
		}
	default:
		return badinput.New("", "local.scheme", "unknown scheme %q (want voc, coco, grid or random)", l.Scheme)
	}
	if randomN > 0 && m == 0 && !l.IncludeMax {
		return badinput.New("", "local.crop", "crop %d equals the view size: offsets from {0..m-1} are empty; set include_max", l.Crop)
	}
	return nil
}

// Sample returns the N boxes, in global-view pixel coordinates.
func (l LocalBoxes) Sample(r *rand.Rand) ([]Box, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	m := l.View - l.Crop
	box := func(x, y int) Box { return Box{X1: x, Y1: y, X2: x + l.Crop, Y2: y + l.Crop} }
	span := m // offsets from {0..span-1}
	if l.IncludeMax {
		span = m + 1
	}
	out := make([]Box, 0, l.N)
	random := func(k, span int) {
		for range k {
			y := r.IntN(span) // numpy draws ind_h first
			x := r.IntN(span)
			out = append(out, box(x, y))
		}
	}
	switch l.Scheme {
	case LocalVOC:
		// The reference's order: (x1, y1) = (0,0), (0,m), (m,0), (m,m).
		out = append(out, box(0, 0), box(0, m), box(m, 0), box(m, m))
		random(l.N-4, span)
	case LocalCOCO:
		random(l.N, span)
	case LocalRandom:
		random(l.N, m+1)
	case LocalGrid:
		rows, cols, _ := l.grid()
		for _, y := range spread(rows, m) {
			for _, x := range spread(cols, m) {
				out = append(out, box(x, y))
			}
		}
	}
	return out, nil
}

// grid factors N into rows×cols, as square as possible with cols ≥ rows,
// and checks that the windows can cover the view along both axes.
func (l LocalBoxes) grid() (rows, cols int, err error) {
	for r := 1; r*r <= l.N; r++ {
		if l.N%r == 0 {
			rows = r
		}
	}
	cols = l.N / rows
	if rows*l.Crop < l.View {
		return 0, 0, badinput.New("", "local.n", "grid of %d boxes is %dx%d: %d rows of %d px cannot cover %d px", l.N, rows, cols, rows, l.Crop, l.View)
	}
	return rows, cols, nil
}

// spread returns k offsets from 0 to m, evenly spaced and rounded half up;
// a single window sits at the centre.
func spread(k, m int) []int {
	if k == 1 {
		return []int{m / 2}
	}
	out := make([]int, k)
	for i := range out {
		out[i] = (2*i*m + (k - 1)) / (2 * (k - 1))
	}
	return out
}
