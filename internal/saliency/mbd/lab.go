package mbd

import (
	"math"

	"github.com/l2g/l2g/internal/imaging"
)

// labTables holds the lookup tables of the 8-bit sRGB → CIE Lab conversion.
type labTables struct {
	lin  [256]float32       // sRGB gamma expansion
	cbrt [cbrtN + 2]float32 // f(t) of CIE Lab on a grid over [0, 1]
}

const cbrtN = 4096

// lab is built once; it is read-only afterwards.
var lab = func() *labTables {
	t := &labTables{}
	for i := range t.lin {
		v := float64(i) / 255
		if v <= 0.04045 {
			v /= 12.92
		} else {
			v = math.Pow((v+0.055)/1.055, 2.4)
		}
		t.lin[i] = float32(v)
	}
	for i := range t.cbrt {
		t.cbrt[i] = float32(labF(float64(i) / cbrtN))
	}
	return t
}()

func labF(t float64) float64 {
	if t > 0.008856 {
		return math.Cbrt(t)
	}
	return 7.787*t + 16.0/116
}

// f interpolates labF from the table; t is clamped to [0, 1].
func (t *labTables) f(v float32) float32 {
	v = min(max(v, 0), 1) * cbrtN
	i := int(v)
	fr := v - float32(i)
	return t.cbrt[i] + fr*(t.cbrt[i+1]-t.cbrt[i])
}

// toLab converts img to three 8-bit planes with OpenCV's encoding of
// CIE Lab (D65): L·255/100, a+128, b+128, rounded and saturated. The MBD
// is computed in Lab because its distances follow perceived colour
// differences better than RGB.
func toLab(img *imaging.RGB) [3][]uint8 {
	n := img.W * img.H
	out := [3][]uint8{make([]uint8, n), make([]uint8, n), make([]uint8, n)}
	for i := range n {
		p := img.Pix[3*i : 3*i+3 : 3*i+3]
		r, g, b := lab.lin[p[0]], lab.lin[p[1]], lab.lin[p[2]]
		x := (0.412453*r + 0.357580*g + 0.180423*b) / 0.950456
		y := 0.212671*r + 0.715160*g + 0.072169*b
		z := (0.019334*r + 0.119193*g + 0.950227*b) / 1.088754
		fx, fy, fz := lab.f(x), lab.f(y), lab.f(z)
		var l float32
		if y > 0.008856 {
			l = 116*fy - 16
		} else {
			l = 903.3 * y
		}
		out[0][i] = sat8(l * 255 / 100)
		out[1][i] = sat8(500*(fx-fy) + 128)
		out[2][i] = sat8(200*(fy-fz) + 128)
	}
	return out
}

func sat8(v float32) uint8 {
	return uint8(min(max(v+0.5, 0), 255))
}
