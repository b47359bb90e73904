package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
)

// netAndOpt is a two-tensor store (a parameter and a buffer) with an SGD
// whose momentum buffer is non-zero after one step.
func netAndOpt(t *testing.T, w []float32) (*nn.Store, *nn.SGD) {
	t.Helper()
	st := nn.NewStore(torch.CPU())
	p := st.Param("w", []int64{int64(len(w))}, nn.GroupBackbone, nil)
	st.Buffer("bn.running_mean", []int64{2}, 0.5)
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	s := torch.NewNoGradScope()
	defer s.Close()
	if err := p.CopyFrom(s.FromFloat32(w, int64(len(w)))); err != nil {
		t.Fatal(err)
	}
	opt, err := nn.NewSGD([]*nn.Store{st}, nn.SegmenterGroups(0), 0.9, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { opt.Close(); st.Close() })
	return st, opt
}

// stepSquare takes one SGD step on sum(w²) (gradient 2w).
func stepSquare(t *testing.T, st *nn.Store, opt *nn.SGD) {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	w := st.Get("w")
	loss := s.Sum(s.Mul(w, w), nil, false)
	if err := opt.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	if err := opt.Step(0.1); err != nil {
		t.Fatal(err)
	}
}

func floats(t *testing.T, x *torch.Tensor) []float32 {
	t.Helper()
	v, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSaveRestoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	run := Run{Format: "test/1", Config: "lr: 0.1\nmodel: {arch: small}\n", Fingerprint: Fingerprint([]string{"a", "b"}), Items: 2}
	st, opt := netAndOpt(t, []float32{1, -2, 3})
	stepSquare(t, st, opt) // w = (0.8, -1.6, 2.4), momentum = (2, -4, 6)
	if err := torch.ManualSeed(7); err != nil {
		t.Fatal(err)
	}
	path := Name(dir, 3)
	parts := func(st *nn.Store, o *nn.SGD) []Part { return []Part{StorePart("net/", st), OptimPart("optim/", o)} }
	if err := Save(path, run, 3, parts(st, opt), map[string]string{"arch": "small"}); err != nil {
		t.Fatal(err)
	}
	s := torch.NewScope()
	defer s.Close()
	want := floats(t, s.Rand([]int64{4}, torch.Opts{})) // the draws after the save

	st2, opt2 := netAndOpt(t, []float32{0, 0, 0})
	it, meta, err := Restore(path, run, parts(st2, opt2))
	if err != nil {
		t.Fatal(err)
	}
	if it != 3 || meta["arch"] != "small" || meta[MetaFormat] != "test/1" || meta[MetaItems] != "2" {
		t.Errorf("iteration %d, meta %v", it, meta)
	}
	if got := floats(t, s.Rand([]int64{4}, torch.Opts{})); !reflect.DeepEqual(got, want) {
		t.Errorf("RNG after restore draws %v, want %v", got, want)
	}
	if got := floats(t, st2.Get("w")); !reflect.DeepEqual(got, []float32{0.8, -1.6, 2.4}) {
		t.Errorf("restored w = %v", got)
	}
	// Same momentum ⇒ the next step agrees too: w −= 0.1·(0.9·m + 2w).
	stepSquare(t, st, opt)
	stepSquare(t, st2, opt2)
	if a, b := floats(t, st.Get("w")), floats(t, st2.Get("w")); !reflect.DeepEqual(a, b) {
		t.Errorf("after one more step %v vs %v", a, b)
	}
}

func TestRestoreRejectsAnotherRun(t *testing.T) {
	dir := t.TempDir()
	run := Run{Format: "test/1", Config: "optim:\n  lr: 0.1\nseed: 0\n", Fingerprint: Fingerprint([]string{"a"}), Items: 1}
	st, opt := netAndOpt(t, []float32{1})
	parts := []Part{StorePart("net/", st), OptimPart("optim/", opt)}
	path := Name(dir, 1)
	if err := Save(path, run, 1, parts, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		run   Run
		field string
	}{
		{"format", Run{Format: "other/1", Config: run.Config, Fingerprint: run.Fingerprint}, MetaFormat},
		{"config", Run{Format: "test/1", Config: "optim:\n  lr: 0.2\nseed: 0\n", Fingerprint: run.Fingerprint}, "config.optim.lr"},
		{"new key", Run{Format: "test/1", Config: run.Config + "shuffle: true\n", Fingerprint: run.Fingerprint}, "config.shuffle"},
		{"data", Run{Format: "test/1", Config: run.Config, Fingerprint: Fingerprint([]string{"b"}), Items: 1}, MetaData},
	} {
		_, _, err := Restore(path, tc.run, parts)
		var be *badinput.Error
		if !errors.As(err, &be) || be.Path != path || be.Field != tc.field {
			t.Errorf("%s: error %v, want bad input at %s field %s", tc.name, err, path, tc.field)
		}
	}
	// A missing optimizer buffer names the part.
	st2 := nn.NewStore(torch.CPU())
	defer st2.Close()
	st2.Param("w", []int64{1}, nn.GroupBackbone, nil)
	st2.Param("extra", []int64{1}, nn.GroupBackbone, nil)
	opt2, err := nn.NewSGD([]*nn.Store{st2}, nn.SegmenterGroups(0), 0.9, false)
	if err != nil {
		t.Fatal(err)
	}
	defer opt2.Close()
	_, _, err = Restore(path, run, []Part{OptimPart("optim/", opt2)})
	var be *badinput.Error
	if !errors.As(err, &be) || be.Field != "optim" {
		t.Errorf("missing momentum buffer: %v", err)
	}
}

