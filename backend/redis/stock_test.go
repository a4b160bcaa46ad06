package redis_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/testenv"
)

var nextID atomic.Int64

func init() { nextID.Store(time.Now().UnixNano() / 1000) }

// sale warms a fresh item and returns its ids.
func sale(tb testing.TB, st *redis.Stock, buckets []int64, limit int, start, end time.Time) (int64, int64) {
	tb.Helper()
	a, i := nextID.Add(1), nextID.Add(1)
	err := st.Warm(context.Background(), domain.SaleState{ActivityID: a, ItemID: i, State: domain.StatePublished, Start: start, End: end,
		PerUserLimit: limit, BucketStock: buckets}, true)
	if err != nil {
		tb.Fatal(err)
	}
	return a, i
}

func open() (time.Time, time.Time) { return time.Now().Add(-time.Minute), time.Now().Add(time.Hour) }

func deduct(st *redis.Stock, a, i, user int64, qty int, key string, buckets int) (domain.Deducted, error) {
	return st.Deduct(context.Background(), domain.Deduction{ActivityID: a, ItemID: i, UserID: user, Quantity: qty,
		IdempotencyKey: key, Ticket: domain.NewTicket(a, i, fmt.Sprintf("u%dq%dk%s%d", user, qty, key, nextID.Add(1))), Buckets: buckets})
}

func clients(t *testing.T) map[string]goredis.UniversalClient {
	return map[string]goredis.UniversalClient{"single": testenv.Redis(t), "cluster": testenv.RedisCluster(t)}
}

func TestDeductRefusals(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			st := redis.NewStock(rdb, time.Hour)
			ctx := context.Background()
			if err := st.Load(ctx); err != nil {
				t.Fatal(err)
			}
			s, e := open()
			a, i := sale(t, st, []int64{5}, 2, s, e)
			tests := []struct {
				name  string
				user  int64
				qty   int
				want  string
				stock int64
			}{
				{"zero quantity", 1, 0, domain.EBadRequest, 5},
				{"negative quantity", 1, -1, domain.EBadRequest, 5},
				{"within limit", 1, 2, "", 3},
				{"over the limit", 1, 1, domain.ELimitExceeded, 3},
				{"quantity over stock", 2, 4, domain.ELimitExceeded, 3},
				{"exactly the rest", 3, 2, "", 1},
				{"more than the rest", 4, 2, domain.ESoldOut, 1},
				{"the last unit", 4, 1, "", 0},
				{"sold out", 5, 1, domain.ESoldOut, 0},
			}
			for _, tt := range tests {
				_, err := deduct(st, a, i, tt.user, tt.qty, "", 1)
				if got := domain.ErrorCode(err); got != tt.want {
					t.Fatalf("%s: got %q (%v), want %q", tt.name, got, err, tt.want)
				}
				state, err := st.State(ctx, a, i, 1)
				if err != nil {
					t.Fatal(err)
				}
				if state.Available() != tt.stock {
					t.Fatalf("%s: got %d left, want %d", tt.name, state.Available(), tt.stock)
				}
			}
			// The window.
			a2, i2 := sale(t, st, []int64{5}, 1, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
			if _, err := deduct(st, a2, i2, 1, 1, "", 1); !domain.IsCode(err, domain.ENotStarted) {
				t.Fatalf("before start: got %v, want not_started", err)
			}
			a3, i3 := sale(t, st, []int64{5}, 1, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
			if _, err := deduct(st, a3, i3, 1, 1, "", 1); !domain.IsCode(err, domain.EEnded) {
				t.Fatalf("after end: got %v, want ended", err)
			}
			if _, err := deduct(st, nextID.Add(1), nextID.Add(1), 1, 1, "", 1); err != domain.ErrNotLoaded {
				t.Fatalf("never warmed: got %v, want ErrNotLoaded", err)
			}
		})
	}
}

