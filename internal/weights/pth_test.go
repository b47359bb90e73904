package weights_test

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/internal/weights"
)

// w = arange(6).reshape(2, 3); t = w.t() (same storage); n = tensor(5).
func smallFixture(floatKey, longKey string) (odict, map[string]storage) {
	st := map[string]storage{
		floatKey: {class: "FloatStorage", elem: 4, data: f32bytes([]float32{0, 1, 2, 3, 4, 5})},
		longKey:  {class: "LongStorage", elem: 8, data: binary.LittleEndian.AppendUint64(nil, 5)},
	}
	sd := odict{
		{"w", tensor{storage: floatKey, size: []int64{2, 3}, stride: []int64{3, 1}}},
		{"t", tensor{storage: floatKey, size: []int64{3, 2}, stride: []int64{1, 3}}},
		{"n", tensor{storage: longKey, size: []int64{}, stride: []int64{}}},
	}
	return sd, st
}

// The fixture writers produce what PyTorch 1.13.1 wrote for the same
// objects: torch.save({'state_dict': sd, 'epoch': 9}) (its data.pkl) and
// torch.save(sd, _use_new_zipfile_serialization=False) (the whole file).
func TestWritersMatchTorchSave(t *testing.T) {
	const zipPkl = "80027d710028580a00000073746174655f64696374710163636f6c6c656374696f6e730a4f726465726564446963740a71022952710328580100000077710463746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a71052828580700000073746f72616765710663746f7263680a466c6f617453746f726167650a71075801000000307108580300000063707571094b0674710a514b004b024b0386710b4b034b0186710c8968022952710d74710e52710f58010000007471106805282868066807680868094b06747111514b004b034b028671124b014b038671138968022952711474711552711658010000006e711768052828680663746f7263680a4c6f6e6753746f726167650a7118580100000031711968094b0174711a514b0029298968022952711b74711c52711d757d711e58090000005f6d65746164617461711f680229527120580000000071217d7122580700000076657273696f6e71234b0173737362580500000065706f636871244b09752e"
	const legacyFile = "80028a0a6cfc9c46f9206aa850192e80024de9032e80027d710028581000000070726f746f636f6c5f76657273696f6e71014de903580d0000006c6974746c655f656e6469616e710288580a000000747970655f73697a657371037d710428580500000073686f727471054b025803000000696e7471064b0458040000006c6f6e6771074b0475752e800263636f6c6c656374696f6e730a4f726465726564446963740a71002952710128580100000077710263746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a71032828580700000073746f72616765710463746f7263680a466c6f617453746f726167650a710558090000003937303537323039367106580300000063707571074b064e747108514b004b024b038671094b034b0186710a8968002952710b74710c52710d580100000074710e68032828680468055809000000393730353732303936710f68074b064e747110514b004b034b028671114b014b038671128968002952711374711452711558010000006e711668032828680463746f7263680a4c6f6e6753746f726167650a71175809000000393038353936323234711868074b014e747119514b0029298968002952711a74711b52711c757d711d58090000005f6d65746164617461711e68002952711f580000000071207d7121580700000076657273696f6e71224b01737373622e80025d7100285809000000393038353936323234710158090000003937303537323039367102652e010000000000000005000000000000000600000000000000000000000000803f0000004000004040000080400000a040"
	sd, st := smallFixture("0", "1")
	p := newPickler(st, false)
	p.value(dict{{"state_dict", sd}, {"epoch", 9}})
	if got := hex.EncodeToString(p.bytes()); got != zipPkl {
		t.Fatalf("zip data.pkl differs from torch.save's:\n got %s\nwant %s", got, zipPkl)
	}
	sd, st = smallFixture("970572096", "908596224")
	path := filepath.Join(t.TempDir(), "legacy.pth")
	writeLegacyPth(t, path, sd, st)
	raw, _ := os.ReadFile(path)
	if got := hex.EncodeToString(raw); got != legacyFile {
		t.Fatalf("legacy file differs from torch.save's:\n got %s\nwant %s", got, legacyFile)
	}
}

