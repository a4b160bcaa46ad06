package sale_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/worker"
)

// The sale rules on the in-memory adapters (backend/inmem), which pass the same
// contract tests as MySQL and Redis (backend/domain/domaintest): every rule in
// milliseconds. The tests on the real services (sale_test.go, bucket_test.go) stay.

// rig is one backend on in-memory adapters: a store, a ledger and a cache sharing one
// settable clock, a publisher that records what it is given, and a worker.
type rig struct {
	clock  *inmem.Clock
	store  *inmem.Store
	orders *faultyOrders // the store as the service and the worker see it
	ledger *faultyLedger // the ledger as the service sees it
	pub    *recorder
	cache  domain.Cache // the shared cache (Redis), one for all replicas
	svc    *sale.Service
	worker *worker.Worker
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{clock: inmem.NewClock(time.Now()), pub: &recorder{}, cache: inmem.NewCache()}
	r.store = inmem.NewStore(inmem.WithClock(r.clock.Now))
	r.orders = &faultyOrders{OrderStore: r.store}
	r.ledger = &faultyLedger{StockLedger: inmem.NewLedger(time.Hour, inmem.WithClock(r.clock.Now))}
	r.svc = r.service(t, r.ledger, r.pub)
	r.worker = worker.New(r.orders, r.ledger, r.store, worker.Config{WriteAttempts: 1, RetryFor: time.Millisecond}, nil, testLog(t))
	return r
}

// service returns another replica on the rig's store and cache, with its own ledger
// and publisher.
func (r *rig) service(t *testing.T, ledger domain.StockLedger, pub domain.Publisher) *sale.Service {
	svc := sale.New(sale.Deps{Catalog: faultyCatalog{r.store, r.orders}, Orders: r.orders, Ledger: ledger, Cache: r.cache, Publisher: pub, Log: testLog(t)},
		sale.Config{PublishAttempts: 2, ReplayWait: 30 * time.Millisecond, OrdersSettle: -1})
	t.Cleanup(svc.Close) // its tickets' late ends log to t
	return svc
}

// sale creates and publishes an activity of one item, open from two hours ago for four
// hours.
func (r *rig) sale(t *testing.T, strategy domain.Strategy, stock int64, limit, buckets int) *domain.Activity {
	t.Helper()
	now := time.Now()
	return openSale(t, r.svc, &domain.Activity{Name: "rules", Start: now.Add(-2 * time.Hour), End: now.Add(2 * time.Hour), Strategy: strategy,
		PerUserLimit: limit, BucketCount: buckets, Items: []domain.Item{{Name: "phone", PriceCents: 250, TotalStock: stock}}})
}

func (r *rig) place(a *domain.Activity, user int64, qty int, key string) (sale.Placed, error) {
	return placeOne(r.svc, a, user, qty, key)
}

// buy places an order and fails unless it is admitted.
func (r *rig) buy(t *testing.T, a *domain.Activity, user int64, qty int, key string) sale.Placed {
	t.Helper()
	return mustBuy(t, r.svc, a, user, qty, key)
}

// deliver hands reqs to the worker, in order, or when none are given, the requests
// the publisher recorded since they were last taken.
func (r *rig) deliver(t *testing.T, reqs ...domain.OrderRequest) {
	t.Helper()
	if len(reqs) == 0 {
		reqs = r.pub.take()
	}
	deliverInOrder(t, r.worker, reqs)
}

