package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
)

// hashTree maps every file under dir to its SHA-256.
func hashTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func smallOptions() Options {
	return Options{Classes: 7, Train: 6, Val: 3, Width: 56, Height: 48, Seed: 42, Saliency: true}
}

func TestGenerateDeterministic(t *testing.T) {
	ctx := context.Background()
	dirs := make([]string, 3)
	for i, workers := range []int{1, 3} {
		o := smallOptions()
		o.Workers = workers
		dirs[i] = t.TempDir()
		sum, err := Generate(ctx, dirs[i], o)
		if err != nil {
			t.Fatal(err)
		}
		// 9 images × (jpg, 2 masks, saliency) + 5 lists + classes + json.
		if sum.Files != 9*4+7 || sum.Train != 6 || sum.Val != 3 {
			t.Errorf("summary %+v", sum)
		}
	}
	o := smallOptions()
	o.Seed = 43
	dirs[2] = t.TempDir()
	if _, err := Generate(ctx, dirs[2], o); err != nil {
		t.Fatal(err)
	}
	a, b, c := hashTree(t, dirs[0]), hashTree(t, dirs[1]), hashTree(t, dirs[2])
	if len(a) != 9*4+7 {
		t.Errorf("%d files written", len(a))
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("1 and 3 workers wrote different files")
	}
	var same []string
	for name, h := range a {
		if c[name] == h {
			same = append(same, name)
		}
	}
	// Only the class names and the image/mask pair lists do not depend on
	// the seed.
	slices.Sort(same)
	if want := []string{"classes.txt", "train.txt", "train_aug.txt", "val.txt"}; !slices.Equal(same, want) {
		t.Errorf("seeds 42 and 43 share %v, want %v", same, want)
	}
	if a[filepath.Join("JPEGImages", "synth_val_000002.jpg")] == "" || a[filepath.Join("Sal", "synth_000005.png")] == "" {
		t.Error("expected ids missing")
	}
	meta, err := os.ReadFile(filepath.Join(dirs[0], MetaFile))
	if err != nil || !strings.Contains(string(meta), `"seed": 42`) || !strings.Contains(string(meta), `"part_radius"`) || strings.Contains(string(meta), "Workers") {
		t.Errorf("synth.json: %s %v", meta, err)
	}
}

// readCls parses a class-label list written by Generate.
func readCls(t *testing.T, path string) map[string][]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		var labs []int
		for _, s := range f[1:] {
			k, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			labs = append(labs, k)
		}
		out[f[0]] = labs
	}
	return out
}

