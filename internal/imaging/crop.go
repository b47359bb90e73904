package imaging

import "fmt"

// CropRGB returns the w×h window of img whose top-left corner is (x0, y0),
// like PIL's img.crop((x0, y0, x0+w, y0+h)): the window may extend past the
// image on any side and pixels outside it are 0 (black).
func CropRGB(img *RGB, x0, y0, w, h int) (*RGB, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("crop: %w", err)
	}
	pix, err := crop8(img.Pix, img.W, img.H, 3, x0, y0, w, h)
	if err != nil {
		return nil, err
	}
	return &RGB{W: w, H: h, Pix: pix}, nil
}

// CropGray is CropRGB for a single-channel image; outside pixels are 0.
func CropGray(img *Gray, x0, y0, w, h int) (*Gray, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("crop: %w", err)
	}
	pix, err := crop8(img.Pix, img.W, img.H, 1, x0, y0, w, h)
	if err != nil {
		return nil, err
	}
	return &Gray{W: w, H: h, Pix: pix}, nil
}

func crop8(pix []uint8, sw, sh, nc, x0, y0, w, h int) ([]uint8, error) {
	if w < 1 || h < 1 {
		return nil, fmt.Errorf("crop: size %dx%d must be positive", w, h)
	}
	out := make([]uint8, w*h*nc)
	// Intersection of the window with the image, in source coordinates.
	xa, xb := max(x0, 0), min(x0+w, sw)
	ya, yb := max(y0, 0), min(y0+h, sh)
	if xa >= xb || ya >= yb {
		return out, nil
	}
	for y := ya; y < yb; y++ {
		src := pix[(y*sw+xa)*nc : (y*sw+xb)*nc]
		copy(out[((y-y0)*w+xa-x0)*nc:], src)
	}
	return out, nil
}

// FlipRGB returns img mirrored left-right.
func FlipRGB(img *RGB) (*RGB, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("flip: %w", err)
	}
	return &RGB{W: img.W, H: img.H, Pix: flip8(img.Pix, img.W, img.H, 3)}, nil
}

// FlipGray returns img mirrored left-right.
func FlipGray(img *Gray) (*Gray, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("flip: %w", err)
	}
	return &Gray{W: img.W, H: img.H, Pix: flip8(img.Pix, img.W, img.H, 1)}, nil
}

func flip8(pix []uint8, w, h, nc int) []uint8 {
	out := make([]uint8, len(pix))
	for y := range h {
		row := pix[y*w*nc : (y+1)*w*nc]
		o := out[y*w*nc : (y+1)*w*nc]
		for x := range w {
			copy(o[(w-1-x)*nc:(w-x)*nc], row[x*nc:(x+1)*nc])
		}
	}
	return out
}

// NormalizeCHW converts img to float32 CHW as torchvision's ToTensor then
// Normalize(mean, std) do: v/255, then (v−mean)/std, all in float32.
func NormalizeCHW(img *RGB, mean, std [3]float32) ([]float32, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("normalize: %w", err)
	}
	for c, s := range std {
		if !(s > 0) {
			return nil, fmt.Errorf("normalize: std[%d] = %v must be > 0", c, s)
		}
	}
	n := img.W * img.H
	out := make([]float32, 3*n)
	// A 256-entry table per channel gives the same float32 results as
	// computing each pixel and avoids two divisions per value.
	var lut [3][256]float32
	for c := range 3 {
		for v := range 256 {
			lut[c][v] = (float32(v)/255 - mean[c]) / std[c]
		}
	}
	r, g, b := out[:n], out[n:2*n], out[2*n:]
	for i := range n {
		p := img.Pix[i*3 : i*3+3]
		r[i] = lut[0][p[0]]
		g[i] = lut[1][p[1]]
		b[i] = lut[2][p[2]]
	}
	return out, nil
}

// SaliencyFloat converts a saliency map to float32 as the reference does:
// v/255, then divided by (max + 1e-10) in float32, so an all-zero map stays
// 0 and any other map peaks at exactly 1.
func SaliencyFloat(g *Gray) ([]float32, error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("saliency: %w", err)
	}
	out := make([]float32, len(g.Pix))
	var m float32
	for i, v := range g.Pix {
		out[i] = float32(v) / 255
		m = max(m, out[i])
	}
	d := m + float32(1e-10)
	for i := range out {
		out[i] /= d
	}
	return out, nil
}