// openSale creates a and publishes it.
func openSale(t *testing.T, svc *sale.Service, a *domain.Activity) *domain.Activity {
	t.Helper()
	ctx := context.Background()
	if err := svc.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	a, err := svc.Publish(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// placeOne places user's order of qty units of a's first item.
func placeOne(svc *sale.Service, a *domain.Activity, user int64, qty int, key string) (sale.Placed, error) {
	return svc.PlaceOrder(context.Background(), sale.PlaceOrder{UserID: user, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: qty, IdempotencyKey: key})
}

// mustBuy places an order and fails unless it is admitted.
func mustBuy(t *testing.T, svc *sale.Service, a *domain.Activity, user int64, qty int, key string) sale.Placed {
	t.Helper()
	p, err := placeOne(svc, a, user, qty, key)
	if err != nil {
		t.Fatalf("user %d buys %d: %v", user, qty, err)
	}
	return p
}

// deliverInOrder hands reqs to w as final deliveries, one at a time, in order.
func deliverInOrder(t *testing.T, w *worker.Worker, reqs []domain.OrderRequest) {
	t.Helper()
	for _, req := range reqs {
		if err := w.Handle(context.Background(), []domain.Delivery{{ID: req.Ticket, Request: req, Attempt: 1, Last: true}}); err != nil {
			t.Fatalf("deliver %s: %v", req.Ticket, err)
		}
	}
}

// stock returns the item's stock rows in the store and its counters in the ledger, over
// the wider of the activity's bucket count and the store's rows.
func (r *rig) stock(t *testing.T, a *domain.Activity) (rows []int64, ledger domain.ItemState) {
	t.Helper()
	ctx := context.Background()
	srows, err := r.store.Stock(ctx, a.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range srows {
		rows = append(rows, row.Available)
	}
	ledger, err = r.ledger.State(ctx, a.ID, a.Items[0].ID, max(a.BucketCount, len(rows)))
	if err != nil {
		t.Fatal(err)
	}
	return rows, ledger
}

// wantStock fails unless the store's rows and the ledger's counters are want.
func (r *rig) wantStock(t *testing.T, what string, a *domain.Activity, want ...int64) {
	t.Helper()
	rows, st := r.stock(t, a)
	if !slices.Equal(rows, want) || !slices.Equal(st.BucketStock, want) {
		t.Fatalf("%s: got store %v, ledger %v; want %v in both", what, rows, st.BucketStock, want)
	}
}

func (r *rig) wantTicket(t *testing.T, what string, user int64, ticket string, status domain.TicketStatus) domain.Ticket {
	t.Helper()
	tk, err := r.svc.Ticket(context.Background(), user, ticket)
	if err != nil || tk.Status != status {
		t.Fatalf("%s: ticket %s: got %+v, %v; want %s", what, ticket, tk, err, status)
	}
	return tk
}

func wantErr(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := domain.ErrorCode(err); got != code {
		t.Fatalf("%s: got %q (%v), want %q", what, got, err, code)
	}
}

// recorder is a publisher that keeps what it is sent, and hands it on to next when
// there is one. Every failEvery-th send fails before anything is kept; every dupEvery-th
// request goes on to next twice (the queue delivering a message again).
type recorder struct {
	next                domain.Publisher
	failEvery, dupEvery int

	mu      sync.Mutex
	calls   int
	sent    []domain.OrderRequest
	pending []domain.OrderRequest // sent, not yet taken
}

func (p *recorder) Publish(ctx context.Context, req domain.OrderRequest) error {
	p.mu.Lock()
	p.calls++
	n := p.calls
	if p.failEvery > 0 && n%p.failEvery == 0 {
		p.mu.Unlock()
		return errors.New("injected: broker unreachable")
	}
	p.sent = append(p.sent, req)
	p.pending = append(p.pending, req)
	p.mu.Unlock()
	if p.next == nil {
		return nil
	}
	if err := p.next.Publish(ctx, req); err != nil {
		return err
	}
	if p.dupEvery > 0 && n%p.dupEvery == 0 {
		return p.next.Publish(ctx, req)
	}
	return nil
}

// PublishBatch is one send: when it fails (every failEvery-th call) none of rs is
// kept; otherwise each is kept and handed on as Publish does.
func (p *recorder) PublishBatch(ctx context.Context, rs []domain.OrderRequest) error {
	p.mu.Lock()
	p.calls++
	n := p.calls
	if p.failEvery > 0 && n%p.failEvery == 0 {
		p.mu.Unlock()
		return errors.New("injected: broker unreachable")
	}
	p.sent = append(p.sent, rs...)
	p.pending = append(p.pending, rs...)
	p.mu.Unlock()
	if p.next == nil {
		return nil
	}
	for _, req := range rs {
		if err := p.next.Publish(ctx, req); err != nil {
			return err
		}
	}
	if p.dupEvery > 0 && n%p.dupEvery == 0 {
		return p.next.Publish(ctx, rs[0])
	}
	return nil
}

func (p *recorder) take() []domain.OrderRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pending
	p.pending = nil
	return out
}

func (p *recorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sent)
}

// faultyOrders is an order store with failures to order: writes fail (leaving nothing,
// or committing and losing the answer), looking an order up fails, stock changes fail.
type faultyOrders struct {
	domain.OrderStore
	// failWrite decides a write's fate by its call number (from 1): nil to go ahead.
	failWrite   atomic.Pointer[func(n int64) error]
	lostAnswer  atomic.Bool  // writes commit, then fail as if the answer was lost
	failLookup  atomic.Bool  // OrderByTicket, OrdersByTickets and VoidTicket fail
	failStockOp atomic.Bool  // AddStock, MoveStock and stock changes of UpdateActivity fail
	lostStockOp atomic.Bool  // stock changes of UpdateActivity commit, then fail as if the answer was lost
	slowStockOp atomic.Int64 // stock changes of UpdateActivity wait this many ms before going to the store
	failItem    atomic.Bool  // the catalog's Item fails (MySQL away)
	writes      atomic.Int64
}

var errInjected = errors.New("injected: connection reset")

func (f *faultyOrders) failWrites(fn func(n int64) error) { f.failWrite.Store(&fn) }

func (f *faultyOrders) writeFault() error {
	n := f.writes.Add(1)
	if fn := f.failWrite.Load(); fn != nil {
		return (*fn)(n)
	}
	return nil
}

func (f *faultyOrders) WriteOrder(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	if err := f.writeFault(); err != nil {
		return domain.Written{}, err
	}
	w, err := f.OrderStore.WriteOrder(ctx, r, limit)
	if err == nil && f.lostAnswer.Load() {
		return domain.Written{}, fmt.Errorf("commit: %w", errInjected)
	}
	return w, err
}

func (f *faultyOrders) WriteBatch(ctx context.Context, reqs []domain.OrderRequest, limit int) ([]domain.Written, []error) {
	if err := f.writeFault(); err != nil {
		errs := make([]error, len(reqs))
		for i := range errs {
			errs[i] = err
		}
		return make([]domain.Written, len(reqs)), errs
	}
	ws, errs := f.OrderStore.WriteBatch(ctx, reqs, limit)
	if f.lostAnswer.Load() {
		for i, err := range errs {
			if err == nil {
				ws[i], errs[i] = domain.Written{}, fmt.Errorf("commit: %w", errInjected)
			}
		}
	}
	return ws, errs
}

func (f *faultyOrders) OrderByTicket(ctx context.Context, ticket string) (domain.Order, error) {
	if f.failLookup.Load() {
		return domain.Order{}, errInjected
	}
	return f.OrderStore.OrderByTicket(ctx, ticket)
}

func (f *faultyOrders) OrdersByTickets(ctx context.Context, tickets []string) (map[string]domain.Order, error) {
	if f.failLookup.Load() {
		return nil, errInjected
	}
	return f.OrderStore.OrdersByTickets(ctx, tickets)
}

func (f *faultyOrders) VoidTicket(ctx context.Context, r domain.OrderRequest) (domain.Order, bool, error) {
	if f.failLookup.Load() {
		return domain.Order{}, false, errInjected
	}
	return f.OrderStore.VoidTicket(ctx, r)
}

// faultyCatalog is the rig's catalog, whose stock changes fail with the order store's
// failStockOp (MySQL writes them in the same transaction).
type faultyCatalog struct {
	domain.Catalog
	orders *faultyOrders
}

func (f faultyCatalog) Item(ctx context.Context, id int64) (domain.Item, error) {
	if f.orders.failItem.Load() {
		return domain.Item{}, errInjected
	}
	return f.Catalog.Item(ctx, id)
}

func (f faultyCatalog) UpdateActivity(ctx context.Context, id int64, c domain.ActivityChange) error {
	for _, ic := range c.Items {
		if ms := f.orders.slowStockOp.Load(); len(ic.Stock) > 0 && ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		if len(ic.Stock) > 0 && f.orders.failStockOp.Load() {
			return domain.NotCommitted(errInjected)
		}
		if len(ic.Stock) > 0 && f.orders.lostStockOp.Load() {
			if err := f.Catalog.UpdateActivity(ctx, id, c); err != nil {
				return err
			}
			return fmt.Errorf("commit: %w: %w", domain.ErrOutcomeUnknown, errInjected)
		}
	}
	return f.Catalog.UpdateActivity(ctx, id, c)
}

func (f *faultyOrders) AddStock(ctx context.Context, itemID int64, bucket int, delta int64) error {
	if f.failStockOp.Load() {
		return domain.NotCommitted(errInjected)
	}
	return f.OrderStore.AddStock(ctx, itemID, bucket, delta)
}

func (f *faultyOrders) MoveStock(ctx context.Context, itemID int64, from, to int, n int64) error {
	if f.failStockOp.Load() {
		return domain.NotCommitted(errInjected)
	}
	return f.OrderStore.MoveStock(ctx, itemID, from, to, n)
}

// faultyLedger is a ledger whose Release fails the next failRelease times.
type faultyLedger struct {
	domain.StockLedger
	failRelease atomic.Int32
	failWarm    atomic.Int32
	failSetSale atomic.Int32
	holdsTaken  atomic.Int32 // HoldResets calls
	holdsLet    atomic.Int32 // LetResets calls
	failHolds   atomic.Int32 // the next HoldResets calls fail, taking nothing
	holdsMu     sync.Mutex
	active      map[string]bool // holds taken and not let go
}

func (f *faultyLedger) HoldResets(ctx context.Context, activityID, itemID int64, ttl time.Duration) (string, error) {
	f.holdsTaken.Add(1)
	if f.failHolds.Add(-1) >= 0 {
		return "never-taken", errInjected
	}
	h, err := f.StockLedger.HoldResets(ctx, activityID, itemID, ttl)
	if err == nil {
		f.holdsMu.Lock()
		if f.active == nil {
			f.active = map[string]bool{}
		}
		f.active[h] = true
		f.holdsMu.Unlock()
	}
	return h, err
}

func (f *faultyLedger) LetResets(ctx context.Context, activityID, itemID int64, hold string) error {
	f.holdsLet.Add(1)
	f.holdsMu.Lock()
	delete(f.active, hold)
	f.holdsMu.Unlock()
	return f.StockLedger.LetResets(ctx, activityID, itemID, hold)
}

// activeHolds is how many holds are taken and not let go.
func (f *faultyLedger) activeHolds() int {
	f.holdsMu.Lock()
	defer f.holdsMu.Unlock()
	return len(f.active)
}

func (f *faultyLedger) SetSale(ctx context.Context, st domain.SaleState) (bool, error) {
	if f.failSetSale.Add(-1) >= 0 {
		return false, errInjected
	}
	return f.StockLedger.SetSale(ctx, st)
}

func (f *faultyLedger) Warm(ctx context.Context, st domain.SaleState, overwrite bool) error {
	if f.failWarm.Add(-1) >= 0 {
		return errInjected
	}
	return f.StockLedger.Warm(ctx, st, overwrite)
}

func (f *faultyLedger) Release(ctx context.Context, o domain.Order) (bool, error) {
	if f.failRelease.Add(-1) >= 0 {
		return false, errInjected
	}
	return f.StockLedger.Release(ctx, o)
}

func TestRulesPlaceSync(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 10, 3, 1)
	p := r.buy(t, a, 7, 2, "")
	if p.Status != domain.TicketCreated || p.OrderID <= 0 || p.Replayed || p.Ticket == "" {
		t.Fatalf("got %+v, want a created order", p)
	}
	o, err := r.svc.Order(ctx, 7, p.OrderID)
	if err != nil || o.Ticket != p.Ticket || o.Quantity != 2 || o.AmountCents != 500 || o.Status != domain.OrderCreated {
		t.Fatalf("order: got %+v, %v", o, err)
	}
	tk := r.wantTicket(t, "written", 7, p.Ticket, domain.TicketCreated)
	if tk.OrderID != p.OrderID {
		t.Fatalf("ticket: got order %d, want %d", tk.OrderID, p.OrderID)
	}
	r.wantStock(t, "after", a, 8)
	if r.pub.count() != 0 {
		t.Fatalf("a sync order went to the queue")
	}
	if n := r.svc.Remaining(ctx, a, a.Items[0].ID); n != 8 {
		t.Fatalf("remaining: got %d, want 8", n)
	}
	if os, next, err := r.svc.ShopperOrders(ctx, 7, domain.OrderQuery{}); err != nil || len(os) != 1 || os[0].ID != p.OrderID || next != 0 {
		t.Fatalf("orders: got %v, next %d, %v", os, next, err)
	}
}

