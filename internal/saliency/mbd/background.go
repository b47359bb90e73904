package mbd

import "math"

// backgroundness is the MB+ image-boundary contrast cue: for each of the
// top, bottom, left and right border regions (marginRatio of the side), the
// Mahalanobis distance of every pixel's Lab colour to the region's colour
// distribution, min-max normalized. The four maps are summed and the largest
// dropped per pixel, so one border region crossed by the object does not
// mark the object as background. The result is in [0, 1].
func backgroundness(lab [3][]uint8, w, h int, marginRatio, covReg float64) []float32 {
	rm := max(int(math.Round(marginRatio*float64(h))), 1)
	cm := max(int(math.Round(marginRatio*float64(w))), 1)
	regions := [4][4]int{ // x0, y0, x1, y1
		{0, 0, w, rm},
		{0, h - rm, w, h},
		{0, 0, cm, h},
		{w - cm, 0, w, h},
	}
	n := w * h
	sum := make([]float32, n)
	top := make([]float32, n)
	u := make([]float32, n)
	for _, r := range regions {
		mean, inv := regionStats(lab, w, r, covReg)
		for i := range n {
			d0 := float64(lab[0][i]) - mean[0]
			d1 := float64(lab[1][i]) - mean[1]
			d2 := float64(lab[2][i]) - mean[2]
			q := d0*(inv[0][0]*d0+inv[0][1]*d1+inv[0][2]*d2) +
				d1*(inv[1][0]*d0+inv[1][1]*d1+inv[1][2]*d2) +
				d2*(inv[2][0]*d0+inv[2][1]*d1+inv[2][2]*d2)
			u[i] = float32(math.Sqrt(max(q, 0)))
		}
		normalize(u)
		for i, v := range u {
			sum[i] += v
			top[i] = max(top[i], v)
		}
	}
	for i := range sum {
		sum[i] -= top[i]
	}
	normalize(sum)
	return sum
}

// regionStats returns the mean colour of the box r and the inverse of its
// sample covariance plus covReg·I.
func regionStats(lab [3][]uint8, w int, r [4]int, covReg float64) (mean [3]float64, inv [3][3]float64) {
	var s [3]float64
	var ss [3][3]float64
	cnt := 0
	for y := r[1]; y < r[3]; y++ {
		for x := r[0]; x < r[2]; x++ {
			i := y*w + x
			v := [3]float64{float64(lab[0][i]), float64(lab[1][i]), float64(lab[2][i])}
			for a := range 3 {
				s[a] += v[a]
				for b := range 3 {
					ss[a][b] += v[a] * v[b]
				}
			}
			cnt++
		}
	}
	nf := float64(cnt)
	for a := range 3 {
		mean[a] = s[a] / nf
	}
	var c [3][3]float64
	for a := range 3 {
		for b := range 3 {
			if cnt > 1 {
				c[a][b] = (ss[a][b] - nf*mean[a]*mean[b]) / (nf - 1)
			}
		}
		c[a][a] += covReg
	}
	return mean, inverse3(c)
}

// inverse3 inverts a symmetric positive definite 3×3 matrix by cofactors.
func inverse3(m [3][3]float64) (inv [3][3]float64) {
	c00 := m[1][1]*m[2][2] - m[1][2]*m[2][1]
	c01 := m[1][2]*m[2][0] - m[1][0]*m[2][2]
	c02 := m[1][0]*m[2][1] - m[1][1]*m[2][0]
	det := m[0][0]*c00 + m[0][1]*c01 + m[0][2]*c02
	inv[0][0] = c00 / det
	inv[1][0] = c01 / det
	inv[2][0] = c02 / det
	inv[0][1] = (m[0][2]*m[2][1] - m[0][1]*m[2][2]) / det
	inv[1][1] = (m[0][0]*m[2][2] - m[0][2]*m[2][0]) / det
	inv[2][1] = (m[0][1]*m[2][0] - m[0][0]*m[2][1]) / det
	inv[0][2] = (m[0][1]*m[1][2] - m[0][2]*m[1][1]) / det
	inv[1][2] = (m[0][2]*m[1][0] - m[0][0]*m[1][2]) / det
	inv[2][2] = (m[0][0]*m[1][1] - m[0][1]*m[1][0]) / det
	return inv
}
