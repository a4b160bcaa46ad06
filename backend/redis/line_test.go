package redis_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/redis"
)

// lineRig is one item on sale in the ledger, and its waiting room's line.
type lineRig struct {
	t      *testing.T
	stock  *redis.Stock
	line   *redis.Line
	a, i   int64
	bucket int
	factor float64
	ttl    time.Duration
}

func newLineRig(t *testing.T, rdb goredis.UniversalClient, factor float64, stock ...int64) *lineRig {
	t.Helper()
	r := &lineRig{t: t, stock: redis.NewStock(rdb, time.Hour), line: redis.NewLine(rdb), a: nextID.Add(1), i: nextID.Add(1),
		bucket: len(stock), factor: factor, ttl: 30 * time.Second}
	if err := r.line.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.stock.Warm(context.Background(), domain.SaleState{ActivityID: r.a, ItemID: r.i, State: domain.StatePublished,
		Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), PerUserLimit: 5, BucketStock: stock}, true); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *lineRig) entry(user int64) domain.LineEntry {
	return domain.LineEntry{ActivityID: r.a, ItemID: r.i, UserID: user, Buckets: r.bucket, Factor: r.factor, PlaceTTL: r.ttl, Lease: time.Minute}
}

func (r *lineRig) enter(user int64) domain.LineDecision {
	r.t.Helper()
	return r.enterWith(r.entry(user))
}

func (r *lineRig) enterWith(e domain.LineEntry) domain.LineDecision {
	r.t.Helper()
	d, err := r.line.Enter(context.Background(), e)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

func (r *lineRig) leave(user, seq int64, back bool) {
	r.t.Helper()
	if err := r.line.Leave(context.Background(), r.a, r.i, user, seq, back); err != nil {
		r.t.Fatal(err)
	}
}

// deduct takes qty units for user in the ledger, as the backend does for an admitted
// order, and returns the ticket.
func (r *lineRig) deduct(user int64, qty int) string {
	r.t.Helper()
	ticket := domain.NewTicket(r.a, r.i, fmt.Sprint("l", nextID.Add(1)))
	if _, err := r.stock.Deduct(context.Background(), domain.Deduction{ActivityID: r.a, ItemID: r.i, UserID: user, Quantity: qty,
		Ticket: ticket, Buckets: r.bucket}); err != nil {
		r.t.Fatal(err)
	}
	return ticket
}

func want(t *testing.T, what string, d domain.LineDecision, outcome domain.LineOutcome, position int64) {
	t.Helper()
	if d.Outcome != outcome || d.Position != position {
		t.Fatalf("%s: got %s at position %d (%+v), want %s at %d", what, d.Outcome, d.Position, d, outcome, position)
	}
}

// TestLineBoundsAdmissionsByTheStock: with 4 units and k 1.5 the line admits 6 at
// once and queues the rest in arrival order; an admission leaving frees its slot for
// the head; when units are taken the capacity follows them down.
func TestLineBoundsAdmissionsByTheStock(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			r := newLineRig(t, rdb, 1.5, 4)
			seqs := map[int64]int64{}
			for u := int64(1); u <= 6; u++ {
				d := r.enter(u)
				want(t, fmt.Sprint("user ", u), d, domain.LineAdmitted, 0)
				if d.Capacity != 6 || d.InFlight != u || d.Remaining != 4 || d.Waited != 0 {
					t.Fatalf("user %d: got capacity %d in flight %d left %d waited %s, want 6 %d 4 0", u, d.Capacity, d.InFlight, d.Remaining, d.Waited, u)
				}
				seqs[u] = d.Seq
			}
			for u := int64(7); u <= 10; u++ {
				d := r.enter(u)
				want(t, fmt.Sprint("user ", u), d, domain.LineQueued, u-6)
				seqs[u] = d.Seq
				if d.Length != u-6 || d.InFlight != 6 {
					t.Fatalf("user %d: got length %d in flight %d, want %d 6", u, d.Length, d.InFlight, u-6)
				}
			}
			// Asking again keeps the place; the second in line is not admitted while
			// the head has the only free slot.
			want(t, "user 8 again", r.enter(8), domain.LineQueued, 2)
			r.deduct(1, 1) // user 1's order takes a unit: 3 left, capacity 5
			r.leave(1, seqs[1], false)
			want(t, "user 8 with 5 in flight of 5", r.enter(8), domain.LineQueued, 2)
			want(t, "user 7 with 5 in flight of 5", r.enter(7), domain.LineQueued, 1)
			r.leave(2, seqs[2], false) // an answer that took nothing (a refusal): a slot frees
			want(t, "user 8 behind the head", r.enter(8), domain.LineQueued, 2)
			d := r.enter(7)
			want(t, "user 7 at the head", d, domain.LineAdmitted, 0)
			if d.Waited <= 0 || d.Seq != seqs[7] {
				t.Fatalf("user 7: got waited %s place %d, want a wait and place %d", d.Waited, d.Seq, seqs[7])
			}
			want(t, "user 8 now the head", r.enter(8), domain.LineQueued, 1)
			want(t, "user 7 while admitted", r.enter(7), domain.LineBusy, 0)
			st, err := r.line.Stats(context.Background(), r.a, r.i, r.bucket, r.factor)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Loaded || st.Length != 3 || st.InFlight != 5 || st.Capacity != 5 || st.Remaining != 3 || st.Places != 10 ||
				st.Admitted != 7 || st.AdmittedFromLine != 1 || st.AvgWait <= 0 || st.HeadWait <= 0 || st.Rate <= 0 {
				t.Fatalf("stats: got %+v", st)
			}
		})
	}
}