func TestRulesPlaceQueued(t *testing.T) {
	for _, tt := range []struct {
		strategy domain.Strategy
		buckets  int
	}{{domain.StrategyAsync, 1}, {domain.StrategyBucket, 4}} {
		t.Run(string(tt.strategy), func(t *testing.T) {
			r := newRig(t)
			a := r.sale(t, tt.strategy, 20, 3, tt.buckets)
			before := time.Now().UnixMilli()
			p := r.buy(t, a, 7, 3, "")
			if p.Status != domain.TicketPending || p.OrderID != 0 || p.Ticket == "" {
				t.Fatalf("got %+v, want a pending ticket", p)
			}
			sent := r.pub.take()
			if len(sent) != 1 {
				t.Fatalf("got %d requests sent, want 1", len(sent))
			}
			req := sent[0]
			want := domain.OrderRequest{Ticket: p.Ticket, UserID: 7, ActivityID: a.ID, ItemID: a.Items[0].ID, Bucket: home(7, tt.buckets),
				Quantity: 3, AmountCents: 750, AdmittedAt: req.AdmittedAt, Trace: req.Trace}
			if req.AdmittedAt < before || !reflect.DeepEqual(req, want) {
				t.Fatalf("sent %+v, want %+v admitted after %d", req, want, before)
			}
			r.wantTicket(t, "sent", 7, p.Ticket, domain.TicketPending)
			rows, st := r.stock(t, a)
			if st.Available() != 17 || st.Tickets != 1 || st.InFlightBy[req.Bucket] != 3 {
				t.Fatalf("ledger: got %+v, want 3 units in flight in bucket %d", st, req.Bucket)
			}
			if !slices.Equal(rows, domain.SplitStock(20, tt.buckets)) {
				t.Fatalf("store: got %v before the worker wrote", rows)
			}
			r.deliver(t, req)
			tk := r.wantTicket(t, "written", 7, p.Ticket, domain.TicketCreated)
			o, err := r.svc.Order(context.Background(), 7, tk.OrderID)
			if err != nil || o.Ticket != p.Ticket || o.Bucket != req.Bucket {
				t.Fatalf("order: got %+v, %v", o, err)
			}
			rows, st = r.stock(t, a)
			if !slices.Equal(rows, st.BucketStock) || st.Tickets != 0 {
				t.Fatalf("after the worker: got store %v, ledger %+v", rows, st)
			}
		})
	}
}

func TestRulesRefusals(t *testing.T) {
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 3, 2, 1)
	for _, tt := range []struct {
		name string
		p    sale.PlaceOrder
		want string
	}{
		{"no user", sale.PlaceOrder{ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}, domain.EBadRequest},
		{"zero quantity", sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID}, domain.EBadRequest},
		{"too many", sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: domain.MaxQuantity + 1}, domain.EBadRequest},
		{"long key", sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1, IdempotencyKey: strings.Repeat("k", 129)}, domain.EBadRequest},
		{"unknown activity", sale.PlaceOrder{UserID: 1, ActivityID: a.ID + 100, ItemID: a.Items[0].ID, Quantity: 1}, domain.ENotFound},
		{"unknown item", sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID + 100, Quantity: 1}, domain.ENotFound},
		{"within the limit", sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 2}, ""},
		{"past the limit", sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}, domain.ELimitExceeded},
		{"more than is left", sale.PlaceOrder{UserID: 2, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 2}, domain.EInsufficientStock},
		{"the last unit", sale.PlaceOrder{UserID: 2, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}, ""},
		{"sold out", sale.PlaceOrder{UserID: 3, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}, domain.ESoldOut},
	} {
		_, err := r.svc.PlaceOrder(context.Background(), tt.p)
		wantErr(t, tt.name, err, tt.want)
	}
	r.wantStock(t, "after", a, 0)
	st, err := r.svc.Stats(context.Background(), a.ID)
	shed := st.BackendShed
	if err != nil || shed[domain.ESoldOut] != 1 || shed[domain.EInsufficientStock] != 1 || shed[domain.ELimitExceeded] != 1 {
		t.Fatalf("shed: got %v, %v", shed, err)
	}
}

func TestRulesWindow(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	start := r.clock.Now().Add(time.Hour)
	a := &domain.Activity{Name: "later", Start: start, End: start.Add(time.Hour), Strategy: domain.StrategySync, PerUserLimit: 1, BucketCount: 1,
		Items: []domain.Item{{Name: "phone", PriceCents: 1, TotalStock: 5}}}
	if err := r.svc.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	_, err := r.place(a, 1, 1, "")
	wantErr(t, "a draft", err, domain.ENotFound)
	if _, err := r.svc.Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = r.place(a, 1, 1, "")
	wantErr(t, "before the start", err, domain.ENotStarted)
	r.clock.Advance(time.Hour)
	r.buy(t, a, 1, 1, "")
	r.clock.Advance(time.Hour)
	_, err = r.place(a, 2, 1, "")
	wantErr(t, "at the end", err, domain.EEnded)
	// A new window, once published, is what the ledger checks.
	end := r.clock.Now().Add(time.Minute)
	if _, err := r.svc.Update(ctx, a.ID, domain.ActivityChange{End: &end}); err != nil {
		t.Fatal(err)
	}
	r.buy(t, a, 2, 1, "")
	r.wantStock(t, "after", a, 3)
}

func TestRulesIdempotencyKey(t *testing.T) {
	t.Run("sync", func(t *testing.T) {
		r := newRig(t)
		a := r.sale(t, domain.StrategySync, 10, 1, 1)
		first := r.buy(t, a, 1, 1, "key")
		again := r.buy(t, a, 1, 1, "key")
		if !again.Replayed || again.OrderID != first.OrderID || again.Ticket != first.Ticket || again.Status != domain.TicketCreated {
			t.Fatalf("replay: got %+v, want the first answer %+v", again, first)
		}
		other := r.buy(t, a, 2, 1, "key") // keys are per user
		if other.Replayed || other.OrderID == first.OrderID {
			t.Fatalf("another user's key: got %+v", other)
		}
		r.wantStock(t, "after", a, 8)
		// A replay while the first is still being written: the ticket, pending.
		tk := domain.NewTicket(a.ID, a.Items[0].ID, "slow")
		if _, err := r.ledger.Deduct(context.Background(), domain.Deduction{ActivityID: a.ID, ItemID: a.Items[0].ID, UserID: 3, Quantity: 1,
			IdempotencyKey: "slow", Ticket: tk, Buckets: 1}); err != nil {
			t.Fatal(err)
		}
		p := r.buy(t, a, 3, 1, "slow")
		if !p.Replayed || p.Status != domain.TicketPending || p.Ticket != tk {
			t.Fatalf("replay in flight: got %+v, want %s pending", p, tk)
		}
	})
	t.Run("async", func(t *testing.T) {
		r := newRig(t)
		a := r.sale(t, domain.StrategyAsync, 10, 1, 1)
		first := r.buy(t, a, 1, 1, "key")
		for n := 0; n < 2; n++ {
			again := r.buy(t, a, 1, 1, "key")
			if !again.Replayed || again.Ticket != first.Ticket || again.Status != domain.TicketPending {
				t.Fatalf("replay %d: got %+v", n, again)
			}
			r.deliver(t)
		}
		if r.pub.count() != 1 {
			t.Fatalf("got %d requests sent, want 1", r.pub.count())
		}
		r.wantTicket(t, "after", 1, first.Ticket, domain.TicketCreated)
		r.wantStock(t, "after", a, 9)
	})
}

func TestRulesCancel(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 10, 1, 1)
	p := r.buy(t, a, 3, 1, "")
	_, err := r.svc.Cancel(ctx, 4, p.OrderID)
	wantErr(t, "someone else's order", err, domain.ENotFound)
	for n := 0; n < 2; n++ {
		o, err := r.svc.Cancel(ctx, 3, p.OrderID)
		if err != nil || o.Status != domain.OrderCancelled {
			t.Fatalf("cancel %d: got %+v, %v", n, o, err)
		}
		r.wantStock(t, fmt.Sprintf("cancel %d", n), a, 10)
	}
	// The unit is on sale again, and the same user may buy it; once paid, it stays.
	p = r.buy(t, a, 3, 1, "")
	if _, err := r.svc.Pay(ctx, 3, p.OrderID); err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.Cancel(ctx, 3, p.OrderID)
	wantErr(t, "a paid order", err, domain.EConflict)
	r.wantStock(t, "after", a, 9)
	// A cancel whose give-back failed converges when it is retried.
	p = r.buy(t, a, 5, 1, "")
	r.ledger.failRelease.Store(1)
	_, err = r.svc.Cancel(ctx, 5, p.OrderID)
	wantErr(t, "the ledger failing: the order is cancelled all the same", err, "")
	rows, st := r.stock(t, a)
	if rows[0] != 9 || st.BucketStock[0] != 8 {
		t.Fatalf("half way: got store %v, ledger %v; want 9 and 8", rows, st.BucketStock)
	}
	// A second cancel does not give back again (only the call that ended the order
	// does, whatever the ledger remembers); the reconciler brings the ledger to MySQL.
	if _, err := r.svc.Cancel(ctx, 5, p.OrderID); err != nil {
		t.Fatal(err)
	}
	if _, st := r.stock(t, a); st.BucketStock[0] != 8 {
		t.Fatalf("cancelled again: got ledger %v, want 8", st.BucketStock)
	}
	if _, err := r.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	r.wantStock(t, "retried", a, 9)
}

