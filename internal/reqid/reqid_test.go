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

// TestCarrier: a Carrier answers its id and its value through contexts made from
// it, keeps a client's id or makes a fresh one, and carries values of different
// types apart.
func TestCarrier(t *testing.T) {
	type state struct{ user int64 }
	type other struct{ n int }
	type parentKey struct{}
	base := context.WithValue(context.Background(), parentKey{}, "v")
	c, id := NewCarrier[state](base, "client-id-1")
	if id != "client-id-1" || From(c) != "client-id-1" {
		t.Fatalf("got id %q, From %q; want the client's", id, From(c))
	}
	Carried[state](c).user = 42
	inner, cancel := context.WithCancel(c)
	defer cancel()
	if st := Carried[state](inner); st == nil || st.user != 42 {
		t.Fatalf("got %+v through a derived context, want the state set on the carrier", st)
	}
	if From(inner) != "client-id-1" || inner.Value(parentKey{}) != "v" {
		t.Errorf("derived context: id %q, parent's value %v; want both", From(inner), inner.Value("k"))
	}
	if Carried[other](inner) != nil {
		t.Errorf("a value of another type is carried, want none")
	}
	if Carried[state](base) != nil || Carried[state](nil) != nil {
		t.Errorf("a context without a carrier carries a state")
	}
	f, fid := NewCarrier[state](context.Background(), "")
	if len(fid) != 2*newLen || From(f) != fid || fid == id {
		t.Errorf("fresh id %q (From %q), want %d hex digits of its own", fid, From(f), 2*newLen)
	}
}
