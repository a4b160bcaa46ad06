package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/worker"
)

// TestStackAsyncSale runs the queued path of a sale on the stand-ins with the real
// adapters and worker: Redis pre-deducts, the queue carries the admitted requests,
// workers write MySQL and settle the tickets. Demand is four times the stock; once it
// settles, the invariants hold.
func TestStackAsyncSale(t *testing.T) {
	const (
		stock   = 50
		buyers  = 200
		senders = 20
	)
	ctx := context.Background()
	s, err := StartWith(ctx, Config{Queue: inmem.Config{Goroutines: 4, BatchSize: 8, Backoff: 5 * time.Millisecond}})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	db, err := mysql.Open(ctx, s.MySQLDSN, 16)
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if applied, err := mysql.Migrate(ctx, db); err != nil || len(applied) != 0 {
		t.Errorf("migrate a started stack: applied %v, %v; want nothing left to apply", applied, err)
	}
	rdb, err := redis.Open(ctx, []string{s.RedisAddr}, s.RedisPassword, false)
	if err != nil {
		t.Fatalf("open redis: %v", err)
	}
	t.Cleanup(func() { rdb.Close() })
	store := mysql.NewStore(db)
	st := redis.NewStock(rdb, time.Hour)
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}

	a := mustCreateActivity(t, store, domain.StrategyAsync, 1, 1, stock)
	if err := store.SetState(ctx, a.ID, domain.StatePublished); err != nil {
		t.Fatal(err)
	}
	item := a.Items[0]
	if err := st.Warm(ctx, domain.SaleState{ActivityID: a.ID, ItemID: item.ID, State: domain.StatePublished, Start: a.Start, End: a.End,
		PerUserLimit: a.PerUserLimit, BucketStock: []int64{stock}}, true); err != nil {
		t.Fatal(err)
	}

	w := worker.New(store, st, store, worker.Config{RetryBackoff: time.Millisecond}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	stop, err := s.Queue.Subscribe(w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })

	var mu sync.Mutex
	var tickets []domain.Ticket
	soldOut := 0
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for user := int64(g + 1); user <= buyers; user += senders {
				ticket := domain.NewTicket(a.ID, item.ID, fmt.Sprintf("u%d", user))
				_, err := st.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: item.ID, UserID: user, Quantity: 1, Ticket: ticket, Buckets: 1})
				if domain.IsCode(err, domain.ESoldOut) {
					mu.Lock()
					soldOut++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Errorf("deduct for user %d: %v", user, err)
					continue
				}
				r := domain.OrderRequest{Ticket: ticket, UserID: user, ActivityID: a.ID, ItemID: item.ID, Quantity: 1,
					AmountCents: item.PriceCents, AdmittedAt: time.Now().UnixMilli()}
				if err := s.Queue.Publish(ctx, r); err != nil {
					t.Errorf("publish %s: %v", ticket, err)
					continue
				}
				mu.Lock()
				tickets = append(tickets, domain.Ticket{ID: ticket, UserID: user})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	waitFor(t, "the queue to drain", func() bool { return s.Queue.Len() == 0 })

	if len(tickets) != stock || soldOut != buyers-stock {
		t.Errorf("got %d admitted and %d sold out, want %d and %d", len(tickets), soldOut, stock, buyers-stock)
	}
	for _, tk := range tickets {
		got, err := st.Ticket(ctx, tk.UserID, tk.ID)
		if err != nil || got.Status != domain.TicketCreated || got.OrderID == 0 {
			t.Errorf("ticket %s: got %+v, %v, want created with an order", tk.ID, got, err)
		}
	}
	c, err := store.Counts(ctx, item.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Orders != stock {
		t.Errorf("got %d orders in MySQL, want %d", c.Orders, stock)
	}
	rows, err := store.Stock(ctx, item.ID)
	if err != nil || len(rows) != 1 || rows[0].Available != 0 {
		t.Errorf("got MySQL stock %+v, %v, want 0 available", rows, err)
	}
	if state, err := st.State(ctx, a.ID, item.ID, 1); err != nil || state.Available() != 0 || state.Tickets != 0 {
		t.Errorf("got Redis %+v, %v; want nothing left, nothing in flight", state, err)
	}
	if qs := s.Queue.Stats(); qs.Acked != stock || qs.DeadLetters != 0 {
		t.Errorf("got queue stats %+v, want %d acked and no dead letters", qs, stock)
	}
}

func TestStackClose(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := s.Queue.Publish(ctx, domain.OrderRequest{Ticket: "1-1-a"}); err == nil {
		t.Errorf("publish after close: got nil, want an error")
	}
	cfg, err := gomysql.ParseDSN(s.MySQLDSN)
	if err != nil {
		t.Fatalf("parse dsn: %v", err)
	}
	for _, addr := range []string{cfg.Addr, s.RedisAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("dial %s after close: got a connection, want none", addr)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStandInsRequirePasswords: another user of the host reaches loopback too, so the
// stand-ins refuse a client without the stack's passwords, and take one with them.
func TestStandInsRequirePasswords(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	cfg, err := gomysql.ParseDSN(s.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Passwd == "" {
		t.Fatalf("the stack's DSN has no password: %s", s.MySQLDSN)
	}
	for _, pass := range []string{"", "wrong"} {
		bad := cfg.Clone()
		bad.Passwd = pass
		db, err := sql.Open("mysql", bad.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PingContext(ctx); err == nil {
			t.Errorf("mysql with the password %q: connected, want refused", pass)
		}
		db.Close()
	}
	db, err := sql.Open("mysql", s.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders").Scan(&n); err != nil {
		t.Errorf("mysql with the stack's password: %v", err)
	}
	if s.RedisPassword == "" {
		t.Fatalf("the stack's Redis has no password")
	}
	for _, pass := range []string{"", "wrong"} {
		rdb := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr, Password: pass, MaxRetries: -1})
		if err := rdb.Set(ctx, "k", "v", 0).Err(); err == nil {
			t.Errorf("redis with the password %q: SET took, want refused", pass)
		}
		rdb.Close()
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr, Password: s.RedisPassword})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Errorf("redis with the stack's password: %v", err)
	}
}