func TestRulesExpireUnpaid(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 10, 2, 1)
	r.clock.Set(time.Now().Add(-time.Hour))
	var ids []int64
	for u := int64(1); u <= 3; u++ {
		ids = append(ids, r.buy(t, a, u, 2, "").OrderID)
	}
	r.clock.Set(time.Now())
	recent := r.buy(t, a, 4, 1, "").OrderID
	if _, err := r.svc.Pay(ctx, 1, ids[0]); err != nil {
		t.Fatal(err)
	}
	n, err := r.svc.ExpireUnpaid(ctx, 30*time.Minute)
	if err != nil || n != 2 {
		t.Fatalf("got %d expired, %v; want 2", n, err)
	}
	for i, want := range []domain.OrderStatus{domain.OrderPaid, domain.OrderExpired, domain.OrderExpired} {
		o, err := r.svc.Order(ctx, int64(i+1), ids[i])
		if err != nil || o.Status != want {
			t.Fatalf("order %d: got %+v, %v; want %s", i, o, err, want)
		}
	}
	if o, _ := r.svc.Order(ctx, 4, recent); o.Status != domain.OrderCreated {
		t.Fatalf("a recent order: got %s, want created", o.Status)
	}
	r.wantStock(t, "after", a, 7)
	if n, err := r.svc.ExpireUnpaid(ctx, 30*time.Minute); err != nil || n != 0 {
		t.Fatalf("again: got %d, %v; want 0", n, err)
	}
}

func TestRulesPublishOffline(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 10, 5, 1)
	if _, err := r.svc.Activity(ctx, a.ID); err != nil {
		t.Fatalf("published: %v", err)
	}
	r.buy(t, a, 1, 2, "")
	if _, err := r.svc.Offline(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err := r.place(a, 2, 1, "")
	wantErr(t, "offline", err, domain.ENotFound)
	_, err = r.svc.Activity(ctx, a.ID)
	wantErr(t, "offline activity", err, domain.ENotFound)
	_, err = r.ledger.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: a.Items[0].ID, UserID: 2, Quantity: 1, Ticket: domain.NewTicket(a.ID, a.Items[0].ID, "x"), Buckets: 1})
	wantErr(t, "the ledger, offline", err, domain.ENotFound)
	// Published again, the live counters are kept.
	if _, err := r.svc.Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	r.buy(t, a, 2, 1, "")
	r.wantStock(t, "after", a, 7)
	if as, next, err := r.svc.Activities(ctx, domain.ActivityQuery{}); err != nil || len(as) != 1 || as[0].ID != a.ID || next != 0 {
		t.Fatalf("published activities: got %v, next %d, %v", as, next, err)
	}
}

// TestRulesOfflineHoldsAgainstALateChange: a change that read the activity while it
// was on sale (an update, a restore) and reaches the ledger after the offline cannot
// put the item back on sale: the offline is written at its own, newer version.
func TestRulesOfflineHoldsAgainstALateChange(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 10, 5, 1)
	// An update committed in the store while on sale...
	name := "renamed"
	if err := r.store.UpdateActivity(ctx, a.ID, domain.ActivityChange{Name: &name}); err != nil {
		t.Fatal(err)
	}
	a, err := r.store.Activity(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	it := a.Items[0]
	start, end := a.ItemWindow(it)
	// ...its ledger write of that version, held up until after the offline.
	late := domain.SaleState{ActivityID: a.ID, ItemID: it.ID, State: domain.StatePublished, Start: start, End: end,
		PerUserLimit: a.PerUserLimit, Version: a.Version, BucketStock: make([]int64, a.BucketCount)}
	if _, err := r.svc.Offline(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ledger.SetSale(ctx, late); err != nil {
		t.Fatal(err)
	}
	_, err = r.ledger.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: it.ID, UserID: 2, Quantity: 1, Ticket: domain.NewTicket(a.ID, it.ID, "late"), Buckets: 1})
	wantErr(t, "the ledger after a late change of the published version", err, domain.ENotFound)
}

// TestRulesLedgerLost: a ledger that lost the sale (a Redis restart) is restored from
// the store by the first order.
func TestRulesLedgerLost(t *testing.T) {
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 10, 2, 1)
	r.buy(t, a, 1, 2, "")
	empty := inmem.NewLedger(time.Hour)
	svc := r.service(t, empty, nil)
	_, err := svc.PlaceOrder(context.Background(), sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1})
	wantErr(t, "a buyer at the limit, restored", err, domain.ELimitExceeded)
	if _, err := svc.PlaceOrder(context.Background(), sale.PlaceOrder{UserID: 2, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if n, loaded, err := empty.Available(context.Background(), a.ID, a.Items[0].ID, 1); err != nil || !loaded || n != 7 {
		t.Fatalf("restored ledger: got %d, %v, %v; want 7", n, loaded, err)
	}
}

func TestRulesChangeStock(t *testing.T) {
	ctx := context.Background()
	update := func(r *rig, a *domain.Activity, total int64) error {
		_, err := r.svc.Update(ctx, a.ID, domain.ActivityChange{Items: []domain.ItemChange{{ItemID: a.Items[0].ID, TotalStock: &total}}})
		return err
	}
	wantTotal := func(t *testing.T, r *rig, a *domain.Activity, want int64) {
		t.Helper()
		it, err := r.store.Item(ctx, a.Items[0].ID)
		if err != nil || it.TotalStock != want {
			t.Fatalf("total: got %d, %v; want %d", it.TotalStock, err, want)
		}
	}

	r := newRig(t)
	a := r.sale(t, domain.StrategyBucket, 10, 5, 3)
	r.wantStock(t, "created", a, 4, 3, 3)
	for _, tt := range []struct {
		name  string
		total int64
		err   string
		want  []int64
	}{
		{"up", 16, "", []int64{6, 5, 5}},
		{"down", 13, "", []int64{5, 4, 4}},
		{"up by one: the first bucket", 14, "", []int64{6, 4, 4}},
	} {
		wantErr(t, tt.name, update(r, a, tt.total), tt.err)
		r.wantStock(t, tt.name, a, tt.want...)
		wantTotal(t, r, a, tt.total)
	}
	// Units sold or in flight are not taken back.
	buyer := homeUser(0, 3, 1)
	p := r.buy(t, a, buyer, 5, "")
	r.deliver(t)
	r.wantTicket(t, "written", buyer, p.Ticket, domain.TicketCreated)
	r.wantStock(t, "sold 5", a, 1, 4, 4)
	wantErr(t, "take more than is unsold", update(r, a, 0), domain.EConflict)
	r.wantStock(t, "refused", a, 1, 4, 4)
	wantTotal(t, r, a, 14)
	// The store failing: nothing changes in either.
	r.orders.failStockOp.Store(true)
	wantErr(t, "take, the store failing", update(r, a, 11), domain.EUnavailable)
	wantErr(t, "add, the store failing", update(r, a, 20), domain.EUnavailable)
	r.orders.failStockOp.Store(false)
	r.wantStock(t, "the store failing", a, 1, 4, 4)
	wantTotal(t, r, a, 14)
	// The commit's answer lost (it took): the units stay out of the ledger, which then
	// holds less than the store, never more, until the reconciler reads the rows.
	// Before the fix they went back: 9 units in the ledger against 6 in the store.
	r.orders.lostStockOp.Store(true)
	wantErr(t, "take, the answer lost", update(r, a, 11), domain.EOutcomeUnknown)
	r.orders.lostStockOp.Store(false)
	wantTotal(t, r, a, 11)
	if n, _, err := r.ledger.Available(ctx, a.ID, a.Items[0].ID, 3); err != nil || n > 6 {
		t.Fatalf("the answer lost: the ledger holds %d units (%v), the store 6", n, err)
	}
	if _, err := r.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: time.Millisecond, StaleTicket: time.Hour, StaleSync: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if n, _, err := r.ledger.Available(ctx, a.ID, a.Items[0].ID, 3); err != nil || n != 6 {
		t.Fatalf("after the reconciler: the ledger holds %d units (%v), want 6", n, err)
	}

	// Before publishing, only the store holds stock; publishing loads it.
	d := newRig(t)
	b := &domain.Activity{Name: "draft", Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Hour), Strategy: domain.StrategySync,
		PerUserLimit: 1, BucketCount: 1, Items: []domain.Item{{Name: "x", PriceCents: 1, TotalStock: 4}}}
	if err := d.svc.CreateActivity(ctx, b); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "a draft", update(d, b, 6), "")
	if _, loaded, _ := d.ledger.Available(ctx, b.ID, b.Items[0].ID, 1); loaded {
		t.Fatal("a draft's stock change loaded the ledger")
	}
	if _, err := d.svc.Publish(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	d.wantStock(t, "published", b, 6)
}

