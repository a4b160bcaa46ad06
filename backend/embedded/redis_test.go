package embedded

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/redis"
)

// mustStartRedis starts miniredis and returns a client on it with the scripts loaded;
// both go away when the test ends.
func mustStartRedis(tb testing.TB, resultTTL time.Duration) (*redis.Stock, goredis.UniversalClient) {
	tb.Helper()
	addr, stop, err := StartRedis()
	if err != nil {
		tb.Fatalf("start redis: %v", err)
	}
	tb.Cleanup(stop)
	rdb, err := redis.Open(context.Background(), []string{addr}, "", false)
	if err != nil {
		tb.Fatalf("open redis: %v", err)
	}
	tb.Cleanup(func() { rdb.Close() })
	st := redis.NewStock(rdb, resultTTL)
	if err := st.Load(context.Background()); err != nil {
		tb.Fatalf("load scripts: %v", err)
	}
	return st, rdb
}

// mustWarm loads an item's sale state.
func mustWarm(tb testing.TB, st *redis.Stock, sale domain.SaleState, overwrite bool) {
	tb.Helper()
	if err := st.Warm(context.Background(), sale, overwrite); err != nil {
		tb.Fatalf("warm item %d: %v", sale.ItemID, err)
	}
}

func onSale(item int64, limit int, buckets ...int64) domain.SaleState {
	now := time.Now()
	return domain.SaleState{ActivityID: 1, ItemID: item, State: domain.StatePublished, Start: now.Add(-time.Hour), End: now.Add(time.Hour),
		PerUserLimit: limit, BucketStock: buckets}
}

func assertAvailable(tb testing.TB, st *redis.Stock, item int64, want ...int64) domain.ItemState {
	tb.Helper()
	s, err := st.State(context.Background(), 1, item, len(want))
	if err != nil {
		tb.Fatalf("state of item %d: %v", item, err)
	}
	if !s.Loaded || !slices.Equal(s.BucketStock, want) {
		tb.Errorf("item %d: got loaded %v stock %v, want loaded stock %v", item, s.Loaded, s.BucketStock, want)
	}
	return s
}

