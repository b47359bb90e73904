package augment

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/l2g/l2g/internal/imaging"
)

// goldenFile mirrors testdata/golden.json, written by testdata/gen_golden.py
// from the reference's Python pipeline with its random choices fixed.
type goldenFile struct {
	JitterSeq struct {
		Ops     []string
		Factors []float64
	} `json:"jitter_seq"`
	VOCView []struct {
		W, H, Short, Crop, X0, Y0 int
		Out                       digest
		OutSal                    digest `json:"out_sal"`
	} `json:"voc_view"`
	COCOView struct {
		W, H, Size int
		Out        digest
		OutSal     digest `json:"out_sal"`
	} `json:"coco_view"`
	DeepLab struct {
		W, H  int
		Cases []struct {
			Scale        float64
			Crop, Y0, X0 int
			Flip         bool
			Out, Label   digest
		}
	} `json:"deeplab"`
	MultiScale struct {
		W, H  int
		Cases []struct {
			Scale        float64
			W, H         int
			Out, Flipped digest
		}
	} `json:"multiscale"`
	PyRound     [][3]float64 `json:"py_round"`
	ResizeShort [][4]int     `json:"resize_short"`
}

type digest struct {
	SHA256 string
	Sum    float64
}

func loadGolden(t *testing.T) *goldenFile {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("testdata/golden.json: %v", err)
	}
	return &g
}

// lcgBytes must match lcg_bytes in gen_golden.py.
func lcgBytes(seed uint32, n int) []uint8 {
	out := make([]uint8, n)
	x := seed
	for i := range out {
		x = 1664525*x + 1013904223
		out[i] = uint8(x >> 24)
	}
	return out
}

func checkF32(t *testing.T, name string, got []float32, want digest) {
	t.Helper()
	b := make([]byte, 4*len(got))
	sum := 0.0
	for i, v := range got {
		binary.LittleEndian.PutUint32(b[i*4:], math.Float32bits(v))
		sum += float64(v)
	}
	s := sha256.Sum256(b)
	if hex.EncodeToString(s[:]) != want.SHA256 {
		t.Errorf("%s: differs from the reference pipeline (sum %.9g, want %.9g)", name, sum, want.Sum)
	}
}

func checkU8(t *testing.T, name string, got []uint8, want digest) {
	t.Helper()
	s := sha256.Sum256(got)
	if hex.EncodeToString(s[:]) != want.SHA256 {
		t.Errorf("%s: differs from the reference pipeline", name)
	}
}

func goldenJitter(t *testing.T, g *goldenFile) imaging.JitterParams {
	var p imaging.JitterParams
	for i, op := range g.JitterSeq.Ops {
		f := g.JitterSeq.Factors[i]
		switch op {
		case "brightness":
			p.Order, p.Brightness = append(p.Order, imaging.OpBrightness), f
		case "contrast":
			p.Order, p.Contrast = append(p.Order, imaging.OpContrast), f
		case "saturation":
			p.Order, p.Saturation = append(p.Order, imaging.OpSaturation), f
		case "hue":
			p.Order, p.Hue = append(p.Order, imaging.OpHue), f
		default:
			t.Fatalf("unknown op %q", op)
		}
	}
	return p
}

func TestVOCViewMatchesReference(t *testing.T) {
	g := loadGolden(t)
	jp := goldenJitter(t, g)
	for _, c := range g.VOCView {
		name := fmt.Sprintf("%dx%d at (%d,%d)", c.W, c.H, c.X0, c.Y0)
		img := &imaging.RGB{W: c.W, H: c.H, Pix: lcgBytes(1, c.W*c.H*3)}
		sal := &imaging.Gray{W: c.W, H: c.H, Pix: lcgBytes(2, c.W*c.H)}
		for i := range sal.Pix {
			sal.Pix[i] /= 2
		}
		cfg := VOCView{ShortSide: c.Short, Crop: c.Crop, Norm: VOCNorm()}
		v, err := cfg.Render(img, sal, VOCParams{X0: c.X0, Y0: c.Y0, Jitter: jp})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkF32(t, name+" image", v.Image, c.Out)
		checkF32(t, name+" saliency", v.Sal, c.OutSal)
	}
}

