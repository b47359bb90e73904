package mbd

// inf marks pixels no path has reached yet; any real barrier is <= 255.
const inf = 1 << 20

// transform writes into d the fast Minimum Barrier Distance of channel ch
// (w×h) to the seed set formed by the one-pixel image frame: for each pixel,
// the barrier max − min of the best 4-connected path found by passes raster
// scans that alternate forward (from left and top neighbours) and backward
// (from right and bottom). Each pixel keeps the highest and lowest values of
// its current path, so every value is the barrier of a real path: an upper
// bound of the exact MBD that the paper shows is tight after three passes.
func transform(ch []uint8, w, h, passes int, d []int32) {
	if w < 3 || h < 3 {
		// Every pixel is a seed.
		clear(d[:w*h])
		return
	}
	u := make([]int32, w*h)
	l := make([]int32, w*h)
	for i, v := range ch[:w*h] {
		u[i], l[i] = int32(v), int32(v)
		d[i] = inf
	}
	for x := range w {
		d[x], d[(h-1)*w+x] = 0, 0
	}
	for y := range h {
		d[y*w], d[y*w+w-1] = 0, 0
	}
	for p := range passes {
		if p%2 == 0 {
			scan(ch, u, l, d, w, h, 1, -1, -w)
		} else {
			scan(ch, u, l, d, w, h, -1, 1, w)
		}
	}
}

// scan visits the interior pixels in raster order (dir 1) or reverse raster
// order (dir −1) and relaxes each from the two neighbours at offsets n1, n2
// that the scan has already visited.
func scan(ch []uint8, u, l, d []int32, w, h, dir, n1, n2 int) {
	y0, y1, x0, x1 := 1, h-1, 1, w-1
	if dir < 0 {
		y0, y1, x0, x1 = h-2, 0, w-2, 0
	}
	for y := y0; y != y1; y += dir {
		for x := x0; x != x1; x += dir {
			i := y*w + x
			v := int32(ch[i])
			di := d[i]
			j := i + n1
			if uj, lj := max(u[j], v), min(l[j], v); uj-lj < di {
				di, u[i], l[i] = uj-lj, uj, lj
			}
			j = i + n2
			if uj, lj := max(u[j], v), min(l[j], v); uj-lj < di {
				di, u[i], l[i] = uj-lj, uj, lj
			}
			d[i] = di
		}
	}
}