// TestStockScripts runs every script of backend/redis/lua on miniredis through
// backend/redis, in the order a sale uses them.
func TestStockScripts(t *testing.T) {
	ctx := context.Background()
	st, _ := mustStartRedis(t, time.Hour)
	const item = 2
	mustWarm(t, st, onSale(item, 3, 5), false)

	type step struct {
		name       string
		user       int64
		qty        int
		idem       string
		ticket     string
		wantCode   string // "" when admitted
		wantReplay string // the ticket a replay returns
	}
	steps := []step{
		{"deduct 3 of 5", 1, 3, "k1", "1-2-a", "", ""},
		{"replay of the same key", 1, 3, "k1", "1-2-b", "", "1-2-a"},
		{"past the per-user limit", 1, 1, "", "1-2-c", domain.ELimitExceeded, ""},
		{"more than is left", 2, 3, "", "1-2-d", domain.ESoldOut, ""},
		{"what is left", 2, 2, "k2", "1-2-e", "", ""},
		{"sold out", 3, 1, "", "1-2-f", domain.ESoldOut, ""},
		{"zero quantity", 3, 0, "", "1-2-g", domain.EBadRequest, ""},
	}
	for _, s := range steps {
		got, err := st.Deduct(ctx, domain.Deduction{ActivityID: 1, ItemID: item, UserID: s.user, Quantity: s.qty,
			IdempotencyKey: s.idem, Ticket: s.ticket, Buckets: 1})
		if code := domain.ErrorCode(err); code != s.wantCode {
			t.Fatalf("%s: got error %v, want code %q", s.name, err, s.wantCode)
		}
		if err != nil {
			continue
		}
		want := domain.Deducted{Ticket: s.ticket}
		if s.wantReplay != "" {
			want = domain.Deducted{Ticket: s.wantReplay, Replayed: true}
		}
		if got != want {
			t.Errorf("%s: got %+v, want %+v", s.name, got, want)
		}
	}
	state := assertAvailable(t, st, item, 0)
	if state.InFlight != 5 || state.Tickets != 2 || !slices.Equal(state.InFlightBy, []int64{5}) {
		t.Errorf("got in flight %d units in %d tickets (%v), want 5 in 2", state.InFlight, state.Tickets, state.InFlightBy)
	}
	flying, err := st.InFlight(ctx, 1, item)
	if err != nil {
		t.Fatal(err)
	}
	// deduct.lua stamps admissions with redis.call('TIME'): it must be the real clock.
	for ticket, at := range flying {
		if d := time.Since(at); d < -time.Minute || d > time.Minute {
			t.Errorf("ticket %s: got admitted at %v, want about now", ticket, at)
		}
	}

	// Settle: a failed ticket gives its stock, buyer units and key back, once.
	failed := domain.Ticket{ID: "1-2-e", UserID: 2, Status: domain.TicketFailed, Reason: "write_failed"}
	for i, want := range []bool{true, false} {
		if got, err := st.Settle(ctx, failed, 1); err != nil || got != want {
			t.Errorf("settle failed ticket, call %d: got %v, %v, want %v", i+1, got, err, want)
		}
	}
	assertAvailable(t, st, item, 2)
	created := domain.Ticket{ID: "1-2-a", UserID: 1, Status: domain.TicketCreated, OrderID: 9}
	if got, err := st.Settle(ctx, created, 1); err != nil || !got {
		t.Errorf("settle created ticket: got %v, %v, want true", got, err)
	}
	assertAvailable(t, st, item, 2)

	tickets := []struct {
		user     int64
		ticket   string
		want     domain.Ticket
		wantCode string
	}{
		{1, "1-2-a", created, ""},
		{2, "1-2-e", failed, ""},
		{2, "1-2-a", domain.Ticket{}, domain.ENotFound}, // another user's
		{1, "1-2-zz", domain.Ticket{}, domain.ENotFound},
		{1, "nonsense", domain.Ticket{}, domain.ENotFound},
	}
	for _, tt := range tickets {
		got, err := st.Ticket(ctx, tt.user, tt.ticket)
		if code := domain.ErrorCode(err); code != tt.wantCode || got != tt.want {
			t.Errorf("ticket %s of user %d: got %+v, %v, want %+v, code %q", tt.ticket, tt.user, got, err, tt.want, tt.wantCode)
		}
	}

	// The failed request's key is free again: the retry deducts instead of replaying.
	got, err := st.Deduct(ctx, domain.Deduction{ActivityID: 1, ItemID: item, UserID: 2, Quantity: 2, IdempotencyKey: "k2", Ticket: "1-2-h", Buckets: 1})
	if err != nil || got != (domain.Deducted{Ticket: "1-2-h"}) {
		t.Errorf("retry of a failed key: got %+v, %v, want a new deduction", got, err)
	}
	if pending, err := st.Ticket(ctx, 2, "1-2-h"); err != nil || pending.Status != domain.TicketPending {
		t.Errorf("in-flight ticket: got %+v, %v, want pending", pending, err)
	}
	if u, err := st.TicketUser(ctx, "1-2-h"); err != nil || u != 2 {
		t.Errorf("ticket user: got %d, %v, want 2", u, err)
	}
	assertAvailable(t, st, item, 0)

	// Release gives a cancelled order's stock back once.
	o := domain.Order{ID: 9, Ticket: "1-2-a", UserID: 1, ActivityID: 1, ItemID: item, Quantity: 3}
	for i, want := range []bool{true, false} {
		if got, err := st.Release(ctx, o); err != nil || got != want {
			t.Errorf("release, call %d: got %v, %v, want %v", i+1, got, err, want)
		}
	}
	assertAvailable(t, st, item, 3)
	if _, err := st.Deduct(ctx, domain.Deduction{ActivityID: 1, ItemID: item, UserID: 1, Quantity: 3, Ticket: "1-2-i", Buckets: 1}); err != nil {
		t.Errorf("buy again after a release: %v", err)
	}

	// Adjust and Reset.
	if n, err := st.Adjust(ctx, 1, item, 0, 4); err != nil || n != 4 {
		t.Errorf("adjust +4: got %d, %v, want 4", n, err)
	}
	if _, err := st.Adjust(ctx, 1, item, 0, -5); !domain.IsCode(err, domain.EConflict) {
		t.Errorf("adjust below zero: got %v, want conflict", err)
	}
	for _, tt := range []struct {
		was, want int64
		ok        bool
	}{{3, 7, false}, {4, 7, true}} {
		if got, err := st.Reset(ctx, 1, item, 0, tt.was, tt.want); err != nil || got != tt.ok {
			t.Errorf("reset %d to %d: got %v, %v, want %v", tt.was, tt.want, got, err, tt.ok)
		}
	}
	assertAvailable(t, st, item, 7)

	// Warm keeps live counters unless told to overwrite them.
	mustWarm(t, st, onSale(item, 3, 5), false)
	assertAvailable(t, st, item, 7)
	mustWarm(t, st, onSale(item, 3, 5), true)
	assertAvailable(t, st, item, 5)
}

