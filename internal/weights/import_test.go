package weights_test

import (
	"encoding/binary"
	"fmt"
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

// fixtureValues gives every entry of st distinct values: entry i holds
// seed + i + j/(numel+1), so a tensor loaded into the wrong place shows.
func fixtureValues(st *nn.Store, seed float32) map[string][]float32 {
	out := map[string][]float32{}
	for i, e := range st.Entries() {
		n := e.T.Numel()
		v := make([]float32, n)
		for j := range v {
			v[j] = seed + float32(i) + float32(j)/float32(n+1)
		}
		out[e.Name] = v
	}
	return out
}

// stateDict turns values into a pickled state_dict under rename(name),
// one storage per tensor, keys numbered from *next.
func stateDict(st *nn.Store, vals map[string][]float32, rename func(string) string, storages map[string]storage, next *int) odict {
	var sd odict
	for _, e := range st.Entries() {
		key := fmt.Sprint(*next)
		*next++
		storages[key] = storage{class: "FloatStorage", elem: 4, data: f32bytes(vals[e.Name])}
		sh := e.T.Shape()
		stride := make([]int64, len(sh))
		acc := int64(1)
		for i := len(sh) - 1; i >= 0; i-- {
			stride[i] = acc
			acc *= sh[i]
		}
		sd = append(sd, kv{rename(e.Name), tensor{storage: key, size: sh, stride: stride}})
	}
	return sd
}

// batchesTracked adds num_batches_tracked entries for each BN, as PyTorch
// ≥ 0.4.1 state_dicts have them.
func batchesTracked(st *nn.Store, sd odict, rename func(string) string, storages map[string]storage, next *int) odict {
	for _, n := range st.Names() {
		if base, ok := strings.CutSuffix(n, ".running_mean"); ok {
			key := fmt.Sprint(*next)
			*next++
			storages[key] = storage{class: "LongStorage", elem: 8, data: binary.LittleEndian.AppendUint64(nil, 1234)}
			sd = append(sd, kv{rename(base + ".num_batches_tracked"), tensor{storage: key, size: []int64{}, stride: []int64{}}})
		}
	}
	return sd
}

// prune drops the storages no tensor of sd uses (torch.save writes only
// referenced storages).
func prune(sd odict, storages map[string]storage) {
	used := map[string]bool{}
	for _, e := range sd {
		used[e.v.(tensor).storage] = true
	}
	for k := range storages {
		if !used[k] {
			delete(storages, k)
		}
	}
}

func checkValues(t *testing.T, st *nn.Store, want map[string][]float32, skip func(string) bool) int {
	t.Helper()
	n := 0
	for _, e := range st.Entries() {
		if skip != nil && skip(e.Name) {
			continue
		}
		got, err := e.T.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want[e.Name]) {
			t.Fatalf("%s: got %v…, want %v…", e.Name, got[:min(3, len(got))], want[e.Name][:min(3, len(got))])
		}
		n++
	}
	return n
}

