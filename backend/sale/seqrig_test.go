package sale_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/worker"
)

// The rig of the failure-sequence tests (sequences_test.go, hammer_faults_test.go):
// one backend on the real MariaDB and Redis whose ports sit behind decorators, so a
// test can make a call fail, lose its answer, or stop half way until the test lets it
// go on. Messages go to a recording publisher and reach the worker only when a test
// hands them over (worker.Handle), so every interleaving is the one the test names.

// hook holds a function a decorator calls instead of going straight on; nil: straight
// on. Safe to set while other goroutines call through it.
type hook[F any] struct{ p atomic.Pointer[F] }

func (h *hook[F]) set(f F) { h.p.Store(&f) }
func (h *hook[F]) clear()  { h.p.Store(nil) }
func (h *hook[F]) get() (F, bool) {
	if p := h.p.Load(); p != nil {
		return *p, true
	}
	var zero F
	return zero, false
}

// sqOrders is the order store with hooks on the calls the sequences interleave.
type sqOrders struct {
	domain.OrderStore
	write      hook[func(r domain.OrderRequest, next func() (domain.Written, error)) (domain.Written, error)]
	writeBatch hook[func(rs []domain.OrderRequest, next func() ([]domain.Written, []error)) ([]domain.Written, []error)]
	void       hook[func(r domain.OrderRequest, next func() (domain.Order, bool, error)) (domain.Order, bool, error)]
	end        hook[func(id int64, next func() (domain.Order, bool, error)) (domain.Order, bool, error)]
	stock      hook[func(itemID int64, next func() ([]domain.StockRow, error)) ([]domain.StockRow, error)]
	move       hook[func(next func() error) error]
	view       hook[func(next func() (domain.ItemView, error)) (domain.ItemView, error)]
	// down: MySQL cannot be reached for looking orders up or voiding tickets.
	down atomic.Bool
	// byTicket counts OrderByTicket's calls.
	byTicket atomic.Int64
}

func (o *sqOrders) OrderByTicket(ctx context.Context, ticket string) (domain.Order, error) {
	o.byTicket.Add(1)
	if o.down.Load() {
		return domain.Order{}, errDown
	}
	return o.OrderStore.OrderByTicket(ctx, ticket)
}

func (o *sqOrders) OrdersByTickets(ctx context.Context, tickets []string) (map[string]domain.Order, error) {
	if o.down.Load() {
		return nil, errDown
	}
	return o.OrderStore.OrdersByTickets(ctx, tickets)
}

func (o *sqOrders) View(ctx context.Context, itemID int64, endedSince time.Time, full bool, tickets ...string) (domain.ItemView, error) {
	next := func() (domain.ItemView, error) { return o.OrderStore.View(ctx, itemID, endedSince, full, tickets...) }
	if f, ok := o.view.get(); ok {
		return f(next)
	}
	return next()
}

func (o *sqOrders) MoveStock(ctx context.Context, itemID int64, from, to int, n int64) error {
	next := func() error { return o.OrderStore.MoveStock(ctx, itemID, from, to, n) }
	if f, ok := o.move.get(); ok {
		return f(next)
	}
	return next()
}

func (o *sqOrders) WriteOrder(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	next := func() (domain.Written, error) { return o.OrderStore.WriteOrder(ctx, r, limit) }
	if f, ok := o.write.get(); ok {
		return f(r, next)
	}
	return next()
}

func (o *sqOrders) WriteBatch(ctx context.Context, rs []domain.OrderRequest, limit int) ([]domain.Written, []error) {
	next := func() ([]domain.Written, []error) { return o.OrderStore.WriteBatch(ctx, rs, limit) }
	if f, ok := o.writeBatch.get(); ok {
		return f(rs, next)
	}
	return next()
}

func (o *sqOrders) VoidTicket(ctx context.Context, r domain.OrderRequest) (domain.Order, bool, error) {
	if o.down.Load() {
		return domain.Order{}, false, errDown
	}
	next := func() (domain.Order, bool, error) { return o.OrderStore.VoidTicket(ctx, r) }
	if f, ok := o.void.get(); ok {
		return f(r, next)
	}
	return next()
}

func (o *sqOrders) EndOrder(ctx context.Context, userID, id int64, to domain.OrderStatus) (domain.Order, bool, error) {
	next := func() (domain.Order, bool, error) { return o.OrderStore.EndOrder(ctx, userID, id, to) }
	if f, ok := o.end.get(); ok {
		return f(id, next)
	}
	return next()
}

