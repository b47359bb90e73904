//go:build experiment

package train

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestZZSweep(t *testing.T) {
	base, _ := LoadConfig("../../configs/demo.yaml")
	base.Threads, base.Workers = 2, 2
	base.MaxIterations, _ = strconv.Atoi(os.Getenv("SW_ITERS"))
	base.CheckpointEvery, base.KeepCheckpoints = 0, 1
	base.Mode = Mode(os.Getenv("SW_MODE"))
	for _, f := range strings.Split(os.Getenv("SW_LRS"), ",") {
		lr, _ := strconv.ParseFloat(f, 64)
		cfg := base
		cfg.Optim.LR = lr
		out, err := Run(context.Background(), cfg, Inputs{DataRoot: "/tmp/l2g-synthgap/data/train0", OutDir: t.TempDir()}, nil)
		if err != nil {
			t.Log(lr, err)
			continue
		}
		recs, _ := readLog(out.Log, 1<<30)
		var s []float64
		for i := 0; i < len(recs); i += 25 {
			var m float64
			n := 0
			for j := i; j < min(i+25, len(recs)); j++ {
				m += recs[j].Losses["total"]
				n++
			}
			s = append(s, m/float64(n))
		}
		t.Logf("lr %v: %.3f", lr, s)
	}
}