func checkSmall(t *testing.T, sd map[string]nn.HostTensor) {
	t.Helper()
	w, _ := sd["w"].Float32s()
	tr, _ := sd["t"].Float32s()
	if !slices.Equal(w, []float32{0, 1, 2, 3, 4, 5}) || !slices.Equal(sd["w"].Shape, []int64{2, 3}) {
		t.Fatalf("w = %v %v", sd["w"].Shape, w)
	}
	// The transposed view is made contiguous: rows of w.t().
	if !slices.Equal(tr, []float32{0, 3, 1, 4, 2, 5}) || !slices.Equal(sd["t"].Shape, []int64{3, 2}) {
		t.Fatalf("t = %v %v", sd["t"].Shape, tr)
	}
	n := sd["n"]
	if n.DType != torch.Int64 || len(n.Shape) != 0 || binary.LittleEndian.Uint64(n.Data) != 5 {
		t.Fatalf("n = %+v", n)
	}
}

func TestReadPthZipAndLegacy(t *testing.T) {
	dir := t.TempDir()
	sd, st := smallFixture("0", "1")
	zp := filepath.Join(dir, "ck.pth")
	writeZipPth(t, zp, dict{{"state_dict", sd}, {"epoch", 9}}, st)
	p, err := weights.OpenPth(zp)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !slices.Equal(p.Dicts(), []string{"state_dict"}) {
		t.Fatalf("dicts %v", p.Dicts())
	}
	if e, ok := p.Number("epoch"); !ok || e != 9 {
		t.Fatalf("epoch %v %v", e, ok)
	}
	got, err := p.StateDict("state_dict")
	if err != nil {
		t.Fatal(err)
	}
	checkSmall(t, got)
	if _, err := p.StateDict(""); err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), "state_dict") {
		t.Fatalf("top-level dict of a checkpoint: %v", err)
	}

	sd, st = smallFixture("970572096", "908596224")
	lp := filepath.Join(dir, "legacy.pth")
	writeLegacyPth(t, lp, sd, st)
	got, err = weights.ReadStateDict(lp, "")
	if err != nil {
		t.Fatal(err)
	}
	checkSmall(t, got)
}

func f16bits(v float32) uint16 {
	// Exact for the values used here (small dyadic rationals).
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	exp := int((b>>23)&0xff) - 127 + 15
	mant := uint16((b >> 13) & 0x3ff)
	if v == 0 {
		return sign
	}
	return sign | uint16(exp)<<10 | mant
}