// homeUser returns the first user from from on whose home bucket is bucket.
func homeUser(bucket, buckets int, from int64) int64 {
	for u := from; ; u++ {
		if home(u, buckets) == bucket {
			return u
		}
	}
}

func TestRulesBuckets(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategyBucket, 40, 10, 4)
	r.wantStock(t, "created", a, 10, 10, 10, 10)
	if moved, err := r.svc.Rebalance(ctx, a, a.Items[0].ID); err != nil || moved != 0 {
		t.Fatalf("even buckets: got %d moved, %v; want none", moved, err)
	}
	r.buy(t, a, homeUser(0, 4, 1), 10, "")
	r.deliver(t)
	r.wantStock(t, "bucket 0 drained", a, 0, 10, 10, 10)
	moved, err := r.svc.Rebalance(ctx, a, a.Items[0].ID)
	if err != nil || moved != 8 {
		t.Fatalf("rebalance: got %d moved, %v; want 8", moved, err)
	}
	r.wantStock(t, "rebalanced", a, 8, 8, 7, 7)

	a, err = r.svc.SetBuckets(ctx, a.ID, 8)
	if err != nil || a.BucketCount != 8 {
		t.Fatalf("more buckets: got %+v, %v", a, err)
	}
	r.wantStock(t, "8 buckets", a, 4, 4, 4, 4, 4, 4, 3, 3)
	// A user whose home is a new bucket buys from it.
	buyer := homeUser(7, 8, 1)
	p := r.buy(t, a, buyer, 3, "")
	sent := r.pub.take()
	if sent[0].Bucket != 7 {
		t.Fatalf("got bucket %d, want 7", sent[0].Bucket)
	}
	r.deliver(t, sent...)
	r.wantTicket(t, "new bucket", buyer, p.Ticket, domain.TicketCreated)

	a, err = r.svc.SetBuckets(ctx, a.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	r.wantStock(t, "2 buckets: the rest swept back", a, 14, 13, 0, 0, 0, 0, 0, 0)
	_, err = r.svc.SetBuckets(ctx, a.ID, domain.MaxBuckets+1)
	wantErr(t, "too many buckets", err, domain.EBadRequest)
	s := r.sale(t, domain.StrategySync, 5, 1, 1)
	_, err = r.svc.SetBuckets(ctx, s.ID, 2)
	wantErr(t, "buckets of a sync sale", err, domain.EBadRequest)

	// A move the store refuses gives the units back to their bucket.
	r.buy(t, a, homeUser(0, 2, 1000), 10, "")
	r.deliver(t)
	r.wantStock(t, "bucket 0 low", a, 4, 13, 0, 0, 0, 0, 0, 0)
	r.orders.failStockOp.Store(true)
	if _, err := r.svc.Rebalance(ctx, a, a.Items[0].ID); err == nil {
		t.Fatal("rebalance with the store failing: got no error")
	}
	r.orders.failStockOp.Store(false)
	r.wantStock(t, "failed move", a, 4, 13, 0, 0, 0, 0, 0, 0)
	if err := r.svc.RebalanceAll(ctx, 0); err != nil {
		t.Fatal(err)
	}
	r.wantStock(t, "rebalanced at last", a, 9, 8, 0, 0, 0, 0, 0, 0)
}

func TestRulesReconcile(t *testing.T) {
	ctx := context.Background()
	quick := sale.ReconcileConfig{Quiet: time.Millisecond, StaleTicket: 30 * time.Minute}
	t.Run("drift", func(t *testing.T) {
		r := newRig(t)
		a := r.sale(t, domain.StrategySync, 20, 1, 1)
		r.buy(t, a, 1, 1, "")
		for _, drift := range []int64{-5, 3} {
			epoch, err := r.ledger.Epoch(ctx, a.ID, a.Items[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.ledger.Adjust(ctx, a.ID, a.Items[0].ID, 0, drift, epoch); err != nil {
				t.Fatal(err)
			}
			reps, err := r.svc.Reconcile(ctx, quick)
			if err != nil || len(reps) != 1 || reps[0].Kind != "stock" || reps[0].ItemID != a.Items[0].ID {
				t.Fatalf("drift %d: got repairs %+v, %v; want one of the item's stock", drift, reps, err)
			}
			r.wantStock(t, "repaired", a, 19)
		}
		if reps, err := r.svc.Reconcile(ctx, quick); err != nil || len(reps) != 0 {
			t.Fatalf("nothing to repair: got %+v, %v", reps, err)
		}
	})
	t.Run("stale tickets", func(t *testing.T) {
		r := newRig(t)
		a := r.sale(t, domain.StrategyAsync, 10, 1, 1)
		// Two requests admitted an hour ago whose messages were lost; the worker had
		// written the second's order but not settled it.
		r.clock.Set(time.Now().Add(-time.Hour))
		lost := r.buy(t, a, 1, 1, "")
		written := r.buy(t, a, 2, 1, "")
		r.clock.Set(time.Now())
		sent := r.pub.take()
		if _, err := r.store.WriteOrder(ctx, sent[1], 1); err != nil {
			t.Fatal(err)
		}
		fresh := r.buy(t, a, 3, 1, "")
		reps, err := r.svc.Reconcile(ctx, quick)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, rep := range reps {
			got = append(got, rep.Kind+" "+rep.Detail)
		}
		slices.Sort(got)
		want := []string{"stale_ticket " + lost.Ticket + " -> failed", "settled " + written.Ticket + " -> created"}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("got repairs %q, want %q", got, want)
		}
		if tk := r.wantTicket(t, "lost", 1, lost.Ticket, domain.TicketFailed); tk.Reason != "stale" {
			t.Fatalf("lost: got reason %q, want stale", tk.Reason)
		}
		r.wantTicket(t, "written", 2, written.Ticket, domain.TicketCreated)
		r.wantTicket(t, "fresh", 3, fresh.Ticket, domain.TicketPending)
		rows, st := r.stock(t, a)
		if rows[0] != 9 || st.BucketStock[0] != 8 || st.InFlight != 1 {
			t.Fatalf("got store %v, ledger %+v; want 9, and 8 with 1 in flight", rows, st)
		}
		r.deliver(t)
		r.wantStock(t, "all settled", a, 8)
	})
}

func TestRulesFailurePaths(t *testing.T) {
	ctx := context.Background()
	t.Run("sync write fails before commit", func(t *testing.T) {
		r := newRig(t)
		a := r.sale(t, domain.StrategySync, 10, 1, 1)
		r.orders.failWrites(func(int64) error { return domain.NotCommitted(errInjected) })
		_, err := r.place(a, 1, 1, "x")
		wantErr(t, "write fails", err, domain.EUnavailable)
		r.wantStock(t, "given back", a, 10)
		r.orders.failWrites(func(int64) error { return nil })
		if p := r.buy(t, a, 1, 1, "x"); p.Replayed || p.Status != domain.TicketCreated {
			t.Fatalf("retry with the key: got %+v, want a new order", p)
		}
		r.wantStock(t, "retried", a, 9)
	})
	t.Run("sync commit answer lost", func(t *testing.T) {
		r := newRig(t)
		a := r.sale(t, domain.StrategySync, 10, 1, 1)
		r.orders.lostAnswer.Store(true)
		p := r.buy(t, a, 1, 1, "")
		if p.Status != domain.TicketCreated || p.OrderID == 0 {
			t.Fatalf("got %+v, want the order found", p)
		}
		r.wantTicket(t, "found", 1, p.Ticket, domain.TicketCreated)
		r.wantStock(t, "after", a, 9)
	})
	t.Run("sync outcome unknown", func(t *testing.T) {
		r := newRig(t)
		a := r.sale(t, domain.StrategySync, 10, 1, 1)
		r.orders.failWrites(func(int64) error { return errInjected })
		r.orders.failLookup.Store(true)
		_, err := r.place(a, 1, 1, "")
		wantErr(t, "unknown", err, domain.EOutcomeUnknown)
		_, st := r.stock(t, a)
		if st.Tickets != 1 || st.Available() != 9 {
			t.Fatalf("got %+v, want the ticket left in flight", st)
		}
		// The reconciler ends it once it is stale.
		r.orders.failLookup.Store(false)
		if _, err := r.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: time.Millisecond, StaleTicket: time.Nanosecond, StaleSync: time.Nanosecond}); err != nil {
			t.Fatal(err)
		}
		r.wantStock(t, "settled stale", a, 10)
		// The store's own refusal: sold_out in the store (fewer units than the ledger
		// counted) leaves the phantom unit out; the reconciler puts the count right.
		r.orders.failWrites(func(int64) error { return nil })
		if err := r.store.AddStock(ctx, a.Items[0].ID, 0, -10); err != nil {
			t.Fatal(err)
		}
		_, err = r.place(a, 1, 1, "")
		wantErr(t, "the store sold out", err, domain.ESoldOut)
		if _, err := r.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		r.wantStock(t, "reconciled", a, 0)
	})
	t.Run("queue send fails", func(t *testing.T) {
		r := newRig(t)
		fp := &failingPublisher{}
		svc := r.service(t, r.ledger, fp)
		a := r.sale(t, domain.StrategyAsync, 10, 1, 1)
		_, err := svc.PlaceOrder(ctx, sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1, IdempotencyKey: "k"})
		if !domain.IsCode(err, domain.EUnavailable) || fp.calls.Load() != 2 {
			t.Fatalf("got %v after %d sends, want unavailable after 2", err, fp.calls.Load())
		}
		r.wantStock(t, "given back", a, 10)
		noQueue := r.service(t, r.ledger, nil)
		_, err = noQueue.PlaceOrder(ctx, sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1})
		wantErr(t, "no queue", err, domain.EUnavailable)
		r.wantStock(t, "given back", a, 10)
		if p := r.buy(t, a, 1, 1, "k"); p.Replayed {
			t.Fatalf("retry with the key: got %+v, want a new admission", p)
		}
	})
	t.Run("message delivered again", func(t *testing.T) {
		r := newRig(t)
		a := r.sale(t, domain.StrategyAsync, 10, 1, 1)
		p := r.buy(t, a, 5, 1, "")
		req := r.pub.take()[0]
		for n := 0; n < 3; n++ {
			if err := r.worker.Handle(ctx, []domain.Delivery{{ID: "m", Request: req, Attempt: n + 1}}); err != nil {
				t.Fatalf("delivery %d: %v", n, err)
			}
		}
		r.wantTicket(t, "delivered thrice", 5, p.Ticket, domain.TicketCreated)
		if c, _ := r.store.Counts(ctx, a.Items[0].ID); c.Orders != 1 {
			t.Fatalf("got %d orders, want 1", c.Orders)
		}
		r.wantStock(t, "after", a, 9)
	})
	t.Run("worker write keeps failing", func(t *testing.T) {
		r := newRig(t)
		a := r.sale(t, domain.StrategyAsync, 10, 1, 1)
		p := r.buy(t, a, 5, 1, "")
		req := r.pub.take()[0]
		r.orders.failWrites(func(int64) error { return domain.NotCommitted(errInjected) })
		if err := r.worker.Handle(ctx, []domain.Delivery{{ID: "m", Request: req, Attempt: 1}}); err == nil {
			t.Fatal("a failed write was acknowledged before the last delivery")
		}
		r.wantTicket(t, "after a failed delivery", 5, p.Ticket, domain.TicketPending)
		if err := r.worker.Handle(ctx, []domain.Delivery{{ID: "m", Request: req, Attempt: 2, Last: true}}); err != nil {
			t.Fatal(err)
		}
		r.wantTicket(t, "after the last delivery", 5, p.Ticket, domain.TicketFailed)
		r.wantStock(t, "given back", a, 10)
	})
}

