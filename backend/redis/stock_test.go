package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/testenv"
)

// The ledger's behaviour is the port's contract (contract_test.go); these tests cover
// what only this adapter has: one script call for a batch of requests or tickets.

var nextID atomic.Int64

func init() { nextID.Store(time.Now().UnixNano() / 1000) }

func clients(t *testing.T) map[string]goredis.UniversalClient {
	return map[string]goredis.UniversalClient{"single": testenv.Redis(t), "cluster": testenv.RedisCluster(t)}
}

// TestDeductAndSettleBatch: a batch is taken in order, each request with its own
// answer, and settled in one call, each ticket by its own mode.
func TestDeductAndSettleBatch(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			st, a, i := openItem(t, rdb, 2, 2, 1)
			d := func(user int64, qty int, key string) domain.Deduction {
				return domain.Deduction{ActivityID: a, ItemID: i, UserID: user, Quantity: qty, IdempotencyKey: key,
					Ticket: domain.NewTicket(a, i, fmt.Sprint("b", nextID.Add(1))), Buckets: 2}
			}
			batch := []domain.Deduction{d(1, 2, "k"), d(1, 1, "k"), d(2, 3, ""), d(3, 1, ""), d(4, 1, "")}
			out, errs, err := st.DeductBatch(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"", "", domain.ELimitExceeded, "", domain.ESoldOut}
			for j := range batch {
				if got := domain.ErrorCode(errs[j]); got != want[j] {
					t.Errorf("request %d: got %q (%v), want %q", j, got, errs[j], want[j])
				}
			}
			if !out[1].Replayed || out[1].Ticket != batch[0].Ticket || out[3].Bucket != 1 {
				t.Fatalf("got %+v, want the second a replay of the first and the fourth from bucket 1", out)
			}
			done, err := st.SettleBatch(ctx, []domain.Ticket{
				{ID: batch[0].Ticket, UserID: 1, Status: domain.TicketFailed, Reason: "write_failed"},
				{ID: batch[3].Ticket, UserID: 3, Status: domain.TicketCreated, OrderID: 9},
				{ID: batch[2].Ticket, UserID: 2, Status: domain.TicketFailed, Reason: "x"}, // never in flight
			}, 2)
			if err != nil || !done[0] || !done[1] || done[2] {
				t.Fatalf("settle: got %v, %v; want the two in flight settled", done, err)
			}
			if n, _, err := st.Available(ctx, a, i, 2); err != nil || n != 2 {
				t.Fatalf("after: got %d units, %v; want the failed ticket's 2 back", n, err)
			}
		})
	}
}

// TestDeductSentTwice: the same request sent again (its answer lost on the way back,
// and the call repeated by a client or a pipeline) gets its first answer again and
// takes nothing more: the units, the buyer's count and the in-flight record stay
// those of one deduction.
func TestDeductSentTwice(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			st, a, i := openItem(t, rdb, 3, 1, 4)
			for _, key := range []string{"", "k"} {
				d := domain.Deduction{ActivityID: a, ItemID: i, UserID: 7, Quantity: 1, IdempotencyKey: key,
					Ticket: domain.NewTicket(a, i, fmt.Sprint("twice", nextID.Add(1))), Buckets: 2, HomeBucket: 1}
				first, err := st.Deduct(ctx, d)
				if err != nil {
					t.Fatal(err)
				}
				again, err := st.Deduct(ctx, d)
				if err != nil || again.Replayed || again.Ticket != d.Ticket || again.Bucket != first.Bucket {
					t.Fatalf("key %q: sent again: got %+v, %v; want %+v", key, again, err, first)
				}
			}
			if n, _, err := st.Available(ctx, a, i, 2); err != nil || n != 3 {
				t.Fatalf("got %d units left, %v; want 3 (two deductions of one unit, each sent twice)", n, err)
			}
			// The buyer holds 2 of 3: a third unit is still allowed, a fourth is not.
			for j, want := range []string{"", domain.ELimitExceeded} {
				_, err := st.Deduct(ctx, domain.Deduction{ActivityID: a, ItemID: i, UserID: 7, Quantity: 1,
					Ticket: domain.NewTicket(a, i, fmt.Sprint("more", nextID.Add(1))), Buckets: 2})
				if got := domain.ErrorCode(err); got != want {
					t.Fatalf("order %d after the resends: got %q (%v), want %q", j+3, got, err, want)
				}
			}
		})
	}
}