func TestIdempotentReplayAndSettle(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			st := redis.NewStock(rdb, time.Hour)
			ctx := context.Background()
			s, e := open()
			a, i := sale(t, st, []int64{3}, 1, s, e)
			first, err := deduct(st, a, i, 9, 1, "key-1", 1)
			if err != nil || first.Replayed {
				t.Fatalf("first: got %+v, %v", first, err)
			}
			again, err := deduct(st, a, i, 9, 1, "key-1", 1)
			if err != nil || !again.Replayed || again.Ticket != first.Ticket {
				t.Fatalf("replay: got %+v, %v; want the first ticket", again, err)
			}
			if _, err := deduct(st, a, i, 9, 1, "key-2", 1); !domain.IsCode(err, domain.ELimitExceeded) {
				t.Fatalf("new key, same user: got %v, want limit_exceeded", err)
			}
			tk, err := st.Ticket(ctx, 9, first.Ticket)
			if err != nil || tk.Status != domain.TicketPending {
				t.Fatalf("ticket: got %+v, %v; want pending", tk, err)
			}
			if _, err := st.Ticket(ctx, 10, first.Ticket); !domain.IsCode(err, domain.ENotFound) {
				t.Fatalf("another user's ticket: got %v, want not_found", err)
			}
			// A failed request gives its stock, buyer units and key back, once.
			failed := domain.Ticket{ID: first.Ticket, UserID: 9, Status: domain.TicketFailed, Reason: "test"}
			for n := 0; n < 2; n++ {
				ok, err := st.Settle(ctx, failed, 1)
				if err != nil || ok != (n == 0) {
					t.Fatalf("settle %d: got %v, %v", n, ok, err)
				}
			}
			state, _ := st.State(ctx, a, i, 1)
			if state.Available() != 3 || state.Tickets != 0 {
				t.Fatalf("after failing: got %d left, %d in flight; want 3, 0", state.Available(), state.Tickets)
			}
			tk, err = st.Ticket(ctx, 9, first.Ticket)
			if err != nil || tk.Status != domain.TicketFailed || tk.Reason != "test" {
				t.Fatalf("ticket: got %+v, %v; want failed", tk, err)
			}
			retry, err := deduct(st, a, i, 9, 1, "key-1", 1)
			if err != nil || retry.Replayed {
				t.Fatalf("retry after failure: got %+v, %v; want a fresh admission", retry, err)
			}
			ok, err := st.Settle(ctx, domain.Ticket{ID: retry.Ticket, UserID: 9, Status: domain.TicketCreated, OrderID: 77}, 1)
			if err != nil || !ok {
				t.Fatalf("settle created: %v, %v", ok, err)
			}
			state, _ = st.State(ctx, a, i, 1)
			if state.Available() != 2 {
				t.Fatalf("after an order: got %d left, want 2", state.Available())
			}
			// Cancel gives back exactly once.
			o := domain.Order{ID: 77, Ticket: retry.Ticket, UserID: 9, ActivityID: a, ItemID: i, Quantity: 1}
			for n := 0; n < 2; n++ {
				if ok, err := st.Release(ctx, o); err != nil || ok != (n == 0) {
					t.Fatalf("release %d: got %v, %v", n, ok, err)
				}
			}
			state, _ = st.State(ctx, a, i, 1)
			if state.Available() != 3 {
				t.Fatalf("after cancel: got %d left, want 3", state.Available())
			}
		})
	}
}

func TestBucketsFallOver(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			st := redis.NewStock(rdb, time.Hour)
			s, e := open()
			a, i := sale(t, st, []int64{0, 0, 2, 0}, 10, s, e)
			for u := int64(1); u <= 2; u++ {
				got, err := st.Deduct(context.Background(), domain.Deduction{ActivityID: a, ItemID: i, UserID: u, Quantity: 1,
					Ticket: domain.NewTicket(a, i, fmt.Sprint("b", u)), Buckets: 4, HomeBucket: 0})
				if err != nil || got.Bucket != 2 {
					t.Fatalf("user %d: got %+v, %v; want bucket 2", u, got, err)
				}
			}
			if _, err := deduct(st, a, i, 3, 1, "", 4); !domain.IsCode(err, domain.ESoldOut) {
				t.Fatalf("all buckets empty: got %v, want sold_out", err)
			}
		})
	}
}