func TestGeneratedDatasetIsConsistent(t *testing.T) {
	o := Options{Classes: 20, Train: 24, Val: 6, Width: 96, Height: 72, Seed: 7}
	dir := t.TempDir()
	if _, err := Generate(context.Background(), dir, o); err != nil {
		t.Fatal(err)
	}
	rep, err := data.Check(context.Background(), dir, data.CheckOptions{})
	if err != nil {
		t.Fatalf("generated dataset fails Check: %v", err)
	}
	if len(rep.Lists) != 5 || rep.Items != 24*3+6*2 || rep.Files != 30*2 {
		t.Errorf("check report %+v", rep)
	}
	for _, split := range []string{"train", "val"} {
		cls := readCls(t, filepath.Join(dir, split+"_cls.txt"))
		for id, labs := range cls {
			m, err := data.DecodeMask(filepath.Join(dir, data.DirMasksAug, id+".png"))
			if err != nil {
				t.Fatal(err)
			}
			var present [256]int
			for _, v := range m.Pix {
				present[v]++
			}
			var inMask []int
			for v, n := range present {
				switch {
				case n == 0:
				case v == 255:
				case v > o.Classes:
					t.Errorf("%s: mask value %d", id, v)
				case v > 0:
					inMask = append(inMask, v-1)
				}
			}
			if len(labs) == 0 || !reflect.DeepEqual(labs, inMask) {
				t.Errorf("%s: labels %v, classes in mask %v", id, labs, inMask)
			}
			if present[255] == 0 {
				t.Errorf("%s: no ignore band", id)
			}
			a, _ := os.ReadFile(filepath.Join(dir, data.DirMasks, id+".png"))
			b, _ := os.ReadFile(filepath.Join(dir, data.DirMasksAug, id+".png"))
			if !bytes.Equal(a, b) {
				t.Errorf("%s: SegmentationClass and SegmentationClassAug differ", id)
			}
		}
	}
	// The pair list opens with the class-list labels, matched by id.
	s, err := data.Open(context.Background(), data.Spec{Root: dir, List: "train_aug.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if s.NumClasses() != 20 || s.Classes[5] != "cyan_ring" || s.Items[3].ID != "synth_000003" || len(s.Items[3].Labels) == 0 {
		t.Errorf("opened split: %d classes %v, item %+v", s.NumClasses(), s.Classes, s.Items[3])
	}
}

func TestIgnoreBandSeparatesRegions(t *testing.T) {
	for _, c := range []struct {
		w, h  int
		band  float64
		reach int // band pixels on each side of a boundary
	}{
		{96, 96, 0, 1}, // default band: 2 px at 96
		{128, 128, 0, 1},
		{96, 64, 4, 2},
	} {
		o := Options{Classes: 5, Train: 1, Width: c.w, Height: c.h, Seed: 3}
		if c.band > 0 {
			g := DefaultGeometry(c.w, c.h, 5)
			g.Band = c.band
			o.Geometry = &g
		}
		band := 0
		for i := range 20 {
			s, err := Render(o, Train, i)
			if err != nil {
				t.Fatal(err)
			}
			m := s.Mask
			// No two labelled pixels closer than the band reach carry
			// different labels: the band covers every boundary.
			for y := range m.H {
				for x := range m.W {
					l := m.Pix[y*m.W+x]
					if l == 255 {
						band++
						continue
					}
					for dy := 0; dy <= c.reach; dy++ {
						for dx := -c.reach; dx <= c.reach; dx++ {
							nx, ny := x+dx, y+dy
							if (dy == 0 && dx <= 0) || nx < 0 || nx >= m.W || ny >= m.H || dx*dx+dy*dy > c.reach*c.reach {
								continue
							}
							if v := m.Pix[ny*m.W+nx]; v != 255 && v != l {
								t.Fatalf("%dx%d image %d: labels %d at (%d,%d) and %d at (%d,%d) touch", c.w, c.h, i, l, x, y, v, nx, ny)
							}
						}
					}
				}
			}
		}
		// The band is a thin outline, not a fill: between 1% and 20%.
		if frac := float64(band) / float64(20*c.w*c.h); frac < 0.01 || frac > 0.2 {
			t.Errorf("%dx%d band %v: %.3f of the pixels", c.w, c.h, c.band, frac)
		}
	}
}

func TestPartStylesDistinct(t *testing.T) {
	v3 := []string{"red_square", "green_disc", "blue_triangle", "yellow_cross", "magenta_diamond"}
	if got := ClassNames(5); !reflect.DeepEqual(got, v3) {
		t.Errorf("first five classes %v, want v3's %v", got, v3)
	}
	seen := map[[2]int]int{}
	for k := range MaxClasses {
		st := Style(k)
		key := [2]int{int(st.Shape), int(st.Color[0])<<16 | int(st.Color[1])<<8 | int(st.Color[2])}
		if prev, dup := seen[key]; dup {
			t.Errorf("classes %d and %d share part %s", prev, k, st.Name)
		}
		seen[key] = k
	}
	// The shapes rasterised at the default radius differ pairwise in many
	// pixels, so they are distinguishable at 96 px.
	const r = 4.5
	raster := func(s Shape) []bool {
		var out []bool
		for y := -7; y <= 7; y++ {
			for x := -7; x <= 7; x++ {
				out = append(out, s.inside(float64(x), float64(y), r))
			}
		}
		return out
	}
	for a := Shape(0); a < numShapes; a++ {
		ra := raster(a)
		for b := a + 1; b < numShapes; b++ {
			diff := 0
			for i, v := range raster(b) {
				if v != ra[i] {
					diff++
				}
			}
			if diff < 12 {
				t.Errorf("%v and %v differ in only %d pixels", a, b, diff)
			}
		}
	}
}

// TestPartsAreDrawnInClassColour renders images and checks, for every
// object whose part is fully visible, that the part pixels carry the class's
// saturated colour while its body does not.
func TestPartsAreDrawnInClassColour(t *testing.T) {
	o, err := Options{Classes: 12, Train: 1, Width: 96, Height: 96, Seed: 11}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	r := newRenderer(*o.Geometry, 96, 96, 12)
	checked := map[int]bool{}
	for i := 0; i < 200 && len(checked) < 12; i++ {
		s, objs := r.renderAt(o, Train, i)
		for j, ob := range objs {
			pr := 1.3 * o.Geometry.PartRadius
			if j != len(objs)-1 || ob.px < pr || ob.py < pr || ob.px > 96-pr || ob.py > 96-pr {
				continue // only the topmost object's part is never occluded
			}
			st := Style(ob.class)
			var sum [3]float64
			n := 0
			for y := range 96 {
				for x := range 96 {
					if st.Shape.inside(float64(x)+0.5-ob.px, float64(y)+0.5-ob.py, o.Geometry.PartRadius) {
						for ch := range 3 {
							sum[ch] += float64(s.Image.Pix[3*(y*96+x)+ch])
						}
						n++
					}
				}
			}
			for ch := range 3 {
				if d := sum[ch]/float64(n) - float64(st.Color[ch]); math.Abs(d) > 4 {
					t.Errorf("image %d class %d: part channel %d mean %.1f, want %d", i, ob.class, ch, sum[ch]/float64(n), st.Color[ch])
				}
			}
			// The body centre is not the part colour.
			bx, by := int(ob.cx), int(ob.cy)
			if in := st.Shape.inside(float64(bx)+0.5-ob.px, float64(by)+0.5-ob.py, o.Geometry.PartRadius*1.3); !in {
				p := s.Image.Pix[3*(by*96+bx):]
				dist := 0.0
				for ch := range 3 {
					dist += math.Abs(float64(p[ch]) - float64(st.Color[ch]))
				}
				if dist < 60 {
					t.Errorf("image %d class %d: body centre %v looks like the part %v", i, ob.class, p[:3], st.Color)
				}
			}
			checked[ob.class] = true
		}
	}
	if len(checked) < 10 {
		t.Errorf("only %d classes had a visible part in 200 images", len(checked))
	}
}

func TestOptionErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	bad := func(mut func(*Options)) error {
		o := smallOptions()
		mut(&o)
		_, err := Generate(context.Background(), dir, o)
		return err
	}
	g := DefaultGeometry(56, 48, 7)
	g.BodyAxis = Range{20, 10}
	for _, c := range []struct {
		mut   func(*Options)
		field string
	}{
		{func(o *Options) { o.Classes = 0 }, "classes"},
		{func(o *Options) { o.Classes = MaxClasses + 1 }, "classes"},
		{func(o *Options) { o.Train = 0 }, "train"},
		{func(o *Options) { o.Width = 8 }, "size"},
		{func(o *Options) { o.Geometry = &g }, "geometry.body_axis"},
	} {
		err := bad(c.mut)
		if !badinput.Is(err) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("error %v, want bad input naming %s", err, c.field)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("invalid options left %d entries behind", len(entries))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, t.TempDir(), smallOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func BenchmarkRender96(b *testing.B) {
	o, _ := DefaultOptions().resolve()
	r := newRenderer(*o.Geometry, o.Width, o.Height, o.Classes)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.renderAt(o, Train, i)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkGenerate96 measures the whole path: render, encode, write 3
// files per image atomically (fsynced), on all cores.
func BenchmarkGenerate96(b *testing.B) {
	o := DefaultOptions()
	o.Train, o.Val = 200, 0
	dir := b.TempDir()
	for b.Loop() {
		if _, err := Generate(context.Background(), dir, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*o.Train)/b.Elapsed().Seconds(), "images/s")
}