func TestCOCOViewMatchesReference(t *testing.T) {
	g := loadGolden(t)
	c := g.COCOView
	img := &imaging.RGB{W: c.W, H: c.H, Pix: lcgBytes(3, c.W*c.H*3)}
	sal := &imaging.Gray{W: c.W, H: c.H, Pix: lcgBytes(4, c.W*c.H)}
	cfg := COCOView{Size: c.Size, Norm: COCONorm()}
	v, err := cfg.Render(img, sal, goldenJitter(t, g))
	if err != nil {
		t.Fatal(err)
	}
	checkF32(t, "coco image", v.Image, c.Out)
	checkF32(t, "coco saliency", v.Sal, c.OutSal)
}

func TestDeepLabMatchesReference(t *testing.T) {
	g := loadGolden(t)
	d := g.DeepLab
	img := &imaging.RGB{W: d.W, H: d.H, Pix: lcgBytes(5, d.W*d.H*3)}
	label := &imaging.Gray{W: d.W, H: d.H, Pix: lcgBytes(6, d.W*d.H)}
	classes := []uint8{0, 1, 5, 20, 255}
	for i, v := range label.Pix {
		label.Pix[i] = classes[v%5]
	}
	for _, c := range d.Cases {
		name := fmt.Sprintf("scale %v crop %d at (%d,%d) flip %v", c.Scale, c.Crop, c.X0, c.Y0, c.Flip)
		cfg := DefaultDeepLab()
		cfg.Crop = c.Crop
		s, err := cfg.Render(img, label, DeepLabParams{Scale: c.Scale, X0: c.X0, Y0: c.Y0, Flip: c.Flip})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkF32(t, name+" image", s.Image, c.Out)
		checkU8(t, name+" label", s.Label, c.Label)
	}
}

func TestMultiScaleMatchesReference(t *testing.T) {
	g := loadGolden(t)
	m := g.MultiScale
	img := &imaging.RGB{W: m.W, H: m.H, Pix: lcgBytes(7, m.W*m.H*3)}
	scales := make([]float64, len(m.Cases))
	for i, c := range m.Cases {
		scales[i] = c.Scale
	}
	ins, err := MultiScale(img, scales, VOCNorm())
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2*len(m.Cases) {
		t.Fatalf("%d inputs, want %d", len(ins), 2*len(m.Cases))
	}
	for i, c := range m.Cases {
		a, b := ins[2*i], ins[2*i+1]
		if a.W != c.W || a.H != c.H || b.W != c.W || a.Flipped || !b.Flipped || a.Scale != c.Scale {
			t.Errorf("scale %v: got %dx%d flipped %v/%v, want %dx%d", c.Scale, a.W, a.H, a.Flipped, b.Flipped, c.W, c.H)
		}
		checkF32(t, fmt.Sprintf("scale %v", c.Scale), a.Image, c.Out)
		checkF32(t, fmt.Sprintf("scale %v flipped", c.Scale), b.Image, c.Flipped)
	}
}

func TestPyRoundMatchesPython(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.PyRound {
		n, s, want := int(c[0]), c[1], int(c[2])
		if got, _ := ScaledSize(n, 1, s); got != want {
			t.Errorf("round(%d*%v) = %d, Python %d", n, s, got, want)
		}
	}
	cfg := DefaultVOCView()
	for _, c := range g.ResizeShort {
		if w, h := cfg.ResizedSize(c[0], c[1]); w != c[2] || h != c[3] {
			t.Errorf("ResizeShort(512) of %dx%d = %dx%d, Python %dx%d", c[0], c[1], w, h, c[2], c[3])
		}
	}
}
