package nn_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/torch"
)

func TestStoreSaveLoadAndFreeze(t *testing.T) {
	st := nn.NewStore(torch.CPU())
	defer st.Close()
	w := st.Param("conv.weight", []int64{2, 1, 1, 1}, "backbone", func(t *torch.Tensor) error { return t.Fill(0.5) })
	st.Param("fc.weight", []int64{3}, "new", func(t *torch.Tensor) error { return t.Fill(2) })
	st.Buffer("bn.running_var", []int64{2}, 1)
	st.Freeze("conv.")
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if w.RequiresGrad() {
		t.Fatal("frozen parameter still requires grad")
	}
	if tr := st.Trainable(); len(tr) != 1 || tr[0].Name != "fc.weight" {
		t.Fatalf("trainable %v", tr)
	}
	p := filepath.Join(t.TempDir(), "ck.safetensors")
	if err := st.Save(p, map[string]string{"iter": "3"}); err != nil {
		t.Fatal(err)
	}
	other := nn.NewStore(torch.CPU())
	defer other.Close()
	other.Param("conv.weight", []int64{2, 1, 1, 1}, "backbone", nil)
	other.Param("fc.weight", []int64{3}, "new", nil)
	other.Buffer("bn.running_var", []int64{2}, 0)
	meta, err := other.Load(p)
	if err != nil || meta["iter"] != "3" {
		t.Fatal(err, meta)
	}
	v, _ := other.Get("fc.weight").Float32s()
	if v[0] != 2 || v[2] != 2 {
		t.Fatalf("loaded %v", v)
	}
	// A shape mismatch is reported by name.
	bad := nn.NewStore(torch.CPU())
	defer bad.Close()
	bad.Param("conv.weight", []int64{3}, "backbone", nil)
	if _, err := bad.Load(p); err == nil || !strings.Contains(err.Error(), "conv.weight") {
		t.Fatalf("shape mismatch: %v", err)
	}
}

// The optimizer with two groups: lr multipliers and weight decay per group,
// momentum state saved and restored.
func TestSGDGroups(t *testing.T) {
	st := nn.NewStore(torch.CPU())
	defer st.Close()
	a := st.Param("a", []int64{1}, "backbone", func(t *torch.Tensor) error { return t.Fill(1) })
	b := st.Param("b", []int64{1}, "new", func(t *torch.Tensor) error { return t.Fill(1) })
	opt, err := nn.NewSGD([]*nn.Store{st}, map[string]nn.GroupOpts{
		"backbone": {LRMult: 1, WeightDecay: 0},
		"new":      {LRMult: 10, WeightDecay: 0.5},
	}, 0.9, false)
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	s := torch.NewScope()
	defer s.Close()
	loss := s.Add(a, b) // grad 1 for both
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	if err := opt.Step(0.01); err != nil {
		t.Fatal(err)
	}
	va, _ := a.Float32s()
	vb, _ := b.Float32s()
	// a: 1 - 0.01·1; b: 1 - 0.1·(1 + 0.5·1)
	if d := va[0] - 0.99; d > 1e-6 || d < -1e-6 {
		t.Fatalf("a = %v", va[0])
	}
	if d := vb[0] - 0.85; d > 1e-6 || d < -1e-6 {
		t.Fatalf("b = %v", vb[0])
	}
	if len(opt.State()) != 2 {
		t.Fatalf("state %v", opt.State())
	}
	if _, err := nn.NewSGD([]*nn.Store{st}, map[string]nn.GroupOpts{"new": {}}, 0.9, false); err == nil {
		t.Fatal("a parameter group without settings was accepted")
	}
}
