// Package safetensors reads and writes the safetensors format
// (https://github.com/huggingface/safetensors) in pure Go: an 8-byte
// little-endian header length, a JSON header mapping names to dtype, shape
// and byte offsets (plus optional "__metadata__"), then the raw data.
// Files written here load with Python's safetensors and vice versa.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
)

// Tensor is one named entry: dtype as safetensors spells it (F32, F64, F16,
// BF16, I64, I32, U8, BOOL), shape, and little-endian data.
type Tensor struct {
	DType string
	Shape []int64
	Data  []byte
}

var dtypeSize = map[string]int{"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}

// DTypeSize is the element size of a safetensors dtype (0 if unknown).
func DTypeSize(dt string) int { return dtypeSize[dt] }

type entry struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets [2]int  `json:"data_offsets"`
}

const maxHeader = 100 << 20

// Write stores tensors and metadata at path atomically (temp file, fsync,
// rename). Data is laid out in name order; the header is padded with spaces
// to a multiple of 8 bytes, as the Python writer does.
func Write(path string, tensors map[string]Tensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := make(map[string]any, len(names)+1)
	off := 0
	for _, n := range names {
		t := tensors[n]
		size, ok := dtypeSize[t.DType]
		if !ok {
			return fmt.Errorf("safetensors: %s: tensor %q has unknown dtype %q", path, n, t.DType)
		}
		count := int64(1)
		for _, d := range t.Shape {
			count *= d
		}
		if int64(len(t.Data)) != count*int64(size) {
			return fmt.Errorf("safetensors: %s: tensor %q: %d bytes for shape %v of %s", path, n, len(t.Data), t.Shape, t.DType)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		header[n] = entry{DType: t.DType, Shape: shape, Offsets: [2]int{off, off + len(t.Data)}}
		off += len(t.Data)
	}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors: %s: header: %w", path, err)
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	return artifacts.WriteWith(path, func(w io.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(hj)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(hj); err != nil {
			return err
		}
		for _, name := range names {
			if _, err := w.Write(tensors[name].Data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Read loads every tensor and the metadata of a safetensors file. A
// malformed file gives a *badinput.Error naming it.
func Read(path string) (map[string]Tensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, badinput.Wrap(path, "", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, badinput.Wrap(path, "", err)
	}
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		return nil, nil, badinput.New(path, "header", "truncated file: %v", err)
	}
	hl := binary.LittleEndian.Uint64(n[:])
	if hl > maxHeader || int64(hl)+8 > st.Size() {
		return nil, nil, badinput.New(path, "header", "header length %d does not fit a %d-byte file", hl, st.Size())
	}
	hj := make([]byte, hl)
	if _, err := io.ReadFull(f, hj); err != nil {
		return nil, nil, badinput.New(path, "header", "truncated header: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hj, &raw); err != nil {
		return nil, nil, badinput.New(path, "header", "bad JSON: %v", err)
	}
	dataLen := st.Size() - 8 - int64(hl)
	data := make([]byte, dataLen)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, badinput.New(path, "data", "truncated data: %v", err)
	}
	var meta map[string]string
	out := make(map[string]Tensor, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, badinput.New(path, "__metadata__", "not a string map: %v", err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, badinput.New(path, name, "bad entry: %v", err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, nil, badinput.New(path, name, "unknown dtype %q", e.DType)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return nil, nil, badinput.New(path, name, "negative dimension in shape %v", e.Shape)
			}
			count *= d
		}
		b, en := int64(e.Offsets[0]), int64(e.Offsets[1])
		if b < 0 || en < b || en > dataLen || en-b != count*int64(size) {
			return nil, nil, badinput.New(path, name, "offsets %v do not match shape %v of %s in %d data bytes", e.Offsets, e.Shape, e.DType, dataLen)
		}
		out[name] = Tensor{DType: e.DType, Shape: e.Shape, Data: data[b:en:en]}
	}
	return out, meta, nil
}
