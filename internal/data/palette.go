package data

import "image/color"

// vocPalette is the standard PASCAL VOC colormap (bit-interleaved class
// index → RGB, index 255 = (224,224,192)). It is built once and only read;
// VOCPalette hands out copies.
var vocPalette = makeVOCPalette()

func makeVOCPalette() color.Palette {
	p := make(color.Palette, 256)
	for i := range 256 {
		var r, g, b uint8
		c := i
		for j := range 8 {
			r |= uint8(c&1) << (7 - j)
			g |= uint8(c>>1&1) << (7 - j)
			b |= uint8(c>>2&1) << (7 - j)
			c >>= 3
		}
		p[i] = color.RGBA{R: r, G: g, B: b, A: 0xff}
	}
	return p
}

// VOCPalette returns a copy of the 256-entry PASCAL VOC colormap.
func VOCPalette() color.Palette {
	return append(color.Palette(nil), vocPalette...)
}

// VOCColor returns the palette colour of class index i.
func VOCColor(i uint8) (r, g, b uint8) {
	c := vocPalette[i].(color.RGBA)
	return c.R, c.G, c.B
}