func (o *sqOrders) Stock(ctx context.Context, itemID int64) ([]domain.StockRow, error) {
	next := func() ([]domain.StockRow, error) { return o.OrderStore.Stock(ctx, itemID) }
	if f, ok := o.stock.get(); ok {
		return f(itemID, next)
	}
	return next()
}

// sqLedger is the stock ledger with hooks.
type sqLedger struct {
	domain.StockLedger
	deduct      hook[func(d domain.Deduction, next func() (domain.Deducted, error)) (domain.Deducted, error)]
	deductBatch hook[func(ds []domain.Deduction, next func() ([]domain.Deducted, []error, error)) ([]domain.Deducted, []error, error)]
	settle      hook[func(t domain.Ticket, next func() (bool, error)) (bool, error)]
	settleBatch hook[func(ts []domain.Ticket, next func() ([]bool, error)) ([]bool, error)]
	release     hook[func(o domain.Order, next func() (bool, error)) (bool, error)]
	inFlight    hook[func(itemID int64, next func() ([]domain.Flight, error)) ([]domain.Flight, error)]
	adjust      hook[func(bucket int, delta int64, next func() (int64, error)) (int64, error)]
	warm        hook[func(s domain.SaleState, next func() error) error]
	take        hook[func(bucket int, n int64, next func() (int64, error)) (int64, error)]
}

func (l *sqLedger) Take(ctx context.Context, activityID, itemID int64, bucket int, n int64, fence int64) (int64, error) {
	next := func() (int64, error) { return l.StockLedger.Take(ctx, activityID, itemID, bucket, n, fence) }
	if f, ok := l.take.get(); ok {
		return f(bucket, n, next)
	}
	return next()
}

func (l *sqLedger) Warm(ctx context.Context, s domain.SaleState, overwrite bool) error {
	next := func() error { return l.StockLedger.Warm(ctx, s, overwrite) }
	if f, ok := l.warm.get(); ok {
		return f(s, next)
	}
	return next()
}

func (l *sqLedger) Adjust(ctx context.Context, activityID, itemID int64, bucket int, delta int64, epoch string) (int64, error) {
	next := func() (int64, error) { return l.StockLedger.Adjust(ctx, activityID, itemID, bucket, delta, epoch) }
	if f, ok := l.adjust.get(); ok {
		return f(bucket, delta, next)
	}
	return next()
}

func (l *sqLedger) Deduct(ctx context.Context, d domain.Deduction) (domain.Deducted, error) {
	next := func() (domain.Deducted, error) { return l.StockLedger.Deduct(ctx, d) }
	if f, ok := l.deduct.get(); ok {
		return f(d, next)
	}
	return next()
}

func (l *sqLedger) Settle(ctx context.Context, t domain.Ticket, buckets int) (bool, error) {
	next := func() (bool, error) { return l.StockLedger.Settle(ctx, t, buckets) }
	if f, ok := l.settle.get(); ok {
		return f(t, next)
	}
	return next()
}

func (l *sqLedger) DeductBatch(ctx context.Context, ds []domain.Deduction) ([]domain.Deducted, []error, error) {
	next := func() ([]domain.Deducted, []error, error) { return l.StockLedger.DeductBatch(ctx, ds) }
	if f, ok := l.deductBatch.get(); ok {
		return f(ds, next)
	}
	return next()
}

func (l *sqLedger) SettleBatch(ctx context.Context, ts []domain.Ticket, buckets int) ([]bool, error) {
	next := func() ([]bool, error) { return l.StockLedger.SettleBatch(ctx, ts, buckets) }
	if f, ok := l.settleBatch.get(); ok {
		return f(ts, next)
	}
	return next()
}

func (l *sqLedger) Release(ctx context.Context, o domain.Order) (bool, error) {
	next := func() (bool, error) { return l.StockLedger.Release(ctx, o) }
	if f, ok := l.release.get(); ok {
		return f(o, next)
	}
	return next()
}

func (l *sqLedger) InFlight(ctx context.Context, activityID, itemID int64) ([]domain.Flight, error) {
	next := func() ([]domain.Flight, error) { return l.StockLedger.InFlight(ctx, activityID, itemID) }
	if f, ok := l.inFlight.get(); ok {
		return f(itemID, next)
	}
	return next()
}

