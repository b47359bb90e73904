package augment

import "math/rand/v2"

// Stream separates the random draws made for one image, so that changing
// one augmentation (say the jitter strength) leaves the others' draws alone.
type Stream uint64

const (
	// StreamView drives the global view: crop offsets, then jitter.
	StreamView Stream = iota + 1
	// StreamBoxes drives the local-view boxes.
	StreamBoxes
	// StreamDeepLab drives the DeepLab augmentation.
	StreamDeepLab
	// streamOrder drives the epoch permutation; not per image.
	streamOrder Stream = 1<<64 - 1
)

// Sampler hands out independent, reproducible random generators.
//
// The reference drew local boxes and jitter factors from numpy, which
// PyTorch < 1.9 did not reseed in loader workers, so every epoch repeated
// the same draws per image; and it never shuffled. A Sampler fixes both:
// the generator for (epoch, index, stream) depends only on those numbers
// and Seed, so draws change from epoch to epoch, any number of workers in
// any order produce the same batches, and a resumed run replays them.
// The zero value is usable (seed 0, shuffling on).
type Sampler struct {
	Seed uint64
	// NoShuffle keeps the list order in every epoch, as the reference did.
	NoShuffle bool
}

// splitmix64 is the SplitMix64 output function, a strong 64-bit mixer.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (s Sampler) pcg(st Stream, epoch, index uint64) *rand.Rand {
	h := splitmix64(s.Seed)
	h = splitmix64(h ^ uint64(st))
	h = splitmix64(h ^ epoch)
	h = splitmix64(h ^ index)
	return rand.New(rand.NewPCG(h, splitmix64(h^0x5851f42d4c957f2d)))
}

// Rand returns the generator for image index in epoch on stream st.
func (s Sampler) Rand(epoch, index int, st Stream) *rand.Rand {
	return s.pcg(st, uint64(epoch), uint64(index))
}

// Order returns the order in which to visit n images in epoch: a
// permutation drawn from (Seed, epoch), or 0..n−1 when NoShuffle is set.
func (s Sampler) Order(epoch, n int) []int {
	if s.NoShuffle {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	return s.pcg(streamOrder, uint64(epoch), 0).Perm(n)
}
