package schemas

import (
	"encoding/json"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Pseudo-label dataset: one row per image.
const (
	PseudoLabelName    = "l2g.pseudolabel"
	PseudoLabelVersion = 1
)

// MaskLayout is the value of KeyMaskLayout in a pseudo-label file.
const MaskLayout = `{"dtype":"uint8","order":"row-major","shape":["height","width"],` +
	`"values":"label index into class_names, 0 = background","ignore":255}`

// IgnoreLabel marks mask pixels that carry no label.
const IgnoreLabel = 255

// PseudoLabelMeta is the file-level metadata of a pseudo-label dataset.
type PseudoLabelMeta struct {
	// ClassNames is indexed by mask value: [0] is the background, [k] the
	// class with CAM channel k-1. At most 255 names (255 is ignore).
	ClassNames []string
	// Palette colours mask value i as Palette[i] (VOC colormap by default).
	Palette [256][3]uint8
}

// NumLabels is the number of labels including background (C+1).
func (m PseudoLabelMeta) NumLabels() int { return len(m.ClassNames) }

// PseudoLabelFields are the columns of a pseudo-label dataset:
//
//	image_id, split        string
//	height, width          int32
//	mask                   binary, height·width bytes, row-major, 255 = ignore
//	class_ids              list<int32>: labels present in mask, ascending (255 excluded)
//	class_fractions        list<float32>: fraction of the height·width pixels per class_ids entry
//	ignore_fraction        float32: fraction of pixels that are 255
//	bg_threshold           float64: background score the labels were made with
//	source_run_id          string: run that produced the CAMs / labels
//	config_hash            string: hash of the pseudolabel config
func PseudoLabelFields() []arrow.Field {
	return []arrow.Field{
		{Name: ColImageID, Type: arrow.BinaryTypes.String},
		{Name: ColSplit, Type: arrow.BinaryTypes.String},
		{Name: ColHeight, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColWidth, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColMask, Type: arrow.BinaryTypes.Binary},
		{Name: ColClassIDs, Type: Int32List},
		{Name: ColClassFractions, Type: arrow.ListOf(arrow.PrimitiveTypes.Float32)},
		{Name: ColIgnoreFraction, Type: arrow.PrimitiveTypes.Float32},
		{Name: ColBgThreshold, Type: arrow.PrimitiveTypes.Float64},
		{Name: ColSourceRunID, Type: arrow.BinaryTypes.String},
		{Name: ColConfigHash, Type: arrow.BinaryTypes.String},
	}
}

// PseudoLabel returns the schema of a pseudo-label dataset with m as its
// metadata.
func PseudoLabel(m PseudoLabelMeta) (*arrow.Schema, error) {
	if n := len(m.ClassNames); n < 2 || n > 255 {
		return nil, errorf(KeyClassNames, "%d class names (with background), want 2..255", n)
	}
	keys, vals, err := header(PseudoLabelName, PseudoLabelVersion, m.ClassNames)
	if err != nil {
		return nil, err
	}
	pal, err := json.Marshal(m.Palette)
	if err != nil {
		return nil, fmt.Errorf("encode palette: %w", err)
	}
	keys = append(keys, KeyPalette, KeyMaskLayout)
	vals = append(vals, string(pal), MaskLayout)
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(PseudoLabelFields(), &md), nil
}

// ParsePseudoLabel checks that s is a pseudo-label schema of this version
// and returns its metadata. Errors are *Error naming the column or key.
func ParsePseudoLabel(s *arrow.Schema) (PseudoLabelMeta, error) {
	var m PseudoLabelMeta
	if err := checkFields(s, arrow.NewSchema(PseudoLabelFields(), nil)); err != nil {
		return m, err
	}
	md := s.Metadata()
	names, err := checkHeader(md, PseudoLabelName, PseudoLabelVersion)
	if err != nil {
		return m, err
	}
	if len(names) < 2 || len(names) > 255 {
		return m, errorf(KeyClassNames, "%d class names (with background), want 2..255", len(names))
	}
	m.ClassNames = names
	ps, ok := md.GetValue(KeyPalette)
	if !ok {
		return m, errorf(KeyPalette, "metadata key missing")
	}
	if m.Palette, err = parsePalette(ps); err != nil {
		return m, err
	}
	if ml := optional(md, KeyMaskLayout); ml != MaskLayout {
		return m, errorf(KeyMaskLayout, "layout %q, want %q", ml, MaskLayout)
	}
	return m, nil
}

// parsePalette reads exactly 256 [r,g,b] triples of 0..255.
func parsePalette(s string) ([256][3]uint8, error) {
	var p [256][3]uint8
	var raw [][]int
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return p, errorf(KeyPalette, "not a JSON array of [r,g,b] triples: %v", err)
	}
	if len(raw) != 256 {
		return p, errorf(KeyPalette, "%d colours, want 256", len(raw))
	}
	for i, c := range raw {
		if len(c) != 3 {
			return p, errorf(KeyPalette, "colour %d has %d components, want 3", i, len(c))
		}
		for j, v := range c {
			if v < 0 || v > 255 {
				return p, errorf(KeyPalette, "colour %d component %d is %d, want 0..255", i, j, v)
			}
			p[i][j] = uint8(v)
		}
	}
	return p, nil
}