// sqPub records what it is sent; a hook may fail a send (after recording it or not)
// or do something in its middle. n counts calls from 1. A batch send goes to the batch
// hook when one is set, else each of its requests to the one-request hook (the first
// error is the batch's), else it is recorded.
type sqPub struct {
	hook  hook[func(r domain.OrderRequest, n int64) error]
	batch hook[func(rs []domain.OrderRequest, n int64) error]
	n     atomic.Int64
	mu    sync.Mutex
	sent  []domain.OrderRequest
}

func (p *sqPub) Publish(_ context.Context, r domain.OrderRequest) error {
	n := p.n.Add(1)
	if f, ok := p.hook.get(); ok {
		return f(r, n)
	}
	p.record(r)
	return nil
}

func (p *sqPub) PublishBatch(_ context.Context, rs []domain.OrderRequest) error {
	n := p.n.Add(1)
	if f, ok := p.batch.get(); ok {
		return f(rs, n)
	}
	if f, ok := p.hook.get(); ok {
		var first error
		for _, r := range rs {
			if err := f(r, n); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, r := range rs {
		p.record(r)
	}
	return nil
}

func (p *sqPub) record(r domain.OrderRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, r)
}

// take returns what was recorded since the last take.
func (p *sqPub) take() []domain.OrderRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.sent
	p.sent = nil
	return out
}

// sq is one backend on the real services with its ports decorated.
type sq struct {
	db      *testenv.DB
	rdb     goredis.UniversalClient
	stock   *redis.Stock // the ledger itself, for looking and for direct changes
	orders  *sqOrders    // the order store as the service and the worker see it
	ledger  *sqLedger    // the ledger as the service and the worker see it
	pub     *sqPub
	svc     *sale.Service
	worker  *worker.Worker
	cfg     sale.Config
	proxy   *testenv.Proxy // set when the service reaches Redis through a proxy
	catalog domain.Catalog
}

type sqOpts struct {
	// redisProxy: the service and the worker reach Redis through a proxy the test can
	// cut (the rig's own looks go straight).
	redisProxy bool
	// stale: the service's window for tickets lost with Redis (sale.Config.StaleTicket
	// and StaleSync); 0: the defaults.
	stale time.Duration
}

func newSQ(t *testing.T, o sqOpts) *sq {
	t.Helper()
	ctx := context.Background()
	e := &sq{db: testenv.MySQL(t), rdb: testenv.Redis(t), pub: &sqPub{}}
	e.stock = redis.NewStock(e.rdb, time.Hour)
	if err := e.stock.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var ledger domain.StockLedger = e.stock
	if o.redisProxy {
		e.proxy = testenv.NewProxy(t, testenv.RedisAddr())
		prdb := goredis.NewClient(&goredis.Options{Addr: e.proxy.Addr(), PoolSize: 16, MaxRetries: -1,
			DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
		t.Cleanup(func() { prdb.Close() })
		ledger = redis.NewStock(prdb, time.Hour)
	}
	e.orders = &sqOrders{OrderStore: e.db.Store}
	e.ledger = &sqLedger{StockLedger: ledger}
	e.catalog = e.db.Store
	e.cfg = sale.Config{PublishAttempts: 2, ReplayWait: 300 * time.Millisecond, EndWithin: 3 * time.Second,
		TicketSecret: []byte("the fleet's secret"), StaleTicket: o.stale, StaleSync: o.stale}
	e.svc = sale.New(sale.Deps{Catalog: e.db.Store, Orders: e.orders, Ledger: e.ledger, Cache: redis.NewCache(e.rdb),
		Publisher: e.pub, Log: testLog(t)}, e.cfg)
	t.Cleanup(e.svc.Close) // its tickets' late ends log to t
	e.worker = worker.New(e.orders, e.ledger, e.db.Store, worker.Config{WriteAttempts: 1, RetryFor: time.Millisecond}, nil, testLog(t))
	return e
}

// sale creates and publishes an activity of one item open from a minute ago for an hour.
func (e *sq) sale(t *testing.T, strategy domain.Strategy, stock int64, limit, buckets int) *domain.Activity {
	t.Helper()
	return openSale(t, e.svc, &domain.Activity{Name: "sequence", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour),
		Strategy: strategy, PerUserLimit: limit, BucketCount: buckets,
		Items: []domain.Item{{Name: "phone", PriceCents: 100, TotalStock: stock}}})
}

func (e *sq) place(a *domain.Activity, user int64, qty int, key string) (sale.Placed, error) {
	return placeOne(e.svc, a, user, qty, key)
}

func (e *sq) buy(t *testing.T, a *domain.Activity, user int64, qty int, key string) sale.Placed {
	t.Helper()
	return mustBuy(t, e.svc, a, user, qty, key)
}

// deliver hands reqs (or, when none are given, whatever was published since the last
// take) to the worker as final deliveries, one at a time, in order.
func (e *sq) deliver(t *testing.T, reqs ...domain.OrderRequest) {
	t.Helper()
	if len(reqs) == 0 {
		reqs = e.pub.take()
	}
	deliverInOrder(t, e.worker, reqs)
}

// lockStockRow holds the stock row of a's item (bucket 0) in a transaction of the
// test's until it ends (rolled back at the test's end at the latest): a write of the
// item inserts its order and waits for the row, uncommitted.
func (e *sq) lockStockRow(t *testing.T, a *domain.Activity) *sql.Tx {
	t.Helper()
	ctx := context.Background()
	lock, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Rollback() })
	if _, err := lock.ExecContext(ctx, `SELECT available FROM item_stock WHERE item_id = ? AND bucket = 0 FOR UPDATE`, a.Items[0].ID); err != nil {
		t.Fatal(err)
	}
	return lock
}

