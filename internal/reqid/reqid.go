// Package reqid carries a request's id through a context, to answers, logs and the
// backend, so one request can be followed from the gateway's answer to every log line
// it caused.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"unsafe"

	"github.com/seckill/flashsale/internal/randhex"
)

// MaxLen is the longest id accepted from a client.
const MaxLen = 64

// New is a fresh id: 16 random bytes in hex.
func New() string { return randhex.String(newLen) }

// Valid reports whether a client's id may be used as it is: 1 to MaxLen characters
// of letters, digits, '-', '_', '.' and ':' (nothing that could forge a log line or a
// header).
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

type key struct{}

// idCtx is a context carrying an id: one allocation where context.WithValue takes
// two (the context and the boxed string), and, for a fresh id, its digits too. Every
// request gets one.
type idCtx struct {
	context.Context
	id  string
	hex [2 * newLen]byte // a fresh id's digits (id points into them)
}

// newLen is how many random bytes a fresh id has.
const newLen = 16

// Value answers the id as a *string: a pointer into c, not a string boxed anew.
func (c *idCtx) Value(k any) any {
	if _, ok := k.(key); ok {
		return &c.id
	}
	return c.Context.Value(k)
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context { return &idCtx{Context: ctx, id: id} }

// NewContext returns ctx carrying a fresh id (as New makes), and the id.
func NewContext(ctx context.Context) (context.Context, string) {
	c := &idCtx{Context: ctx}
	c.fresh()
	return c, c.id
}

// fresh gives c a fresh id.
func (c *idCtx) fresh() {
	var b [newLen]byte
	rand.Read(b[:]) // does not fail (see randhex)
	hex.Encode(c.hex[:], b[:])
	// The digits are never written again, so the string may share them.
	c.id = unsafe.String(&c.hex[0], len(c.hex))
}

// Carrier is a context carrying an id and a value of type T, in one allocation:
// a request's id and the state its handlers share (the gateway's request state,
// which in hertz's c.Keys cost three allocations a request more).
type Carrier[T any] struct {
	idCtx
	v T
}

type valueKey[T any] struct{}

// Value answers the id, and the carried value as a *T.
func (c *Carrier[T]) Value(k any) any {
	if _, ok := k.(valueKey[T]); ok {
		return &c.v
	}
	return c.idCtx.Value(k)
}

// NewCarrier returns ctx carrying id, or a fresh one (as New makes) when id is
// "", and a zero T; and the id.
func NewCarrier[T any](ctx context.Context, id string) (*Carrier[T], string) {
	c := &Carrier[T]{idCtx: idCtx{Context: ctx, id: id}}
	if id == "" {
		c.fresh()
	}
	return c, c.id
}

// Carried is the *T a Carrier in ctx carries, or nil.
func Carried[T any](ctx context.Context) *T {
	if ctx == nil {
		return nil
	}
	v, _ := ctx.Value(valueKey[T]{}).(*T)
	return v
}

// From is the id ctx carries, or "".
func From(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	if id, ok := ctx.Value(key{}).(*string); ok {
		return *id
	}
	return ""
}

// Handler adds request_id to every record logged with a context that carries one.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler { return handler{h.Handler.WithAttrs(as)} }
func (h handler) WithGroup(name string) slog.Handler    { return handler{h.Handler.WithGroup(name)} }
