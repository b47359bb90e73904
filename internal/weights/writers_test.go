package weights_test

// Writers for the fixtures: torch.save files (zip and legacy) and MXNet
// NDArray lists, byte for byte in the layout PyTorch 1.13 and MXNet write
// (the pickle opcodes and memo use match `pickletools.dis` of torch.save
// output for an equivalent state_dict).

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sort"
	"testing"
)

// tensor is a pickled tensor: a view of a storage.
type tensor struct {
	storage string // key
	offset  int64
	size    []int64
	stride  []int64
}

// storage is the raw data of one storage.
type storage struct {
	class string // "FloatStorage", "LongStorage", …
	elem  int
	data  []byte
}

func (s storage) numel() int64 { return int64(len(s.data) / s.elem) }

// kv is one dict entry; odict is an OrderedDict with _metadata (a
// state_dict), dict a plain dict, list a Python list.
type kv struct {
	k string
	v any
}
type (
	odict []kv
	dict  []kv
	list  []any
)

// idict is a dict with int keys (torch.optim state, keyed by parameter
// index).
type idict []struct {
	k int
	v any
}

// object is an instance of another class (argparse.Namespace for saved
// arguments), pickled as copyreg does: class, (), NEWOBJ, state, BUILD.
type object struct {
	module, name string
	state        dict
}

type pickler struct {
	b        bytes.Buffer
	memo     map[string]int
	n        int
	storages map[string]storage
	legacy   bool
}

func newPickler(st map[string]storage, legacy bool) *pickler {
	p := &pickler{memo: map[string]int{}, storages: st, legacy: legacy}
	p.b.Write([]byte{0x80, 2}) // PROTO 2
	return p
}

func (p *pickler) put() {
	if p.n < 256 {
		p.b.Write([]byte{'q', byte(p.n)})
	} else {
		p.b.WriteByte('r')
		binary.Write(&p.b, binary.LittleEndian, uint32(p.n))
	}
	p.n++
}

// memoized writes a string or global once and refers to it afterwards.
func (p *pickler) memoized(key string, write func()) {
	if i, ok := p.memo[key]; ok {
		if i < 256 {
			p.b.Write([]byte{'h', byte(i)})
		} else {
			p.b.WriteByte('j')
			binary.Write(&p.b, binary.LittleEndian, uint32(i))
		}
		return
	}
	write()
	p.memo[key] = p.n
	p.put()
}

func (p *pickler) str(s string) {
	p.memoized("s:"+s, func() {
		p.b.WriteByte('X')
		binary.Write(&p.b, binary.LittleEndian, uint32(len(s)))
		p.b.WriteString(s)
	})
}

func (p *pickler) global(module, name string) {
	p.memoized("g:"+module+"."+name, func() { fmt.Fprintf(&p.b, "c%s\n%s\n", module, name) })
}

