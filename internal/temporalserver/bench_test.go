package temporalserver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/l2g/l2g/internal/temporalserver"
)

// BenchmarkStartStop measures a cold start (new SQLite file, schema and
// namespace created) and a warm one (existing file) plus the stop.
func BenchmarkStartStop(b *testing.B) {
	for _, warm := range []bool{false, true} {
		b.Run(fmt.Sprintf("existing_db=%v", warm), func(b *testing.B) {
			dir := b.TempDir()
			opts := temporalserver.Options{StateDir: dir, Ports: freePorts(b), Logger: testLogger(b)}
			if warm {
				_ = startServer(b, opts).Stop()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !warm {
					b.StopTimer()
					opts.StateDir = b.TempDir()
					b.StartTimer()
				}
				start := time.Now()
				srv := startServer(b, opts)
				b.ReportMetric(float64(time.Since(start).Milliseconds()), "start-ms")
				if err := srv.Stop(); err != nil {
					b.Fatal(err)
				}
			}
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
