package sale_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/sale"
)

// saleOf creates and publishes an activity of one item per stock figure, open from a
// minute ago for an hour, one unit a shopper.
func (e *env) saleOf(t *testing.T, strategy domain.Strategy, buckets int, stock ...int64) *domain.Activity {
	t.Helper()
	ctx := context.Background()
	a := &domain.Activity{Name: "items", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour),
		Strategy: strategy, PerUserLimit: 1, BucketCount: buckets}
	for _, n := range stock {
		a.Items = append(a.Items, domain.Item{Name: "item", PriceCents: 100, TotalStock: n})
	}
	if err := e.svc().CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	a, err := e.svc().Publish(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// deafReplica is one more backend on e's services that hears of no other's changes:
// its copies of activities last their local TTL.
func (e *env) deafReplica(t *testing.T) *sale.Service {
	return sale.New(sale.Deps{Catalog: e.db.Store, Orders: e.orders, Ledger: e.stock, Cache: redis.NewCache(e.rdb), Publisher: e.pub,
		Log: testLog(t)}, sale.Config{})
}

// only is a with item k first, as checkInvariants and settle read an activity's
// first item.
func only(a *domain.Activity, k int) *domain.Activity {
	cp := *a
	cp.Items = []domain.Item{a.Items[k]}
	return &cp
}

// attempt is one shopper's order and what became of it.
type attempt struct {
	user        int64
	item        int
	afterChange bool // started after the operator's call had returned
	placed      sale.Placed
	code        string
}

// TestHammerItemOffline: shoppers buy two items of one sale on three backends while an
// operator takes one item offline through one of them, cancels some of its orders,
// and puts it back online; on the real MariaDB, Redis and (queued strategies)
// RocketMQ. From the moment the call returns, the item admits nobody anywhere, whatever
// copy of the activity the other backend holds (the ledger refuses);
// the other item sells on; the orders admitted before end created; the units of the
// cancelled orders come back while offline; back online the item sells exactly what
// is left, and every invariant holds.
func TestHammerItemOffline(t *testing.T) {
	for _, tt := range []struct {
		strategy domain.Strategy
		buckets  int
	}{{domain.StrategySync, 1}, {domain.StrategyAsync, 1}, {domain.StrategyBucket, 4}} {
		t.Run(string(tt.strategy), func(t *testing.T) {
			ctx := context.Background()
			batch := 1
			if tt.strategy == domain.StrategyBucket {
				batch = 16
			}
			e := newEnv(t, envOpts{replicas: 2, queue: tt.strategy.Queued(), batch: batch, changes: true})
			const stockA, stockB = 500, 1000
			a := e.saleOf(t, tt.strategy, tt.buckets, stockA, stockB)
			itemA := a.Items[0].ID
			// Shoppers reach three backends: two that announce changes to each other,
			// and one that hears of none and keeps its copy of the activity (on sale)
			// for its local TTL: only the ledger stops its orders.
			backends := append(slices.Clone(e.replicas), e.deafReplica(t))
			if _, err := backends[2].Activity(ctx, a.ID); err != nil {
				t.Fatal(err)
			}

			var (
				nextUser atomic.Int64
				changed  atomic.Bool // the operator's call has returned
				stop     atomic.Bool
				admitted atomic.Int64 // of item A
				refusedA atomic.Int64 // attempts on A refused after the change
				soldBNow atomic.Int64 // attempts on B admitted after the change
				mu       sync.Mutex
				attempts []attempt
				wg       sync.WaitGroup
			)
			for g := 0; g < 48; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; !stop.Load(); n++ {
						at := attempt{user: nextUser.Add(1), item: 0, afterChange: changed.Load()}
						if n%8 == 7 {
							at.item = 1
						}
						p, err := backends[g%3].PlaceOrder(ctx, sale.PlaceOrder{UserID: at.user, ActivityID: a.ID,
							ItemID: a.Items[at.item].ID, Quantity: 1, IdempotencyKey: "k"})
						at.placed, at.code = p, domain.ErrorCode(err)
						switch {
						case err == nil && at.item == 0:
							admitted.Add(1)
						case at.afterChange && at.item == 0 && at.code == domain.ENotFound:
							refusedA.Add(1)
						case at.afterChange && at.item == 1 && err == nil:
							soldBNow.Add(1)
						}
						mu.Lock()
						attempts = append(attempts, at)
						mu.Unlock()
					}
				}()
			}
			for admitted.Load() < 60 {
				time.Sleep(time.Millisecond)
			}
			if _, err := e.replicas[1].SetItemState(ctx, a.ID, itemA, domain.ItemOffline); err != nil {
				t.Fatal(err)
			}
			changed.Store(true)
			// On until both items have answered after the change (on loaded cores a
			// fixed pause may see neither).
			for deadline := time.Now().Add(10 * time.Second); (refusedA.Load() == 0 || soldBNow.Load() == 0) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			stop.Store(true)
			wg.Wait()

			var before, refusedAfter, soldBAfter int
			for _, at := range attempts {
				switch {
				case at.item == 1 && at.afterChange && at.code == "":
					soldBAfter++
				case at.item == 1:
				case !at.afterChange && at.code == "":
					before++
				case at.afterChange && at.code == "":
					t.Fatalf("user %d was admitted to item A after it went offline: %+v", at.user, at.placed)
				case at.afterChange && at.code == domain.ENotFound:
					refusedAfter++
				case at.code != domain.ENotFound && at.code != domain.ESoldOut:
					t.Fatalf("user %d: %s", at.user, at.code)
				}
			}
			if refusedAfter == 0 || soldBAfter == 0 || before < 60 || before >= stockA {
				t.Fatalf("got %d admitted before, %d refused after on A, %d sold on B after; want some of each, and A not sold out", before, refusedAfter, soldBAfter)
			}
			e.settle(t, only(a, 0), 2*time.Minute)
			e.settle(t, only(a, 1), 2*time.Minute)
			var created []domain.Order
			for _, at := range attempts {
				if at.code != "" {
					continue
				}
				tk, err := e.svc().Ticket(ctx, at.user, at.placed.Ticket)
				if err != nil || tk.Status != domain.TicketCreated {
					t.Fatalf("ticket %s of user %d: got %+v, %v; want created", at.placed.Ticket, at.user, tk, err)
				}
				if at.item == 0 && len(created) < 5 {
					o, err := e.svc().Order(ctx, at.user, tk.OrderID)
					if err != nil {
						t.Fatal(err)
					}
					created = append(created, o)
				}
			}
			e.checkInvariants(t, only(a, 0), int64(before), stockA-int64(before))
			// Cancelled while offline, their units are back at once, on the counters.
			for _, o := range created {
				if _, err := e.replicas[0].Cancel(ctx, o.UserID, o.ID); err != nil {
					t.Fatal(err)
				}
			}
			sold := int64(before - len(created))
			e.checkInvariants(t, only(a, 0), sold, stockA-sold)
			if _, err := e.replicas[0].SetItemState(ctx, a.ID, itemA, domain.ItemOnline); err != nil {
				t.Fatal(err)
			}
			// Back online, through either backend, the rest sells and no more.
			for u := int64(1_000_000); ; u++ {
				_, err := e.replicas[u%2].PlaceOrder(ctx, sale.PlaceOrder{UserID: u, ActivityID: a.ID, ItemID: itemA, Quantity: 1})
				if domain.IsCode(err, domain.ESoldOut) {
					break
				}
				if err != nil {
					t.Fatalf("back online, user %d: %v", u, err)
				}
				if u > 1_000_000+stockA {
					t.Fatal("more sold than the stock")
				}
			}
			e.settle(t, only(a, 0), 2*time.Minute)
			e.checkInvariants(t, only(a, 0), stockA, 0)
			var soldB int64
			for _, at := range attempts {
				if at.item == 1 && at.code == "" {
					soldB++
				}
			}
			e.checkInvariants(t, only(a, 1), soldB, stockB-soldB)
			t.Logf("%d attempts: %d admitted to A before it went offline, %d refused after, %d sold on B meanwhile",
				len(attempts), before, refusedAfter, soldBAfter)
		})
	}
}
