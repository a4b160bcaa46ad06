package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/cloudwego/hertz/pkg/common/hlog"
	"github.com/cloudwego/kitex/pkg/klog"
	"github.com/cloudwego/netpoll"
	"golang.org/x/time/rate"

	"github.com/seckill/flashsale/internal/reqid"
)

// FrameworkLogs sends hertz's, kitex's and netpoll's own logs to log, so a JSON log
// stays JSON (one record a line, the framework named in "framework"), at level (warn
// or error; debug lets everything through): under load their warnings (a retried
// RPC, a slow dial, a client gone mid-request) come by the thousand.
func FrameworkLogs(log *slog.Logger, level string) {
	log = slog.New(reqid.Handler(log.Handler()))
	h := &hertzLog{newFrameworkLog(log.With("framework", "hertz"))}
	k := &kitexLog{newFrameworkLog(log.With("framework", "kitex"))}
	hlog.SetLogger(h)
	klog.SetLogger(k)
	netpoll.SetLoggerOutput(lineWriter{log: log.With("framework", "netpoll")})
	switch level {
	case "debug":
		hlog.SetLevel(hlog.LevelDebug)
		klog.SetLevel(klog.LevelDebug)
	case "error":
		hlog.SetLevel(hlog.LevelError)
		klog.SetLevel(klog.LevelError)
	default:
		hlog.SetLevel(hlog.LevelWarn)
		klog.SetLevel(klog.LevelWarn)
	}
}

// The frameworks' levels, alike in hlog and klog: trace, debug, info, notice, warn,
// error, fatal.
const (
	fwTrace = iota
	fwDebug
	fwInfo
	fwNotice
	fwWarn
	fwError
	fwFatal
)

