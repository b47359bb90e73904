package imaging

import (
	"fmt"
	"math"
)

// F32 is a float32 image, row-major and interleaved (HWC) with C channels:
// pixel (x, y) channel c is Pix[(y*W+x)*C+c]. The DeepLab stage works on
// such images because its reference reads JPEGs with OpenCV and casts them
// to float32 before any resizing.
type F32 struct {
	W, H, C int
	Pix     []float32
}

// Validate checks that the buffer matches the size.
func (m *F32) Validate() error {
	if m.W <= 0 || m.H <= 0 || m.C <= 0 || len(m.Pix) != m.W*m.H*m.C {
		return fmt.Errorf("float image %dx%dx%d has %d values, want %d", m.W, m.H, m.C, len(m.Pix), m.W*m.H*m.C)
	}
	return nil
}

// ResizeLinearCV resizes a float32 image to w×h as OpenCV 4's
// cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR) does: half-pixel
// centres, no antialiasing, edge pixels replicated, float32 arithmetic. As in
// OpenCV, an exact 2× reduction of both sides takes the INTER_AREA path
// (mean of each 2×2 block).
func ResizeLinearCV(src *F32, w, h int) (*F32, error) {
	if err := src.Validate(); err != nil {
		return nil, fmt.Errorf("resize linear: %w", err)
	}
	if w < 1 || h < 1 {
		return nil, fmt.Errorf("resize linear: target size %dx%d must be positive", w, h)
	}
	if w == src.W && h == src.H {
		return &F32{W: w, H: h, C: src.C, Pix: append([]float32(nil), src.Pix...)}, nil
	}
	invX := float64(w) / float64(src.W)
	invY := float64(h) / float64(src.H)
	scaleX, scaleY := 1/invX, 1/invY
	// OpenCV's is_area_fast test (saturate_cast rounds to nearest).
	iscaleX, iscaleY := int(math.RoundToEven(scaleX)), int(math.RoundToEven(scaleY))
	if iscaleX == 2 && iscaleY == 2 &&
		math.Abs(scaleX-float64(iscaleX)) < 0x1p-52 && math.Abs(scaleY-float64(iscaleY)) < 0x1p-52 {
		return areaHalfCV(src, w, h), nil
	}
	return linearCV(src, w, h, scaleX, scaleY), nil
}

// linearTaps are OpenCV's per-output source index and float weights; the
// weights are computed in float32 from a float32 source position.
func linearTaps(out, in int, scale float64, clampWeight bool) (idx []int, w0, w1 []float32) {
	idx = make([]int, out)
	w0 = make([]float32, out)
	w1 = make([]float32, out)
	for d := range out {
		f := float32((float64(d)+0.5)*scale - 0.5)
		s := int(math.Floor(float64(f)))
		f -= float32(s)
		if clampWeight {
			// Horizontal taps are clamped (cv::resize's xmin/xmax logic);
			// vertical ones keep their weight and clamp the row index.
			if s < 0 {
				f, s = 0, 0
			}
			if s >= in-1 {
				f, s = 0, in-1
			}
		}
		idx[d] = s
		w0[d] = 1 - f
		w1[d] = f
	}
	return idx, w0, w1
}

func linearCV(src *F32, w, h int, scaleX, scaleY float64) *F32 {
	nc := src.C
	xs, a0, a1 := linearTaps(w, src.W, scaleX, true)
	ys, b0, b1 := linearTaps(h, src.H, scaleY, false)
	// Horizontally resized source rows, computed once each.
	rows := make([][]float32, src.H)
	hrow := func(sy int) []float32 {
		if rows[sy] != nil {
			return rows[sy]
		}
		in := src.Pix[sy*src.W*nc : (sy+1)*src.W*nc]
		r := make([]float32, w*nc)
		for dx, sx := range xs {
			for c := range nc {
				v := in[sx*nc+c]
				if a1[dx] == 0 {
					// Right edge: OpenCV copies S[sx]·1 without reading sx+1.
					r[dx*nc+c] = v * a0[dx]
					continue
				}
				r[dx*nc+c] = float32(v*a0[dx]) + float32(in[(sx+1)*nc+c]*a1[dx])
			}
		}
		rows[sy] = r
		return r
	}
	out := &F32{W: w, H: h, C: nc, Pix: make([]float32, w*h*nc)}
	for dy, sy := range ys {
		r0 := hrow(min(max(sy, 0), src.H-1))
		r1 := hrow(min(max(sy+1, 0), src.H-1))
		o := out.Pix[dy*w*nc : (dy+1)*w*nc]
		for i := range o {
			o[i] = float32(r0[i]*b0[dy]) + float32(r1[i]*b1[dy])
		}
	}
	return out
}

// areaHalfCV is OpenCV's resizeAreaFast for float with a 2×2 block:
// ((S00 + S01) + S10) + S11, times 0.25, in float32.
func areaHalfCV(src *F32, w, h int) *F32 {
	nc := src.C
	out := &F32{W: w, H: h, C: nc, Pix: make([]float32, w*h*nc)}
	stride := src.W * nc
	for dy := range h {
		r0 := src.Pix[2*dy*stride : (2*dy+1)*stride]
		r1 := src.Pix[(2*dy+1)*stride : (2*dy+2)*stride]
		o := out.Pix[dy*w*nc : (dy+1)*w*nc]
		for dx := range w {
			for c := range nc {
				i := 2*dx*nc + c
				s := r0[i] + r0[i+nc]
				s += r1[i]
				s += r1[i+nc]
				o[dx*nc+c] = s * 0.25
			}
		}
	}
	return out
}
