package crf

import (
	"math"
	"testing"
)

// TestExp32 sweeps [−87.3, 0] (4M points) and checks exp32 against the
// float64 exponential rounded to float32: measured max error 1 ulp;
// asserted ≤ 2 ulp. Also exact values at 0 and the underflow cutoff.
func TestExp32(t *testing.T) {
	const steps = 1 << 22
	worst := 0.0
	for i := range steps + 1 {
		x := float32(-87.3 * float64(i) / steps)
		got := exp32(x)
		want := float32(math.Exp(float64(x)))
		ulp := float64(math.Nextafter32(want, 2) - want)
		if e := math.Abs(float64(got-want)) / ulp; e > worst {
			worst = e
		}
	}
	t.Logf("max error %.2f ulp", worst)
	if worst > 2 {
		t.Errorf("exp32 max error %.2f ulp > 2", worst)
	}
	if exp32(0) != 1 {
		t.Errorf("exp32(0) = %v", exp32(0))
	}
	if exp32(-88) != 0 || exp32(float32(math.Inf(-1))) != 0 {
		t.Errorf("exp32 below the cutoff = %v, %v; want 0", exp32(-88), exp32(float32(math.Inf(-1))))
	}
}