func newClassifier(t *testing.T, arch string, opts ...nn.Option) *nn.Store {
	t.Helper()
	m, err := nn.NewClassifier(arch, 20, torch.CPU(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Store().Close)
	return m.Store()
}

func identity(s string) string { return s }

// An official L2G checkpoint — {"state_dict": global, "local_dict": local,
// "optimizer": …, "epoch", "global_counter", "args"} with "module." keys and
// num_batches_tracked — loads strictly into the two ResNet-38 classifiers.
func TestImportL2GCheckpoint(t *testing.T) {
	global := newClassifier(t, nn.ArchResNet38, nn.WithWidth(4))
	local := newClassifier(t, nn.ArchResNet38, nn.WithWidth(4))
	gv, lv := fixtureValues(global, 100), fixtureValues(local, 1000)
	module := func(s string) string { return "module." + s }
	storages := map[string]storage{}
	next := 0
	gsd := batchesTracked(global, stateDict(global, gv, module, storages, &next), module, storages, &next)
	lsd := batchesTracked(local, stateDict(local, lv, module, storages, &next), module, storages, &next)
	// Momentum buffers keyed by parameter index, as torch.optim saves them.
	storages["mom"] = storage{class: "FloatStorage", elem: 4, data: f32bytes([]float32{9, 9})}
	momentum := idict{{0, dict{{"momentum_buffer", tensor{storage: "mom", size: []int64{2}, stride: []int64{1}}}}}}
	ck := dict{
		{"state_dict", gsd},
		{"local_dict", lsd},
		{"optimizer", dict{{"state", momentum}, {"param_groups", list{dict{{"lr", 0.001}, {"momentum", 0.9}, {"nesterov", true}, {"params", list{0, 1}}}}}}},
		{"epoch", 9},
		{"global_counter", 35280},
		{"args", object{"argparse", "Namespace", dict{{"kd_weights", 10.0}, {"patch_size", 6}}}},
	}
	path := filepath.Join(t.TempDir(), "pascal_voc_epoch_9.pth")
	writeZipPth(t, path, ck, storages)

	p, err := weights.OpenPth(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Dicts(); !slices.Equal(d, []string{"local_dict", "state_dict"}) {
		t.Fatalf("dicts %v", d)
	}
	if e, _ := p.Number("epoch"); e != 9 {
		t.Fatalf("epoch %v", e)
	}
	p.Close()

	for _, c := range []struct {
		st   *nn.Store
		src  weights.Source
		want map[string][]float32
	}{{global, weights.L2GGlobal, gv}, {local, weights.L2GLocal, lv}} {
		rep, err := weights.Import(c.st, path, c.src, true)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Loaded != len(c.st.Names()) || len(rep.Missing) != 0 || len(rep.Unexpected) != 0 {
			t.Fatalf("%s: %+v", c.src, rep)
		}
		checkValues(t, c.st, c.want, nil)
	}
}

// mxnetName is the ImageNet ResNet-38 file's name for one of our entries
// (the inverse of convert_mxnet_to_torch, written out independently).
func mxnetName(name string) string {
	mxBN := map[string]string{"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_var"}
	parts := strings.Split(name, ".")
	switch {
	case name == "conv1a.weight":
		return "arg:conv1a_weight"
	case parts[0] == "bn7":
		prefix := "arg:"
		if strings.HasPrefix(parts[1], "running") {
			prefix = "aux:"
		}
		return prefix + "bn7_" + mxBN[parts[1]]
	}
	// b4_3 → 4b3, b2 → 2a.
	stage, idx, sub := strings.TrimPrefix(parts[0], "b"), "a", ""
	if s, i, ok := strings.Cut(stage, "_"); ok {
		stage, idx, sub = s, "b", i
	}
	kind, branch, _ := strings.Cut(parts[1], "_")
	if kind == "conv" {
		return fmt.Sprintf("arg:res%s%s%s_%s_weight", stage, idx, sub, branch)
	}
	prefix := "arg:"
	if strings.HasPrefix(parts[2], "running") {
		prefix = "aux:"
	}
	return fmt.Sprintf("%sbn%s%s%s_%s_%s", prefix, stage, idx, sub, branch, mxBN[parts[2]])
}

func TestResNet38NameFromMXNet(t *testing.T) {
	cases := map[string]string{
		"arg:conv1a_weight":              "conv1a.weight",
		"arg:res2a_branch1_weight":       "b2.conv_branch1.weight",
		"arg:bn2a_branch2a_gamma":        "b2.bn_branch2a.weight",
		"arg:res2b1_branch2a_weight":     "b2_1.conv_branch2a.weight",
		"aux:bn4b5_branch2b1_moving_var": "b4_5.bn_branch2b1.running_var",
		"aux:bn5b2_branch2a_moving_mean": "b5_2.bn_branch2a.running_mean",
		"arg:res6a_branch2b2_weight":     "b6.conv_branch2b2.weight",
		"arg:bn7a_branch2b2_beta":        "b7.bn_branch2b2.bias",
		"arg:bn7_beta":                   "bn7.bias",
		"aux:bn7_moving_mean":            "bn7.running_mean",
	}
	for in, want := range cases {
		got, keep, err := weights.ResNet38NameFromMXNet(in)
		if err != nil || !keep || got != want {
			t.Fatalf("%s → %q %v %v, want %q", in, got, keep, err, want)
		}
	}
	if _, keep, err := weights.ResNet38NameFromMXNet("arg:linear1000_weight"); keep || err != nil {
		t.Fatalf("linear1000 kept: %v %v", keep, err)
	}
	for _, bad := range []string{"arg:fc_weight", "arg:bn2a_branch2a_alpha", "data"} {
		if _, _, err := weights.ResNet38NameFromMXNet(bad); err == nil {
			t.Fatalf("%s mapped", bad)
		}
	}
}

// The ImageNet ResNet-38 .params, written in the MXNet list format (arrays
// in the V2, V1 and legacy layouts), loads into ResNet-38: every backbone
// entry gets its value; the head stays as initialised and is reported
// missing; linear1000 is dropped.
func TestImportResNet38MXNet(t *testing.T) {
	st := newClassifier(t, nn.ArchResNet38, nn.WithWidth(4))
	vals := fixtureValues(st, 7)
	before := map[string][]float32{}
	var arrays []mxArray
	versions := []string{"v2", "v1", "legacy"}
	head := func(n string) bool {
		return strings.HasPrefix(n, "fc8.") || strings.HasPrefix(n, "f8_") || strings.HasPrefix(n, "f9.")
	}
	for i, e := range st.Entries() {
		if head(e.Name) {
			before[e.Name], _ = e.T.Float32s()
			continue
		}
		arrays = append(arrays, mxArray{mxnetName(e.Name), e.T.Shape(), vals[e.Name], versions[i%3]})
	}
	arrays = append(arrays,
		mxArray{"arg:linear1000_weight", []int64{1000, 256}, make([]float32, 256000), "v2"},
		mxArray{"arg:linear1000_bias", []int64{1000}, make([]float32, 1000), "v2"})
	path := filepath.Join(t.TempDir(), "ilsvrc-cls_rna-a1_cls1000_ep-0001.params")
	writeMXNet(t, path, arrays)

	raw, err := weights.ReadMXNet(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(arrays) {
		t.Fatalf("%d arrays read, %d written", len(raw), len(arrays))
	}
	rep, err := weights.Import(st, path, weights.ResNet38MXNet, false)
	if err != nil {
		t.Fatal(err)
	}
	wantMissing := []string{"fc8.weight", "f8_3.weight", "f8_4.weight", "f9.weight"}
	if !slices.Equal(rep.Missing, wantMissing) || len(rep.Unexpected) != 0 || rep.Loaded != len(st.Names())-4 {
		t.Fatalf("report %+v", rep)
	}
	if n := checkValues(t, st, vals, head); n != len(st.Names())-4 {
		t.Fatalf("checked %d", n)
	}
	checkValues(t, st, before, func(n string) bool { return !head(n) })
	if _, err := weights.Import(st, path, weights.ResNet38MXNet, true); err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), "fc8.weight") {
		t.Fatalf("strict import with a fresh head: %v", err)
	}
}

func TestMXNetBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.params")
	writeMXNet(t, good, []mxArray{{"arg:conv1a_weight", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}, "v2"}})
	raw, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sparse := append([]byte{}, raw...)
	binary.LittleEndian.PutUint32(sparse[28:], 1) // storage type: row_sparse
	cases := map[string]string{
		"wrong magic":   write("magic.params", append([]byte{0x13, 1}, raw[2:]...)),
		"truncated":     write("trunc.params", raw[:len(raw)-30]),
		"sparse":        write("sparse.params", sparse),
		"no names":      write("nonames.params", append(append([]byte{}, raw[:len(raw)-8-8-17]...), make([]byte, 8)...)),
		"huge shape":    write("huge.params", append(append(append([]byte{}, raw[:36]...), 0xff, 0xff, 0xff, 0x7f), raw[40:]...)),
		"absent":        filepath.Join(dir, "absent.params"),
		"a .pth as one": write("pth.params", []byte("PK\x03\x04 not mxnet")),
	}
	for name, p := range cases {
		_, err := weights.ReadMXNet(p)
		t.Logf("%s: %v", name, err)
		if err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// torchvisionName is torchvision's resnet101 key for a DeepLab entry
// (inverse table written independently of the package's mapping).
func torchvisionName(name string) string {
	if strings.HasPrefix(name, "base.aspp.") {
		return "" // no counterpart
	}
	n := strings.TrimPrefix(name, "base.")
	if rest, ok := strings.CutPrefix(n, "layer1.conv1."); ok {
		unit, p, _ := strings.Cut(rest, ".")
		return map[string]string{"conv": "conv1", "bn": "bn1"}[unit] + "." + p
	}
	var layer, block int
	var unit, kind, p string
	fields := strings.Split(n, ".")
	fmt.Sscanf(fields[0], "layer%d", &layer)
	fmt.Sscanf(fields[1], "block%d", &block)
	unit, kind, p = fields[2], fields[3], fields[4]
	prefix := fmt.Sprintf("layer%d.%d.", layer-1, block-1)
	if unit == "shortcut" {
		return prefix + map[string]string{"conv": "downsample.0", "bn": "downsample.1"}[kind] + "." + p
	}
	idx := map[string]string{"reduce": "1", "conv3x3": "2", "increase": "3"}[unit]
	return prefix + map[string]string{"conv": "conv", "bn": "bn"}[kind] + idx + "." + p
}

func TestTorchvisionResNet101Name(t *testing.T) {
	cases := map[string]string{
		"conv1.weight":                     "base.layer1.conv1.conv.weight",
		"bn1.running_var":                  "base.layer1.conv1.bn.running_var",
		"layer1.0.conv1.weight":            "base.layer2.block1.reduce.conv.weight",
		"layer1.0.downsample.0.weight":     "base.layer2.block1.shortcut.conv.weight",
		"layer1.0.downsample.1.bias":       "base.layer2.block1.shortcut.bn.bias",
		"layer3.22.bn2.running_mean":       "base.layer4.block23.conv3x3.bn.running_mean",
		"layer4.2.conv3.weight":            "base.layer5.block3.increase.conv.weight",
		"fc.weight":                        "",
		"layer2.1.bn3.num_batches_tracked": "",
		"layer9.0.conv1.weight":            "layer9.0.conv1.weight",
	}
	for in, want := range cases {
		if got := weights.TorchvisionResNet101Name(in); got != want {
			t.Fatalf("%s → %q, want %q", in, got, want)
		}
	}
}

// deeplab-pytorch's Caffe-converted init (bare DeepLabV1 keys, an fc
// classifier, num_batches_tracked), a DeepLabV2 MSC checkpoint ("base."
// keys) and torchvision's ImageNet resnet101 all land on the segmenter.
func TestImportDeepLab(t *testing.T) {
	seg, err := nn.NewSegmenter(nn.ArchDeepLabV2ResNet101, 21, torch.CPU(), nn.WithWidth(4), nn.WithBlocks(2, 2, 3, 2))
	if err != nil {
		t.Fatal(err)
	}
	st := seg.Store()
	defer st.Close()
	dir := t.TempDir()
	aspp := func(n string) bool { return strings.HasPrefix(n, "base.aspp.") }
	var asppNames []string
	for _, n := range st.Names() {
		if aspp(n) {
			asppNames = append(asppNames, n)
		}
	}

	// Caffe init: keys without "base.", plus fc.*, legacy file format.
	init := fixtureValues(st, 3)
	storages, next := map[string]storage{}, 0
	bare := func(s string) string { return strings.TrimPrefix(s, "base.") }
	var sd odict
	for _, kv := range batchesTracked(st, stateDict(st, init, bare, storages, &next), bare, storages, &next) {
		if !strings.HasPrefix(kv.k, "aspp.") {
			sd = append(sd, kv)
		}
	}
	storages["fcw"] = storage{class: "FloatStorage", elem: 4, data: f32bytes(make([]float32, 91*128))}
	sd = append(sd, kv{"fc.weight", tensor{storage: "fcw", size: []int64{91, 128, 1, 1}, stride: []int64{128, 1, 1, 1}}})
	prune(sd, storages)
	initPath := filepath.Join(dir, "deeplabv1_resnet101-coco.pth")
	writeLegacyPth(t, initPath, sd, storages)
	rep, err := weights.Import(st, initPath, weights.DeepLabPth, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Missing, asppNames) || len(rep.Unexpected) != 0 {
		t.Fatalf("init report %+v", rep)
	}
	checkValues(t, st, init, aspp)

	// A trained checkpoint: everything, strict.
	ckv := fixtureValues(st, 50)
	storages, next = map[string]storage{}, 0
	ckPath := filepath.Join(dir, "checkpoint_final.pth")
	writeZipPth(t, ckPath, batchesTracked(st, stateDict(st, ckv, identity, storages, &next), identity, storages, &next), storages)
	if _, err := weights.Import(st, ckPath, weights.DeepLabPth, true); err != nil {
		t.Fatal(err)
	}
	checkValues(t, st, ckv, nil)

	// torchvision's ResNet-101 names.
	tv := fixtureValues(st, 500)
	storages, next = map[string]storage{}, 0
	var tvsd odict
	for _, kv := range batchesTracked(st, stateDict(st, tv, torchvisionName, storages, &next), torchvisionName, storages, &next) {
		if kv.k != "" {
			tvsd = append(tvsd, kv)
		}
	}
	storages["fcw"] = storage{class: "FloatStorage", elem: 4, data: f32bytes(make([]float32, 10))}
	tvsd = append(tvsd, kv{"fc.bias", tensor{storage: "fcw", size: []int64{10}, stride: []int64{1}}})
	tvPath := filepath.Join(dir, "resnet101-63fe2227.pth")
	writeZipPth(t, tvPath, tvsd, storages)
	rep, err = weights.Import(st, tvPath, weights.TorchvisionResNet101, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Missing, asppNames) || len(rep.Unexpected) != 0 {
		t.Fatalf("torchvision report %+v", rep)
	}
	checkValues(t, st, tv, aspp)
}

// Shape mismatches and missing or unexpected keys are bad input naming the
// file and the key.
func TestImportMismatchesNamed(t *testing.T) {
	st := newClassifier(t, nn.ArchSmall)
	vals := fixtureValues(st, 1)
	dir := t.TempDir()

	storages, next := map[string]storage{}, 0
	sd := stateDict(st, vals, identity, storages, &next)
	for i := range sd {
		if sd[i].k == "conv3.weight" {
			tt := sd[i].v.(tensor)
			tt.size = []int64{48, 24, 9} // same numel, wrong shape
			tt.stride = []int64{216, 9, 1}
			sd[i].v = tt
		}
	}
	bad := filepath.Join(dir, "shape.pth")
	writeZipPth(t, bad, sd, storages)
	_, err := weights.Import(st, bad, weights.ResNet38Pth, false)
	if err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "conv3.weight") {
		t.Fatalf("shape mismatch: %v", err)
	}

	storages, next = map[string]storage{}, 0
	sd = stateDict(st, vals, identity, storages, &next)
	var trimmed odict
	for _, e := range sd {
		if e.k != "f9.weight" {
			trimmed = append(trimmed, e)
		}
	}
	trimmed = append(trimmed, kv{"fc9.weight", sd[0].v})
	partial := filepath.Join(dir, "partial.pth")
	writeZipPth(t, partial, trimmed, storages)
	_, err = weights.Import(st, partial, weights.ResNet38Pth, true)
	if err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), partial) ||
		!strings.Contains(err.Error(), "f9.weight") || !strings.Contains(err.Error(), "fc9.weight") {
		t.Fatalf("strict mismatch: %v", err)
	}
	rep, err := weights.Import(st, partial, weights.ResNet38Pth, false)
	if err != nil || !slices.Equal(rep.Missing, []string{"f9.weight"}) || !slices.Equal(rep.Unexpected, []string{"fc9.weight"}) {
		t.Fatalf("non-strict: %+v %v", rep, err)
	}
	if _, err := weights.ParseSource("caffe"); err == nil {
		t.Fatal("unknown source accepted")
	}
	if s, err := weights.ParseSource("l2g-local"); err != nil || s != weights.L2GLocal {
		t.Fatal(s, err)
	}
}

// A store written out as a .pth and read back into a fresh network of the
// same architecture is identical, buffers included.
func TestPthRoundTrip(t *testing.T) {
	src := newClassifier(t, nn.ArchResNet38, nn.WithWidth(4))
	vals := map[string][]float32{}
	for _, e := range src.Entries() {
		vals[e.Name], _ = e.T.Float32s()
	}
	storages, next := map[string]storage{}, 0
	path := filepath.Join(t.TempDir(), "resnet38_dict.pth")
	writeZipPth(t, path, stateDict(src, vals, identity, storages, &next), storages)
	dst := newClassifier(t, nn.ArchResNet38, nn.WithWidth(4))
	rep, err := weights.Import(dst, path, weights.ResNet38Pth, true)
	if err != nil || rep.Loaded != len(dst.Names()) {
		t.Fatalf("%+v %v", rep, err)
	}
	checkValues(t, dst, vals, nil)
}
