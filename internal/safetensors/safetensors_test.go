package safetensors_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/safetensors"
)

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	in := map[string]safetensors.Tensor{
		"fc8.weight":  {DType: "F32", Shape: []int64{2, 3, 1, 1}, Data: f32bytes(1, 2, 3, 4, 5, 6)},
		"step":        {DType: "I64", Shape: []int64{}, Data: []byte{7, 0, 0, 0, 0, 0, 0, 0}},
		"rng":         {DType: "U8", Shape: []int64{3}, Data: []byte{9, 8, 7}},
		"empty.thing": {DType: "F16", Shape: []int64{0, 4}, Data: []byte{}},
	}
	meta := map[string]string{"format": "pt", "iteration": "12"}
	if err := safetensors.Write(p, in, meta); err != nil {
		t.Fatal(err)
	}
	got, gm, err := safetensors.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gm, meta) {
		t.Fatalf("metadata %v", gm)
	}
	for n, want := range in {
		g := got[n]
		if g.DType != want.DType || !reflect.DeepEqual(g.Shape, want.Shape) || string(g.Data) != string(want.Data) {
			t.Fatalf("%s: got %+v want %+v", n, g, want)
		}
	}
	// The header length is a multiple of 8 and data starts right after it.
	raw, _ := os.ReadFile(p)
	if hl := binary.LittleEndian.Uint64(raw[:8]); hl%8 != 0 {
		t.Fatalf("header length %d not 8-aligned", hl)
	}
}

// A file laid out byte for byte as Python's safetensors.torch.save_file
// writes it for {"a": tensor([[1., 2.]]), "b": tensor([3], dtype=int64)}
// with metadata {"k": "v"}: compact JSON, tensors sorted by dtype alignment
// then name, header padded with spaces to a multiple of 8.
func TestReadsPythonLayout(t *testing.T) {
	header := `{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	var buf []byte
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(header)))
	buf = append(buf, header...)
	buf = append(buf, f32bytes(1, 2)...)
	buf = binary.LittleEndian.AppendUint64(buf, 3)
	p := filepath.Join(t.TempDir(), "py.safetensors")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	got, meta, err := safetensors.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "v" || string(got["a"].Data) != string(f32bytes(1, 2)) || binary.LittleEndian.Uint64(got["b"].Data) != 3 {
		t.Fatalf("got %+v %v", got, meta)
	}
}

func TestCorruptFilesNamed(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"short":      {1, 2, 3},
		"huge-hdr":   binary.LittleEndian.AppendUint64(nil, 1<<40),
		"bad-json":   append(binary.LittleEndian.AppendUint64(nil, 8), "{{{{{{{{"...),
		"bad-offset": append(binary.LittleEndian.AppendUint64(nil, 64), []byte(`{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}        `)...),
	}
	for name, b := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		_, _, err := safetensors.Read(p)
		var be *badinput.Error
		if !errors.As(err, &be) || be.Path != p {
			t.Fatalf("%s: got %v, want a bad-input error naming the file", name, err)
		}
	}
}

func TestWriteRejectsMismatchAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.safetensors")
	err := safetensors.Write(p, map[string]safetensors.Tensor{"w": {DType: "F32", Shape: []int64{3}, Data: f32bytes(1)}}, nil)
	if err == nil {
		t.Fatal("size mismatch accepted")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left files behind: %v", ents)
	}
}
