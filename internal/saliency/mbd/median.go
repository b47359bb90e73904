package mbd

// medianFilter returns src (w×h) filtered with a size×size median, edges
// replicated. It slides a 256-bin histogram along each row and tracks the
// median incrementally (Huang's algorithm), so the cost per pixel is
// O(size) rather than a sort of size² values.
func medianFilter(src []uint8, w, h, size int) []uint8 {
	r := size / 2
	rank := int32(size * size / 2) // 0-based rank of the median
	dst := make([]uint8, w*h)
	// Clamped column index for x in [−r−1, w+r).
	col := make([]int, w+2*r+1)
	for k := range col {
		col[k] = min(max(k-r-1, 0), w-1)
	}
	rows := make([]int, size)
	var hist [256]int32
	for y := range h {
		for k := range rows {
			rows[k] = min(max(y+k-r, 0), h-1) * w
		}
		hist = [256]int32{}
		for _, ro := range rows {
			for dx := -r; dx <= r; dx++ {
				hist[src[ro+col[dx+r+1]]]++
			}
		}
		m, lt := int32(0), int32(0) // median and the count of values below it
		for lt+hist[m] <= rank {
			lt += hist[m]
			m++
		}
		dst[y*w] = uint8(m)
		for x := 1; x < w; x++ {
			out, in := col[x], col[x+2*r+1] // columns x−r−1 and x+r
			for _, ro := range rows {
				v := int32(src[ro+out])
				hist[v]--
				if v < m {
					lt--
				}
				v = int32(src[ro+in])
				hist[v]++
				if v < m {
					lt++
				}
			}
			for lt > rank {
				m--
				lt -= hist[m]
			}
			for lt+hist[m] <= rank {
				lt += hist[m]
				m++
			}
			dst[y*w+x] = uint8(m)
		}
	}
	return dst
}
