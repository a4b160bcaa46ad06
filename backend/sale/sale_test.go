package sale_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/rocketmq"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/worker"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testLog sends warnings and errors to the test's log.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// env is one backend deployment on the real services: replicas of the service on one
// MySQL database and one Redis, a RocketMQ producer and a worker consuming with a tag
// of the test's own.
type env struct {
	db       *testenv.DB
	rdb      goredis.UniversalClient
	stock    *redis.Stock
	replicas []*sale.Service
	worker   *worker.Worker
	orders   domain.OrderStore // as the replicas see it
	pub      domain.Publisher  // the replicas'
}

type envOpts struct {
	replicas  int
	queue     bool // RocketMQ producer and worker
	publisher domain.Publisher
	batch     int // worker batch size
	// orders wraps the order store the replicas use (to inject failures); nil: as is.
	orders func(domain.OrderStore) domain.OrderStore
	// changes: the replicas announce activity changes to each other (Redis pub/sub).
	changes bool
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{db: testenv.MySQL(t), rdb: testenv.Redis(t)}
	e.stock = redis.NewStock(e.rdb, time.Hour)
	if err := e.stock.Load(ctx); err != nil {
		t.Fatal(err)
	}
	pub := o.publisher
	tag := "t" + testenv.ID()
	if o.queue {
		p, err := rocketmq.NewProducer(rocketmq.ProducerConfig{NameServers: testenv.NameServers(), Topic: testenv.TestTopic(), Tag: tag, Group: "p_" + tag})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if pub == nil {
			pub = p
		}
	}
	var orders domain.OrderStore = e.db.Store
	if o.orders != nil {
		orders = o.orders(orders)
	}
	e.orders, e.pub = orders, pub
	var changes sale.Changes
	if o.changes {
		changes = redis.NewEvents(e.rdb, tag)
	}
	for n := 0; n < max(o.replicas, 1); n++ {
		svc := sale.New(sale.Deps{Catalog: e.db.Store, Orders: orders, Ledger: e.stock,
			Cache: redis.NewCache(e.rdb), Publisher: pub, Changes: changes, Log: testLog(t)}, sale.Config{})
		if err := svc.FollowChanges(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.replicas = append(e.replicas, svc)
	}
	e.worker = worker.New(e.db.Store, e.stock, sale.NewCatalog(e.db.Store, redis.NewCache(e.rdb), sale.CatalogConfig{}, testLog(t)), worker.Config{BatchSize: o.batch, BatchWindow: 5 * time.Millisecond}, nil, testLog(t))
	if o.queue {
		c, err := rocketmq.NewConsumer(rocketmq.ConsumerConfig{NameServers: testenv.NameServers(), Topic: testenv.TestTopic(),
			Group: "c_" + tag, Tag: tag, Goroutines: 16, BatchSize: max(o.batch, 1), MaxAttempts: 5}, e.worker)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	return e
}

func (e *env) svc() *sale.Service { return e.replicas[0] }

// sale creates and publishes an activity of one item.
func (e *env) sale(t *testing.T, strategy domain.Strategy, stock int64, limit int) *domain.Activity {
	return e.saleN(t, strategy, stock, limit, 1)
}

// saleN is sale with buckets.
func (e *env) saleN(t *testing.T, strategy domain.Strategy, stock int64, limit, buckets int) *domain.Activity {
	t.Helper()
	ctx := context.Background()
	a := &domain.Activity{Name: "hammer", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour),
		Strategy: strategy, PerUserLimit: limit, BucketCount: buckets,
		Items: []domain.Item{{Name: "phone", PriceCents: 100, TotalStock: stock}}}
	if err := e.svc().CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	a, err := e.svc().Publish(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// settle waits until no ticket of the item is in flight.
func (e *env) settle(t *testing.T, a *domain.Activity, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		st, err := e.stock.State(context.Background(), a.ID, a.Items[0].ID, domain.MaxBuckets)
		if err != nil {
			t.Fatal(err)
		}
		if st.Tickets == 0 {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%d tickets still pending after %v", st.Tickets, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkInvariants checks DESIGN.md's invariants for an item once settled.
func (e *env) checkInvariants(t *testing.T, a *domain.Activity, wantOrders int64, wantLeft int64) {
	t.Helper()
	ctx := context.Background()
	item := a.Items[0].ID
	var orders, units int64
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(quantity),0) FROM orders WHERE item_id = ? AND status IN ('created','paid')`, item).Scan(&orders, &units); err != nil {
		t.Fatal(err)
	}
	var over int
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT user_id FROM orders WHERE item_id = ? AND status IN ('created','paid') GROUP BY user_id HAVING SUM(quantity) > ?) x`, item, a.PerUserLimit).Scan(&over); err != nil {
		t.Fatal(err)
	}
	var dupTickets int
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) - COUNT(DISTINCT ticket) FROM orders WHERE item_id = ?`, item).Scan(&dupTickets); err != nil {
		t.Fatal(err)
	}
	var mysqlLeft int64
	if err := e.db.QueryRowContext(ctx, `SELECT SUM(available) FROM item_stock WHERE item_id = ?`, item).Scan(&mysqlLeft); err != nil {
		t.Fatal(err)
	}
	st, err := e.stock.State(ctx, a.ID, item, domain.MaxBuckets)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	if err := e.db.QueryRowContext(ctx, `SELECT total_stock FROM items WHERE id = ?`, item).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if orders != wantOrders || over != 0 || dupTickets != 0 || mysqlLeft != wantLeft || st.Available() != wantLeft || st.Tickets != 0 || units+mysqlLeft != total {
		t.Fatalf("invariants: got %d orders (%d units), %d users over the limit, %d duplicate tickets, mysql %d left, redis %d left, %d pending; want %d orders, 0, 0, %d, %d, 0",
			orders, units, over, dupTickets, mysqlLeft, st.Available(), st.Tickets, wantOrders, wantLeft, wantLeft)
	}
}

type tally struct {
	mu      sync.Mutex
	byCode  map[string]int
	tickets map[string]int64 // admitted ticket -> user
}

func (tl *tally) add(code string, p sale.Placed, user int64) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.byCode[code]++
	if code == "ok" {
		tl.tickets[p.Ticket] = user
	}
}

// hammer sends attempts from users concurrently: even users retry with the same
// Idempotency-Key, odd users with a new one. Replicas take turns.
func (e *env) hammer(t *testing.T, a *domain.Activity, users, perUser int) *tally {
	t.Helper()
	tl := &tally{byCode: map[string]int{}, tickets: map[string]int64{}}
	jobs := make(chan [2]int64)
	var wg sync.WaitGroup
	var n atomic.Int64
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				user, attempt := j[0], j[1]
				key := fmt.Sprintf("k%d", user)
				if user%2 == 1 {
					key = fmt.Sprintf("k%d-%d", user, attempt)
				}
				svc := e.replicas[int(n.Add(1))%len(e.replicas)]
				p, err := svc.PlaceOrder(context.Background(), sale.PlaceOrder{UserID: user, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1, IdempotencyKey: key})
				code := "ok"
				if err != nil {
					code = domain.ErrorCode(err)
					if code == domain.ENotFound || code == domain.EInternal || code == domain.EConflict {
						t.Logf("user %d attempt %d: %v", user, attempt, err)
					}
				}
				tl.add(code, p, user)
			}
		}()
	}
	for attempt := 0; attempt < perUser; attempt++ {
		for u := 1; u <= users; u++ {
			jobs <- [2]int64{int64(u), int64(attempt)}
		}
	}
	close(jobs)
	wg.Wait()
	return tl
}

func testHammer(t *testing.T, strategy domain.Strategy, replicas int) {
	buckets, batch := 1, 1
	if strategy == domain.StrategyBucket {
		buckets, batch = 4, 16
	}
	e := newEnv(t, envOpts{replicas: replicas, queue: strategy.Queued(), batch: batch})
	a := e.saleN(t, strategy, 100, 1, buckets)
	start := time.Now()
	tl := e.hammer(t, a, 1000, 2)
	admitted := time.Since(start)
	settled := e.settle(t, a, 2*time.Minute)
	if len(tl.tickets) != 100 {
		t.Fatalf("got %d distinct admitted tickets, want 100 (%v)", len(tl.tickets), tl.byCode)
	}
	for ticket, user := range tl.tickets {
		tk, err := e.svc().Ticket(context.Background(), user, ticket)
		if err != nil || tk.Status != domain.TicketCreated {
			t.Fatalf("ticket %s: got %+v, %v; want created", ticket, tk, err)
		}
	}
	if tl.byCode[domain.EUnavailable] != 0 || tl.byCode[domain.EInternal] != 0 || tl.byCode[domain.ENotFound] != 0 || tl.byCode[domain.EConflict] != 0 {
		t.Fatalf("failures in the hammer: %v", tl.byCode)
	}
	e.checkInvariants(t, a, 100, 0)
	t.Logf("%s, %d replicas: 2000 attempts from 1000 users in %v, settled %v later; outcomes %v",
		strategy, replicas, admitted.Round(time.Millisecond), settled.Round(time.Millisecond), tl.byCode)
}

func TestHammerSync(t *testing.T)             { testHammer(t, domain.StrategySync, 1) }
func TestHammerAsync(t *testing.T)            { testHammer(t, domain.StrategyAsync, 1) }
func TestHammerAsyncTwoReplicas(t *testing.T) { testHammer(t, domain.StrategyAsync, 2) }
func TestHammerSyncTwoReplicas(t *testing.T)  { testHammer(t, domain.StrategySync, 2) }
func TestHammerBucket(t *testing.T)           { testHammer(t, domain.StrategyBucket, 1) }

func TestDemandBelowStock(t *testing.T) {
	for _, strategy := range []domain.Strategy{domain.StrategySync, domain.StrategyAsync} {
		t.Run(string(strategy), func(t *testing.T) {
			e := newEnv(t, envOpts{queue: strategy.Queued()})
			a := e.sale(t, strategy, 100, 1)
			tl := e.hammer(t, a, 60, 1)
			e.settle(t, a, time.Minute)
			if len(tl.tickets) != 60 {
				t.Fatalf("got %d admitted, want all 60 (%v)", len(tl.tickets), tl.byCode)
			}
			e.checkInvariants(t, a, 60, 40)
		})
	}
}

// failingWrites is an order store whose writes fail without touching the database
// while fail is set.
type failingWrites struct {
	domain.OrderStore
	fail atomic.Bool
}

func (f *failingWrites) WriteOrder(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	if f.fail.Load() {
		return domain.Written{}, errors.New("injected: connection reset")
	}
	return f.OrderStore.WriteOrder(ctx, r, limit)
}

type failingPublisher struct{ calls atomic.Int64 }

func (f *failingPublisher) Publish(context.Context, domain.OrderRequest) error {
	f.calls.Add(1)
	return errors.New("injected: broker unreachable")
}

func TestFailurePaths(t *testing.T) {
	ctx := context.Background()
	t.Run("mysql write fails", func(t *testing.T) {
		fw := &failingWrites{}
		e := newEnv(t, envOpts{orders: func(s domain.OrderStore) domain.OrderStore { fw.OrderStore = s; return fw }})
		a := e.sale(t, domain.StrategySync, 10, 1)
		fw.fail.Store(true)
		_, err := e.svc().PlaceOrder(ctx, sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1, IdempotencyKey: "x"})
		if !domain.IsCode(err, domain.EUnavailable) {
			t.Fatalf("got %v, want unavailable", err)
		}
		e.checkInvariants(t, a, 0, 10)
		// Nothing was taken: the same key may try again once MySQL is back.
		fw.fail.Store(false)
		p, err := e.svc().PlaceOrder(ctx, sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1, IdempotencyKey: "x"})
		if err != nil || p.Replayed || p.Status != domain.TicketCreated {
			t.Fatalf("retry: got %+v, %v; want a new order", p, err)
		}
		e.checkInvariants(t, a, 1, 9)
	})
	t.Run("queue send fails", func(t *testing.T) {
		fp := &failingPublisher{}
		e := newEnv(t, envOpts{publisher: fp})
		a := e.sale(t, domain.StrategyAsync, 10, 1)
		_, err := e.svc().PlaceOrder(ctx, sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1})
		if !domain.IsCode(err, domain.EUnavailable) || fp.calls.Load() < 2 {
			t.Fatalf("got %v after %d sends, want unavailable after retries", err, fp.calls.Load())
		}
		e.checkInvariants(t, a, 0, 10)
	})
	t.Run("message delivered twice", func(t *testing.T) {
		e := newEnv(t, envOpts{publisher: &failingPublisher{}})
		a := e.sale(t, domain.StrategyAsync, 10, 1)
		d, err := e.stock.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: a.Items[0].ID, UserID: 5, Quantity: 1, Ticket: domain.NewTicket(a.ID, a.Items[0].ID, "dup"), Buckets: 1})
		if err != nil {
			t.Fatal(err)
		}
		msg := domain.Delivery{ID: "m1", Attempt: 1, Request: domain.OrderRequest{Ticket: d.Ticket, UserID: 5, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}}
		for n := 0; n < 3; n++ {
			if err := e.worker.Handle(ctx, []domain.Delivery{msg}); err != nil {
				t.Fatalf("delivery %d: %v", n, err)
			}
		}
		e.checkInvariants(t, a, 1, 9)
	})
	t.Run("cancel twice", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		a := e.sale(t, domain.StrategySync, 10, 1)
		p, err := e.svc().PlaceOrder(ctx, sale.PlaceOrder{UserID: 3, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1})
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < 2; n++ {
			o, err := e.svc().Cancel(ctx, 3, p.OrderID)
			if err != nil || o.Status != domain.OrderCancelled {
				t.Fatalf("cancel %d: got %+v, %v", n, o, err)
			}
		}
		if _, err := e.svc().Cancel(ctx, 4, p.OrderID); !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("someone else's order: got %v, want not_found", err)
		}
		e.checkInvariants(t, a, 0, 10)
		// The unit is on sale again, and the same user may buy it.
		if _, err := e.svc().PlaceOrder(ctx, sale.PlaceOrder{UserID: 3, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}); err != nil {
			t.Fatalf("buy after cancel: %v", err)
		}
		e.checkInvariants(t, a, 1, 9)
	})
	t.Run("unpaid orders expire", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		a := e.sale(t, domain.StrategySync, 10, 2)
		var ids []int64
		for u := int64(1); u <= 3; u++ {
			p, err := e.svc().PlaceOrder(ctx, sale.PlaceOrder{UserID: u, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, p.OrderID)
		}
		if _, err := e.svc().Pay(ctx, 1, ids[0]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		n, err := e.svc().ExpireUnpaid(ctx, time.Millisecond)
		if err != nil || n != 2 {
			t.Fatalf("got %d expired, %v; want 2", n, err)
		}
		e.checkInvariants(t, a, 1, 9)
	})
}

// countingStore counts reads that reach MySQL.
type countingStore struct {
	*mysql.Store
	reads atomic.Int64
}

func (c *countingStore) Activity(ctx context.Context, id int64) (*domain.Activity, error) {
	c.reads.Add(1)
	time.Sleep(20 * time.Millisecond) // a slow database widens the race
	return c.Store.Activity(ctx, id)
}

func TestCacheRebuiltOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	a := e.sale(t, domain.StrategySync, 10, 1)
	for _, tt := range []struct {
		name string
		id   int64
		want error
	}{
		{"unknown id", a.ID + 1_000_000, &domain.Error{Code: domain.ENotFound}},
		{"cold hot key", a.ID, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.rdb.Del(ctx, fmt.Sprintf("sk:{cat:a:%d}", tt.id)).Err(); err != nil {
				t.Fatal(err)
			}
			cs := &countingStore{Store: e.db.Store}
			// Three replicas, each with its own local cache, 300 concurrent readers.
			var cats []*sale.Catalog
			for r := 0; r < 3; r++ {
				cats = append(cats, sale.NewCatalog(cs, redis.NewCache(e.rdb), sale.CatalogConfig{}, quiet))
			}
			var wg sync.WaitGroup
			for g := 0; g < 300; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := cats[g%3].Activity(ctx, tt.id)
					if (err != nil) != (tt.want != nil) || (err != nil && !domain.IsCode(err, domain.ENotFound)) {
						t.Errorf("got %v, want %v", err, tt.want)
					}
				}()
			}
			wg.Wait()
			if got := cs.reads.Load(); got != 1 {
				t.Fatalf("got %d reads of MySQL, want 1", got)
			}
		})
	}
}

func TestReconcilerRepairsDrift(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	a := e.sale(t, domain.StrategySync, 20, 1)
	if _, err := e.svc().PlaceOrder(ctx, sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	// Drift: Redis loses 5 units that MySQL still has.
	epoch, err := e.stock.Epoch(ctx, a.ID, a.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.stock.Adjust(ctx, a.ID, a.Items[0].ID, 0, -5, epoch); err != nil {
		t.Fatal(err)
	}
	reps, err := e.svc().Reconcile(ctx, sale.ReconcileConfig{Quiet: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range reps {
		if r.ItemID == a.Items[0].ID && r.Kind == "stock" {
			found = true
		}
	}
	if !found {
		t.Fatalf("got repairs %+v, want one of item %d", reps, a.Items[0].ID)
	}
	e.checkInvariants(t, a, 1, 19)
}
