// Package labelio writes and reads pseudo-label datasets: one row per image
// with its label mask, in the schemas.PseudoLabel Parquet layout. The
// writer streams (one row group in memory) and commits atomically; the
// reader iterates in file order or serves random access by image id for
// the segmentation stage, which trains on these labels.
package labelio

import (
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/schemas"
)

// Record is one image's pseudo-label.
type Record struct {
	ID, Split string
	H, W      int
	// Mask holds H·W labels row-major: 0 = background, k = class k
	// (CAM channel k-1), 255 = ignore.
	Mask        []uint8
	BgThreshold float64
	SourceRunID string
	ConfigHash  string

	// Derived from Mask by the writer, stored, and returned by the reader.
	ClassIDs       []int     // labels present in Mask, ascending, 255 excluded
	ClassFractions []float32 // fraction of the H·W pixels, per ClassIDs entry
	IgnoreFraction float32   // fraction of pixels that are 255
}

// Meta returns the metadata for a dataset over foreground classes
// classNames, with "background" first and the VOC palette.
func Meta(classNames []string) schemas.PseudoLabelMeta {
	m := schemas.PseudoLabelMeta{ClassNames: append([]string{"background"}, classNames...)}
	for i, c := range data.VOCPalette() {
		r, g, b, _ := c.RGBA()
		m.Palette[i] = [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
	}
	return m
}

// Stats computes the present labels and their pixel fractions of mask.
// numLabels is C+1; a value ≥ numLabels other than 255 is reported as bad
// (its first index is returned).
func Stats(mask []uint8, numLabels int) (classIDs []int, fractions []float32, ignore float32, badIndex int) {
	var hist [256]int
	for _, v := range mask {
		hist[v]++
	}
	for v := numLabels; v < schemas.IgnoreLabel; v++ {
		if hist[v] > 0 {
			for i, x := range mask {
				if int(x) >= numLabels && x != schemas.IgnoreLabel {
					return nil, nil, 0, i
				}
			}
		}
	}
	n := float64(len(mask))
	for v := 0; v < numLabels; v++ {
		if hist[v] > 0 {
			classIDs = append(classIDs, v)
			fractions = append(fractions, float32(float64(hist[v])/n))
		}
	}
	return classIDs, fractions, float32(float64(hist[schemas.IgnoreLabel]) / n), -1
}
