package data

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"sync"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/imaging"
)

var (
	pngSignature  = []byte("\x89PNG\r\n\x1a\n")
	jpegSignature = []byte{0xff, 0xd8, 0xff}
)

// PNG colour types from the IHDR chunk (PNG spec §11.2.2).
const (
	pngGray    = 0
	pngPalette = 3
)

// pngHeader reads bit depth and colour type from the IHDR chunk. The Go
// decoder hides both (1-bit gray decodes to 0/255 Gray like 8-bit gray), and
// a mask must not be silently rescaled.
func pngHeader(b []byte) (depth, colorType int, err error) {
	if len(b) < 33 || !bytes.Equal(b[:8], pngSignature) {
		return 0, 0, fmt.Errorf("not a PNG file")
	}
	if binary.BigEndian.Uint32(b[8:12]) != 13 || string(b[12:16]) != "IHDR" {
		return 0, 0, fmt.Errorf("PNG without IHDR chunk")
	}
	return int(b[24]), int(b[25]), nil
}

// DecodeMask reads a label mask PNG. Palette PNGs yield their palette
// indices (the class ids, whatever colours the palette holds); 8-bit gray
// PNGs yield their gray values. Any other PNG kind is rejected, as is
// anything that is not a PNG; errors are *badinput.Error naming path.
func DecodeMask(path string) (*imaging.Gray, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	m, err := decodeMaskBytes(b)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	return m, nil
}

func decodeMaskBytes(b []byte) (*imaging.Gray, error) {
	depth, ct, err := pngHeader(b)
	if err != nil {
		return nil, err
	}
	switch {
	case ct == pngPalette:
	case ct == pngGray && depth == 8:
	default:
		return nil, fmt.Errorf("mask PNG has colour type %d, bit depth %d: want a palette or 8-bit gray PNG", ct, depth)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode mask PNG: %w", err)
	}
	return toGray(img)
}

// DecodeSaliency reads an 8-bit gray PNG saliency map.
func DecodeSaliency(path string) (*imaging.Gray, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	depth, ct, err := pngHeader(b)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	if ct != pngGray || depth != 8 {
		return nil, badinput.New(path, "", "saliency PNG has colour type %d, bit depth %d: want 8-bit gray", ct, depth)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, badinput.New(path, "", "decode saliency PNG: %w", err)
	}
	g, err := toGray(img)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	return g, nil
}

// toGray copies the single channel of a decoded gray or palette PNG.
func toGray(img image.Image) (*imaging.Gray, error) {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("empty image")
	}
	out := imaging.NewGray(w, h)
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			copy(out.Pix[y*w:(y+1)*w], m.Pix[y*m.Stride:y*m.Stride+w])
		}
	case *image.Paletted:
		for y := range h {
			copy(out.Pix[y*w:(y+1)*w], m.Pix[y*m.Stride:y*m.Stride+w])
		}
	case *image.NRGBA:
		// An 8-bit gray PNG with a tRNS chunk decodes to NRGBA with R=G=B.
		for y := range h {
			row := m.Pix[y*m.Stride:]
			for x := range w {
				out.Pix[y*w+x] = row[4*x]
			}
		}
	default:
		return nil, fmt.Errorf("unexpected decoded PNG type %T", img)
	}
	return out, nil
}

// DecodeImage reads a JPEG or PNG image (detected from its content) as
// 8-bit RGB. Alpha is dropped without premultiplying, as PIL's
// convert("RGB") does. Errors are *badinput.Error naming path.
func DecodeImage(path string) (*imaging.RGB, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	var img image.Image
	switch {
	case bytes.HasPrefix(b, jpegSignature):
		img, err = jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			err = fmt.Errorf("decode JPEG: %w", err)
		}
	case bytes.HasPrefix(b, pngSignature):
		img, err = png.Decode(bytes.NewReader(b))
		if err != nil {
			err = fmt.Errorf("decode PNG: %w", err)
		}
	default:
		err = fmt.Errorf("not a JPEG or PNG file")
	}
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	return toRGB(img), nil
}