// TestDeductHammer: 400 users race for 50 units; exactly 50 are admitted.
func TestDeductHammer(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			st := redis.NewStock(rdb, time.Hour)
			s, e := open()
			a, i := sale(t, st, []int64{50}, 1, s, e)
			var admitted, soldOut atomic.Int64
			var wg sync.WaitGroup
			for u := int64(1); u <= 400; u++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := deduct(st, a, i, u, 1, "", 1)
					switch {
					case err == nil:
						admitted.Add(1)
					case domain.IsCode(err, domain.ESoldOut):
						soldOut.Add(1)
					default:
						t.Errorf("user %d: %v", u, err)
					}
				}()
			}
			wg.Wait()
			state, _ := st.State(context.Background(), a, i, 1)
			if admitted.Load() != 50 || soldOut.Load() != 350 || state.Available() != 0 || state.Tickets != 50 {
				t.Fatalf("got %d admitted, %d sold out, %d left, %d in flight; want 50, 350, 0, 50",
					admitted.Load(), soldOut.Load(), state.Available(), state.Tickets)
			}
		})
	}
}

func TestParseTicket(t *testing.T) {
	tests := []struct {
		in      string
		a, i    int64
		wantErr bool
	}{
		{"12-34-abc", 12, 34, false},
		{"12-34-", 0, 0, true},
		{"x-34-abc", 0, 0, true},
		{"12-34", 0, 0, true},
		{"-1-34-abc", 0, 0, true},
		{"", 0, 0, true},
	}
	for _, tt := range tests {
		a, i, err := domain.ParseTicket(tt.in)
		if a != tt.a || i != tt.i || (err != nil) != tt.wantErr {
			t.Errorf("ParseTicket(%q) = %d, %d, %v; want %d, %d, err=%v", tt.in, a, i, err, tt.a, tt.i, tt.wantErr)
		}
	}
}

// TestSettleModes: a request MySQL refused as sold out frees the buyer but gives no
// stock back (Redis had counted a unit MySQL lacks); a ticket Redis lost (restart)
// still gets its result recorded, once.
func TestSettleModes(t *testing.T) {
	ctx := context.Background()
	st := redis.NewStock(testenv.Redis(t), time.Hour)
	s, e := open()
	a, i := sale(t, st, []int64{2}, 1, s, e)
	d, err := deduct(st, a, i, 1, 1, "k", 1)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Settle(ctx, domain.Ticket{ID: d.Ticket, UserID: 1, Status: domain.TicketFailed, Reason: domain.ESoldOut}, 1); err != nil || !ok {
		t.Fatalf("settle: %v %v", ok, err)
	}
	state, _ := st.State(ctx, a, i, 1)
	if state.Available() != 1 {
		t.Fatalf("got %d left, want 1 (no phantom unit given back)", state.Available())
	}
	if _, err := deduct(st, a, i, 1, 1, "k", 1); err != nil {
		t.Fatalf("the buyer may try again: %v", err)
	}
	lost := domain.NewTicket(a, i, "lost")
	for n, want := range []domain.TicketStatus{domain.TicketCreated, domain.TicketCreated} {
		status := domain.TicketCreated
		if n == 1 {
			status = domain.TicketFailed // a later settle does not overwrite the first result
		}
		if ok, err := st.Settle(ctx, domain.Ticket{ID: lost, UserID: 3, Status: status, OrderID: 5}, 1); err != nil || ok {
			t.Fatalf("settle of a ticket not in flight: got %v, %v; want false", ok, err)
		}
		tk, err := st.Ticket(ctx, 3, lost)
		if err != nil || tk.Status != want {
			t.Fatalf("got %+v, %v; want %s", tk, err, want)
		}
	}
}