// TestLineReturnedStockGoesToTheHead: the last unit is taken, the queued shoppers are
// told sold out and keep their places; a failed write gives the unit back, and the
// head of the line gets it, not a shopper who arrives after.
func TestLineReturnedStockGoesToTheHead(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			r := newLineRig(t, rdb, 1, 1)
			first := r.enter(1)
			want(t, "user 1", first, domain.LineAdmitted, 0)
			want(t, "user 2", r.enter(2), domain.LineQueued, 1)
			want(t, "user 3", r.enter(3), domain.LineQueued, 2)
			ticket := r.deduct(1, 1)
			r.leave(1, first.Seq, false)
			want(t, "user 3 after the last unit", r.enter(3), domain.LineSoldOut, 2)
			want(t, "user 2 after the last unit", r.enter(2), domain.LineSoldOut, 1)
			if d := r.enter(9); d.Outcome != domain.LineSoldOut || d.Seq != 0 || d.Length != 2 {
				t.Fatalf("a new shopper when sold out: got %+v, want sold out without a place", d)
			}
			if _, err := r.stock.Settle(context.Background(), domain.Ticket{ID: ticket, UserID: 1, Status: domain.TicketFailed, Reason: "write_failed"}, 1); err != nil {
				t.Fatal(err)
			}
			want(t, "a shopper arriving after the unit came back", r.enter(4), domain.LineQueued, 3)
			want(t, "user 3", r.enter(3), domain.LineQueued, 2)
			want(t, "user 2, the head", r.enter(2), domain.LineAdmitted, 0)
		})
	}
}

// TestLinePlacesAndTokens: a place not asked about for its ttl lapses; a token gives
// back a place the line lost while it is fresh and its place was not used; an
// admission that took nothing goes back to its place.
func TestLinePlacesAndTokens(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			r := newLineRig(t, rdb, 1, 1)
			r.ttl = time.Second
			held := r.enter(1) // the only slot, held
			want(t, "user 1", held, domain.LineAdmitted, 0)
			q2, q3 := r.enter(2), r.enter(3)
			want(t, "user 3", q3, domain.LineQueued, 2)
			time.Sleep(600 * time.Millisecond)
			want(t, "user 3 within its ttl", r.enter(3), domain.LineQueued, 2)
			time.Sleep(600 * time.Millisecond)
			// User 2 was last seen 1.2 s ago: the next step lapses the place.
			want(t, "user 3 after user 2 lapsed", r.enter(3), domain.LineQueued, 1)
			e := r.entry(2)
			e.Seq, e.Issued = q2.Seq, q2.Now // a token issued 1.2 s ago: stale
			if d := r.enterWith(e); d.Outcome != domain.LineQueued || d.Position != 2 || d.Seq == q2.Seq {
				t.Fatalf("user 2 with a stale token: got %+v, want a new place behind user 3", d)
			}

			// The line is lost (a flush): fresh tokens give the places back.
			r2 := newLineRig(t, rdb, 1, 1)
			held = r2.enter(1)
			a, b := r2.enter(2), r2.enter(3)
			if n, err := rdb.Del(ctx, fmt.Sprintf("sk:{a%d:i%d}:wr:line", r2.a, r2.i)).Result(); err != nil || n != 1 {
				t.Fatalf("drop the line: got %d, %v", n, err)
			}
			e = r2.entry(3)
			e.Seq, e.Issued = b.Seq, b.Now
			want(t, "user 3 with its token", r2.enterWith(e), domain.LineQueued, 1)
			e = r2.entry(2)
			e.Seq, e.Issued = a.Seq, a.Now
			want(t, "user 2 with its token", r2.enterWith(e), domain.LineQueued, 1)
			want(t, "user 3 behind", r2.enter(3), domain.LineQueued, 2)

			// A used place is not rejoined with its token; an admission that took
			// nothing goes back to its place, at the head.
			r2.leave(1, held.Seq, false)
			got := r2.enter(2)
			want(t, "user 2 admitted", got, domain.LineAdmitted, 0)
			r2.leave(2, got.Seq, false)
			e = r2.entry(2)
			e.Seq, e.Issued = a.Seq, time.Now()
			want(t, "user 2 rejoining a used place", r2.enterWith(e), domain.LineQueued, 2)
			got = r2.enter(3)
			want(t, "user 3 admitted", got, domain.LineAdmitted, 0)
			r2.leave(3, got.Seq, true)
			want(t, "user 3 back at its place", r2.enter(3), domain.LineAdmitted, 0)
		})
	}
}