// toRGB converts any decoded image to interleaved RGB, with fast paths for
// the types the JPEG and PNG decoders produce.
func toRGB(img image.Image) *imaging.RGB {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	out := imaging.NewRGB(w, h)
	p := out.Pix
	switch m := img.(type) {
	case *image.YCbCr:
		for y := range h {
			for x := range w {
				yi := m.YOffset(r.Min.X+x, r.Min.Y+y)
				ci := m.COffset(r.Min.X+x, r.Min.Y+y)
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			}
		}
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride:]
			for x := range w {
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = row[x], row[x], row[x]
			}
		}
	case *image.RGBA:
		copy4to3(p, m.Pix, m.Stride, w, h)
	case *image.NRGBA:
		copy4to3(p, m.Pix, m.Stride, w, h)
	default:
		for y := range h {
			for x := range w {
				c := color.NRGBA64Model.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA64)
				o := 3 * (y*w + x)
				p[o], p[o+1], p[o+2] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8)
			}
		}
	}
	return out
}

func copy4to3(dst, src []uint8, stride, w, h int) {
	for y := range h {
		row := src[y*stride:]
		for x := range w {
			o := 3 * (y*w + x)
			dst[o], dst[o+1], dst[o+2] = row[4*x], row[4*x+1], row[4*x+2]
		}
	}
}

// PNGEncoder writes index and gray PNGs, reusing its compression buffers
// (about 1 MB per call otherwise) across calls; it is safe for concurrent
// use. The zero value is not usable; call NewPNGEncoder.
type PNGEncoder struct {
	enc png.Encoder
}

// pngBufferPool adapts sync.Pool to png.EncoderBufferPool.
type pngBufferPool struct{ p sync.Pool }

func (b *pngBufferPool) Get() *png.EncoderBuffer {
	v, _ := b.p.Get().(*png.EncoderBuffer)
	return v
}

func (b *pngBufferPool) Put(e *png.EncoderBuffer) { b.p.Put(e) }

// NewPNGEncoder returns an encoder with default compression.
func NewPNGEncoder() *PNGEncoder {
	return &PNGEncoder{enc: png.Encoder{BufferPool: &pngBufferPool{}}}
}

// Index writes m (class indices, 255 = ignore) as an 8-bit palette PNG with
// the VOC colormap, the format of VOC SegmentationClass files.
func (e *PNGEncoder) Index(w io.Writer, m *imaging.Gray) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("encode index PNG: %w", err)
	}
	img := &image.Paletted{Pix: m.Pix, Stride: m.W, Rect: image.Rect(0, 0, m.W, m.H), Palette: vocPalette}
	if err := e.enc.Encode(w, img); err != nil {
		return fmt.Errorf("encode index PNG: %w", err)
	}
	return nil
}

// Gray writes m as an 8-bit gray PNG (saliency maps, CAM images, gray
// label masks).
func (e *PNGEncoder) Gray(w io.Writer, m *imaging.Gray) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("encode gray PNG: %w", err)
	}
	img := &image.Gray{Pix: m.Pix, Stride: m.W, Rect: image.Rect(0, 0, m.W, m.H)}
	if err := e.enc.Encode(w, img); err != nil {
		return fmt.Errorf("encode gray PNG: %w", err)
	}
	return nil
}

// EncodeIndexPNG writes m as a VOC palette PNG; see PNGEncoder.Index.
func EncodeIndexPNG(w io.Writer, m *imaging.Gray) error {
	return NewPNGEncoder().Index(w, m)
}

// EncodeGrayPNG writes m as an 8-bit gray PNG; see PNGEncoder.Gray.
func EncodeGrayPNG(w io.Writer, m *imaging.Gray) error {
	return NewPNGEncoder().Gray(w, m)
}

// EncodeJPEG writes img as a baseline JPEG (4:2:0 chroma, as the standard
// library's encoder always does) at quality 1..100.
func EncodeJPEG(w io.Writer, img *imaging.RGB, quality int) error {
	if err := img.Validate(); err != nil {
		return fmt.Errorf("encode JPEG: %w", err)
	}
	if quality < 1 || quality > 100 {
		return fmt.Errorf("encode JPEG: quality %d outside 1..100", quality)
	}
	// *image.RGBA hits the encoder's fast path; the generic path calls At
	// per pixel through an interface.
	rgba := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	for i, n := 0, img.W*img.H; i < n; i++ {
		rgba.Pix[4*i], rgba.Pix[4*i+1], rgba.Pix[4*i+2], rgba.Pix[4*i+3] = img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2], 0xff
	}
	if err := jpeg.Encode(w, rgba, &jpeg.Options{Quality: quality}); err != nil {
		return fmt.Errorf("encode JPEG: %w", err)
	}
	return nil
}