// TestSoldOutAnnounced: the deduction that takes an item's last unit announces the
// item sold out, once; units coming back announce it again on sale, and the next
// sell-out is announced again.
func TestSoldOutAnnounced(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			st := redis.NewStock(rdb, time.Hour)
			a, i := nextID.Add(1), nextID.Add(1)
			heard := make(chan string, 16)
			stop, err := redis.NewEvents(rdb, "t").Subscribe(ctx, func(_ string, f []string) {
				if len(f) == 3 && f[1] == fmt.Sprint(a) {
					heard <- f[0]
				}
			}, redis.StockChannel)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if err := st.Warm(ctx, domain.SaleState{ActivityID: a, ItemID: i, State: domain.StatePublished, Start: time.Now().Add(-time.Minute),
				End: time.Now().Add(time.Hour), PerUserLimit: 5, BucketStock: []int64{1, 1}}, true); err != nil {
				t.Fatal(err)
			}
			buy := func(user int64) (domain.Deducted, error) {
				return st.Deduct(ctx, domain.Deduction{ActivityID: a, ItemID: i, UserID: user, Quantity: 1,
					Ticket: domain.NewTicket(a, i, fmt.Sprint("s", nextID.Add(1))), Buckets: 2, HomeBucket: int(user % 2)})
			}
			expect := func(what, want string) {
				t.Helper()
				select {
				case got := <-heard:
					if got != want {
						t.Fatalf("%s: heard %q, want %q", what, got, want)
					}
				case <-time.After(3 * time.Second):
					t.Fatalf("%s: heard nothing, want %q", what, want)
				}
			}
			quiet := func(what string) {
				t.Helper()
				select {
				case got := <-heard:
					t.Fatalf("%s: heard %q, want nothing", what, got)
				case <-time.After(150 * time.Millisecond):
				}
			}
			if _, err := buy(1); err != nil {
				t.Fatal(err)
			}
			quiet("one bucket emptied, the other holds a unit")
			last, err := buy(2)
			if err != nil {
				t.Fatal(err)
			}
			expect("the last unit taken", "soldout")
			if _, err := buy(3); !domain.IsCode(err, domain.ESoldOut) {
				t.Fatalf("got %v, want sold_out", err)
			}
			quiet("a refusal after the announcement")
			if ok, err := st.Settle(ctx, domain.Ticket{ID: last.Ticket, UserID: 2, Status: domain.TicketFailed, Reason: "x"}, 2); err != nil || !ok {
				t.Fatalf("settle: %v, %v", ok, err)
			}
			expect("a unit back", "stock")
			if _, err := buy(4); err != nil {
				t.Fatal(err)
			}
			expect("sold out again", "soldout")
		})
	}
}

