package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/backend/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestBatcherGroups: orders of one item and bucket that arrive together share a
// write, up to the batch size; other buckets get writes of their own.
func TestBatcherGroups(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	b := newBatcher(func(_ context.Context, reqs []domain.OrderRequest, _ int) ([]domain.Written, []error) {
		mu.Lock()
		sizes = append(sizes, len(reqs))
		for _, r := range reqs[1:] {
			if r.ItemID != reqs[0].ItemID || r.Bucket != reqs[0].Bucket {
				t.Errorf("batch mixes %d/%d with %d/%d", reqs[0].ItemID, reqs[0].Bucket, r.ItemID, r.Bucket)
			}
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		out := make([]domain.Written, len(reqs))
		for i, r := range reqs {
			out[i].Order.Ticket = r.Ticket
		}
		return out, make([]error, len(reqs))
	}, 10, 50*time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := domain.OrderRequest{Ticket: fmt.Sprint(i), ItemID: 1, Bucket: i % 2}
			w, err := b.write(context.Background(), r, 1)
			if err != nil || w.Order.Ticket != r.Ticket {
				t.Errorf("order %d: got %+v, %v", i, w, err)
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range sizes {
		if n > 10 {
			t.Fatalf("got a batch of %d, want at most 10", n)
		}
		total += n
	}
	if total != 40 || len(sizes) >= 40 {
		t.Fatalf("got batches %v, want 40 orders in fewer than 40 writes", sizes)
	}
}

// TestBatcherOneWriteAtATime: a key's groups are written one after another, never two
// at once (two would race on the stock row's version), and a group that waits for
// its turn goes on filling: under a steady stream, batches grow past what the window
// alone would gather.
func TestBatcherOneWriteAtATime(t *testing.T) {
	var mu sync.Mutex
	writing := map[int]int{}
	var sizes []int
	b := newBatcher(func(_ context.Context, reqs []domain.OrderRequest, _ int) ([]domain.Written, []error) {
		bucket := reqs[0].Bucket
		mu.Lock()
		writing[bucket]++
		if writing[bucket] > 1 {
			t.Errorf("bucket %d: %d writes at once", bucket, writing[bucket])
		}
		sizes = append(sizes, len(reqs))
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // a slow transaction
		mu.Lock()
		writing[bucket]--
		mu.Unlock()
		return make([]domain.Written, len(reqs)), make([]error, len(reqs))
	}, 64, time.Millisecond)
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.write(context.Background(), domain.OrderRequest{Ticket: fmt.Sprint(i), ItemID: 1, Bucket: i % 2}, 1); err != nil {
				t.Error(err)
			}
		}()
		if i%20 == 0 {
			time.Sleep(time.Millisecond) // a stream, not one burst
		}
	}
	wg.Wait()
	biggest, total := 0, 0
	for _, n := range sizes {
		biggest, total = max(biggest, n), total+n
	}
	if total != 400 || biggest > 64 || biggest < 20 {
		t.Fatalf("got batches %v; want 400 orders, none over 64, some past the 20 one window gathers", sizes)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.keys) != 0 {
		t.Fatalf("%d keys left behind after every write ended", len(b.keys))
	}
}

type failingWriter struct{ *mysql.Store }

// flakyWriter fails its first n writes as a database that is unreachable would.
type flakyWriter struct {
	*mysql.Store
	mu sync.Mutex
	n  int
}

func (f *flakyWriter) WriteOrder(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	f.mu.Lock()
	fail := f.n > 0
	f.n--
	f.mu.Unlock()
	if fail {
		return domain.Written{}, errors.New("injected: database unreachable")
	}
	return f.Store.WriteOrder(ctx, r, limit)
}

func (failingWriter) WriteOrder(context.Context, domain.OrderRequest, int) (domain.Written, error) {
	return domain.Written{}, errors.New("injected: database unreachable")
}

func counter(tb testing.TB, c interface{ Write(*dto.Metric) error }) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestHandleOutcomes: what a worker acknowledges and what it hands back.
func TestHandleOutcomes(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	rdb := testenv.Redis(t)
	stock := redis.NewStock(rdb, time.Hour)
	svc := sale.New(sale.Deps{Catalog: db.Store, Orders: db.Store, Ledger: stock, Cache: redis.NewCache(rdb), Log: quiet}, sale.Config{})
	a := openSale(t, svc, "w", 5)
	catalog := sale.NewCatalog(db.Store, redis.NewCache(rdb), sale.CatalogConfig{}, quiet)
	admit := func(user int64) domain.Delivery {
		d, err := stock.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: a.Items[0].ID, UserID: user, Quantity: 1,
			Ticket: domain.NewTicket(a.ID, a.Items[0].ID, fmt.Sprint("w", user)), Buckets: 1})
		if err != nil {
			t.Fatal(err)
		}
		return domain.Delivery{ID: d.Ticket, Attempt: 1, Request: domain.OrderRequest{Ticket: d.Ticket, UserID: user, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}}
	}
	left := func() int64 {
		st, _ := stock.State(ctx, a.ID, a.Items[0].ID, 1)
		return st.Available()
	}

	t.Run("malformed is acknowledged and counted", func(t *testing.T) {
		w := New(db.Store, stock, catalog, Config{}, nil, quiet)
		if err := w.Handle(ctx, []domain.Delivery{{ID: "bad", Malformed: errors.New("not json")}}); err != nil {
			t.Fatalf("got %v, want the message acknowledged", err)
		}
		if got := counter(t, w.m.DeadLetters.WithLabelValues("malformed")); got != 1 {
			t.Fatalf("got %v dead letters, want 1", got)
		}
	})
	t.Run("transient failure asks for redelivery", func(t *testing.T) {
		w := New(failingWriter{db.Store}, stock, catalog, Config{WriteAttempts: 2, RetryBackoff: time.Millisecond}, nil, quiet)
		d := admit(1)
		if err := w.Handle(ctx, []domain.Delivery{d}); err == nil {
			t.Fatal("got nil, want an error so the message comes again")
		}
		if tk, _ := stock.Ticket(ctx, 1, d.Request.Ticket); tk.Status != domain.TicketPending || left() != 4 {
			t.Fatalf("got %+v with %d left, want still pending with 4 left", tk, left())
		}
		// The last delivery is settled: failed, stock back, a dead letter.
		d.Attempt, d.Last = 8, true
		if err := w.Handle(ctx, []domain.Delivery{d}); err != nil {
			t.Fatalf("last delivery: got %v, want it acknowledged", err)
		}
		if tk, _ := stock.Ticket(ctx, 1, d.Request.Ticket); tk.Status != domain.TicketFailed || left() != 5 {
			t.Fatalf("got %+v with %d left, want failed with 5 left", tk, left())
		}
		if got := counter(t, w.m.DeadLetters.WithLabelValues("write_failed")); got != 1 {
			t.Fatalf("got %v dead letters, want 1", got)
		}
	})
	t.Run("written once however often delivered", func(t *testing.T) {
		w := New(db.Store, stock, catalog, Config{BatchSize: 4}, nil, quiet)
		d := admit(2)
		for n := 0; n < 3; n++ {
			if err := w.Handle(ctx, []domain.Delivery{d, d}); err != nil {
				t.Fatal(err)
			}
		}
		var orders int
		db.QueryRow(`SELECT COUNT(*) FROM orders WHERE ticket = ? AND status <> 'void'`, d.Request.Ticket).Scan(&orders)
		tk, _ := stock.Ticket(ctx, 2, d.Request.Ticket)
		if orders != 1 || tk.Status != domain.TicketCreated || left() != 4 {
			t.Fatalf("got %d orders, ticket %+v, %d left; want 1, created, 4", orders, tk, left())
		}
	})
	t.Run("an unknown activity is another deployment's: retried, then left alone", func(t *testing.T) {
		w := New(db.Store, stock, catalog, Config{}, nil, quiet)
		r := domain.OrderRequest{Ticket: domain.NewTicket(a.ID+99, 1, "x"), UserID: 3, ActivityID: a.ID + 99, ItemID: 1, Quantity: 1}
		if err := w.Handle(ctx, []domain.Delivery{{ID: "u", Attempt: 1, Request: r}}); err == nil {
			t.Fatal("got nil, want an error so the message goes back to the group")
		}
		if err := w.Handle(ctx, []domain.Delivery{{ID: "u", Attempt: 16, Last: true, Request: r}}); err != nil {
			t.Fatalf("last delivery: got %v, want it acknowledged", err)
		}
		if _, err := stock.Ticket(ctx, 3, r.Ticket); !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("got %v, want the ticket untouched (not found here)", err)
		}
		if got := counter(t, w.m.DeadLetters.WithLabelValues("unknown_activity")); got != 1 {
			t.Fatalf("got %v dead letters, want 1", got)
		}
	})
	t.Run("an outage shorter than RetryFor is ridden out in process", func(t *testing.T) {
		w := New(&flakyWriter{Store: db.Store, n: 6}, stock, catalog, Config{RetryBackoff: time.Millisecond, RetryFor: time.Minute}, nil, quiet)
		d := admit(4)
		if err := w.Handle(ctx, []domain.Delivery{d}); err != nil {
			t.Fatalf("got %v, want the order written on the seventh try and acknowledged", err)
		}
		if tk, _ := stock.Ticket(ctx, 4, d.Request.Ticket); tk.Status != domain.TicketCreated {
			t.Fatalf("got %+v, want created", tk)
		}
		if got := counter(t, w.m.WriteRetries); got != 6 {
			t.Fatalf("got %v retries, want 6", got)
		}
	})
}