func (p *pickler) int(v int64) {
	switch {
	case v >= 0 && v < 256:
		p.b.Write([]byte{'K', byte(v)})
	case v >= 0 && v < 65536:
		p.b.WriteByte('M')
		binary.Write(&p.b, binary.LittleEndian, uint16(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.b.WriteByte('J')
		binary.Write(&p.b, binary.LittleEndian, int32(v))
	default:
		p.b.Write([]byte{0x8a, 8})
		binary.Write(&p.b, binary.LittleEndian, v)
	}
}

// tuple writes n items with the protocol-2 opcodes (EMPTY_TUPLE, TUPLE1-3,
// or MARK … TUPLE) and memoizes it, as pickle does.
func (p *pickler) tuple(n int, items func()) {
	switch {
	case n == 0:
		p.b.WriteByte(')')
		return // the empty tuple is a singleton: not memoized
	case n <= 3:
		items()
		p.b.WriteByte(byte(0x85 + n - 1))
	default:
		p.b.WriteByte('(')
		items()
		p.b.WriteByte('t')
	}
	p.put()
}

func (p *pickler) ints(v []int64) {
	p.tuple(len(v), func() {
		for _, x := range v {
			p.int(x)
		}
	})
}

func (p *pickler) emptyOrderedDict() {
	p.global("collections", "OrderedDict")
	p.b.WriteByte(')')
	p.b.WriteByte('R')
	p.put()
}

func (p *pickler) items(kvs []kv) {
	switch len(kvs) {
	case 0:
	case 1:
		p.str(kvs[0].k)
		p.value(kvs[0].v)
		p.b.WriteByte('s')
	default:
		p.b.WriteByte('(')
		for _, e := range kvs {
			p.str(e.k)
			p.value(e.v)
		}
		p.b.WriteByte('u')
	}
}

func (p *pickler) value(v any) {
	switch x := v.(type) {
	case int:
		p.int(int64(x))
	case string:
		p.str(x)
	case float64:
		p.b.WriteByte('G')
		binary.Write(&p.b, binary.BigEndian, x)
	case bool:
		if x {
			p.b.WriteByte(0x88)
		} else {
			p.b.WriteByte(0x89)
		}
	case nil:
		p.b.WriteByte('N')
	case dict:
		p.b.WriteByte('}')
		p.put()
		p.items(x)
	case idict:
		p.b.WriteByte('}')
		p.put()
		if len(x) > 0 {
			p.b.WriteByte('(')
			for _, e := range x {
				p.int(int64(e.k))
				p.value(e.v)
			}
			p.b.WriteByte('u')
		}
	case list:
		p.b.WriteByte(']')
		p.put()
		switch len(x) {
		case 0:
		case 1:
			p.value(x[0])
			p.b.WriteByte('a')
		default:
			p.b.WriteByte('(')
			for _, e := range x {
				p.value(e)
			}
			p.b.WriteByte('e')
		}
	case odict:
		p.emptyOrderedDict()
		p.items(x)
		// state: {'_metadata': OrderedDict([('', {'version': 1})])}, BUILD
		p.b.WriteByte('}')
		p.put()
		p.str("_metadata")
		p.emptyOrderedDict()
		p.str("")
		p.b.WriteByte('}')
		p.put()
		p.str("version")
		p.int(1)
		p.b.Write([]byte{'s', 's', 's', 'b'})
	case object:
		p.global(x.module, x.name)
		p.b.Write([]byte{')', 0x81})
		p.put()
		p.value(x.state)
		p.b.WriteByte('b')
	case tensor:
		st, ok := p.storages[x.storage]
		if !ok {
			panic("fixture names an unknown storage " + x.storage)
		}
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.b.WriteByte('(')
		n := 5
		if p.legacy {
			n = 6
		}
		p.tuple(n, func() {
			p.str("storage")
			p.global("torch", st.class)
			if p.legacy {
				// The legacy writer makes a new key string, str(obj._cdata),
				// per reference: pickle memoizes by identity, so no BINGET.
				p.b.WriteByte('X')
				binary.Write(&p.b, binary.LittleEndian, uint32(len(x.storage)))
				p.b.WriteString(x.storage)
				p.put()
			} else {
				p.str(x.storage)
			}
			p.str("cpu")
			p.int(st.numel())
			if p.legacy {
				p.b.WriteByte('N') // no view
			}
		})
		p.b.WriteByte('Q') // BINPERSID
		p.int(x.offset)
		p.ints(x.size)
		p.ints(x.stride)
		p.b.WriteByte(0x89) // requires_grad False
		p.emptyOrderedDict()
		p.b.WriteByte('t')
		p.put()
		p.b.WriteByte('R')
		p.put()
	default:
		panic(fmt.Sprintf("fixture value of type %T", v))
	}
}

func (p *pickler) bytes() []byte {
	p.b.WriteByte('.')
	return p.b.Bytes()
}

// writeZipPth writes obj as torch.save (PyTorch ≥ 1.6) does: a stored zip
// with <name>/data.pkl, <name>/data/<key> and <name>/version.
func writeZipPth(t *testing.T, path string, obj any, st map[string]storage) {
	t.Helper()
	p := newPickler(st, false)
	p.value(obj)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("archive/data.pkl", p.bytes())
	for _, k := range sortedKeys(st) {
		add("archive/data/"+k, st[k].data)
	}
	add("archive/version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeLegacyPth writes obj as torch.save(..., _use_new_zipfile_serialization
// =False) does: magic, protocol version, system info, the object, the sorted
// storage keys, then each storage as int64 count + data.
func writeLegacyPth(t *testing.T, path string, obj any, st map[string]storage) {
	t.Helper()
	var out bytes.Buffer
	magic := newPickler(nil, true)
	magic.b.Write([]byte{0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19})
	out.Write(magic.bytes())
	ver := newPickler(nil, true)
	ver.int(1001)
	out.Write(ver.bytes())
	info := newPickler(nil, true)
	info.value(dict{{"protocol_version", 1001}, {"little_endian", true},
		{"type_sizes", dict{{"short", 2}, {"int", 4}, {"long", 4}}}})
	out.Write(info.bytes())
	p := newPickler(st, true)
	p.value(obj)
	out.Write(p.bytes())
	keys := newPickler(nil, true)
	var ks list
	for _, k := range sortedKeys(st) {
		ks = append(ks, k)
	}
	keys.value(ks)
	out.Write(keys.bytes())
	for _, k := range sortedKeys(st) {
		binary.Write(&out, binary.LittleEndian, st[k].numel())
		out.Write(st[k].data)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// mxArray is one array of an MXNet list, saved in one of the format
// versions: "v2" (current), "v1" (int64 shape, no storage type) or
// "legacy" (uint32 shape).
type mxArray struct {
	name    string
	shape   []int64
	data    []float32
	version string
}

func writeMXNet(t *testing.T, path string, arrays []mxArray) {
	t.Helper()
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	w(uint64(0x112))
	w(uint64(0))
	w(uint64(len(arrays)))
	for _, a := range arrays {
		switch a.version {
		case "v2":
			w(uint32(0xF993FAC9))
			w(int32(0)) // dense storage
			fallthrough
		case "v1":
			if a.version == "v1" {
				w(uint32(0xF993FAC8))
			}
			w(uint32(len(a.shape)))
			for _, d := range a.shape {
				w(d)
			}
		case "legacy":
			w(uint32(len(a.shape)))
			for _, d := range a.shape {
				w(uint32(d))
			}
		default:
			t.Fatalf("version %q", a.version)
		}
		w(int32(1)) // cpu
		w(int32(0))
		w(int32(0)) // float32
		b.Write(f32bytes(a.data))
	}
	w(uint64(len(arrays)))
	for _, a := range arrays {
		w(uint64(len(a.name)))
		b.WriteString(a.name)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
