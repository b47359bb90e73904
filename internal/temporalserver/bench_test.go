package temporalserver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/l2g/l2g/internal/temporalserver"
)

// BenchmarkStartStop measures a cold start (new SQLite file: schema and
// namespaces created) and a warm one (existing file), and the stop, each
// reported as a mean per iteration.
func BenchmarkStartStop(b *testing.B) {
	for _, warm := range []bool{false, true} {
		b.Run(fmt.Sprintf("existing_db=%v", warm), func(b *testing.B) {
			opts := temporalserver.Options{StateDir: b.TempDir(), Ports: freePorts(b), Logger: testLogger(b)}
			if warm {
				_ = startServer(b, opts).Stop()
			}
			var starting, stopping time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !warm {
					b.StopTimer()
					opts.StateDir = b.TempDir()
					b.StartTimer()
				}
				t0 := time.Now()
				srv := startServer(b, opts)
				t1 := time.Now()
				if err := srv.Stop(); err != nil {
					b.Fatal(err)
				}
				starting += t1.Sub(t0)
				stopping += time.Since(t1)
			}
			b.ReportMetric(float64(starting.Milliseconds())/float64(b.N), "start-ms/op")
			b.ReportMetric(float64(stopping.Milliseconds())/float64(b.N), "stop-ms/op")
		})
	}
}

// BenchmarkTwoActivityWorkflow measures one workflow with an activity on
// each queue, end to end through the embedded server and SQLite.
func BenchmarkTwoActivityWorkflow(b *testing.B) {
	srv := startServer(b, temporalserver.Options{StateDir: b.TempDir(), Ports: freePorts(b), Logger: testLogger(b)})
	defer func() { _ = srv.Stop() }()
	h := connect(b, srv, true)
	defer h.stop()
	h.runTwoStage(b, "warmup", 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := h.runTwoStage(b, fmt.Sprintf("bench-%d", i), i); res.Y != 2*i+1 {
			b.Fatalf("result %d", res.Y)
		}
	}
}
