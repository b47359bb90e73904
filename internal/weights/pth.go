// Package weights reads weights written by other frameworks — PyTorch .pth
// files (torch.save) and MXNet .params files — into host tensors, maps their
// names onto l2g's networks (internal/nn) and loads them into a Store.
package weights

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
)

// The pickle is parsed with gopickle's unpickler; storages are read here
// rather than by gopickle's pytorch loader, which reads every storage eagerly
// (an L2G checkpoint's optimizer state doubles its size), does not check
// short reads, and panics on legacy tar files and storage views.

// Pth is an opened torch.save file: its tensor dictionaries are known, their
// data is read on demand by StateDict.
type Pth struct {
	path    string
	dicts   map[string]map[string]*tensorRef
	numbers map[string]float64
	src     storageSource
}

// storageSource reads the raw little-endian bytes of one storage.
type storageSource interface {
	read(ref *storageRef) ([]byte, error)
	close() error
}

// storageClass is torch.FloatStorage and friends, as named in the pickle.
type storageClass struct {
	name  string
	dtype torch.DType
	size  int // bytes per element in the file
	ok    bool
}

func (c *storageClass) Call(...interface{}) (interface{}, error) {
	return nil, fmt.Errorf("%s cannot be called", c.name)
}

var errNoDType = errors.New("unsupported storage type")

func lookupStorage(name string) (*storageClass, bool) {
	switch name {
	case "FloatStorage":
		return &storageClass{name, torch.Float32, 4, true}, true
	case "DoubleStorage":
		return &storageClass{name, torch.Float64, 8, true}, true
	case "HalfStorage":
		return &storageClass{name, torch.Float16, 2, true}, true
	case "BFloat16Storage":
		return &storageClass{name, torch.BFloat16, 2, true}, true
	case "LongStorage":
		return &storageClass{name, torch.Int64, 8, true}, true
	case "IntStorage":
		return &storageClass{name, torch.Int32, 4, true}, true
	case "ByteStorage":
		return &storageClass{name, torch.Uint8, 1, true}, true
	case "BoolStorage":
		return &storageClass{name, torch.Bool, 1, true}, true
	case "CharStorage", "ShortStorage":
		// Readable in principle; the binding has no int8/int16 and no model
		// needs them.
		size := 1
		if name == "ShortStorage" {
			size = 2
		}
		return &storageClass{name: name, size: size}, true
	}
	return nil, false
}

// storageRef is one storage the pickle refers to by key.
type storageRef struct {
	class *storageClass
	key   string
	numel int64
}

// tensorRef is a tensor rebuilt by torch._utils._rebuild_tensor_v2: a view
// (offset, size, stride, in elements) of a storage.
type tensorRef struct {
	st     *storageRef
	offset int64
	size   []int64
	stride []int64
}

// rebuildTensor is torch._utils._rebuild_tensor_v2 (and the older
// _rebuild_tensor): (storage, offset, size, stride[, requires_grad,
// backward_hooks[, metadata]]).
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...interface{}) (interface{}, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor: %d arguments", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor: storage is %T", args[0])
	}
	off, ok := args[1].(int)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor: offset is %T", args[1])
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor: stride: %w", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor: size %v and stride %v differ in rank", size, stride)
	}
	return &tensorRef{st: st, offset: int64(off), size: size, stride: stride}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad,
// hooks): the tensor itself.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...interface{}) (interface{}, error) {
	if len(args) < 1 {
		return nil, errors.New("_rebuild_parameter without arguments")
	}
	if _, ok := args[0].(*tensorRef); !ok {
		return nil, fmt.Errorf("_rebuild_parameter of %T", args[0])
	}
	return args[0], nil
}

// opaqueClass stands for any other class (argparse.Namespace in saved
// arguments, …): it can be built and given state, and is then ignored.
type opaqueClass struct{ module, name string }

type opaqueObject struct{}

func (c *opaqueClass) Call(...interface{}) (interface{}, error)  { return &opaqueObject{}, nil }
func (c *opaqueClass) PyNew(...interface{}) (interface{}, error) { return &opaqueObject{}, nil }
func (*opaqueObject) PySetState(interface{}) error               { return nil }

func intTuple(v interface{}) ([]int64, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("want a tuple, got %T", v)
	}
	out := make([]int64, t.Len())
	for i := range out {
		n, ok := t.Get(i).(int)
		if !ok {
			return nil, fmt.Errorf("element %d is %T", i, t.Get(i))
		}
		out[i] = int64(n)
	}
	return out, nil
}