// ticket reads a ticket straight from Redis.
func (e *sq) ticket(t *testing.T, user int64, ticket string) domain.Ticket {
	t.Helper()
	tk, err := e.stock.Ticket(context.Background(), user, ticket)
	if err != nil && !domain.IsCode(err, domain.ENotFound) {
		t.Fatal(err)
	}
	return tk
}

func (e *sq) wantTicket(t *testing.T, what string, user int64, ticket string, want domain.TicketStatus) domain.Ticket {
	t.Helper()
	tk := e.ticket(t, user, ticket)
	if tk.Status != want {
		t.Fatalf("%s: ticket %s: got %+v, want %s", what, ticket, tk, want)
	}
	return tk
}

// rows are an item's MySQL stock rows' available units, by bucket.
func (e *sq) rows(t *testing.T, itemID int64) []int64 {
	t.Helper()
	rs, err := e.db.Store.Stock(context.Background(), itemID)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Available
	}
	return out
}

// redisStock is the item's Redis counters over n buckets and what is in flight.
func (e *sq) redisStock(t *testing.T, a *domain.Activity, n int) domain.ItemState {
	t.Helper()
	st, err := e.stock.State(context.Background(), a.ID, a.Items[0].ID, n)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wantStock fails unless MySQL's rows and Redis's counters (over as many buckets as
// MySQL has rows) are want, before any reconciler pass.
func (e *sq) wantStock(t *testing.T, what string, a *domain.Activity, want ...int64) {
	t.Helper()
	rows := e.rows(t, a.Items[0].ID)
	st := e.redisStock(t, a, len(rows))
	if !slices.Equal(rows, want) || !slices.Equal(st.BucketStock, want) {
		t.Fatalf("%s: got mysql %v, redis %v (%d in flight); want %v in both", what, rows, st.BucketStock, st.InFlight, want)
	}
}

// flushItem deletes every Redis key of the item at once (they share its hash tag), as
// a Redis that restarted empty would have lost them.
func (e *sq) flushItem(t *testing.T, a *domain.Activity) {
	t.Helper()
	if err := e.flush(a); err != nil {
		t.Fatal(err)
	}
}

// flush is flushItem for goroutines other than the test's.
func (e *sq) flush(a *domain.Activity) error {
	// One script: the keys go at once, as in a restart (the test's Redis is one node).
	return e.rdb.Eval(context.Background(), `local ks = redis.call('KEYS', ARGV[1])
for i = 1, #ks, 1000 do redis.call('DEL', unpack(ks, i, math.min(i + 999, #ks))) end
return #ks`, nil, fmt.Sprintf("sk:{a%d:i%d}*", a.ID, a.Items[0].ID)).Err()
}

// sweep runs the rebalancer over every item and fails unless the item's stock is then
// want in MySQL and Redis alike.
func (e *sq) sweep(t *testing.T, a *domain.Activity, want ...int64) {
	t.Helper()
	if err := e.svc.RebalanceAll(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	e.wantStock(t, "swept", a, want...)
}

// cancelThen cancels a user's order with after run once the cancel has committed in
// MySQL and before its release reaches Redis, and fails unless the order is cancelled.
func (e *sq) cancelThen(t *testing.T, user, orderID int64, after func() error) {
	t.Helper()
	e.orders.end.set(func(id int64, next func() (domain.Order, bool, error)) (domain.Order, bool, error) {
		ended, changed, err := next()
		if err == nil {
			err = after()
		}
		return ended, changed, err
	})
	ended, err := e.svc.Cancel(context.Background(), user, orderID)
	e.orders.end.clear()
	if err != nil || ended.Status != domain.OrderCancelled {
		t.Fatalf("cancel: got %+v, %v", ended, err)
	}
}

// restore loses the item in Redis and has another shopper's order restore it from
// MySQL.
func (e *sq) restore(a *domain.Activity, user int64) error {
	if err := e.flush(a); err != nil {
		return err
	}
	_, err := e.place(a, user, 1, "")
	return err
}

// wantLimitLeft buys n units for user and fails unless one more is past their limit:
// Redis counts what they hold, no more and no less.
func (e *sq) wantLimitLeft(t *testing.T, a *domain.Activity, user int64, n int) {
	t.Helper()
	e.buy(t, a, user, n, "")
	if _, err := e.place(a, user, 1, ""); !domain.IsCode(err, domain.ELimitExceeded) {
		t.Fatalf("one more unit for user %d past %d: got %v, want limit_exceeded", user, n, err)
	}
}

// flushIdle is flush when no ticket of the item is in flight (else it does nothing):
// a restore then reads MySQL with every admitted order written, so Redis, once
// settled, is never over MySQL.
func (e *sq) flushIdle(a *domain.Activity) error {
	tag := fmt.Sprintf("sk:{a%d:i%d}", a.ID, a.Items[0].ID)
	return e.rdb.Eval(context.Background(), `if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
local ks = redis.call('KEYS', ARGV[1])
for i = 1, #ks, 1000 do redis.call('DEL', unpack(ks, i, math.min(i + 999, #ks))) end
return #ks`, []string{tag + ":inflight"}, tag+"*").Err()
}

// dropResult deletes a ticket's result in Redis, as its TTL would.
func (e *sq) dropResult(t *testing.T, a *domain.Activity, ticket string) {
	t.Helper()
	n, err := e.rdb.Del(context.Background(), fmt.Sprintf("sk:{a%d:i%d}:t:%s", a.ID, a.Items[0].ID, ticket)).Result()
	if err != nil || n != 1 {
		t.Fatalf("drop result of %s: got %d, %v", ticket, n, err)
	}
}

// lockStock holds the item's stock rows in a MySQL transaction of its own, so a write
// of an order stops half way (its order row inserted, its ticket's key held) at the
// stock update until unlock.
func (e *sq) lockStock(t *testing.T, itemID int64) (unlock func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT available FROM item_stock WHERE item_id = ? FOR UPDATE`, itemID)
	if err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	rows.Close()
	var once sync.Once
	unlock = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(unlock)
	return unlock
}

// waitLockWait waits until a statement containing every one of parts has been
// running in the test's database for a while: it waits for a row lock (statements of
// this item take a millisecond otherwise).
func (e *sq) waitLockWait(t *testing.T, parts ...string) {
	t.Helper()
	if err := e.lockWaited(parts...); err != nil {
		t.Fatal(err)
	}
}

// lockWaited is waitLockWait for goroutines other than the test's.
func (e *sq) lockWaited(parts ...string) error {
	q := `SELECT COALESCE(MIN(ID), 0) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND COMMAND = 'Query'`
	var args []any
	for _, p := range parts {
		q += ` AND INFO LIKE ?`
		args = append(args, "%"+p+"%")
	}
	deadline := time.Now().Add(15 * time.Second)
	var seen int64
	for {
		var id int64
		if err := e.db.QueryRowContext(context.Background(), q, args...).Scan(&id); err != nil {
			return err
		}
		if id != 0 && id == seen {
			return nil // the same statement, still there 100 ms later
		}
		seen = id
		if time.Now().After(deadline) {
			return fmt.Errorf("no statement with %q waits for a lock", parts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sqCheck says what invariants may allow.
type sqCheck struct {
	sold    int64 // units of live orders; -1: any
	repairs bool  // the reconciler may repair stock (a known drift)
}

// invariants checks DESIGN.md's invariants for the item of a once it has settled:
// nothing in flight; no oversell (units sold + MySQL available = total stock, and no
// more sold than the total); the per-user limit in orders and in purchases; one order
// per ticket and per shopper, item and idempotency key; no ticket reads failed while
// its order exists; and after a reconciler pass (which must repair nothing unless
// c.repairs), Redis stock equals MySQL available in every bucket.
func (e *sq) invariants(t *testing.T, a *domain.Activity, c sqCheck) {
	t.Helper()
	ctx := context.Background()
	itemID := a.Items[0].ID
	cur, err := e.db.Store.Activity(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	item, _ := cur.Item(itemID)
	flights, err := e.stock.InFlight(ctx, a.ID, itemID)
	if err != nil || len(flights) != 0 {
		t.Fatalf("invariants: got %d tickets in flight (%v), want none", len(flights), err)
	}
	var units, orders int64
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(quantity), 0) FROM orders WHERE item_id = ? AND status IN ('created', 'paid')`, itemID).Scan(&orders, &units); err != nil {
		t.Fatal(err)
	}
	rows := e.rows(t, itemID)
	var left int64
	for _, n := range rows {
		left += n
	}
	if units > item.TotalStock || units+left != item.TotalStock {
		t.Fatalf("invariants: %d units sold and %d available of %d in stock", units, left, item.TotalStock)
	}
	if c.sold >= 0 && units != c.sold {
		t.Fatalf("invariants: got %d units sold, want %d", units, c.sold)
	}
	var bad int
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT user_id FROM orders WHERE item_id = ? AND status IN ('created', 'paid')
		GROUP BY user_id HAVING SUM(quantity) > ?) x`, itemID, cur.PerUserLimit).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("invariants: %d users past the limit of %d (%v)", bad, cur.PerUserLimit, err)
	}
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM purchases p WHERE p.item_id = ? AND p.units <> (SELECT COALESCE(SUM(o.quantity), 0)
		FROM orders o WHERE o.item_id = p.item_id AND o.user_id = p.user_id AND o.status IN ('created', 'paid'))`, itemID).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("invariants: %d buyers whose purchases differ from their orders (%v)", bad, err)
	}
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT user_id FROM orders WHERE item_id = ? AND idem_key IS NOT NULL
		GROUP BY user_id, idem_key HAVING COUNT(*) > 1) x`, itemID).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("invariants: %d idempotency keys with more than one order (%v)", bad, err)
	}
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) - COUNT(DISTINCT ticket) FROM orders WHERE item_id = ?`, itemID).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("invariants: %d tickets with more than one row (%v)", bad, err)
	}
	// A ticket never reads failed while its order exists.
	rs, err := e.db.QueryContext(ctx, `SELECT ticket, user_id, id FROM orders WHERE item_id = ? AND status <> 'void'`, itemID)
	if err != nil {
		t.Fatal(err)
	}
	type owned struct {
		ticket   string
		user, id int64
	}
	var written []owned
	for rs.Next() {
		var o owned
		if err := rs.Scan(&o.ticket, &o.user, &o.id); err != nil {
			t.Fatal(err)
		}
		written = append(written, o)
	}
	rs.Close()
	for _, o := range written {
		if tk := e.ticket(t, o.user, o.ticket); tk.Status == domain.TicketFailed {
			t.Fatalf("invariants: ticket %s reads failed (%s) while its order %d exists", o.ticket, tk.Reason, o.id)
		}
	}
	reps, err := e.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("invariants: reconcile: %v", err)
	}
	for _, r := range reps {
		if r.ItemID == itemID && !c.repairs {
			t.Fatalf("invariants: the reconciler repaired %+v, want nothing to repair", r)
		}
	}
	st := e.redisStock(t, a, max(len(rows), cur.BucketCount))
	if !st.Loaded || !slices.Equal(st.BucketStock[:len(rows)], rows) || st.Available() != left {
		t.Fatalf("invariants: after a reconciler pass redis holds %v (loaded %v), mysql %v", st.BucketStock, st.Loaded, rows)
	}
}

// errLost is a call whose answer was lost: it may or may not have run.
var errLost = errors.New("injected: i/o timeout")

// errDown is a dependency that cannot be reached: nothing was done.
var errDown = errors.New("injected: connection refused")

// contains reports whether err's text holds s.
func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }
