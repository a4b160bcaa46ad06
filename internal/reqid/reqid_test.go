package reqid

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
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

// TestContexts: an id is found through the contexts made on top of its own, and
// the parent's values, deadline and cancellation go through it.
func TestContexts(t *testing.T) {
	type other struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), other{}, "v"))
	ctx, id := NewContext(parent)
	if len(id) != 2*newLen || !Valid(id) || From(ctx) != id {
		t.Fatalf("NewContext: id %q, From %q", id, From(ctx))
	}
	if _, id2 := NewContext(parent); id2 == id {
		t.Fatalf("two fresh ids are both %q", id)
	}
	inner, stop := context.WithTimeout(context.WithValue(ctx, other{}, "w"), time.Hour)
	defer stop()
	if From(inner) != id || inner.Value(other{}) != "w" || ctx.Value(other{}) != "v" {
		t.Fatalf("through contexts: From %q, values %v %v", From(inner), inner.Value(other{}), ctx.Value(other{}))
	}
	if From(With(inner, "client-id")) != "client-id" || From(context.Background()) != "" {
		t.Fatal("With or From of no id")
	}
	cancel()
	select {
	case <-inner.Done():
	case <-time.After(time.Second):
		t.Fatal("cancelling the parent did not reach a context made on an id's")
	}
}

// TestNewContextAllocatesOnce: a request's fresh id and its context are one allocation.
func TestNewContextAllocatesOnce(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { _, _ = NewContext(ctx) }); n != 1 {
		t.Fatalf("NewContext: %v allocations, want 1", n)
	}
}