func findClass(module, name string) (interface{}, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter":
		return rebuildParameter{}, nil
	}
	if module == "torch" {
		if c, ok := lookupStorage(name); ok {
			return c, nil
		}
	}
	return &opaqueClass{module, name}, nil
}

// persistentID turns ('storage', class, key, location, numel[, view]) into
// a storageRef, one per key.
func persistentID(refs map[string]*storageRef, legacy bool) func(interface{}) (interface{}, error) {
	return func(id interface{}) (interface{}, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() < 5 {
			return nil, fmt.Errorf("persistent id %#v is not a storage record", id)
		}
		if kind, _ := t.Get(0).(string); kind != "storage" {
			return nil, fmt.Errorf("persistent id of kind %v, want storage", t.Get(0))
		}
		class, ok1 := t.Get(1).(*storageClass)
		key, ok2 := t.Get(2).(string)
		numel, ok3 := t.Get(4).(int)
		if !ok1 || !ok2 || !ok3 || numel < 0 {
			return nil, fmt.Errorf("storage record %v %v %v: bad types", t.Get(1), t.Get(2), t.Get(4))
		}
		if legacy && t.Len() > 5 && t.Get(5) != nil {
			return nil, fmt.Errorf("storage %s is a view of another storage (pre-0.4 format), not supported", key)
		}
		if r, ok := refs[key]; ok {
			return r, nil
		}
		r := &storageRef{class: class, key: key, numel: int64(numel)}
		refs[key] = r
		return r, nil
	}
}

// unpickle runs one pickle from r. gopickle can panic on malformed input
// (index errors); that is reported as an error.
func unpickle(r io.Reader, refs map[string]*storageRef, legacy bool) (obj interface{}, err error) {
	defer func() {
		if p := recover(); p != nil {
			obj, err = nil, fmt.Errorf("malformed pickle: %v", p)
		}
	}()
	u := pickle.NewUnpickler(r)
	u.FindClass = findClass
	if refs != nil {
		u.PersistentLoad = persistentID(refs, legacy)
	}
	return u.Load()
}

// OpenPth opens a torch.save file: the zip format (PyTorch ≥ 1.6) or the
// legacy pickle-stream format (PyTorch 0.4–1.5). Every dictionary of
// tensors in it is recorded (see Dicts); top-level numbers are kept.
func OpenPth(path string) (*Pth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	var head [512]byte
	n, _ := io.ReadFull(f, head[:])
	p := &Pth{path: path, dicts: map[string]map[string]*tensorRef{}, numbers: map[string]float64{}}
	refs := map[string]*storageRef{}
	var root interface{}
	switch {
	case n >= 4 && string(head[:4]) == "PK\x03\x04":
		f.Close()
		root, err = p.openZip(refs)
	case n >= 262 && string(head[257:262]) == "ustar":
		f.Close()
		return nil, badinput.New(path, "", "legacy tar checkpoint (PyTorch < 0.4) is not supported; re-save it with torch.save")
	default:
		root, err = p.openLegacy(f, refs)
	}
	if err != nil {
		if p.src != nil {
			p.src.close()
		}
		return nil, badinput.Wrap(path, "", err)
	}
	p.collect(root, "")
	return p, nil
}

func (p *Pth) openZip(refs map[string]*storageRef) (interface{}, error) {
	zr, err := zip.OpenReader(p.path)
	if err != nil {
		return nil, fmt.Errorf("not a readable zip archive: %w", err)
	}
	src := &zipSource{zr: zr, files: map[string]*zip.File{}}
	p.src = src
	var dataPkl *zip.File
	for _, zf := range zr.File {
		dir, base := path.Split(zf.Name)
		switch {
		case base == "data.pkl" && strings.Count(dir, "/") == 1:
			dataPkl = zf
		case base == "constants.pkl":
			return nil, errors.New("a TorchScript archive, not a torch.save file")
		case base == "byteorder":
			b, err := readZipFile(zf, 16)
			if err != nil {
				return nil, err
			}
			if strings.TrimSpace(string(b)) != "little" {
				return nil, fmt.Errorf("byte order %q is not supported", b)
			}
		case strings.HasSuffix(dir, "/data/"):
			src.files[base] = zf
		}
	}
	if dataPkl == nil {
		return nil, errors.New("zip archive has no <name>/data.pkl: not a torch.save file")
	}
	pkl, err := readZipFile(dataPkl, 1<<30)
	if err != nil {
		return nil, err
	}
	root, err := unpickle(bytes.NewReader(pkl), refs, false)
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	return root, nil
}

