package data_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
)

func TestVOCPalette(t *testing.T) {
	p := data.VOCPalette()
	if len(p) != 256 {
		t.Fatalf("palette has %d entries", len(p))
	}
	// Reference values of the PASCAL colormap.
	want := map[uint8][3]uint8{
		0: {0, 0, 0}, 1: {128, 0, 0}, 2: {0, 128, 0}, 3: {128, 128, 0}, 4: {0, 0, 128},
		15: {192, 128, 128}, 20: {0, 64, 128}, 255: {224, 224, 192},
	}
	for i, w := range want {
		r, g, b := data.VOCColor(i)
		if [3]uint8{r, g, b} != w {
			t.Errorf("colour %d = %v, want %v", i, [3]uint8{r, g, b}, w)
		}
		if c := p[i].(color.RGBA); [3]uint8{c.R, c.G, c.B} != w {
			t.Errorf("VOCPalette()[%d] = %v, want %v", i, c, w)
		}
	}
	p[1] = color.RGBA{1, 2, 3, 255}
	if r, _, _ := data.VOCColor(1); r != 128 {
		t.Error("VOCPalette returned the shared table, not a copy")
	}
}

func TestIndexPNGRoundTrip(t *testing.T) {
	m := imaging.NewGray(7, 5)
	for i := range m.Pix {
		m.Pix[i] = uint8(i % 21)
	}
	m.Pix[3], m.Pix[20] = 255, 255
	var buf bytes.Buffer
	if err := data.EncodeIndexPNG(&buf, m); err != nil {
		t.Fatal(err)
	}
	// The file is a palette PNG carrying the VOC colours.
	img, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	pal, ok := img.(*image.Paletted)
	if !ok {
		t.Fatalf("decoded %T, want *image.Paletted", img)
	}
	if c := pal.Palette[15].(color.RGBA); c != (color.RGBA{192, 128, 128, 255}) {
		t.Errorf("palette[15] = %v", c)
	}
	path := filepath.Join(t.TempDir(), "m.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := data.DecodeMask(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.W != 7 || got.H != 5 || !bytes.Equal(got.Pix, m.Pix) {
		t.Fatalf("round trip changed the mask: %v vs %v", got.Pix, m.Pix)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeMaskGrayVersusPalette(t *testing.T) {
	dir := t.TempDir()
	// A palette whose colours are unrelated to the indices: the class is the
	// index, never the colour.
	pal := color.Palette{color.RGBA{9, 9, 9, 255}, color.RGBA{200, 0, 0, 255}, color.RGBA{0, 77, 0, 255}, color.RGBA{1, 2, 3, 255}}
	pm := image.NewPaletted(image.Rect(0, 0, 3, 2), pal)
	copy(pm.Pix, []uint8{0, 1, 2, 3, 2, 1})
	writeFile(t, filepath.Join(dir, "pal.png"), encodePNG(t, pm))

	gm := image.NewGray(image.Rect(0, 0, 3, 2))
	copy(gm.Pix, []uint8{0, 5, 255, 20, 1, 0})
	writeFile(t, filepath.Join(dir, "gray.png"), encodePNG(t, gm))

	rgb := image.NewRGBA(image.Rect(0, 0, 3, 2))
	writeFile(t, filepath.Join(dir, "rgb.png"), encodePNG(t, rgb))
	g16 := image.NewGray16(image.Rect(0, 0, 3, 2))
	writeFile(t, filepath.Join(dir, "gray16.png"), encodePNG(t, g16))
	writeFile(t, filepath.Join(dir, "junk.png"), []byte("definitely not a png file at all, long enough"))

	got, err := data.DecodeMask(filepath.Join(dir, "pal.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pix, []uint8{0, 1, 2, 3, 2, 1}) {
		t.Errorf("palette mask = %v, want the indices", got.Pix)
	}
	got, err = data.DecodeMask(filepath.Join(dir, "gray.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pix, []uint8{0, 5, 255, 20, 1, 0}) {
		t.Errorf("gray mask = %v", got.Pix)
	}
	for _, name := range []string{"rgb.png", "gray16.png", "junk.png", "missing.png"} {
		p := filepath.Join(dir, name)
		_, err := data.DecodeMask(p)
		if err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), p) {
			t.Errorf("DecodeMask(%s) = %v, want a bad-input error naming the file", name, err)
		}
	}
	// Saliency accepts only 8-bit gray.
	if s, err := data.DecodeSaliency(filepath.Join(dir, "gray.png")); err != nil || s.Pix[2] != 255 {
		t.Errorf("DecodeSaliency(gray) = %v, %v", s, err)
	}
	if _, err := data.DecodeSaliency(filepath.Join(dir, "pal.png")); err == nil || !badinput.Is(err) {
		t.Errorf("DecodeSaliency(palette) = %v, want bad input", err)
	}
}

func TestDecodeImage(t *testing.T) {
	dir := t.TempDir()
	img := imaging.NewRGB(16, 8)
	for i := 0; i < 16*8; i++ {
		img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2] = 200, 40, 90
	}
	var buf bytes.Buffer
	if err := data.EncodeJPEG(&buf, img, 95); err != nil {
		t.Fatal(err)
	}
	jp := filepath.Join(dir, "a.jpg")
	writeFile(t, jp, buf.Bytes())
	got, err := data.DecodeImage(jp)
	if err != nil {
		t.Fatal(err)
	}
	if got.W != 16 || got.H != 8 {
		t.Fatalf("size %dx%d", got.W, got.H)
	}
	for i, want := range []int{200, 40, 90} {
		if d := int(got.Pix[3*37+i]) - want; d < -3 || d > 3 {
			t.Errorf("channel %d = %d, want %d±3", i, got.Pix[3*37+i], want)
		}
	}

	// PNG with alpha: colour kept, alpha dropped without premultiplying.
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	copy(nrgba.Pix, []uint8{10, 20, 30, 0, 250, 251, 252, 128})
	pp := filepath.Join(dir, "b.png")
	writeFile(t, pp, encodePNG(t, nrgba))
	got, err = data.DecodeImage(pp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pix, []uint8{10, 20, 30, 250, 251, 252}) {
		t.Errorf("PNG pixels = %v", got.Pix)
	}

	// A truncated JPEG is reported with its name.
	bad := filepath.Join(dir, "broken.jpg")
	writeFile(t, bad, buf.Bytes()[:len(buf.Bytes())/2])
	_, err = data.DecodeImage(bad)
	if err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), bad) {
		t.Errorf("DecodeImage(truncated) = %v, want a bad-input error naming %s", err, bad)
	}
}

func TestClasses(t *testing.T) {
	coco := data.COCOClasses()
	if len(coco) != 80 || coco[45] != "bowl" || coco[49] != "orange" || coco[50] != "broccoli" || coco[0] != "person" || coco[79] != "toothbrush" {
		t.Errorf("COCO classes wrong: %d names, 45=%q 49=%q 50=%q", len(coco), coco[45], coco[49], coco[50])
	}
	voc := data.VOCClasses()
	if len(voc) != 20 || voc[14] != "person" || voc[19] != "tvmonitor" {
		t.Errorf("VOC classes wrong: %v", voc)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "classes.txt")
	writeFile(t, p, []byte("cat \n dog\n\n"))
	names, err := data.ReadClasses(p)
	if err != nil || len(names) != 2 || names[1] != "dog" {
		t.Errorf("ReadClasses = %v, %v", names, err)
	}
	writeFile(t, p, []byte("cat\ndog\ncat\n"))
	if _, err := data.ReadClasses(p); err == nil || !strings.Contains(err.Error(), p+":3") {
		t.Errorf("repeated class: %v, want an error at line 3", err)
	}
}