// calls counts a ledger's and an order store's calls by name.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
}

func (c *calls) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

type countingLedger struct {
	domain.StockLedger
	c *calls
}

func (l countingLedger) Ticket(ctx context.Context, userID int64, ticket string) (domain.Ticket, error) {
	l.c.add("Ticket")
	return l.StockLedger.Ticket(ctx, userID, ticket)
}

func (l countingLedger) Tickets(ctx context.Context, q []domain.Ticket) ([]domain.Ticket, error) {
	l.c.add("Tickets")
	return l.StockLedger.Tickets(ctx, q)
}

func (l countingLedger) Settle(ctx context.Context, t domain.Ticket, buckets int) (bool, error) {
	l.c.add("Settle")
	return l.StockLedger.Settle(ctx, t, buckets)
}

func (l countingLedger) SettleBatch(ctx context.Context, ts []domain.Ticket, buckets int) ([]bool, error) {
	l.c.add("SettleBatch")
	return l.StockLedger.SettleBatch(ctx, ts, buckets)
}

type countingStore struct {
	domain.OrderStore
	c *calls
}

func (s countingStore) WriteOrder(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	s.c.add("WriteOrder")
	return s.OrderStore.WriteOrder(ctx, r, limit)
}

func (s countingStore) WriteBatch(ctx context.Context, reqs []domain.OrderRequest, limit int) ([]domain.Written, []error) {
	s.c.add("WriteBatch")
	return s.OrderStore.WriteBatch(ctx, reqs, limit)
}