func readZipFile(zf *zip.File, limit uint64) ([]byte, error) {
	if zf.UncompressedSize64 > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", zf.Name, zf.UncompressedSize64, limit)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	defer rc.Close()
	b := make([]byte, zf.UncompressedSize64)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	return b, nil
}

type zipSource struct {
	zr    *zip.ReadCloser
	files map[string]*zip.File // by storage key
}

func (z *zipSource) read(ref *storageRef) ([]byte, error) {
	zf, ok := z.files[ref.key]
	if !ok {
		return nil, fmt.Errorf("storage %s: no data/%s record in the archive", ref.key, ref.key)
	}
	want := uint64(ref.numel) * uint64(ref.class.size)
	if zf.UncompressedSize64 < want {
		return nil, fmt.Errorf("storage %s: %d bytes, want %d for %d %s elements", ref.key, zf.UncompressedSize64, want, ref.numel, ref.class.name)
	}
	b, err := readZipFile(zf, zf.UncompressedSize64)
	if err != nil {
		return nil, err
	}
	return b[:want], nil
}

func (z *zipSource) close() error { return z.zr.Close() }

// Legacy format: pickles of the magic number, the protocol version and the
// system info, then the object pickle, then the sorted storage keys; then
// each storage as an int64 element count and its raw data.
const (
	legacyMagic   = "1950a86a20f9469cfc6c"
	legacyVersion = 1001
)

type legacySource struct {
	f       *os.File
	offsets map[string]int64 // data offset of each storage
}

func (l *legacySource) read(ref *storageRef) ([]byte, error) {
	off, ok := l.offsets[ref.key]
	if !ok {
		return nil, fmt.Errorf("storage %s is not in the file", ref.key)
	}
	b := make([]byte, ref.numel*int64(ref.class.size))
	if _, err := l.f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("storage %s: %w", ref.key, err)
	}
	return b, nil
}

func (l *legacySource) close() error { return l.f.Close() }

func (p *Pth) openLegacy(f *os.File, refs map[string]*storageRef) (interface{}, error) {
	src := &legacySource{f: f, offsets: map[string]int64{}}
	p.src = src
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	br := bufio.NewReader(f)
	magic, err := unpickle(br, nil, true)
	if n, ok := magic.(*big.Int); err != nil || !ok || n.Text(16) != legacyMagic {
		return nil, errors.New("neither a zip archive nor a legacy torch.save stream (bad magic number)")
	}
	if v, err := unpickle(br, nil, true); err != nil || v != legacyVersion {
		return nil, fmt.Errorf("legacy protocol version %v, want %d", v, legacyVersion)
	}
	info, err := unpickle(br, nil, true)
	if err != nil {
		return nil, fmt.Errorf("system info: %w", err)
	}
	if d, ok := info.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le != true {
			return nil, errors.New("big-endian legacy file is not supported")
		}
	}
	root, err := unpickle(br, refs, true)
	if err != nil {
		return nil, err
	}
	rawKeys, err := unpickle(br, nil, true)
	if err != nil {
		return nil, fmt.Errorf("storage keys: %w", err)
	}
	keys, ok := rawKeys.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage keys are %T, want a list", rawKeys)
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	pos -= int64(br.Buffered())
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	for _, k := range *keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("storage key %v is not a string", k)
		}
		ref, ok := refs[key]
		if !ok {
			return nil, fmt.Errorf("storage %s is listed but never used", key)
		}
		var cnt [8]byte
		if _, err := f.ReadAt(cnt[:], pos); err != nil {
			return nil, fmt.Errorf("storage %s header: %w", key, err)
		}
		numel := int64(binary.LittleEndian.Uint64(cnt[:]))
		if numel != ref.numel {
			return nil, fmt.Errorf("storage %s has %d elements, the pickle says %d", key, numel, ref.numel)
		}
		src.offsets[key] = pos + 8
		pos += 8 + numel*int64(ref.class.size)
		if pos > fi.Size() {
			return nil, fmt.Errorf("storage %s runs past the end of the file (truncated?)", key)
		}
	}
	return root, nil
}

// dictEntries lists a pickled dict's entries in order.
func dictEntries(v interface{}) ([]types.DictEntry, bool) {
	switch d := v.(type) {
	case *types.Dict:
		return *d, true
	case *types.OrderedDict:
		out := make([]types.DictEntry, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			en := e.Value.(*types.OrderedDictEntry)
			out = append(out, types.DictEntry{Key: en.Key, Value: en.Value})
		}
		return out, true
	}
	return nil, false
}