// slogLevel maps a framework level to slog's.
func slogLevel(l int32) slog.Level {
	switch {
	case l <= fwDebug:
		return slog.LevelDebug
	case l <= fwNotice:
		return slog.LevelInfo
	case l == fwWarn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// frameworkLog is what hlog.FullLogger and klog.FullLogger have in common, over slog.
// Its records are bounded (frameworkLogRate): a client sending malformed requests gets
// hertz to log each one, and must not fill the disk; what was left out is counted in
// the next record.
type frameworkLog struct {
	log     *slog.Logger
	level   atomic.Int32
	limit   *rate.Limiter
	dropped atomic.Int64
}

// The records a framework may log a second, and at once.
const (
	frameworkLogRate  = 20
	frameworkLogBurst = 100
)

func newFrameworkLog(log *slog.Logger) frameworkLog {
	return frameworkLog{log: log, limit: rate.NewLimiter(frameworkLogRate, frameworkLogBurst)}
}

func (f *frameworkLog) out(ctx context.Context, l int32, msg string) {
	if l < f.level.Load() {
		return
	}
	if l < fwFatal && !f.limit.Allow() {
		f.dropped.Add(1)
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if n := f.dropped.Swap(0); n > 0 {
		f.log.Log(ctx, slog.LevelWarn, fmt.Sprintf("%d framework log records left out (over %d a second)", n, frameworkLogRate), "left_out", n)
	}
	f.log.Log(ctx, slogLevel(l), strings.TrimSpace(withoutRequestBytes(msg)))
	if l == fwFatal {
		os.Exit(1) // what the frameworks' own loggers do after a fatal record
	}
}

// withoutRequestBytes drops the request bytes hertz quotes when it cannot parse a
// request ("invalid header value "..."", "Buffer size=N, contents: "..."..."..."): they
// may hold a credential (a bearer token). What went wrong, and what follows (the
// peer's address), stay.
func withoutRequestBytes(msg string) string {
	return quotedRequestBytes.ReplaceAllString(msg, "$1(left out: a request's bytes may hold credentials)")
}

// quotedRequestBytes is a %q-quoted value after "header value " or "contents: ",
// and the second half of a snippet ("..."...").
var quotedRequestBytes = regexp.MustCompile(`(header value |contents: )"(?:[^"\\]|\\.)*"(?:\.\.\."(?:[^"\\]|\\.)*")?`)

func (f *frameworkLog) print(l int32, v ...any) { f.out(nil, l, fmt.Sprint(v...)) }
func (f *frameworkLog) printf(ctx context.Context, l int32, format string, v ...any) {
	f.out(ctx, l, fmt.Sprintf(format, v...))
}

func (f *frameworkLog) Trace(v ...any)  { f.print(fwTrace, v...) }
func (f *frameworkLog) Debug(v ...any)  { f.print(fwDebug, v...) }
func (f *frameworkLog) Info(v ...any)   { f.print(fwInfo, v...) }
func (f *frameworkLog) Notice(v ...any) { f.print(fwNotice, v...) }
func (f *frameworkLog) Warn(v ...any)   { f.print(fwWarn, v...) }
func (f *frameworkLog) Error(v ...any)  { f.print(fwError, v...) }
func (f *frameworkLog) Fatal(v ...any)  { f.print(fwFatal, v...) }

func (f *frameworkLog) Tracef(format string, v ...any)  { f.printf(nil, fwTrace, format, v...) }
func (f *frameworkLog) Debugf(format string, v ...any)  { f.printf(nil, fwDebug, format, v...) }
func (f *frameworkLog) Infof(format string, v ...any)   { f.printf(nil, fwInfo, format, v...) }
func (f *frameworkLog) Noticef(format string, v ...any) { f.printf(nil, fwNotice, format, v...) }
func (f *frameworkLog) Warnf(format string, v ...any)   { f.printf(nil, fwWarn, format, v...) }
func (f *frameworkLog) Errorf(format string, v ...any)  { f.printf(nil, fwError, format, v...) }
func (f *frameworkLog) Fatalf(format string, v ...any)  { f.printf(nil, fwFatal, format, v...) }

func (f *frameworkLog) CtxTracef(ctx context.Context, format string, v ...any) {
	f.printf(ctx, fwTrace, format, v...)
}
func (f *frameworkLog) CtxDebugf(ctx context.Context, format string, v ...any) {
	f.printf(ctx, fwDebug, format, v...)
}
func (f *frameworkLog) CtxInfof(ctx context.Context, format string, v ...any) {
	f.printf(ctx, fwInfo, format, v...)
}
func (f *frameworkLog) CtxNoticef(ctx context.Context, format string, v ...any) {
	f.printf(ctx, fwNotice, format, v...)
}
func (f *frameworkLog) CtxWarnf(ctx context.Context, format string, v ...any) {
	f.printf(ctx, fwWarn, format, v...)
}
func (f *frameworkLog) CtxErrorf(ctx context.Context, format string, v ...any) {
	f.printf(ctx, fwError, format, v...)
}
func (f *frameworkLog) CtxFatalf(ctx context.Context, format string, v ...any) {
	f.printf(ctx, fwFatal, format, v...)
}

// SetOutput is ignored: the records go to the slog logger.
func (f *frameworkLog) SetOutput(io.Writer) {}

// hertzLog is hertz's logger (hlog.FullLogger).
type hertzLog struct{ frameworkLog }

func (h *hertzLog) SetLevel(l hlog.Level) { h.level.Store(int32(l)) }

// kitexLog is kitex's logger (klog.FullLogger).
type kitexLog struct{ frameworkLog }

func (k *kitexLog) SetLevel(l klog.Level) { k.level.Store(int32(l)) }

var (
	_ hlog.FullLogger = (*hertzLog)(nil)
	_ klog.FullLogger = (*kitexLog)(nil)
)

// lineWriter logs each line written to it (netpoll's standard-library logger) as a
// warning: netpoll logs only what goes wrong.
type lineWriter struct{ log *slog.Logger }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		// The standard logger's date and time lead the line; slog has its own.
		msg := string(line)
		if f := strings.SplitN(msg, " ", 3); len(f) == 3 && strings.Count(f[0], "/") == 2 && strings.Count(f[1], ":") == 2 {
			msg = f[2]
		}
		w.log.Warn(msg)
	}
	return len(p), nil
}
