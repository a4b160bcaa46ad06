package reqid

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for id, want := range map[string]bool{
		"": false, "a": true, "req-42.a_b:c": true, strings.Repeat("x", MaxLen): true, strings.Repeat("x", MaxLen+1): false,
		"a b": false, "a\nb": false, `a"b`: false, "<x>": false, "é": false, New(): true,
	} {
		if got := Valid(id); got != want {
			t.Errorf("Valid(%q): got %v, want %v", id, got, want)
		}
	}
}

func TestHandler(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(Handler(slog.NewJSONHandler(&b, nil))).With("part", "x")
	log.InfoContext(With(context.Background(), "abc"), "hello")
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"request_id":"abc"`) || strings.Contains(lines[1], "request_id") {
		t.Fatalf("got %q, want the id on the first record only", lines)
	}
}
