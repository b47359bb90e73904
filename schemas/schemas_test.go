package schemas

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func plMeta() PseudoLabelMeta {
	m := PseudoLabelMeta{ClassNames: []string{"background", "cat"}}
	m.Palette[1] = [3]uint8{128, 0, 0}
	return m
}

// withMeta replaces one metadata value of s.
func withMeta(s *arrow.Schema, key, value string) *arrow.Schema {
	md := s.Metadata()
	keys, vals := append([]string(nil), md.Keys()...), append([]string(nil), md.Values()...)
	for i, k := range keys {
		if k == key {
			vals[i] = value
		}
	}
	nm := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(s.Fields(), &nm)
}

func TestPseudoLabelRoundTripAndErrors(t *testing.T) {
	s, err := PseudoLabel(plMeta())
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParsePseudoLabel(s)
	if err != nil || m.NumLabels() != 2 || m.Palette[1] != [3]uint8{128, 0, 0} {
		t.Fatalf("round trip: %+v %v", m, err)
	}
	fields := PseudoLabelFields()
	fields[4].Type = arrow.BinaryTypes.String // mask as string
	md := s.Metadata()
	cases := []struct {
		name, field string
		s           *arrow.Schema
	}{
		{"version", KeyVersion, withMeta(s, KeyVersion, "2")},
		{"other schema", KeySchema, withMeta(s, KeySchema, CAMName)},
		{"short palette", KeyPalette, withMeta(s, KeyPalette, "[[0,0,0]]")},
		{"palette value", KeyPalette, withMeta(s, KeyPalette, strings.Replace(optional(md, KeyPalette), "128", "300", 1))},
		{"layout", KeyMaskLayout, withMeta(s, KeyMaskLayout, "{}")},
		{"column type", ColMask, arrow.NewSchema(fields, &md)},
		{"missing column", ColConfigHash, arrow.NewSchema(PseudoLabelFields()[:10], &md)},
	}
	for _, c := range cases {
		_, err := ParsePseudoLabel(c.s)
		var se *Error
		if !errors.As(err, &se) || se.Field != c.field {
			t.Errorf("%s: %v, want an error on %s", c.name, err, c.field)
		}
	}
	if _, err := PseudoLabel(PseudoLabelMeta{ClassNames: []string{"background"}}); err == nil {
		t.Error("one class name accepted")
	}
}

func TestCAMMeta(t *testing.T) {
	want := CAMMeta{DType: CAMFloat16, ClassNames: []string{"a", "b"}, Scales: []float64{0.5, 1}, RunID: "r", ConfigHash: "h"}
	s, err := CAM(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCAM(s)
	if err != nil || got.DType != want.DType || got.RunID != "r" || got.ConfigHash != "h" || len(got.Scales) != 2 || got.BytesPerValue() != 2 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []CAMMeta{
		{DType: "int8", ClassNames: []string{"a"}},
		{DType: CAMUint8},
		{DType: CAMUint8, ClassNames: []string{"a"}, Scales: []float64{0}},
	} {
		if _, err := CAM(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := ParseCAM(withMeta(s, KeyCAMDType, "int8")); err == nil {
		t.Error("bad dtype parsed")
	}
}

func TestEvalSchema(t *testing.T) {
	s, err := Eval([]string{"background", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if names, err := ParseEval(s); err != nil || len(names) != 2 {
		t.Fatalf("%v %v", names, err)
	}
	if _, err := ParseEval(withMeta(s, KeySchema, PseudoLabelName)); err == nil {
		t.Error("pseudo-label schema name accepted as eval")
	}
}
