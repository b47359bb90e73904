package schemas

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
)

// CAM dataset: one row per image, holding the normalized CAMs of the
// classes present in the image label (the reference saves <id>_<k>.png for
// exactly those).
const (
	CAMName    = "l2g.cam"
	CAMVersion = 1
)

// CAM value encodings (KeyCAMDType).
const (
	// CAMUint8 stores round-half-even(clamp(v,0,1)·255) as one byte, the
	// value OpenCV writes into the reference's <id>_<k>.png; read as byte/255.
	CAMUint8 = "uint8"
	// CAMFloat16 stores clamp(v,0,1) as an IEEE 754 binary16, little-endian.
	CAMFloat16 = "float16"
)

// CAMLayout is the value of KeyCAMLayout; "dtype" is KeyCAMDType.
const CAMLayout = `{"order":"class-major, then row-major","shape":["len(class_ids)","height","width"],` +
	`"endianness":"little","uint8":"value/255","float16":"IEEE 754 binary16"}`

// CAMMeta is the file-level metadata of a CAM dataset.
type CAMMeta struct {
	DType string // CAMUint8 or CAMFloat16
	// ClassNames are the C foreground classes; class_ids index them
	// (zero-based, CAM channel k ↔ segmentation label k+1).
	ClassNames []string
	// Scales are the inference scales averaged into the CAMs (informative).
	Scales     []float64
	RunID      string
	ConfigHash string
}

// BytesPerValue is the size of one stored CAM value.
func (m CAMMeta) BytesPerValue() int {
	if m.DType == CAMFloat16 {
		return 2
	}
	return 1
}

// CAMFields are the columns of a CAM dataset:
//
//	image_id, split   string
//	height, width     int32
//	class_ids         list<int32>: zero-based foreground classes, strictly ascending
//	cam               binary: len(class_ids) planes of height·width values in
//	                  class_ids order, row-major; 1 byte (uint8) or 2 bytes
//	                  (float16, little-endian) per value
func CAMFields() []arrow.Field {
	return []arrow.Field{
		{Name: ColImageID, Type: arrow.BinaryTypes.String},
		{Name: ColSplit, Type: arrow.BinaryTypes.String},
		{Name: ColHeight, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColWidth, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColClassIDs, Type: Int32List},
		{Name: ColCAM, Type: arrow.BinaryTypes.Binary},
	}
}

func (m CAMMeta) validate() error {
	if m.DType != CAMUint8 && m.DType != CAMFloat16 {
		return errorf(KeyCAMDType, "dtype %q, want %q or %q", m.DType, CAMUint8, CAMFloat16)
	}
	if n := len(m.ClassNames); n < 1 || n > 254 {
		return errorf(KeyClassNames, "%d foreground classes, want 1..254 (labels 1..C must fit a uint8 mask)", n)
	}
	for _, s := range m.Scales {
		if !(s > 0) || math.IsInf(s, 0) {
			return errorf(KeyCAMScales, "scale %v is not a positive number", s)
		}
	}
	return nil
}

// CAM returns the schema of a CAM dataset with m as its metadata.
func CAM(m CAMMeta) (*arrow.Schema, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	keys, vals, err := header(CAMName, CAMVersion, m.ClassNames)
	if err != nil {
		return nil, err
	}
	scales := m.Scales
	if scales == nil {
		scales = []float64{}
	}
	sc, err := json.Marshal(scales)
	if err != nil {
		return nil, fmt.Errorf("encode scales: %w", err)
	}
	keys = append(keys, KeyCAMDType, KeyCAMScales, KeyCAMLayout, KeyRunID, KeyConfigHash)
	vals = append(vals, m.DType, string(sc), CAMLayout, m.RunID, m.ConfigHash)
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(CAMFields(), &md), nil
}

// ParseCAM checks that s is a CAM schema of this version and returns its
// metadata. Errors are *Error naming the column or key.
func ParseCAM(s *arrow.Schema) (CAMMeta, error) {
	var m CAMMeta
	if err := checkFields(s, arrow.NewSchema(CAMFields(), nil)); err != nil {
		return m, err
	}
	md := s.Metadata()
	names, err := checkHeader(md, CAMName, CAMVersion)
	if err != nil {
		return m, err
	}
	m.ClassNames = names
	m.DType = optional(md, KeyCAMDType)
	if sc, ok := md.GetValue(KeyCAMScales); ok && sc != "" {
		if err := json.Unmarshal([]byte(sc), &m.Scales); err != nil {
			return m, errorf(KeyCAMScales, "not a JSON array of numbers: %v", err)
		}
	}
	if l := optional(md, KeyCAMLayout); l != CAMLayout {
		return m, errorf(KeyCAMLayout, "layout %q, want %q", l, CAMLayout)
	}
	m.RunID = optional(md, KeyRunID)
	m.ConfigHash = optional(md, KeyConfigHash)
	return m, m.validate()
}
