// Package imaging holds the 8-bit image types every stage passes around and
// the PIL/OpenCV-compatible pixel operations the reference relies on.
package imaging

import "fmt"

// RGB is an 8-bit RGB image, row-major, interleaved (HWC): pixel (x, y)
// channel c is Pix[(y*W+x)*3+c].
type RGB struct {
	W, H int
	Pix  []uint8
}

// NewRGB returns a black image.
func NewRGB(w, h int) *RGB { return &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)} }

// Gray is an 8-bit single-channel image, row-major: saliency maps, CAM
// PNGs and label masks (class indices, 255 = ignore) all use it.
type Gray struct {
	W, H int
	Pix  []uint8
}

// NewGray returns a zero image.
func NewGray(w, h int) *Gray { return &Gray{W: w, H: h, Pix: make([]uint8, w*h)} }

// At returns the value at (x, y).
func (g *Gray) At(x, y int) uint8 { return g.Pix[y*g.W+x] }

// Validate checks that the buffer matches the size.
func (m *RGB) Validate() error {
	if m.W <= 0 || m.H <= 0 || len(m.Pix) != m.W*m.H*3 {
		return fmt.Errorf("rgb image %dx%d has %d bytes, want %d", m.W, m.H, len(m.Pix), m.W*m.H*3)
	}
	return nil
}

// Validate checks that the buffer matches the size.
func (g *Gray) Validate() error {
	if g.W <= 0 || g.H <= 0 || len(g.Pix) != g.W*g.H {
		return fmt.Errorf("gray image %dx%d has %d bytes, want %d", g.W, g.H, len(g.Pix), g.W*g.H)
	}
	return nil
}