// TestLineLateLeaveFreesOnlyItsOwn: an admission whose lease lapsed (its gateway was
// slow to answer) and whose shopper was admitted again since ends late: that end must
// not free the newer admission's slot, or the bound on orders in flight breaks.
func TestLineLateLeaveFreesOnlyItsOwn(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			r := newLineRig(t, rdb, 1, 1) // one slot
			e := r.entry(1)
			e.Lease = 50 * time.Millisecond
			old := r.enterWith(e)
			want(t, "user 1", old, domain.LineAdmitted, 0)
			time.Sleep(120 * time.Millisecond) // the lease lapses
			again := r.enter(1)
			want(t, "user 1 again", again, domain.LineAdmitted, 0)
			if again.Seq == old.Seq {
				t.Fatalf("the second admission has the first's place %d", old.Seq)
			}
			r.leave(1, old.Seq, false) // the first one's late end
			want(t, "user 2 while user 1's second admission is in flight", r.enter(2), domain.LineQueued, 1)
			r.leave(1, again.Seq, false)
			want(t, "user 2 once it ended", r.enter(2), domain.LineAdmitted, 0)
		})
	}
}

// TestLineOpenWithoutSaleState: an item the ledger does not hold, or holds offline,
// is not bounded: the backend restores or refuses it.
func TestLineOpenWithoutSaleState(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			r := newLineRig(t, rdb, 1.5, 1)
			r.i = nextID.Add(1) // never warmed
			want(t, "unloaded", r.enter(1), domain.LineOpen, 0)
			r = newLineRig(t, rdb, 1.5, 1)
			if err := r.stock.SetState(context.Background(), r.a, r.i, domain.StateOffline); err != nil {
				t.Fatal(err)
			}
			want(t, "offline", r.enter(1), domain.LineOpen, 0)
		})
	}
}

// TestLineReadsEveryBucket: a caller that knows fewer buckets than the item has is
// answered with the whole stock.
func TestLineReadsEveryBucket(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			r := newLineRig(t, rdb, 1, 1, 2, 3)
			e := r.entry(1)
			e.Buckets = 1
			if d := r.enterWith(e); d.Outcome != domain.LineAdmitted || d.Remaining != 6 || d.Capacity != 6 {
				t.Fatalf("got %+v, want admitted with 6 left", d)
			}
		})
	}
}