// TestDeductNotSent: a deduction by a client that sends once that cannot reach Redis
// (nothing listens, or the pool has no connection to give in time) says it was never sent, so the sale can
// answer "nothing was taken" without ending a ticket it would also fail to reach;
// one that reached Redis and was cut off does not.
func TestDeductNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	d := domain.Deduction{ActivityID: 1, ItemID: 1, UserID: 1, Quantity: 1, Ticket: "t-1", Buckets: 1}
	down := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer down.Close()
	_, err = redis.NewStock(down, time.Hour).Deduct(context.Background(), d)
	if !errors.Is(err, domain.ErrNotSent) {
		t.Errorf("deduct with nothing listening: got %v, want ErrNotSent", err)
	}
	// A client that resends reports its last attempt, which says nothing of the first.
	resends := goredis.NewClient(&goredis.Options{Addr: addr})
	defer resends.Close()
	_, err = redis.NewStock(resends, time.Hour).Deduct(context.Background(), d)
	if err == nil || errors.Is(err, domain.ErrNotSent) {
		t.Errorf("deduct by a client that resends: got %v, want an error that is not ErrNotSent", err)
	}

	// A server that accepts and then drops the connection: the script may have run.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			c.Read(buf)
			c.Close()
		}
	}()
	cut := goredis.NewClient(&goredis.Options{Addr: ln.Addr().String(), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer cut.Close()
	_, err = redis.NewStock(cut, time.Hour).Deduct(context.Background(), d)
	if err == nil || errors.Is(err, domain.ErrNotSent) {
		t.Errorf("deduct cut off after sending: got %v, want an error that is not ErrNotSent", err)
	}
}

// TestKeySeen: a key the ledger admitted is seen, any other not, also when many
// lookups of one item arrive together and share one call.
func TestKeySeen(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			st, a, i := openItem(t, rdb, 1, 100)
			for u := int64(1); u <= 10; u++ {
				if _, err := st.Deduct(ctx, domain.Deduction{ActivityID: a, ItemID: i, UserID: u, Quantity: 1, IdempotencyKey: fmt.Sprint("k", u),
					Ticket: domain.NewTicket(a, i, fmt.Sprint("s", nextID.Add(1))), Buckets: 1}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for n := range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					u, key := int64(1+n%20), fmt.Sprint("k", 1+n%20)
					if n%3 == 0 {
						key = "other"
					}
					want := u <= 10 && key != "other"
					if got, err := st.KeySeen(ctx, a, i, u, key); err != nil || got != want {
						t.Errorf("user %d key %q: got %v, %v; want %v", u, key, got, err, want)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// openItem warms a new item of a new activity on sale from a minute ago for an hour,
// with a per-user limit and the stock of each bucket: the stock and its ids.
func openItem(t *testing.T, rdb goredis.UniversalClient, limit int, buckets ...int64) (*redis.Stock, int64, int64) {
	t.Helper()
	st := redis.NewStock(rdb, time.Hour)
	a, i := nextID.Add(1), nextID.Add(1)
	if err := st.Warm(context.Background(), domain.SaleState{ActivityID: a, ItemID: i, State: domain.StatePublished,
		Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), PerUserLimit: limit, BucketStock: buckets}, true); err != nil {
		t.Fatal(err)
	}
	return st, a, i
}

// TestPendingReleaseLapses: a release that found its item not loaded waits for the
// next load for the pending TTL counted from its own time, however often later
// releases renew the pending hash: a load after that no longer gives it back (its
// order ended long enough ago for the load's released tickets not to list it, and the
// MySQL the load read has its units). Fails before the fix: the hash's expiry, renewed
// by the later releases, kept the first, and the load gave all three (13, not 12).
func TestPendingReleaseLapses(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			st := redis.NewStock(rdb, time.Hour)
			redis.SetPendingTTL(st, 2*time.Second)
			a, i := nextID.Add(1), nextID.Add(1)
			// Three releases 1.5 s apart, each renewing the pending hash's two seconds;
			// the load comes just after the last: the first has waited 3 s and lapsed,
			// the other two (1.5 s and a moment) are given back.
			for n := int64(1); n <= 3; n++ {
				if n > 1 {
					time.Sleep(1500 * time.Millisecond)
				}
				o := domain.Order{ID: n, Ticket: domain.NewTicket(a, i, fmt.Sprint("p", nextID.Add(1))), UserID: n,
					ActivityID: a, ItemID: i, Quantity: 1, Status: domain.OrderCancelled}
				if ok, err := st.Release(ctx, o); err != nil || ok {
					t.Fatalf("release on an item not loaded: got %v, %v", ok, err)
				}
			}
			if err := st.Warm(ctx, domain.SaleState{ActivityID: a, ItemID: i, State: domain.StatePublished, Start: time.Now().Add(-time.Minute),
				End: time.Now().Add(time.Hour), PerUserLimit: 5, BucketStock: []int64{10}}, false); err != nil {
				t.Fatal(err)
			}
			if n, _, err := st.Available(ctx, a, i, 1); err != nil || n != 12 {
				t.Fatalf("after the load: got %d, %v; want 12 (the two recent releases, not the first)", n, err)
			}
		})
	}
}