// TestRulesHammer: many shoppers at once, retrying with and without their keys, with
// writes, sends and deliveries failing now and then and some orders cancelled; once the
// sale settles, DESIGN.md's five invariants hold.
func TestRulesHammer(t *testing.T) {
	for _, tt := range []struct {
		strategy domain.Strategy
		buckets  int
	}{{domain.StrategySync, 1}, {domain.StrategyAsync, 1}, {domain.StrategyBucket, 4}} {
		t.Run(string(tt.strategy), func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t)
			const stock, limit, users, attempts = 60, 2, 150, 3
			q := inmem.New(inmem.Config{Goroutines: 4, BatchSize: 8, MaxAttempts: 6, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
			r.pub.next, r.pub.failEvery, r.pub.dupEvery = q, 11, 7
			stop, err := q.Subscribe(worker.New(r.orders, r.ledger, r.store, worker.Config{WriteAttempts: 1, RetryFor: time.Millisecond,
				BatchSize: 8, BatchWindow: time.Millisecond}, nil, testLog(t)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stop(); q.Close() })
			r.orders.failWrites(func(n int64) error {
				if n%9 == 0 {
					return domain.NotCommitted(errInjected)
				}
				return nil
			})
			a := r.sale(t, tt.strategy, stock, limit, tt.buckets)

			var mu sync.Mutex
			admitted := map[string]int64{} // ticket -> user
			codes := map[string]int{}
			var cancelled atomic.Int64
			jobs := make(chan [2]int64)
			var wg sync.WaitGroup
			for g := 0; g < 32; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range jobs {
						user, attempt := j[0], j[1]
						key := fmt.Sprintf("k%d", user) // even users retry with their key
						if user%2 == 1 {
							key = fmt.Sprintf("k%d-%d", user, attempt)
						}
						p, err := r.place(a, user, 1, key)
						if err == nil && p.OrderID != 0 && user%10 == 0 && !p.Replayed {
							if _, err := r.svc.Cancel(ctx, user, p.OrderID); err == nil {
								cancelled.Add(1)
							}
						}
						mu.Lock()
						codes[domain.ErrorCode(err)]++
						if err == nil {
							admitted[p.Ticket] = user
						}
						mu.Unlock()
					}
				}()
			}
			for attempt := int64(0); attempt < attempts; attempt++ {
				for u := int64(1); u <= users; u++ {
					jobs <- [2]int64{u, attempt}
				}
			}
			close(jobs)
			wg.Wait()
			r.settle(t, a, q)
			// Some buyers change their minds once their orders are written.
			for u := int64(5); u <= users; u += 10 {
				os, _, err := r.svc.ShopperOrders(ctx, u, domain.OrderQuery{})
				if err != nil {
					t.Fatal(err)
				}
				if len(os) > 0 && os[0].Status == domain.OrderCreated {
					if _, err := r.svc.Cancel(ctx, u, os[0].ID); err != nil {
						t.Fatal(err)
					}
					cancelled.Add(1)
				}
			}
			// Whatever failed or was cancelled gave its units back: they sell to
			// whoever comes next.
			r.orders.failWrites(func(int64) error { return nil })
			r.pub.failEvery = 0
			for u := int64(10_000); ; u++ {
				p, err := r.place(a, u, 1, "")
				if domain.IsCode(err, domain.ESoldOut) {
					break
				}
				if err != nil {
					t.Fatalf("sweep: %v", err)
				}
				admitted[p.Ticket] = u
			}
			r.settle(t, a, q)
			r.invariants(t, a, admitted)
			t.Logf("%s: outcomes %v, %d cancelled, %d admitted in all; queue %+v", tt.strategy, codes, cancelled.Load(), len(admitted), q.Stats())
		})
	}
}

// settle waits until the queue is empty and no ticket is in flight.
func (r *rig) settle(t *testing.T, a *domain.Activity, q *inmem.Queue) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, st := r.stock(t, a)
		if st.Tickets == 0 && q.Stats().Held == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: %d tickets in flight, queue %+v", st.Tickets, q.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// invariants checks DESIGN.md's invariants for a sale that settled with all its stock
// sold; admitted holds every ticket a shopper was given, with its user.
func (r *rig) invariants(t *testing.T, a *domain.Activity, admitted map[string]int64) {
	t.Helper()
	ctx := context.Background()
	item, err := r.store.Item(ctx, a.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := r.store.Counts(ctx, item.ID)
	if err != nil {
		t.Fatal(err)
	}
	rows, st := r.stock(t, a)
	var left int64
	for _, n := range rows {
		left += n
	}
	// 1 and 2: no oversell, no undersell; every unit is sold or on sale, once.
	if counts.Units != item.TotalStock || left != 0 || counts.Units+left != item.TotalStock {
		t.Fatalf("got %d units sold and %d left of %d, want all sold", counts.Units, left, item.TotalStock)
	}
	// 3: the limit, and one order per ticket.
	v, err := r.store.View(ctx, item.ID, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	buyers := v.Buyers
	for u, n := range buyers {
		if n > int64(a.PerUserLimit) {
			t.Fatalf("user %d holds %d units, limit %d", u, n, a.PerUserLimit)
		}
	}
	orders := map[int64]string{}
	for ticket, user := range admitted {
		// 4: every admitted ticket ended.
		tk, err := r.svc.Ticket(ctx, user, ticket)
		if err != nil || tk.Status == domain.TicketPending {
			t.Fatalf("ticket %s: got %+v, %v; want it ended", ticket, tk, err)
		}
		if tk.Status != domain.TicketCreated {
			continue
		}
		o, err := r.store.OrderByTicket(ctx, ticket)
		if err != nil || o.ID != tk.OrderID || o.UserID != user {
			t.Fatalf("ticket %s: got order %+v, %v; want order %d of user %d", ticket, o, err, tk.OrderID, user)
		}
		if prev, ok := orders[o.ID]; ok {
			t.Fatalf("order %d belongs to tickets %s and %s", o.ID, prev, ticket)
		}
		orders[o.ID] = ticket
	}
	// 5: the ledger says what the store says, and the reconciler finds nothing.
	if st.Tickets != 0 || !slices.Equal(st.BucketStock, rows) {
		t.Fatalf("got ledger %+v, store %v; want them equal and nothing in flight", st, rows)
	}
	reps, err := r.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: time.Millisecond})
	if err != nil || len(reps) != 0 {
		t.Fatalf("reconcile: got %+v, %v; want nothing to repair", reps, err)
	}
}