// Offsets, non-contiguous strides, double and half storages, empty tensors
// and the DataParallel prefix, loaded through a Store.
func TestPthViewsDTypesIntoStore(t *testing.T) {
	base := make([]float32, 12)
	for i := range base {
		base[i] = float32(i) + 0.5
	}
	f64 := make([]byte, 0, 24)
	for _, v := range []float64{-1.25, 2.5, 1e-3} {
		f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(v))
	}
	f16 := make([]byte, 0, 4)
	for _, v := range []float32{1.5, -2} {
		f16 = binary.LittleEndian.AppendUint16(f16, f16bits(v))
	}
	st := map[string]storage{
		"0": {class: "FloatStorage", elem: 4, data: f32bytes(base)},
		"1": {class: "DoubleStorage", elem: 8, data: f64},
		"2": {class: "HalfStorage", elem: 2, data: f16},
	}
	sd := odict{
		// base.view(3, 4)[1:, 1:3]: offset 5, size (2, 2), stride (4, 1).
		{"module.block", tensor{storage: "0", offset: 5, size: []int64{2, 2}, stride: []int64{4, 1}}},
		// base.view(3, 4)[:, 3]: a column, offset 3, stride 4.
		{"module.col", tensor{storage: "0", offset: 3, size: []int64{3}, stride: []int64{4}}},
		{"module.dbl", tensor{storage: "1", size: []int64{3}, stride: []int64{1}}},
		{"module.half", tensor{storage: "2", size: []int64{2, 1, 1, 1}, stride: []int64{1, 1, 1, 1}}},
		{"module.empty", tensor{storage: "0", size: []int64{0, 3}, stride: []int64{3, 1}}},
	}
	path := filepath.Join(t.TempDir(), "views.pth")
	writeZipPth(t, path, sd, st)
	got, err := weights.ReadStateDict(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if got["half"].DType != torch.Float16 || got["dbl"].DType != torch.Float64 || len(got["empty"].Data) != 0 {
		t.Fatalf("dtypes %v %v, empty %d bytes", got["half"].DType, got["dbl"].DType, len(got["empty"].Data))
	}
	store := nn.NewStore(torch.CPU())
	defer store.Close()
	store.Param("block", []int64{2, 2}, "x", nil)
	store.Param("col", []int64{3}, "x", nil)
	store.Param("dbl", []int64{3}, "x", nil)
	store.Param("half", []int64{2, 1, 1, 1}, "x", nil)
	store.Buffer("empty", []int64{0, 3}, 0)
	if _, _, err := store.LoadHost(got, nn.LoadOpts{Strict: true, Source: path}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{
		"block": {5.5, 6.5, 9.5, 10.5},
		"col":   {3.5, 7.5, 11.5},
		"dbl":   {-1.25, 2.5, 1e-3},
		"half":  {1.5, -2},
	}
	for n, w := range want {
		v, _ := store.Get(n).Float32s()
		if !slices.Equal(v, w) {
			t.Fatalf("%s = %v, want %v", n, v, w)
		}
	}
}

// Corrupt, truncated and unsupported files are bad input naming the file
// (and the tensor, where one is at fault); the process lives.
func TestPthBadFiles(t *testing.T) {
	dir := t.TempDir()
	sd, st := smallFixture("0", "1")
	good := filepath.Join(dir, "good.pth")
	writeZipPth(t, good, sd, st)
	raw, _ := os.ReadFile(good)

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tarHead := make([]byte, 1024)
	copy(tarHead[257:], "ustar")
	legacyPath := filepath.Join(dir, "legacy.pth")
	sdl, stl := smallFixture("970572096", "908596224")
	writeLegacyPth(t, legacyPath, sdl, stl)
	legacy, _ := os.ReadFile(legacyPath)

	badView := filepath.Join(dir, "view.pth")
	writeZipPth(t, badView, odict{{"fc8.weight", tensor{storage: "0", offset: 4, size: []int64{2, 2}, stride: []int64{2, 1}}}},
		map[string]storage{"0": {class: "FloatStorage", elem: 4, data: f32bytes(make([]float32, 6))}})
	int8 := filepath.Join(dir, "int8.pth")
	writeZipPth(t, int8, odict{{"q.weight", tensor{storage: "0", size: []int64{2}, stride: []int64{1}}}},
		map[string]storage{"0": {class: "CharStorage", elem: 1, data: []byte{1, 2}}})

	cases := []struct {
		name, path, loc, key string
	}{
		{"missing file", filepath.Join(dir, "nope.pth"), "", ""},
		{"random bytes", write("random.pth", []byte("this is not a checkpoint at all")), "", ""},
		{"truncated zip", write("trunc.pth", raw[:len(raw)/2]), "", ""},
		{"legacy tar", write("tar.pth", tarHead), "", ""},
		{"truncated legacy", write("trunc_legacy.pth", legacy[:len(legacy)-10]), "", ""},
		{"view past its storage", badView, "", "fc8.weight"},
		{"int8 storage", int8, "", "q.weight"},
		{"absent dictionary", good, "local_dict", "local_dict"},
	}
	for _, c := range cases {
		_, err := weights.ReadStateDict(c.path, c.loc)
		t.Logf("%s: %v", c.name, err)
		if err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		if !badinput.Is(err) || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.key) {
			t.Fatalf("%s: %v (want bad input naming %s and %q)", c.name, err, c.path, c.key)
		}
	}
}