// TestLineHammer: many shoppers poll one item's line at once while admissions take
// units and leave. In flight never passes ceil(k x stock left) and every shopper's
// position only goes down. When every admitted shopper buys, no unit comes back, and
// then at most ceil(k x stock) are admitted in all, each from one of the first
// ceil(k x stock) places: nobody gets in ahead of more than the bound allows. When
// some admitted shoppers leave without buying (the backend refused them), the line's
// head gets their slots.
func TestLineHammer(t *testing.T) {
	for name, rdb := range clients(t) {
		for _, mode := range []string{"all buy", "half leave"} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				const stock, shoppers = 30, 200
				r := newLineRig(t, rdb, 1.5, stock)
				buys := func(u int64) bool { return mode == "all buy" || u%2 != 0 }
				var mu sync.Mutex
				var admitted []int64 // the places admitted
				var violations []string
				var wg sync.WaitGroup
				for u := int64(1); u <= shoppers; u++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						last := int64(-1)
						for {
							d, err := r.line.Enter(context.Background(), r.entry(u))
							if err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							if d.InFlight > d.Capacity && d.Outcome == domain.LineAdmitted {
								violations = append(violations, fmt.Sprintf("user %d admitted with %d in flight of %d", u, d.InFlight, d.Capacity))
							}
							if d.Outcome == domain.LineQueued && last >= 0 && d.Position > last {
								violations = append(violations, fmt.Sprintf("user %d: position %d after %d", u, d.Position, last))
							}
							mu.Unlock()
							switch d.Outcome {
							case domain.LineQueued:
								last = d.Position
								time.Sleep(time.Duration(1+rand.IntN(4)) * time.Millisecond)
								continue
							case domain.LineAdmitted:
								mu.Lock()
								admitted = append(admitted, d.Seq)
								mu.Unlock()
								time.Sleep(time.Millisecond)
								if buys(u) {
									_, derr := r.stock.Deduct(context.Background(), domain.Deduction{ActivityID: r.a, ItemID: r.i, UserID: u, Quantity: 1,
										Ticket: domain.NewTicket(r.a, r.i, fmt.Sprint("h", nextID.Add(1))), Buckets: 1})
									if derr != nil && !domain.IsCode(derr, domain.ESoldOut) {
										t.Error(derr)
									}
								}
								if err := r.line.Leave(context.Background(), r.a, r.i, u, d.Seq, false); err != nil {
									t.Error(err)
								}
							}
							return
						}
					}()
				}
				wg.Wait()
				for _, v := range violations {
					t.Error(v)
				}
				n, _, err := r.stock.Available(context.Background(), r.a, r.i, 1)
				if err != nil || n != 0 {
					t.Fatalf("stock left: got %d (%v), want 0", n, err)
				}
				st, err := r.line.Stats(context.Background(), r.a, r.i, 1, r.factor)
				if err != nil {
					t.Fatal(err)
				}
				if st.InFlight != 0 || st.Admitted != int64(len(admitted)) || st.Places < st.Admitted || st.Places > shoppers {
					t.Fatalf("stats: got %+v; want nothing in flight, %d admitted, places between", st, len(admitted))
				}
				if mode == "all buy" {
					bound := int64(math.Ceil(1.5 * stock))
					slices.Sort(admitted)
					if len(admitted) < stock || int64(len(admitted)) > bound || admitted[len(admitted)-1] > bound {
						t.Errorf("admitted places: got %v; want %d to %d of them, all within the first %d", admitted, stock, bound, bound)
					}
				} else if st.AdmittedFromLine == 0 {
					t.Errorf("nobody was admitted from the line: %+v", st)
				}
			})
		}
	}
}

// TestLineRefusesShoppersAtTheirLimit: a shopper whose order would pass the per-user
// limit (units held, in flight or sold) gets no place and no slot in flight, and gives
// up a place they held: the one behind becomes the head.
func TestLineRefusesShoppersAtTheirLimit(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			r := newLineRig(t, rdb, 1, 20) // limit 5; capacity 20
			withQty := func(user int64, qty int) domain.LineDecision {
				e := r.entry(user)
				e.Quantity = qty
				return r.enterWith(e)
			}
			r.deduct(1, 5)
			r.deduct(2, 3)
			d := withQty(1, 1)
			want(t, "user 1, who holds 5 of 5, orders 1", d, domain.LineLimit, 0)
			if d.Length != 0 || d.InFlight != 0 || d.Seq != 0 {
				t.Fatalf("user 1 at the limit: got length %d, in flight %d, place %d; want nothing given", d.Length, d.InFlight, d.Seq)
			}
			want(t, "user 2, who holds 3 of 5, orders 3", withQty(2, 3), domain.LineLimit, 0)
			want(t, "user 2 orders 2", withQty(2, 2), domain.LineAdmitted, 0)
			want(t, "user 1 with the quantity not known", r.enter(1), domain.LineAdmitted, 0)

			// A shopper in line who reaches the limit meanwhile gives the place up.
			q := newLineRig(t, rdb, 0.1, 10) // capacity 1
			want(t, "user 3 takes the only slot", q.enter(3), domain.LineAdmitted, 0)
			want(t, "user 4 queued", q.enter(4), domain.LineQueued, 1)
			want(t, "user 5 queued", q.enter(5), domain.LineQueued, 2)
			q.deduct(4, 5) // orders of user 4's that went another way (the room was off)
			e := q.entry(4)
			e.Quantity = 1
			d = q.enterWith(e)
			want(t, "user 4 at the limit", d, domain.LineLimit, 0)
			if d.Seq != 0 || d.Length != 1 {
				t.Fatalf("user 4 at the limit: got place %d, length %d; want the place given up", d.Seq, d.Length)
			}
			want(t, "user 5 now the head", q.enter(5), domain.LineQueued, 1)
		})
	}
}