// TestHandleBatchEndToEnd: a batch of one item's orders costs one ledger call to
// confirm their tickets, one transaction to write them, one ledger call to settle them;
// and when the batch holds every kind of delivery, each ends as it would alone.
func TestHandleBatchEndToEnd(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	rdb := testenv.Redis(t)
	stock := redis.NewStock(rdb, time.Hour)
	svc := sale.New(sale.Deps{Catalog: db.Store, Orders: db.Store, Ledger: stock, Cache: redis.NewCache(rdb), Log: quiet}, sale.Config{})
	catalog := sale.NewCatalog(db.Store, redis.NewCache(rdb), sale.CatalogConfig{}, quiet)
	newSale := func(stockN int64) *domain.Activity { return openSale(t, svc, "w", stockN) }
	admit := func(a *domain.Activity, user int64) domain.Delivery {
		d, err := stock.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: a.Items[0].ID, UserID: user, Quantity: 1,
			Ticket: domain.NewTicket(a.ID, a.Items[0].ID, fmt.Sprint("b", user)), Buckets: 1})
		if err != nil {
			t.Fatal(err)
		}
		return domain.Delivery{ID: d.Ticket, Attempt: 1, Request: domain.OrderRequest{Ticket: d.Ticket, UserID: user, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}}
	}
	state := func(a *domain.Activity) domain.ItemState {
		st, err := stock.State(ctx, a.ID, a.Items[0].ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	t.Run("one call per step", func(t *testing.T) {
		a := newSale(50)
		c := &calls{}
		w := New(countingStore{db.Store, c}, countingLedger{stock, c}, catalog, Config{BatchSize: 64, BatchWindow: 50 * time.Millisecond}, nil, quiet)
		var batch []domain.Delivery
		for u := int64(1); u <= 30; u++ {
			batch = append(batch, admit(a, u))
		}
		if err := w.Handle(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]int{"Tickets": 1, "Ticket": 0, "WriteBatch": 1, "WriteOrder": 0, "SettleBatch": 1, "Settle": 0} {
			if got := c.get(name); got != want {
				t.Errorf("%s: got %d calls, want %d", name, got, want)
			}
		}
		for _, d := range batch {
			if tk, err := stock.Ticket(ctx, d.Request.UserID, d.Request.Ticket); err != nil || tk.Status != domain.TicketCreated || tk.OrderID == 0 {
				t.Fatalf("ticket %s: got %+v, %v; want created", d.Request.Ticket, tk, err)
			}
		}
		if st := state(a); st.Tickets != 0 || st.Available() != 20 {
			t.Fatalf("got %d in flight and %d left, want 0 and 20", st.Tickets, st.Available())
		}
	})

	t.Run("every kind of delivery in one batch", func(t *testing.T) {
		a := newSale(50)
		w := New(db.Store, stock, catalog, Config{BatchSize: 64, BatchWindow: 5 * time.Millisecond}, nil, quiet)
		fresh := []domain.Delivery{admit(a, 1), admit(a, 2), admit(a, 3)}
		written := admit(a, 4) // written and settled by an earlier delivery
		if err := w.Handle(ctx, []domain.Delivery{written}); err != nil {
			t.Fatal(err)
		}
		ended := admit(a, 5) // the backend gave up on it: failed, its unit back
		if _, err := stock.Settle(ctx, domain.Ticket{ID: ended.Request.Ticket, UserID: 5, Status: domain.TicketFailed, Reason: "publish_failed"}, 1); err != nil {
			t.Fatal(err)
		}
		// A second order of user 4 that Redis never saw (it lost its state): MySQL
		// refuses it past the limit, and the ticket ends failed.
		over := domain.Delivery{ID: "over", Attempt: 1, Request: domain.OrderRequest{Ticket: domain.NewTicket(a.ID, a.Items[0].ID, "over"),
			UserID: 4, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}}
		foreign := domain.Delivery{ID: "f", Attempt: 1, Request: domain.OrderRequest{Ticket: domain.NewTicket(a.ID+999, 1, "f"),
			UserID: 6, ActivityID: a.ID + 999, ItemID: 1, Quantity: 1}}
		bad := domain.Delivery{ID: "bad", Malformed: errors.New("not json")}
		batch := append([]domain.Delivery{written, ended, bad}, fresh...)
		batch = append(batch, fresh[0], over, foreign) // fresh[0] twice: a redelivery in the same batch
		err := w.Handle(ctx, batch)
		if err == nil {
			t.Fatal("got nil, want the foreign message's error (it goes back to its group)")
		}
		// The foreign one aside, every delivery is decided: a second Handle without it
		// acknowledges the rest.
		if err := w.Handle(ctx, batch[:len(batch)-1]); err != nil {
			t.Fatalf("without the foreign message: got %v, want everything acknowledged", err)
		}
		want := map[string]domain.TicketStatus{written.Request.Ticket: domain.TicketCreated, ended.Request.Ticket: domain.TicketFailed,
			fresh[0].Request.Ticket: domain.TicketCreated, fresh[1].Request.Ticket: domain.TicketCreated, fresh[2].Request.Ticket: domain.TicketCreated,
			over.Request.Ticket: domain.TicketFailed}
		users := map[string]int64{written.Request.Ticket: 4, ended.Request.Ticket: 5, over.Request.Ticket: 4}
		for _, d := range fresh {
			users[d.Request.Ticket] = d.Request.UserID
		}
		for ticket, st := range want {
			if tk, err := stock.Ticket(ctx, users[ticket], ticket); err != nil || tk.Status != st {
				t.Errorf("ticket %s: got %+v, %v; want %s", ticket, tk, err, st)
			}
		}
		var orders, units int
		if err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(quantity), 0) FROM orders WHERE item_id = ? AND status = 'created'`, a.Items[0].ID).Scan(&orders, &units); err != nil {
			t.Fatal(err)
		}
		rows, err := db.Store.Stock(ctx, a.Items[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if orders != 4 || units != 4 || rows[0].Available != 46 {
			t.Fatalf("got %d orders of %d units and %d left in MySQL, want 4, 4 and 46", orders, units, rows[0].Available)
		}
		if st := state(a); st.Tickets != 0 || st.Available() != 46 {
			t.Fatalf("got %d in flight and %d left in Redis, want 0 and 46", st.Tickets, st.Available())
		}
	})
}

// TestRaisedLimitWritesAgain: an operator raises the per-user limit while the worker
// holds a copy of the activity; the ledger admits a shopper's second unit under the new
// limit. The worker's write, refused under its copy's limit, asks the shared copy and
// writes the order instead of failing it (it failed limit_exceeded before).
func TestRaisedLimitWritesAgain(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	rdb := testenv.Redis(t)
	stock := redis.NewStock(rdb, time.Hour)
	svc := sale.New(sale.Deps{Catalog: db.Store, Orders: db.Store, Ledger: stock, Cache: redis.NewCache(rdb), Log: quiet}, sale.Config{})
	t.Cleanup(svc.Close)
	for _, batch := range []int{1, 4} {
		t.Run(fmt.Sprint("batch ", batch), func(t *testing.T) {
			a := openSale(t, svc, "raised", 5)
			catalog := sale.NewCatalog(db.Store, redis.NewCache(rdb), sale.CatalogConfig{LocalTTL: time.Hour}, quiet)
			w := New(db.Store, stock, catalog, Config{BatchSize: batch}, nil, quiet)
			admit := func(n int) domain.Delivery {
				d, err := stock.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: a.Items[0].ID, UserID: 7, Quantity: 1,
					Ticket: domain.NewTicket(a.ID, a.Items[0].ID, fmt.Sprint("raised", n)), Buckets: 1})
				if err != nil {
					t.Fatalf("admit unit %d: %v", n, err)
				}
				return domain.Delivery{ID: d.Ticket, Attempt: 1, Request: domain.OrderRequest{Ticket: d.Ticket, UserID: 7, ActivityID: a.ID,
					ItemID: a.Items[0].ID, Quantity: 1}}
			}
			if err := w.Handle(ctx, []domain.Delivery{admit(1)}); err != nil { // the worker's copy: limit 1
				t.Fatal(err)
			}
			three := 3
			if _, err := svc.Update(ctx, a.ID, domain.ActivityChange{PerUserLimit: &three}); err != nil {
				t.Fatal(err)
			}
			second := admit(2) // the ledger admits it under the new limit
			if err := w.Handle(ctx, []domain.Delivery{second}); err != nil {
				t.Fatal(err)
			}
			tk, err := stock.Ticket(ctx, 7, second.Request.Ticket)
			if err != nil || tk.Status != domain.TicketCreated {
				t.Fatalf("the second unit under the raised limit: got %+v, %v; want created", tk, err)
			}
			var units int
			if err := db.QueryRowContext(ctx, "SELECT COALESCE(SUM(quantity), 0) FROM orders WHERE activity_id = ? AND user_id = 7", a.ID).Scan(&units); err != nil {
				t.Fatal(err)
			}
			if units != 2 {
				t.Fatalf("MySQL holds %d units of the shopper, want 2", units)
			}
		})
	}
}

// openSale creates and publishes an async sale of one item of stock units, limit 1,
// open from a minute ago for an hour.
func openSale(t *testing.T, svc *sale.Service, name string, stock int64) *domain.Activity {
	t.Helper()
	ctx := context.Background()
	a := &domain.Activity{Name: name, Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), Strategy: domain.StrategyAsync,
		PerUserLimit: 1, BucketCount: 1, Items: []domain.Item{{Name: "x", PriceCents: 1, TotalStock: stock}}}
	if err := svc.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	return a
}
