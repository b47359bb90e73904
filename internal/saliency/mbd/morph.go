package mbd

// morphSmooth is the MB+ smoothing: an opening by reconstruction followed by
// a closing by reconstruction with a width×width square. Unlike a plain
// opening/closing it removes bright and dark details smaller than the square
// while keeping the contours of the regions that survive.
func morphSmooth(s []uint8, w, h, width int) []uint8 {
	lo := (width - 1) / 2
	hi := width - 1 - lo
	// Opening by reconstruction: erode, then rebuild under s by dilation.
	m := rectFilter(s, w, h, lo, hi, false)
	reconstruct(m, s, w, h)
	// Closing by reconstruction, on complements: dilate, then rebuild above
	// the opened map by erosion. The dilation window is the reflected square.
	c := rectFilter(m, w, h, hi, lo, true)
	for i := range c {
		c[i] = 255 - c[i]
		m[i] = 255 - m[i]
	}
	reconstruct(c, m, w, h)
	for i := range c {
		c[i] = 255 - c[i]
	}
	return c
}

// rectFilter returns the erosion (dilate false: minimum) or dilation
// (maximum) of s over the window [x−before, x+after] × [y−before, y+after],
// clipped to the image. It runs separably, each line with a monotonic
// deque, so the cost does not grow with the window.
func rectFilter(s []uint8, w, h, before, after int, dilate bool) []uint8 {
	tmp := make([]uint8, w*h)
	out := make([]uint8, w*h)
	dq := make([]int, max(w, h))
	for y := range h {
		line1D(tmp[y*w:], s[y*w:], w, 1, before, after, dilate, dq)
	}
	for x := range w {
		line1D(out[x:], tmp[x:], h, w, before, after, dilate, dq)
	}
	return out
}

// line1D filters the n values src[0], src[stride], ... into dst likewise.
func line1D(dst, src []uint8, n, stride, before, after int, dilate bool, dq []int) {
	better := func(a, b uint8) bool { // a at least as extreme as b
		if dilate {
			return a >= b
		}
		return a <= b
	}
	head, tail := 0, 0 // dq[head:tail] holds indices with strictly monotone values
	next := 0          // next index to enter the window
	for i := range n {
		for ; next < n && next <= i+after; next++ {
			v := src[next*stride]
			for tail > head && better(v, src[dq[tail-1]*stride]) {
				tail--
			}
			dq[tail] = next
			tail++
		}
		for dq[head] < i-before {
			head++
		}
		dst[i*stride] = src[dq[head]*stride]
	}
}

// reconstruct replaces marker (<= mask everywhere) by the morphological
// reconstruction by dilation of marker under mask, 8-connected: the largest
// image <= mask that equals marker's regional maxima grown through mask.
// It is Vincent's hybrid algorithm (IEEE TIP 1993): a forward and a backward
// raster pass, then a FIFO propagation from the pixels that can still grow.
func reconstruct(marker, mask []uint8, w, h int) {
	// Forward pass over the causal neighbours (W, NW, N, NE).
	for y := range h {
		for x := range w {
			i := y*w + x
			v := marker[i]
			if x > 0 {
				v = max(v, marker[i-1])
			}
			if y > 0 {
				v = max(v, marker[i-w])
				if x > 0 {
					v = max(v, marker[i-w-1])
				}
				if x < w-1 {
					v = max(v, marker[i-w+1])
				}
			}
			marker[i] = min(v, mask[i])
		}
	}
	// Backward pass over (E, SW, S, SE); queue pixels that could still raise
	// a neighbour.
	var queue []int32
	for y := h - 1; y >= 0; y-- {
		for x := w - 1; x >= 0; x-- {
			i := y*w + x
			v := marker[i]
			var nb [4]int
			k := 0
			if x < w-1 {
				nb[k] = i + 1
				k++
			}
			if y < h-1 {
				nb[k] = i + w
				k++
				if x > 0 {
					nb[k] = i + w - 1
					k++
				}
				if x < w-1 {
					nb[k] = i + w + 1
					k++
				}
			}
			for _, j := range nb[:k] {
				v = max(v, marker[j])
			}
			v = min(v, mask[i])
			marker[i] = v
			for _, j := range nb[:k] {
				if marker[j] < v && marker[j] < mask[j] {
					queue = append(queue, int32(i))
					break
				}
			}
		}
	}
	for head := 0; head < len(queue); head++ {
		i := int(queue[head])
		x, y := i%w, i/w
		v := marker[i]
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				xx, yy := x+dx, y+dy
				if (dx == 0 && dy == 0) || xx < 0 || yy < 0 || xx >= w || yy >= h {
					continue
				}
				j := yy*w + xx
				if marker[j] < v && marker[j] != mask[j] {
					marker[j] = min(v, mask[j])
					queue = append(queue, int32(j))
				}
			}
		}
	}
}