func TestDeductRefusals(t *testing.T) {
	ctx := context.Background()
	st, _ := mustStartRedis(t, time.Hour)
	now := time.Now()
	future := onSale(10, 1, 5)
	future.Start, future.End = now.Add(time.Minute), now.Add(time.Hour)
	past := onSale(11, 1, 5)
	past.Start, past.End = now.Add(-time.Hour), now.Add(-time.Second)
	offline := onSale(12, 1, 5)
	for _, s := range []domain.SaleState{future, past, offline} {
		mustWarm(t, st, s, false)
	}
	if err := st.SetState(ctx, 1, 12, domain.StateOffline); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		item    int64
		wantErr func(error) bool
	}{
		{"not started", 10, func(err error) bool { return domain.IsCode(err, domain.ENotStarted) }},
		{"ended", 11, func(err error) bool { return domain.IsCode(err, domain.EEnded) }},
		{"offline", 12, func(err error) bool { return domain.IsCode(err, domain.ENotFound) }},
		{"never warmed", 13, func(err error) bool { return errors.Is(err, domain.ErrNotLoaded) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Deduct(ctx, domain.Deduction{ActivityID: 1, ItemID: tt.item, UserID: 1, Quantity: 1, Ticket: "1-1-x", Buckets: 1})
			if !tt.wantErr(err) {
				t.Errorf("got %v", err)
			}
		})
	}
}

func TestDeductBuckets(t *testing.T) {
	ctx := context.Background()
	st, _ := mustStartRedis(t, time.Hour)
	mustWarm(t, st, onSale(3, 1, 1, 1), false)
	tests := []struct {
		user       int64
		home       int
		wantBucket int
		wantCode   string
	}{
		{1, 1, 1, ""},
		{2, 1, 0, ""}, // home bucket empty: falls over to the other
		{3, 0, 0, domain.ESoldOut},
	}
	for _, tt := range tests {
		got, err := st.Deduct(ctx, domain.Deduction{ActivityID: 1, ItemID: 3, UserID: tt.user, Quantity: 1, Ticket: "1-3-u" + string(rune('0'+tt.user)),
			Buckets: 2, HomeBucket: tt.home})
		if code := domain.ErrorCode(err); code != tt.wantCode {
			t.Fatalf("user %d: got %v, want code %q", tt.user, err, tt.wantCode)
		}
		if err == nil && got.Bucket != tt.wantBucket {
			t.Errorf("user %d: got bucket %d, want %d", tt.user, got.Bucket, tt.wantBucket)
		}
	}
	// A failed ticket's stock goes back to the bucket it came from.
	if ok, err := st.Settle(ctx, domain.Ticket{ID: "1-3-u1", UserID: 1, Status: domain.TicketFailed}, 2); err != nil || !ok {
		t.Fatalf("settle: got %v, %v", ok, err)
	}
	assertAvailable(t, st, 3, 0, 1)
}

// TestKeysExpire checks that TTLs run by the clock on the embedded Redis, as the
// ticket results and rebuild locks expect.
func TestKeysExpire(t *testing.T) {
	ctx := context.Background()
	st, rdb := mustStartRedis(t, time.Second)
	mustWarm(t, st, onSale(4, 1, 1), false)
	if _, err := st.Deduct(ctx, domain.Deduction{ActivityID: 1, ItemID: 4, UserID: 1, Quantity: 1, Ticket: "1-4-a", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Settle(ctx, domain.Ticket{ID: "1-4-a", UserID: 1, Status: domain.TicketCreated, OrderID: 1}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Ticket(ctx, 1, "1-4-a"); err != nil {
		t.Fatalf("ticket result right after settling: %v", err)
	}

	c := redis.NewCache(rdb)
	token, ok, err := c.Lock(ctx, "sk:{a1}:activity", 200*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("lock: got %v, %v", ok, err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := st.Ticket(ctx, 1, "1-4-a"); !domain.IsCode(err, domain.ENotFound) {
		t.Errorf("ticket result past its TTL: got %v, want not_found", err)
	}
	if ok, err := c.SetLocked(ctx, "sk:{a1}:activity", token, []byte("stale"), time.Minute); err != nil || ok {
		t.Errorf("set with an expired lock: got %v, %v, want false", ok, err)
	}
	if _, ok, err := c.Lock(ctx, "sk:{a1}:activity", time.Second); err != nil || !ok {
		t.Errorf("lock after the old lock expired: got %v, %v, want true", ok, err)
	}
}

func TestCacheLock(t *testing.T) {
	ctx := context.Background()
	_, rdb := mustStartRedis(t, time.Hour)
	c := redis.NewCache(rdb)
	const key = "sk:{a1}:activity"

	token, ok, err := c.Lock(ctx, key, time.Minute)
	if err != nil || !ok || token == "" {
		t.Fatalf("lock: got %q, %v, %v, want a token", token, ok, err)
	}
	if _, ok, err := c.Lock(ctx, key, time.Minute); err != nil || ok {
		t.Errorf("lock held by another: got %v, %v, want false", ok, err)
	}
	if ok, err := c.SetLocked(ctx, key, "not-the-token", []byte("x"), time.Minute); err != nil || ok {
		t.Errorf("set with a wrong token: got %v, %v, want false", ok, err)
	}
	if _, found, _ := c.Get(ctx, key); found {
		t.Errorf("got a value after a refused set, want none")
	}
	if ok, err := c.SetLocked(ctx, key, token, []byte("v1"), time.Minute); err != nil || !ok {
		t.Errorf("set with the token: got %v, %v, want true", ok, err)
	}
	if v, found, err := c.Get(ctx, key); err != nil || !found || string(v) != "v1" {
		t.Errorf("get: got %q, %v, %v, want v1", v, found, err)
	}
	// SetLocked freed the lock.
	token2, ok, err := c.Lock(ctx, key, time.Minute)
	if err != nil || !ok {
		t.Fatalf("lock after a set: got %v, %v, want true", ok, err)
	}
	if err := c.Unlock(ctx, key, "not-the-token"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Lock(ctx, key, time.Minute); ok {
		t.Errorf("a wrong token's unlock freed the lock")
	}
	if err := c.Unlock(ctx, key, token2); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Lock(ctx, key, time.Minute); err != nil || !ok {
		t.Errorf("lock after unlock: got %v, %v, want true", ok, err)
	}
	if err := c.Del(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := c.Get(ctx, key); found {
		t.Errorf("got a value after del, want none")
	}
}
