package app

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestFrameworkLogsBounded: a flood of framework records (hertz logs each malformed
// request) is cut to the bound, and the next record says how many were left out.
func TestFrameworkLogsBounded(t *testing.T) {
	var buf bytes.Buffer
	h := &hertzLog{newFrameworkLog(slog.New(slog.NewTextHandler(&buf, nil)))}
	for i := 0; i < 1000; i++ {
		h.Errorf("HERTZ: Error=malformed request %d", i)
	}
	if n := strings.Count(buf.String(), "malformed request"); n < frameworkLogBurst || n > frameworkLogBurst+5 {
		t.Fatalf("%d of 1000 records logged, want about the burst of %d", n, frameworkLogBurst)
	}
	time.Sleep(100 * time.Millisecond) // a token or two back
	buf.Reset()
	h.Errorf("HERTZ: Error=one more")
	if out := buf.String(); !strings.Contains(out, "framework log records left out") || !strings.Contains(out, "one more") {
		t.Fatalf("after the flood: got %q, want the count left out and the record", out)
	}
}

// TestFrameworkLogsLeaveOutRequestBytes: hertz's record of a request it cannot
// parse quotes the request's bytes, which may end in a bearer token's signature;
// the record keeps what went wrong and leaves the bytes out.
func TestFrameworkLogsLeaveOutRequestBytes(t *testing.T) {
	var buf bytes.Buffer
	h := &hertzLog{newFrameworkLog(slog.New(slog.NewTextHandler(&buf, nil)))}
	h.Errorf(`HERTZ: Error=error when reading request headers: invalid header. Buffer size=212, contents: "POST /api/v1/orders "...%q`, "Bearer eyJ.x.SIGNATURE")
	out := buf.String()
	if strings.Contains(out, "SIGNATURE") || strings.Contains(out, "POST /api") {
		t.Fatalf("the record quotes the request: %s", out)
	}
	if !strings.Contains(out, "invalid header. Buffer size=212") {
		t.Fatalf("the record lost what went wrong: %s", out)
	}
	buf.Reset()
	h.Errorf(`HERTZ: Error=invalid header value %q, remoteAddr=192.0.2.7:5000`, "Bearer eyJ.x.SECRET\x01")
	if out := buf.String(); strings.Contains(out, "SECRET") || !strings.Contains(out, "remoteAddr=192.0.2.7:5000") {
		t.Fatalf("a quoted header value: got %s, want it left out and the peer kept", out)
	}
}
