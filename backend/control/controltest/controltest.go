// Package controltest holds the contract tests of control.Store, run on every
// implementation (backend/mysql, backend/inmem) so they cannot drift apart.
package controltest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/domain"
)

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestStore checks a control.Store against its contract; newFn returns an empty store.
func TestStore(t *testing.T, newFn func(t *testing.T) control.Store) {
	ctx := context.Background()
	put := func(t *testing.T, s control.Store, name string, order int, cfg string, module []byte) control.Plugin {
		t.Helper()
		p := control.Plugin{Name: name, Order: order, FailPolicy: "open", TimeoutMS: 10, MemoryPages: 256, PoolSize: 4, UpdatedBy: "tester"}
		if cfg != "" {
			p.Config = json.RawMessage(cfg)
		}
		got, err := s.PutPlugin(ctx, p, module)
		must(t, err)
		return got
	}
	chain := func(t *testing.T, s control.Store) (int64, []string) {
		t.Helper()
		v, ps, err := s.Chain(ctx)
		must(t, err)
		var names []string
		for _, p := range ps {
			names = append(names, fmt.Sprintf("%s@%d", p.Name, p.Version))
		}
		return v, names
	}

	t.Run("an empty store", func(t *testing.T) {
		s := newFn(t)
		if v, names := chain(t, s); v != 0 || len(names) != 0 {
			t.Fatalf("got version %d, %v; want 0 and nothing", v, names)
		}
		if l, err := s.Limits(ctx); err != nil || l.Version != 0 || l.Body != nil {
			t.Fatalf("limits: got %+v, %v; want none", l, err)
		}
		if _, err := s.Module(ctx, sum([]byte("x"))); !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("module: got %v, want not_found", err)
		}
	})

	t.Run("put, order, modules kept by content", func(t *testing.T) {
		s := newFn(t)
		big := bytes.Repeat([]byte("wasm-module-bytes "), 100_000) // 1.8 MB: several pieces
		a := put(t, s, "alpha", 2, `{"k": 1}`, big)
		if a.Version != 1 || a.SHA256 != sum(big) || a.SizeBytes != len(big) || a.UpdatedBy != "tester" || a.UpdatedAt.IsZero() {
			t.Fatalf("put: got %+v", a)
		}
		put(t, s, "beta", 1, "", []byte("small"))
		if v, names := chain(t, s); v != 2 || fmt.Sprint(names) != "[beta@1 alpha@1]" {
			t.Fatalf("chain: got %d %v; want 2 [beta@1 alpha@1]", v, names)
		}
		m, err := s.Module(ctx, a.SHA256)
		if err != nil || !bytes.Equal(m, big) {
			t.Fatalf("module: got %d bytes, %v; want the %d put", len(m), err, len(big))
		}
		// A change without a module keeps the stored one.
		b2, err := s.PutPlugin(ctx, control.Plugin{Name: "beta", Order: 3, FailPolicy: "closed", UpdatedBy: "op"}, nil)
		if err != nil || b2.Version != 2 || b2.SHA256 != sum([]byte("small")) || b2.SizeBytes != 5 {
			t.Fatalf("put without a module: got %+v, %v", b2, err)
		}
		if v, names := chain(t, s); v != 3 || fmt.Sprint(names) != "[alpha@1 beta@2]" {
			t.Fatalf("chain after the reorder: got %d %v", v, names)
		}
		// A change checked on one module is refused once another is stored (a PUT of
		// another module came between the check and the store).
		_, err = s.PutPlugin(ctx, control.Plugin{Name: "beta", Order: 4, UpdatedBy: "op", SHA256: sum([]byte("other"))}, nil)
		if !domain.IsCode(err, domain.EConflict) {
			t.Fatalf("a change checked on another module: got %v, want conflict", err)
		}
		if b3, err := s.PutPlugin(ctx, control.Plugin{Name: "beta", Order: 3, FailPolicy: "closed", UpdatedBy: "op", SHA256: b2.SHA256}, nil); err != nil || b3.Version != 3 {
			t.Fatalf("a change checked on the stored module: got %+v, %v", b3, err)
		}
		if v, names := chain(t, s); v != 4 || fmt.Sprint(names) != "[alpha@1 beta@3]" {
			t.Fatalf("chain after the checked change: got %d %v", v, names)
		}
		_, err = s.PutPlugin(ctx, control.Plugin{Name: "gamma"}, nil)
		if !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("a new plugin without a module: got %v, want not_found", err)
		}
		_, ps, _ := s.Chain(ctx)
		if string(ps[0].Config) != `{"k": 1}` || ps[1].Config != nil {
			t.Fatalf("configs: got %s and %s", ps[0].Config, ps[1].Config)
		}
	})

	t.Run("delete, history, rollback", func(t *testing.T) {
		s := newFn(t)
		put(t, s, "p", 1, `{"v": 1}`, []byte("module one"))
		put(t, s, "p", 1, `{"v": 2}`, []byte("module two"))
		rb, err := s.RollbackPlugin(ctx, "p", "op")
		if err != nil || rb.Version != 3 || string(rb.Config) != `{"v": 1}` || rb.SHA256 != sum([]byte("module one")) || rb.UpdatedBy != "op" {
			t.Fatalf("rollback: got %+v, %v; want version 3 with the first config and module", rb, err)
		}
		rb, err = s.RollbackPlugin(ctx, "p", "op")
		if err != nil || string(rb.Config) != `{"v": 2}` {
			t.Fatalf("rollback again: got %+v, %v; want the second version back", rb, err)
		}
		must(t, s.DeletePlugin(ctx, "p", "op"))
		if _, names := chain(t, s); len(names) != 0 {
			t.Fatalf("after delete: got %v", names)
		}
		if err := s.DeletePlugin(ctx, "p", "op"); !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("delete again: got %v, want not_found", err)
		}
		// Rolling back a delete puts the deleted version back, as a new version.
		rb, err = s.RollbackPlugin(ctx, "p", "op")
		if err != nil || rb.Version != 6 || string(rb.Config) != `{"v": 2}` {
			t.Fatalf("rollback of a delete: got %+v, %v", rb, err)
		}
		h, err := s.History(ctx, "p", 100)
		must(t, err)
		var got []string
		for _, c := range h {
			got = append(got, fmt.Sprintf("%s@%d", c.Action, c.Plugin.Version))
		}
		if fmt.Sprint(got) != "[rollback@6 delete@5 rollback@4 rollback@3 put@2 put@1]" {
			t.Fatalf("history: got %v", got)
		}
		if h, _ := s.History(ctx, "p", 2); len(h) != 2 {
			t.Fatalf("history of 2: got %d", len(h))
		}
		if _, err := s.RollbackPlugin(ctx, "never", "op"); !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("rollback of an unknown plugin: got %v", err)
		}
		one := newFn(t)
		put(t, one, "solo", 1, "", []byte("m"))
		if _, err := one.RollbackPlugin(ctx, "solo", "op"); !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("rollback of a first version: got %v, want not_found", err)
		}
	})

	t.Run("limits", func(t *testing.T) {
		s := newFn(t)
		for n, body := range []string{`{"global": {"rps": 10}}`, `{"global": {"rps": 20}}`} {
			l, err := s.PutLimits(ctx, json.RawMessage(body), "op", control.AnyVersion)
			if err != nil || l.Version != int64(n+1) || string(l.Body) != body || l.UpdatedBy != "op" {
				t.Fatalf("put %d: got %+v, %v", n, l, err)
			}
		}
		if v, _ := chain(t, s); v != 0 {
			t.Fatalf("the chain's version moved with the limits: %d", v)
		}
	})

	t.Run("first limits put at once: one lands", func(t *testing.T) {
		s := newFn(t)
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		landed := 0
		for g := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.PutLimits(ctx, json.RawMessage(fmt.Sprintf(`{"g": %d}`, g)), "op", 0)
				switch {
				case err == nil:
					mu.Lock()
					landed++
					mu.Unlock()
				case !domain.IsCode(err, domain.EConflict):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if l, err := s.Limits(ctx); err != nil || landed != 1 || l.Version != 1 {
			t.Fatalf("%d first puts from version 0 at once: %d landed, version %d (%v); want one, version 1", n, landed, l.Version, err)
		}
	})

	t.Run("limits put only from the version asked", func(t *testing.T) {
		s := newFn(t)
		if _, err := s.PutLimits(ctx, json.RawMessage(`{"a": 1}`), "op", 1); !domain.IsCode(err, domain.EConflict) {
			t.Fatalf("put from version 1 when none is stored: got %v, want conflict", err)
		}
		if l, err := s.PutLimits(ctx, json.RawMessage(`{"a": 1}`), "op", 0); err != nil || l.Version != 1 {
			t.Fatalf("put from version 0 when none is stored: got %+v %v, want version 1", l, err)
		}
		if _, err := s.PutLimits(ctx, json.RawMessage(`{"a": 2}`), "op", 0); !domain.IsCode(err, domain.EConflict) {
			t.Fatalf("put from version 0 when 1 is stored: got %v, want conflict", err)
		}
		if l, err := s.Limits(ctx); err != nil || l.Version != 1 || string(l.Body) != `{"a": 1}` {
			t.Fatalf("after a refused put: got %+v %v, want version 1 unchanged", l, err)
		}
		// Read, change, put from what was read: changes made at once all land.
		const n = 8
		var wg sync.WaitGroup
		for g := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					cur, err := s.Limits(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					var m map[string]int
					must(t, json.Unmarshal(cur.Body, &m))
					m[fmt.Sprint("k", g)] = g
					body, _ := json.Marshal(m)
					_, err = s.PutLimits(ctx, body, "op", cur.Version)
					if err == nil {
						return
					}
					if !domain.IsCode(err, domain.EConflict) {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		l, err := s.Limits(ctx)
		var m map[string]int
		if err == nil {
			err = json.Unmarshal(l.Body, &m)
		}
		if err != nil || len(m) != n+1 || l.Version != n+1 {
			t.Fatalf("after %d changes at once: got version %d, %v (%v), want version %d with every change", n, l.Version, m, err, n+1)
		}
	})

	t.Run("hammer: every change counted once", func(t *testing.T) {
		s := newFn(t)
		const n = 16
		var wg sync.WaitGroup
		for g := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.PutPlugin(ctx, control.Plugin{Name: "h", Order: g, FailPolicy: "open", UpdatedBy: "op"}, []byte{byte(g)}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		v, ps, err := s.Chain(ctx)
		if err != nil || v != n || len(ps) != 1 || ps[0].Version != n {
			t.Fatalf("got chain %d with %+v, %v; want %d changes of one plugin", v, ps, err, n)
		}
		if h, _ := s.History(ctx, "h", 100); len(h) != n {
			t.Fatalf("history: got %d entries, want %d", len(h), n)
		}
	})
}