// A backend whose local copy of an activity predates another backend's create or
// publish does not refuse the first orders: a refusal is checked against the shared copy.
func TestAnotherReplicaSeesCreateAndPublishAtOnce(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	other := r.service(t, r.ledger, r.pub)
	now := time.Now()
	a := &domain.Activity{Name: "two replicas", Start: now.Add(-time.Hour), End: now.Add(time.Hour), Strategy: domain.StrategySync,
		PerUserLimit: 1, BucketCount: 1, Items: []domain.Item{{Name: "phone", PriceCents: 250, TotalStock: 5}}}

	// The other replica learns the next id is unknown, then the activity is created
	// and published through this one.
	next := int64(1)
	if got, err := r.store.Activities(ctx, domain.ActivityQuery{All: true}); err == nil {
		for _, x := range got {
			next = max(next, x.ID+1)
		}
	}
	_, err := other.PlaceOrder(ctx, sale.PlaceOrder{UserID: 1, ActivityID: next, ItemID: 1, Quantity: 1})
	wantErr(t, "an order for an id not yet created", err, domain.ENotFound)
	if err := r.svc.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a.ID != next {
		t.Fatalf("created activity %d, expected id %d", a.ID, next)
	}
	// The other replica now holds the unpublished copy.
	_, err = other.PlaceOrder(ctx, sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1})
	wantErr(t, "an order before publish", err, domain.ENotFound)
	if _, err := r.svc.Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond) // past the recheck interval, well inside the local copy's life
	if _, err := other.PlaceOrder(ctx, sale.PlaceOrder{UserID: 1, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}); err != nil {
		t.Fatalf("the first order after publish, on the other replica: %v", err)
	}
}

// dyingLeases is a process's view of the shared leases that can die: after die, its
// renewals fail and it gives nothing up, as a killed backend would.
type dyingLeases struct {
	*inmem.Leases
	dead atomic.Bool
}

func (d *dyingLeases) Hold(ctx context.Context, name, holder string, ttl time.Duration) (int64, bool, error) {
	if d.dead.Load() {
		return 0, false, errors.New("connection refused")
	}
	return d.Leases.Hold(ctx, name, holder, ttl)
}

func (d *dyingLeases) Release(ctx context.Context, name, holder string) error {
	if d.dead.Load() {
		return nil
	}
	return d.Leases.Release(ctx, name, holder)
}

// The background duties run on one backend at a time; when it dies, another takes
// the lease once it expires, and when it stops, at once.
func TestDutiesUnderOneLease(t *testing.T) {
	r := newRig(t)
	shared := inmem.NewLeases()
	const ttl = 300 * time.Millisecond
	type replica struct {
		leases *dyingLeases
		stop   context.CancelFunc
		done   chan struct{}
	}
	start := func(name string) *replica {
		rp := &replica{leases: &dyingLeases{Leases: shared}, done: make(chan struct{})}
		svc := sale.New(sale.Deps{Catalog: r.store, Orders: r.orders, Ledger: r.ledger, Cache: r.cache, Leases: rp.leases, Log: testLog(t)}, sale.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		rp.stop = cancel
		go func() {
			defer close(rp.done)
			svc.Run(ctx, sale.Duties{Interval: 20 * time.Millisecond, LeaseTTL: ttl, Holder: name, Lease: "test"})
		}()
		t.Cleanup(func() { cancel(); <-rp.done })
		return rp
	}
	holder := func() string { h, _ := shared.Holder("test"); return h }
	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v (holder %q)", what, within, holder())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	replicas := map[string]*replica{"a": start("a"), "b": start("b"), "c": start("c")}
	waitFor("someone holds the lease", time.Second, func() bool { return holder() != "" })
	first := holder()
	_, token := shared.Holder("test")
	// Renewals keep it where it is.
	for range 20 {
		time.Sleep(ttl / 10)
		if h, tok := shared.Holder("test"); h != first || tok != token {
			t.Fatalf("the lease moved from %s (token %d) to %s (token %d) with nobody gone", first, token, h, tok)
		}
	}
	// The holder dies: no renewal, no release. Another takes it after it expires.
	died := time.Now()
	replicas[first].leases.dead.Store(true)
	waitFor("another backend takes a dead holder's lease", 2*ttl, func() bool { h := holder(); return h != "" && h != first })
	if gap := time.Since(died); gap < ttl/2 {
		t.Fatalf("the lease moved %v after its holder died, before it could expire", gap)
	}
	second := holder()
	if _, tok := shared.Holder("test"); tok <= token {
		t.Fatalf("the new holder's token %d is not above %d", tok, token)
	}
	// The second stops cleanly: it gives the lease up, and the last takes it at once.
	replicas[second].stop()
	<-replicas[second].done
	waitFor("the last backend takes a released lease", ttl/2, func() bool { h := holder(); return h != "" && h != first && h != second })
}

// A sync sale's ticket left in flight by a backend that died between the deduction
// and the write is ended after StaleSync, not after the queued sales' StaleTicket; an
// async sale's ticket of the same age is left to its worker.
func TestStaleSyncTicketEndsSoon(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	sync, async := r.sale(t, domain.StrategySync, 3, 1, 1), r.sale(t, domain.StrategyAsync, 3, 1, 1)
	left := func(a *domain.Activity) domain.Deducted {
		got, err := r.ledger.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: a.Items[0].ID, UserID: 7, Quantity: 1,
			Ticket: domain.NewTicket(a.ID, a.Items[0].ID, "died"), Buckets: 1})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	st, at := left(sync), left(async)
	cfg := sale.ReconcileConfig{Quiet: time.Millisecond, StaleSync: 50 * time.Millisecond}
	if reps, err := r.svc.Reconcile(ctx, cfg); err != nil || len(reps) != 0 {
		t.Fatalf("young tickets: got %+v, %v; want nothing done", reps, err)
	}
	time.Sleep(60 * time.Millisecond)
	if _, err := r.svc.Reconcile(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	r.wantTicket(t, "the sync sale's", 7, st.Ticket, domain.TicketFailed)
	r.wantTicket(t, "the async sale's", 7, at.Ticket, domain.TicketPending)
	r.wantStock(t, "the sync sale's unit back", sync, 3)
}

// A queued sale's ticket whose backend died between the deduction and the send is
// sent again by the reconciler, once, with its key and amount; the worker writes it.
func TestLeftTicketRepublishedOnce(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategyAsync, 3, 1, 1)
	got, err := r.ledger.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: a.Items[0].ID, UserID: 7, Quantity: 1, IdempotencyKey: "k7",
		Ticket: domain.NewTicket(a.ID, a.Items[0].ID, "died"), Buckets: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sale.ReconcileConfig{Quiet: time.Millisecond, Republish: 50 * time.Millisecond}
	if _, err := r.svc.Reconcile(ctx, cfg); err != nil || r.pub.count() != 0 {
		t.Fatalf("a young ticket: %d sent, %v; want none", r.pub.count(), err)
	}
	time.Sleep(60 * time.Millisecond)
	for range 2 {
		if _, err := r.svc.Reconcile(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	sent := r.pub.take()
	if len(sent) != 1 || sent[0].Ticket != got.Ticket || sent[0].IdemKey != "k7" || sent[0].AmountCents != 250 || sent[0].UserID != 7 {
		t.Fatalf("sent %+v; want the ticket once, with its key and amount", sent)
	}
	r.deliver(t, sent...)
	r.wantTicket(t, "the ticket sent again", 7, got.Ticket, domain.TicketCreated)
	r.wantStock(t, "one unit sold", a, 2)
}

// A change that takes units out of the ledger holds the item's resets until its commit
// and renews the hold while the commit waits: the hold lapses after
// Config.ResetsHold otherwise (a backend that died mid-change blocked the item's repairs
// for three minutes, its units unsellable the while: a fleet probe). The reconciler's
// pass during a slow commit leaves the counter alone, and after the commit the ledger
// holds what the store does.
func TestChangeRenewsItsHoldOfResets(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	const hold = 300 * time.Millisecond
	svc := sale.New(sale.Deps{Catalog: faultyCatalog{r.store, r.orders}, Orders: r.orders, Ledger: r.ledger, Cache: r.cache, Publisher: r.pub, Log: testLog(t)},
		sale.Config{PublishAttempts: 2, ReplayWait: 30 * time.Millisecond, OrdersSettle: -1, ResetsHold: hold})
	t.Cleanup(svc.Close)
	a := r.sale(t, domain.StrategyAsync, 10, 1, 1)
	taken := r.ledger.holdsTaken.Load()
	r.orders.slowStockOp.Store(int64(4 * hold / time.Millisecond)) // the commit waits past the hold's life
	total := int64(6)
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		_, err := svc.Update(ctx, a.ID, domain.ActivityChange{Items: []domain.ItemChange{{ItemID: a.Items[0].ID, TotalStock: &total}}})
		done <- err
	}()
	<-started
	for r.ledger.activeHolds() == 0 { // the change takes its hold
		time.Sleep(time.Millisecond)
	}
	r.ledger.failHolds.Store(1) // the first renewal fails: the first hold must stay
	// Never a moment without a hold until the change ends.
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		default:
			if r.ledger.activeHolds() == 0 {
				select {
				case err := <-done: // ended meanwhile
					if err != nil {
						t.Fatal(err)
					}
				default:
					t.Fatal("the change runs with no hold of the item's resets")
				}
			} else {
				time.Sleep(5 * time.Millisecond)
				continue
			}
		}
		break
	}
	if _, err := r.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: time.Millisecond, StaleTicket: time.Hour, StaleSync: time.Hour}); err != nil {
		t.Fatal(err)
	}
	r.orders.slowStockOp.Store(0)
	if n, _, err := r.ledger.Available(ctx, a.ID, a.Items[0].ID, 1); err != nil || n != 6 {
		t.Fatalf("after the change: the ledger holds %d units (%v), want the store's 6", n, err)
	}
	if got := r.ledger.holdsTaken.Load() - taken; got < 3 {
		t.Errorf("holds taken during a change of %v: %d, want renewals every %v", 4*hold, got, hold/3)
	}
	if n := r.ledger.activeHolds(); n != 0 {
		t.Errorf("%d holds left after the change, want every hold let go", n)
	}
}