// collect records the tensors of every dict with string keys, by the keys
// that lead to it joined with "/" ("" for the top level).
func (p *Pth) collect(v interface{}, loc string) {
	entries, ok := dictEntries(v)
	if !ok {
		return
	}
	for _, e := range entries {
		k, ok := e.Key.(string)
		if !ok {
			continue // optimizer state is keyed by parameter index
		}
		switch x := e.Value.(type) {
		case *tensorRef:
			if p.dicts[loc] == nil {
				p.dicts[loc] = map[string]*tensorRef{}
			}
			p.dicts[loc][k] = x
		case int:
			if loc == "" {
				p.numbers[k] = float64(x)
			}
		case float64:
			if loc == "" {
				p.numbers[k] = x
			}
		default:
			sub := k
			if loc != "" {
				sub = loc + "/" + k
			}
			p.collect(x, sub)
		}
	}
}

// Close releases the file.
func (p *Pth) Close() error { return p.src.close() }

// Dicts lists where the file's tensor dictionaries are: "" for a state_dict
// saved as the whole file; "state_dict", "local_dict" in an L2G checkpoint.
func (p *Pth) Dicts() []string {
	out := make([]string, 0, len(p.dicts))
	for k := range p.dicts {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Number is a top-level numeric entry (an L2G checkpoint's "epoch").
func (p *Pth) Number(key string) (float64, bool) {
	v, ok := p.numbers[key]
	return v, ok
}

// StateDict reads the tensors of the dictionary at loc (see Dicts) into
// contiguous host tensors. Keys lose a leading "module." (what
// nn.DataParallel adds when the reference saves its nets).
func (p *Pth) StateDict(loc string) (map[string]nn.HostTensor, error) {
	refs, ok := p.dicts[loc]
	if !ok {
		return nil, badinput.New(p.path, loc, "no tensor dictionary here; the file has %q", p.Dicts())
	}
	cache := map[string][]byte{}
	out := make(map[string]nn.HostTensor, len(refs))
	for k, t := range refs {
		if t.st.class.size == 0 || !t.st.class.ok {
			return nil, badinput.New(p.path, k, "%s: %v", t.st.class.name, errNoDType)
		}
		data, ok := cache[t.st.key]
		if !ok {
			var err error
			if data, err = p.src.read(t.st); err != nil {
				return nil, badinput.Wrap(p.path, k, err)
			}
			cache[t.st.key] = data
		}
		h, err := t.host(data)
		if err != nil {
			return nil, badinput.Wrap(p.path, k, err)
		}
		name := strings.TrimPrefix(k, "module.")
		if _, dup := out[name]; dup {
			return nil, badinput.New(p.path, k, "both %s and module.%s are present", name, name)
		}
		out[name] = h
	}
	return out, nil
}

// host copies the view out of its storage bytes in row-major order.
func (t *tensorRef) host(data []byte) (nn.HostTensor, error) {
	es := int64(t.st.class.size)
	numel := int64(1)
	last := t.offset
	for i, n := range t.size {
		if n < 0 || t.stride[i] < 0 {
			return nn.HostTensor{}, fmt.Errorf("size %v stride %v", t.size, t.stride)
		}
		numel *= n
		if n > 0 {
			last += (n - 1) * t.stride[i]
		}
	}
	h := nn.HostTensor{DType: t.st.class.dtype, Shape: append([]int64{}, t.size...)}
	if numel == 0 {
		h.Data = []byte{}
		return h, nil
	}
	if t.offset < 0 || last >= t.st.numel {
		return nn.HostTensor{}, fmt.Errorf("view (offset %d, size %v, stride %v) exceeds its storage of %d elements", t.offset, t.size, t.stride, t.st.numel)
	}
	if contiguous(t.size, t.stride) {
		h.Data = data[t.offset*es : (t.offset+numel)*es]
		return h, nil
	}
	h.Data = make([]byte, numel*es)
	idx := make([]int64, len(t.size))
	src := t.offset
	for i := range numel {
		copy(h.Data[i*es:(i+1)*es], data[src*es:(src+1)*es])
		for d := len(idx) - 1; d >= 0; d-- { // odometer over the dims
			idx[d]++
			src += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			src -= idx[d] * t.stride[d]
			idx[d] = 0
		}
	}
	return h, nil
}

// contiguous reports row-major strides (size-1 dims may have any stride).
func contiguous(size, stride []int64) bool {
	want := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// ReadStateDict opens path, reads the dictionary at loc and closes it.
func ReadStateDict(path, loc string) (map[string]nn.HostTensor, error) {
	p, err := OpenPth(path)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.StateDict(loc)
}