func TestFingerprintAndName(t *testing.T) {
	// sha256 of "a\nb\n", as stages/train's dataFingerprint hashes the ids.
	if got := Fingerprint([]string{"a", "b"}); got != "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2" {
		t.Errorf("fingerprint %q", got)
	}
	if Fingerprint([]string{"a", "b"}) == Fingerprint([]string{"b", "a"}) || Fingerprint([]string{"ab"}) == Fingerprint([]string{"a", "b"}) {
		t.Error("fingerprint ignores order or id boundaries")
	}
	if got := Name("d", 1234); got != filepath.Join("d", "iter_00001234.safetensors") {
		t.Errorf("Name = %q", got)
	}
}

func TestSaverPrunesAndSavesOnInterrupt(t *testing.T) {
	dir := t.TempDir()
	var written []int
	s := &Saver{Dir: dir, Keep: 2, Write: func(path string, it int) error {
		written = append(written, it)
		return os.WriteFile(path, []byte(fmt.Sprint(it)), 0o644)
	}}
	for _, it := range []int{2, 4, 6} {
		if err := s.Save(it); err != nil {
			t.Fatal(err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "iter_*"))
	if !reflect.DeepEqual(left, []string{Name(dir, 4), Name(dir, 6)}) || s.Last != Name(dir, 6) || s.Saved != 6 {
		t.Errorf("left %v, last %s at %d", left, s.Last, s.Saved)
	}
	// Nothing new since iteration 6: no write, the error names it.
	err := s.Interrupted("stage", 6, context.Canceled)
	if !errors.Is(err, context.Canceled) || len(written) != 3 {
		t.Errorf("Interrupted at the saved iteration: %v, writes %v", err, written)
	}
	err = s.Interrupted("stage", 7, context.Canceled)
	if !errors.Is(err, context.Canceled) || s.Last != Name(dir, 7) || written[len(written)-1] != 7 {
		t.Errorf("Interrupted after 7: %v, last %s", err, s.Last)
	}
	s.Resumed("x", 9)
	if s.Last != "x" || s.Saved != 9 {
		t.Errorf("Resumed: %s %d", s.Last, s.Saved)
	}
}

type rec struct {
	Iteration int     `json:"iteration"`
	Loss      float64 `json:"loss"`
}

func TestLogRoundTripAndTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	recs := []rec{{1, 0.5}, {2, 0.25}, {3, 0.125}}
	if err := WriteLog(path, recs); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLog(path, 2, func(r rec) int { return r.Iteration })
	if err != nil || !reflect.DeepEqual(got, recs[:2]) {
		t.Errorf("ReadLog up to 2 = %v, %v", got, err)
	}
	if got, err := ReadLog(filepath.Join(t.TempDir(), "none"), 5, func(r rec) int { return r.Iteration }); err != nil || got != nil {
		t.Errorf("missing log: %v, %v", got, err)
	}
	if err := os.WriteFile(path, []byte("{\"iteration\": 1}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadLog(path, 5, func(r rec) int { return r.Iteration })
	var be *badinput.Error
	if !errors.As(err, &be) || be.Path != path || be.Line != 2 {
		t.Errorf("corrupt log: %v", err)
	}
}

func TestConfigDiff(t *testing.T) {
	f, a, b, d := ConfigDiff("x: 1\ny: {z: 2, w: 3}\n", "x: 1\ny: {z: 2, w: 4}\n")
	if !d || f != "y.w" || a != "3" || b != "4" {
		t.Errorf("diff = %q %q %q %v", f, a, b, d)
	}
	if _, _, _, d := ConfigDiff("x: [1, 2]\n", "x: [1, 2]\n"); d {
		t.Error("equal configs differ")
	}
	if f, a, _, d := ConfigDiff("x: 1\n", "x: 1\ny: 2\n"); !d || f != "y" || a != "nothing" {
		t.Errorf("added key: %q %q %v", f, a, d)
	}
}