// An item read once is read again through its activity's caches: with MySQL away it
// answered 503 while its activity read fine (a probe). An item id never seen still
// asks MySQL, and a failure to is 503, not the 404 the gateway would keep.
func TestItemReadsThroughTheCaches(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 10, 1, 1)
	if it, got, err := r.svc.Item(ctx, a.Items[0].ID); err != nil || it.ID != a.Items[0].ID || got.ID != a.ID {
		t.Fatalf("an item: got %+v of %v, %v", it, got, err)
	}
	r.orders.failItem.Store(true)
	if it, _, err := r.svc.Item(ctx, a.Items[0].ID); err != nil || it.ID != a.Items[0].ID {
		t.Fatalf("the item again, MySQL away: got %+v, %v; want it from the caches", it, err)
	}
	_, _, err := r.svc.Item(ctx, a.Items[0].ID+1000)
	wantErr(t, "an item never seen, MySQL away", err, domain.EUnavailable)
	r.orders.failItem.Store(false)
	_, _, err = r.svc.Item(ctx, a.Items[0].ID+1000)
	wantErr(t, "an item that does not exist", err, domain.ENotFound)
}

// downCache is a cache whose writes fail (Redis down under the catalog cache).
type downCache struct{ domain.Cache }

func (downCache) Put(context.Context, string, int64, []byte, time.Duration) (bool, error) {
	return false, errInjected
}
func (downCache) Del(context.Context, ...string) error { return errInjected }

// Operators' changes that MySQL committed but Redis did not follow never answer
// "nothing was taken" (an operator would make them again): publish and offline say the
// change is made (doing them again is safe), and a created activity or an added item,
// which a retry would make twice, are answered as made; the item sells at its first
// order. Before, all four answered 503 "nothing was taken" (a fleet probe added an item
// twice so).
func TestChangesMadeAreAnsweredSo(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	made := func(what string, err error) {
		t.Helper()
		wantErr(t, what, err, domain.EUnavailable)
		if !strings.Contains(err.Error(), "the change is made") || strings.Contains(err.Error(), "nothing was taken") {
			t.Fatalf("%s: got %v, want it to say the change is made", what, err)
		}
	}

	a := r.sale(t, domain.StrategySync, 10, 1, 1)
	r.ledger.failSetSale.Store(1)
	_, err := r.svc.Offline(ctx, a.ID)
	made("offline, Redis refusing", err)
	if got, _ := r.store.Activity(ctx, a.ID); got.State != domain.StateOffline {
		t.Fatalf("MySQL's state: got %s, want offline", got.State)
	}
	if _, err := r.svc.Offline(ctx, a.ID); err != nil {
		t.Fatalf("offline again: %v", err)
	}
	_, err = r.place(a, 1, 1, "")
	wantErr(t, "an order once offline", err, domain.ENotFound)

	r.ledger.failWarm.Store(1)
	_, err = r.svc.Publish(ctx, a.ID)
	made("publish, Redis refusing", err)
	if got, _ := r.store.Activity(ctx, a.ID); got.State != domain.StatePublished {
		t.Fatalf("MySQL's state: got %s, want published", got.State)
	}

	r.ledger.failWarm.Store(1)
	got, err := r.svc.AddItem(ctx, a.ID, domain.Item{Name: "cap", PriceCents: 5, TotalStock: 3})
	if err != nil {
		t.Fatalf("add an item, Redis refusing: got %v, want the activity with it", err)
	}
	if len(got.Items) != 2 || got.Items[1].Name != "cap" || got.Items[1].ID == 0 {
		t.Fatalf("the answer's items: got %+v, want the new item last", got.Items)
	}
	if stored, _ := r.store.Activity(ctx, a.ID); len(stored.Items) != 2 {
		t.Fatalf("MySQL holds %d items, want 2", len(stored.Items))
	}
	cap := &domain.Activity{ID: a.ID, Items: got.Items[1:]}
	r.buy(t, cap, 2, 1, "") // the ledger loads the item at its first order
	for u := int64(3); u <= 4; u++ {
		r.buy(t, cap, u, 1, "")
	}
	_, err = r.place(cap, 5, 1, "")
	wantErr(t, "the new item's fourth unit", err, domain.ESoldOut)

	svc := sale.New(sale.Deps{Catalog: r.store, Orders: r.orders, Ledger: r.ledger, Cache: downCache{r.cache}, Publisher: r.pub, Log: testLog(t)}, sale.Config{})
	t.Cleanup(svc.Close)
	draft := &domain.Activity{Name: "cache down", Start: time.Now(), End: time.Now().Add(time.Hour), Strategy: domain.StrategyAsync,
		Items: []domain.Item{{Name: "mug", PriceCents: 1, TotalStock: 1}}}
	if err := svc.CreateActivity(ctx, draft); err != nil || draft.ID == 0 {
		t.Fatalf("create with the catalog cache down: got %v (id %d), want the activity created", err, draft.ID)
	}
}

// An operator's change committed in MySQL whose warming of Redis failed is answered
// as made-but-unfinished, and the reconciler's next pass brings the sale to it: an
// order after the new end is refused.
func TestUpdateFinishedByTheReconciler(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 10, 1, 1)
	end := time.Now().Add(-time.Minute)
	r.ledger.failSetSale.Store(1)
	_, err := r.svc.Update(ctx, a.ID, domain.ActivityChange{End: &end})
	wantErr(t, "the warming failed", err, domain.EUnavailable)
	if !strings.Contains(err.Error(), "the change is made") {
		t.Fatalf("got %v, want it to say the change is made", err)
	}
	if got, _ := r.store.Activity(ctx, a.ID); got.End.UnixMilli() != end.UnixMilli() {
		t.Fatalf("MySQL's end: got %v, want %v", got.End, end)
	}
	reps, err := r.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: time.Millisecond})
	if err != nil || len(reps) != 1 || reps[0].Kind != "sale_state" {
		t.Fatalf("got %+v, %v; want the sale state repaired", reps, err)
	}
	_, err = r.place(a, 1, 1, "")
	wantErr(t, "an order after the new end", err, domain.EEnded)
	if reps, err := r.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: time.Millisecond}); err != nil || len(reps) != 0 {
		t.Fatalf("a second pass: got %+v, %v; want nothing to repair", reps, err)
	}
}
