// Package nn holds l2g's networks and what they share: a Store of named
// parameters and buffers (names are PyTorch state_dict keys, so checkpoints
// load by name), optimizer groups, and the SGD optimizer.
package nn

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/safetensors"
	"github.com/l2g/l2g/internal/torch"
)

// HostTensor is a tensor in Go memory (little-endian data), as weight
// readers produce it.
type HostTensor struct {
	DType torch.DType
	Shape []int64
	Data  []byte
}

// Float32s decodes a float32 host tensor.
func (h HostTensor) Float32s() ([]float32, error) {
	if h.DType != torch.Float32 {
		return nil, fmt.Errorf("host tensor is %v, not float32", h.DType)
	}
	out := make([]float32, len(h.Data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(h.Data[4*i:]))
	}
	return out, nil
}

// Entry is one parameter or buffer of a Store.
type Entry struct {
	Name   string
	T      *torch.Tensor
	Group  string // optimizer group; "" for buffers
	Buffer bool   // saved, never optimized (BN statistics, frozen affine)
	Frozen bool   // a parameter excluded from training
}

// Store owns a network's parameters and buffers on one device.
type Store struct {
	dev     torch.Device
	entries []*Entry
	byName  map[string]*Entry
	err     error
	scope   *torch.Scope
}

// NewStore returns an empty store on dev.
func NewStore(dev torch.Device) *Store {
	return &Store{dev: dev, byName: map[string]*Entry{}, scope: torch.NewScope()}
}

// Device is where the store's tensors live.
func (s *Store) Device() torch.Device { return s.dev }

// Err is the first error hit while building (duplicate name, init failure).
func (s *Store) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.scope.Err()
}

func (s *Store) add(e *Entry) *torch.Tensor {
	if s.err != nil {
		return nil
	}
	if _, dup := s.byName[e.Name]; dup {
		s.err = fmt.Errorf("nn: duplicate parameter name %q", e.Name)
		return nil
	}
	s.entries = append(s.entries, e)
	s.byName[e.Name] = e
	return e.T
}

// Param creates a float32 trainable parameter in the optimizer group and
// initialises it with init (nil: zeros).
func (s *Store) Param(name string, shape []int64, group string, init func(*torch.Tensor) error) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	t := s.scope.Zeros(shape, torch.Opts{Device: s.dev})
	if t == nil {
		return nil
	}
	if init != nil {
		if err := init(t); err != nil {
			s.err = fmt.Errorf("nn: init %s: %w", name, err)
			return nil
		}
	}
	if err := t.SetRequiresGrad(true); err != nil {
		s.err = fmt.Errorf("nn: %s: %w", name, err)
		return nil
	}
	return s.add(&Entry{Name: name, T: t, Group: group})
}

// Buffer creates a saved, never-optimized float32 tensor filled with fill.
func (s *Store) Buffer(name string, shape []int64, fill float64) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	t := s.scope.Full(shape, fill, torch.Opts{Device: s.dev})
	if t == nil {
		return nil
	}
	return s.add(&Entry{Name: name, T: t, Buffer: true})
}

// Freeze excludes every parameter whose name starts with prefix from
// training: no gradient, no update, no weight decay.
func (s *Store) Freeze(prefix string) {
	for _, e := range s.entries {
		if !e.Buffer && strings.HasPrefix(e.Name, prefix) && !e.Frozen {
			e.Frozen = true
			if err := e.T.SetRequiresGrad(false); err != nil && s.err == nil {
				s.err = fmt.Errorf("nn: freeze %s: %w", e.Name, err)
			}
		}
	}
}

// Get returns the named tensor or nil.
func (s *Store) Get(name string) *torch.Tensor {
	if e, ok := s.byName[name]; ok {
		return e.T
	}
	return nil
}

// Names lists every entry in creation order.
func (s *Store) Names() []string {
	out := make([]string, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.Name
	}
	return out
}

// Entries lists every entry in creation order.
func (s *Store) Entries() []*Entry { return s.entries }

// Trainable lists the parameters that are optimized, in creation order.
func (s *Store) Trainable() []*Entry {
	var out []*Entry
	for _, e := range s.entries {
		if !e.Buffer && !e.Frozen {
			out = append(out, e)
		}
	}
	return out
}

// NumParams counts the elements of all parameters (buffers excluded unless
// withBuffers).
func (s *Store) NumParams(withBuffers bool) int64 {
	var n int64
	for _, e := range s.entries {
		if e.Buffer && !withBuffers {
			continue
		}
		n += e.T.Numel()
	}
	return n
}

// Close frees every tensor of the store.
func (s *Store) Close() { s.scope.Close() }

