package temporalserver

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// slogLogger sends the server's logs to slog, dropping those below level.
// The server is chatty at info; l2g keeps it at error unless asked.
type slogLogger struct {
	l     *slog.Logger
	level slog.Leveler
	// stopping is set by Server.Stop: in-flight polls and queue writes then
	// fail with "context canceled" at error level, which is only noise.
	// Debug level still shows them.
	stopping *atomic.Bool
}

var _ log.Logger = slogLogger{stopping: new(atomic.Bool)}

func (s slogLogger) Debug(msg string, tags ...tag.Tag) { s.log(slog.LevelDebug, msg, tags) }
func (s slogLogger) Info(msg string, tags ...tag.Tag)  { s.log(slog.LevelInfo, msg, tags) }
func (s slogLogger) Warn(msg string, tags ...tag.Tag)  { s.log(slog.LevelWarn, msg, tags) }
func (s slogLogger) Error(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// DPanic, Panic and Fatal only log, as the temporal CLI's dev server does: an
// embedded server must not take the l2g process down with it.
func (s slogLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }
func (s slogLogger) Panic(msg string, tags ...tag.Tag)  { s.log(slog.LevelError, msg, tags) }
func (s slogLogger) Fatal(msg string, tags ...tag.Tag)  { s.log(slog.LevelError, msg, tags) }

func (s slogLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	floor := s.level.Level()
	if level < floor || !s.l.Enabled(ctx, level) || (s.stopping.Load() && floor > slog.LevelDebug) {
		return
	}
	attrs := make([]slog.Attr, 0, len(tags)+1)
	attrs = append(attrs, slog.String("component", "temporal-server"))
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	s.l.LogAttrs(ctx, level, msg, attrs...)
}
