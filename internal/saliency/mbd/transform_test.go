package mbd

import (
	"container/heap"
	"math/rand/v2"
	"testing"
)

func TestTransformHandComputed(t *testing.T) {
	// 5×5: frame 10, ring 100, centre 200. Exact MBD: ring 100−10, centre 200−10.
	ch := make([]uint8, 25)
	for i := range ch {
		ch[i] = 10
	}
	for y := 1; y <= 3; y++ {
		for x := 1; x <= 3; x++ {
			ch[y*5+x] = 100
		}
	}
	ch[12] = 200
	d := make([]int32, 25)
	transform(ch, 5, 5, 1, d)
	for i, v := range d {
		x, y := i%5, i/5
		want := int32(0)
		switch {
		case i == 12:
			want = 190
		case x > 0 && x < 4 && y > 0 && y < 4:
			want = 90
		}
		if v != want {
			t.Errorf("d(%d,%d) = %d, want %d", x, y, v, want)
		}
	}
}

func TestTransformNeedsBackwardPass(t *testing.T) {
	// A low-contrast corridor that reaches the frame only at the bottom
	// right: one forward pass cannot see it, the backward pass must.
	const w, h = 7, 7
	ch := make([]uint8, w*h)
	for i := range ch {
		ch[i] = 250 // walls
	}
	for x := range w {
		ch[x], ch[(h-1)*w+x] = 250, 250
	}
	for y := range h {
		ch[y*w], ch[y*w+w-1] = 250, 250
	}
	// Corridor of 40s from (1,1) down to (5,5), opening to a frame pixel of 40.
	for k := 1; k <= 5; k++ {
		ch[k*w+1] = 40 // column x=1
		ch[5*w+k] = 40 // row y=5
	}
	ch[6*w+5] = 40 // the opening in the bottom frame
	d := make([]int32, w*h)
	transform(ch, w, h, 1, d)
	if d[1*w+1] == 0 {
		t.Fatalf("one forward pass already reached (1,1) through the corridor: %d", d[w+1])
	}
	transform(ch, w, h, 2, d)
	if d[1*w+1] != 0 {
		t.Errorf("after the backward pass d(1,1) = %d, want 0 (corridor of equal values)", d[w+1])
	}
	exact := exactMBD(ch, w, h)
	transform(ch, w, h, 3, d)
	for i := range d {
		if d[i] != exact[i] {
			t.Errorf("pixel %d: fast %d, exact %d", i, d[i], exact[i])
		}
	}
}

func TestTransformBoundsExactOnRandomImages(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var sumErr, n int
	for trial := range 30 {
		w, h := 4+rng.IntN(8), 4+rng.IntN(8)
		ch := make([]uint8, w*h)
		for i := range ch {
			ch[i] = uint8(rng.IntN(256))
		}
		d := make([]int32, w*h)
		transform(ch, w, h, 3, d)
		exact := exactMBD(ch, w, h)
		for i := range d {
			// Each fast value is the barrier of a real path.
			if d[i] < exact[i] {
				t.Fatalf("trial %d pixel %d: fast %d below exact %d", trial, i, d[i], exact[i])
			}
			sumErr += int(d[i] - exact[i])
			n++
		}
	}
	// Uniform noise is the hard case for the raster approximation (1.8 grey
	// levels measured); a wrong neighbour or pass order costs far more.
	if mean := float64(sumErr) / float64(n); mean > 3 {
		t.Errorf("mean error of the 3-pass MBD vs exact = %.2f grey levels, want <= 3", mean)
	}
}

// exactMBD is the minimum barrier distance to the frame by brute force: for
// each lower bound l, a bottleneck Dijkstra over pixels >= l gives the least
// path maximum u_l(p); MBD(p) = min_l u_l(p) − l.
func exactMBD(ch []uint8, w, h int) []int32 {
	n := w * h
	best := make([]int32, n)
	for i := range best {
		best[i] = inf
	}
	for l := 0; l < 256; l++ {
		top := make([]int32, n)
		for i := range top {
			top[i] = inf
		}
		pq := &minHeap{}
		for i := range n {
			x, y := i%w, i/w
			if (x == 0 || y == 0 || x == w-1 || y == h-1) && int(ch[i]) >= l {
				top[i] = int32(ch[i])
				heap.Push(pq, item{i, top[i]})
			}
		}
		for pq.Len() > 0 {
			it := heap.Pop(pq).(item)
			if it.d != top[it.i] {
				continue
			}
			x, y := it.i%w, it.i/w
			for _, nb := range [4][2]int{{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}} {
				if nb[0] < 0 || nb[1] < 0 || nb[0] >= w || nb[1] >= h {
					continue
				}
				j := nb[1]*w + nb[0]
				if int(ch[j]) < l {
					continue
				}
				if v := max(it.d, int32(ch[j])); v < top[j] {
					top[j] = v
					heap.Push(pq, item{j, v})
				}
			}
		}
		for i := range n {
			if top[i] < inf {
				best[i] = min(best[i], top[i]-int32(l))
			}
		}
	}
	return best
}

type item struct {
	i int
	d int32
}

type minHeap []item

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return h[i].d < h[j].d }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