// LoadOpts controls LoadHost.
type LoadOpts struct {
	// Strict fails on missing or unexpected keys (shape mismatches always fail).
	Strict bool
	// Rename maps a source key to a store name ("" drops the key).
	Rename func(string) string
	// Source names the file the tensors came from, for error messages.
	Source string
}

// LoadHost copies host tensors into the store by name. It reports the store
// names no source tensor filled (missing) and the source keys that match no
// entry (unexpected); shapes must agree exactly.
func (s *Store) LoadHost(ts map[string]HostTensor, o LoadOpts) (missing, unexpected []string, err error) {
	filled := map[string]bool{}
	keys := make([]string, 0, len(ts))
	for k := range ts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sc := torch.NewNoGradScope()
	defer sc.Close()
	for _, k := range keys {
		name := k
		if o.Rename != nil {
			name = o.Rename(k)
		}
		if name == "" {
			continue
		}
		e, ok := s.byName[name]
		if !ok {
			unexpected = append(unexpected, k)
			continue
		}
		h := ts[k]
		if !equalShape(h.Shape, e.T.Shape()) {
			return nil, nil, badinput.New(o.Source, k, "shape %v does not match %s %v", h.Shape, name, e.T.Shape())
		}
		src := sc.FromBytes(h.DType, h.Data, h.Shape...)
		if err := sc.Err(); err != nil {
			return nil, nil, badinput.Wrap(o.Source, k, err)
		}
		if err := e.T.CopyFrom(src); err != nil {
			return nil, nil, fmt.Errorf("nn: load %s: %w", name, err)
		}
		filled[name] = true
	}
	for _, e := range s.entries {
		if !filled[e.Name] {
			missing = append(missing, e.Name)
		}
	}
	if o.Strict && (len(missing) > 0 || len(unexpected) > 0) {
		return missing, unexpected, badinput.New(o.Source, "", "state dict mismatch: missing keys %v, unexpected keys %v", missing, unexpected)
	}
	return missing, unexpected, nil
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// stDType maps binding dtypes to safetensors names.
var stDType = map[torch.DType]string{
	torch.Float32: "F32", torch.Float64: "F64", torch.Float16: "F16", torch.BFloat16: "BF16",
	torch.Int64: "I64", torch.Int32: "I32", torch.Uint8: "U8", torch.Bool: "BOOL",
}

// SafetensorsDType names dt the way safetensors does.
func SafetensorsDType(dt torch.DType) (string, bool) { v, ok := stDType[dt]; return v, ok }

// TorchDType maps a safetensors dtype name to the binding's dtype.
func TorchDType(name string) (torch.DType, bool) {
	for k, v := range stDType {
		if v == name {
			return k, true
		}
	}
	return 0, false
}

// ToSafetensors copies tensors to host memory under the given names.
func ToSafetensors(named map[string]*torch.Tensor) (map[string]safetensors.Tensor, error) {
	out := make(map[string]safetensors.Tensor, len(named))
	for n, t := range named {
		dt, ok := stDType[t.DType()]
		if !ok {
			return nil, fmt.Errorf("nn: %s: dtype %v has no safetensors name", n, t.DType())
		}
		b, err := t.Bytes()
		if err != nil {
			return nil, fmt.Errorf("nn: %s: %w", n, err)
		}
		out[n] = safetensors.Tensor{DType: dt, Shape: t.Shape(), Data: b}
	}
	return out, nil
}

// HostFromSafetensors converts entries read from a file.
func HostFromSafetensors(path string, in map[string]safetensors.Tensor) (map[string]HostTensor, error) {
	out := make(map[string]HostTensor, len(in))
	for n, t := range in {
		dt, ok := TorchDType(t.DType)
		if !ok {
			return nil, badinput.New(path, n, "unsupported dtype %s", t.DType)
		}
		out[n] = HostTensor{DType: dt, Shape: t.Shape, Data: t.Data}
	}
	return out, nil
}

// Tensors returns the store's entries by name (for checkpoints).
func (s *Store) Tensors() map[string]*torch.Tensor {
	m := make(map[string]*torch.Tensor, len(s.entries))
	for _, e := range s.entries {
		m[e.Name] = e.T
	}
	return m
}

// Save writes every parameter and buffer to a safetensors file atomically.
func (s *Store) Save(path string, meta map[string]string) error {
	st, err := ToSafetensors(s.Tensors())
	if err != nil {
		return err
	}
	return safetensors.Write(path, st, meta)
}

// Load fills the store from a safetensors file written by Save (strict).
func (s *Store) Load(path string) (map[string]string, error) {
	st, meta, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	host, err := HostFromSafetensors(path, st)
	if err != nil {
		return nil, err
	}
	_, _, err = s.LoadHost(host, LoadOpts{Strict: true, Source: path})
	return meta, err
}
