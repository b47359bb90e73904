package synth

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
)

// objectAxes renders n validation images and returns every object's major
// semi-axis.
func objectAxes(t *testing.T, g Geometry, n int) (axes []float64) {
	t.Helper()
	o := DefaultOptions()
	o.Geometry = &g
	o, err := o.resolve()
	if err != nil {
		t.Fatal(err)
	}
	r := newRenderer(*o.Geometry, o.Width, o.Height, o.Classes)
	for i := range n {
		_, objs := r.renderAt(o, Val, i)
		for _, ob := range objs {
			axes = append(axes, ob.a)
		}
	}
	return axes
}

func TestObjectScale(t *testing.T) {
	base := DefaultGeometry(96, 96, 5)
	for _, a := range objectAxes(t, base, 40) {
		if a < base.BodyAxis.Min || a > base.BodyAxis.Max {
			t.Fatalf("unscaled axis %.2f outside %v", a, base.BodyAxis)
		}
	}
	// A fixed factor of 2 doubles every body.
	g := base
	g.ObjectScale = Range{2, 2}
	for _, a := range objectAxes(t, g, 40) {
		if a < 2*base.BodyAxis.Min-1e-9 || a > 2*base.BodyAxis.Max+1e-9 {
			t.Fatalf("axis %.2f with scale 2, want within [%.0f, %.0f]", a, 2*base.BodyAxis.Min, 2*base.BodyAxis.Max)
		}
	}
	// Log-uniform over [0.5, 2]: the log of the axis spreads over
	// log(14·0.5)…log(21·2), with its mean near log(sqrt(14·21)).
	g.ObjectScale = Range{0.5, 2}
	axes := objectAxes(t, g, 300)
	var lo, hi int
	var mean float64
	for _, a := range axes {
		if a < 0.5*base.BodyAxis.Min-1e-9 || a > 2*base.BodyAxis.Max+1e-9 {
			t.Fatalf("axis %.2f outside the scaled range", a)
		}
		if a < base.BodyAxis.Min {
			lo++
		}
		if a > base.BodyAxis.Max {
			hi++
		}
		mean += math.Log(a)
	}
	mean /= float64(len(axes))
	// E[log a] = E[log s] + E[log u] with E[log s] = 0 (log-uniform over
	// [0.5, 2]) and, for u uniform on [p, q], E[log u] = (q ln q − p ln p)/(q − p) − 1.
	// log s has s.d. 0.40, so over ~600 objects the mean's s.e. is ~0.02; a
	// scale drawn uniformly instead (E[log s] = 0.155) fails the 0.06 bound.
	p, q := base.BodyAxis.Min, base.BodyAxis.Max
	want := (q*math.Log(q)-p*math.Log(p))/(q-p) - 1
	if lo < len(axes)/5 || hi < len(axes)/5 || math.Abs(mean-want) > 0.06 {
		t.Errorf("%d axes: %d below, %d above the unscaled range, mean log %.3f (want about %.3f)", len(axes), lo, hi, mean, want)
	}
	bad := base
	bad.ObjectScale = Range{0, 1}
	if err := bad.validate(96, 96); err == nil || !strings.Contains(err.Error(), "object_scale") {
		t.Errorf("scale from 0: %v, want an object_scale error", err)
	}
}

func TestLoadGeometry(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	g, err := LoadGeometry(write("ok.json", `{"object_scale": {"min": 0.6, "max": 1.6}, "part_offset": 0}`), 96, 96, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultGeometry(96, 96, 5)
	want.ObjectScale, want.PartOffset = Range{0.6, 1.6}, 0
	if *g != want {
		t.Errorf("loaded %+v\nwant %+v", *g, want)
	}
	for _, c := range []struct{ name, body, field string }{
		{"unknown.json", `{"object_scales": {"min": 1, "max": 2}}`, "object_scales"},
		{"invalid.json", `{"object_scale": {"min": 2, "max": 1}}`, "object_scale"},
		{"syntax.json", `{"object_scale": `, "geometry"},
	} {
		p := write(c.name, c.body)
		_, err := LoadGeometry(p, 96, 96, 5)
		if !badinput.Is(err) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want bad input naming the file and %s", c.name, err, c.field)
		}
	}
	if _, err := LoadGeometry(filepath.Join(dir, "missing.json"), 96, 96, 5); !badinput.Is(err) {
		t.Errorf("missing file: %v", err)
	}
}
