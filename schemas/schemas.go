// Package schemas defines the Arrow schemas, with their versions and
// key-value metadata, of the Parquet datasets l2g writes: normalized CAMs
// (stage cam), pseudo-label masks (stage pseudolabel) and evaluation results
// (stage evaluate). Writers build their files from these schemas and readers
// check a file against them, so the layout is defined in one place. The
// package depends on arrow-go only.
package schemas

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
)

// Key-value metadata keys (Arrow schema metadata, stored in the Parquet
// footer's key_value_metadata).
const (
	KeySchema     = "l2g.schema"         // schema name, e.g. "l2g.pseudolabel"
	KeyVersion    = "l2g.schema_version" // decimal integer
	KeyClassNames = "l2g.class_names"    // JSON array of strings
	KeyPalette    = "l2g.palette"        // JSON array of 256 [r,g,b] triples, index = mask value
	KeyMaskLayout = "l2g.mask_layout"    // JSON object, see MaskLayout
	KeyCAMDType   = "l2g.cam_dtype"      // "uint8" or "float16"
	KeyCAMScales  = "l2g.cam_scales"     // JSON array of inference scales
	KeyCAMLayout  = "l2g.cam_layout"     // JSON object, see CAMLayout
	KeyRunID      = "l2g.run_id"         // run that produced the file, may be ""
	KeyConfigHash = "l2g.config_hash"    // hash of the producing stage's config, may be ""
)

// CreatedBy is the Parquet created_by string of every file l2g writes. It
// follows the "<app> version <v>" convention Parquet readers parse.
const CreatedBy = "l2g version 1 (github.com/l2g/l2g, arrow-go v18)"

// RowGroupRows is the number of rows per Parquet row group: it bounds the
// memory of a streaming writer or reader (64 VOC masks are about 12 MB).
const RowGroupRows = 64

// Column names shared by the datasets.
const (
	ColImageID        = "image_id"
	ColSplit          = "split"
	ColHeight         = "height"
	ColWidth          = "width"
	ColClassIDs       = "class_ids"
	ColMask           = "mask"
	ColClassFractions = "class_fractions"
	ColIgnoreFraction = "ignore_fraction"
	ColBgThreshold    = "bg_threshold"
	ColSourceRunID    = "source_run_id"
	ColConfigHash     = "config_hash"
	ColCAM            = "cam"
)

// Error is a file that does not match a schema; Field names the column or
// metadata key at fault so callers can report it.
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return e.Field + ": " + e.Msg }

func errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Int32List is the type of class_ids.
var Int32List = arrow.ListOf(arrow.PrimitiveTypes.Int32)

// header builds the schema metadata common to all datasets.
func header(name string, version int, classNames []string) (keys, vals []string, err error) {
	cn, err := json.Marshal(classNames)
	if err != nil {
		return nil, nil, fmt.Errorf("encode class names: %w", err)
	}
	return []string{KeySchema, KeyVersion, KeyClassNames},
		[]string{name, strconv.Itoa(version), string(cn)}, nil
}

// checkFields compares the fields of got with want by name, type and order;
// metadata is compared separately.
func checkFields(got, want *arrow.Schema) error {
	gf, wf := got.Fields(), want.Fields()
	byName := make(map[string]arrow.Field, len(gf))
	for _, f := range gf {
		byName[f.Name] = f
	}
	for _, w := range wf {
		g, ok := byName[w.Name]
		if !ok {
			return errorf(w.Name, "column missing")
		}
		if !arrow.TypeEqual(g.Type, w.Type) {
			return errorf(w.Name, "column has type %s, want %s", g.Type, w.Type)
		}
	}
	if len(gf) != len(wf) {
		return errorf("", "%d columns, want %d (%v)", len(gf), len(wf), want.Fields())
	}
	for i := range wf {
		if gf[i].Name != wf[i].Name {
			return errorf(gf[i].Name, "column %d is %q, want %q", i, gf[i].Name, wf[i].Name)
		}
	}
	return nil
}

// checkHeader reads the common metadata and checks name and version.
func checkHeader(md arrow.Metadata, name string, version int) (classNames []string, err error) {
	got, ok := md.GetValue(KeySchema)
	if !ok {
		return nil, errorf(KeySchema, "metadata key missing: not an l2g %s file", name)
	}
	if got != name {
		return nil, errorf(KeySchema, "schema is %q, want %q", got, name)
	}
	vs, _ := md.GetValue(KeyVersion)
	v, err := strconv.Atoi(vs)
	if err != nil {
		return nil, errorf(KeyVersion, "%q is not a version number", vs)
	}
	if v != version {
		return nil, errorf(KeyVersion, "version %d, this build reads version %d", v, version)
	}
	cs, ok := md.GetValue(KeyClassNames)
	if !ok {
		return nil, errorf(KeyClassNames, "metadata key missing")
	}
	if err := json.Unmarshal([]byte(cs), &classNames); err != nil {
		return nil, errorf(KeyClassNames, "not a JSON array of strings: %v", err)
	}
	if len(classNames) == 0 {
		return nil, errorf(KeyClassNames, "no class names")
	}
	return classNames, nil
}

func optional(md arrow.Metadata, key string) string {
	v, _ := md.GetValue(key)
	return v
}
