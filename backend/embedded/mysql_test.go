package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/mysql"
)

// mustStartMySQL starts the embedded server and returns a migrated pool of maxConns
// connections on it; both go away when the test ends.
func mustStartMySQL(tb testing.TB, maxConns int) *sql.DB {
	tb.Helper()
	ctx := context.Background()
	dsn, stop, err := StartMySQL(ctx)
	if err != nil {
		tb.Fatalf("start mysql: %v", err)
	}
	tb.Cleanup(stop)
	db, err := mysql.Open(ctx, dsn, maxConns)
	if err != nil {
		tb.Fatalf("open %s: %v", dsn, err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := mysql.Migrate(ctx, db); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return db
}

// mustCreateActivity stores a published-to-be activity with one item of the given
// stock and returns it.
func mustCreateActivity(tb testing.TB, s *mysql.Store, strategy domain.Strategy, buckets, limit int, stock int64) *domain.Activity {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := &domain.Activity{
		Name: "flash", Start: now.Add(-time.Hour), End: now.Add(time.Hour), Strategy: strategy,
		PerUserLimit: limit, BucketCount: buckets,
		Items: []domain.Item{{Name: "phone", PriceCents: 19900, TotalStock: stock}},
	}
	if err := s.CreateActivity(context.Background(), a); err != nil {
		tb.Fatalf("create activity: %v", err)
	}
	return a
}

func order(a *domain.Activity, ticket string, user int64, bucket, qty int) domain.OrderRequest {
	it := a.Items[0]
	return domain.OrderRequest{Ticket: ticket, UserID: user, ActivityID: a.ID, ItemID: it.ID, Bucket: bucket,
		Quantity: qty, AmountCents: it.PriceCents * int64(qty), AdmittedAt: time.Now().UnixMilli()}
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dsn, stop, err := StartMySQL(ctx)
	if err != nil {
		t.Fatalf("start mysql: %v", err)
	}
	defer stop()
	db, err := mysql.Open(ctx, dsn, 2)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	all, err := mysql.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range all {
		want = append(want, m.Version)
	}
	got, err := mysql.Migrate(ctx, db)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("first run applied %v, want %v", got, want)
	}
	got, err = mysql.Migrate(ctx, db)
	if err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("second run applied %v, want none", got)
	}
	var applied time.Time
	if err := db.QueryRowContext(ctx, `SELECT applied_at FROM schema_migrations WHERE version = ?`, want[0]).Scan(&applied); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if d := time.Since(applied); d < -time.Minute || d > time.Minute {
		t.Errorf("got applied_at %v, want about now (UTC)", applied)
	}
}

func TestStoreActivity(t *testing.T) {
	ctx := context.Background()
	s := mysql.NewStore(mustStartMySQL(t, 4))
	a := mustCreateActivity(t, s, domain.StrategyBucket, 3, 2, 10)
	if a.ID == 0 || a.Items[0].ID == 0 {
		t.Fatalf("got ids activity %d item %d, want them filled in", a.ID, a.Items[0].ID)
	}
	got, err := s.Activity(ctx, a.ID)
	if err != nil {
		t.Fatalf("read activity: %v", err)
	}
	if !got.Start.Equal(a.Start) || !got.End.Equal(a.End) || got.Start.Location() != time.UTC {
		t.Errorf("got window %v..%v, want %v..%v in UTC", got.Start, got.End, a.Start, a.End)
	}
	if got.Name != a.Name || got.State != domain.StateDraft || got.Strategy != a.Strategy || got.PerUserLimit != 2 ||
		got.BucketCount != 3 || got.Version != 1 || len(got.Items) != 1 || got.Items[0] != a.Items[0] {
		t.Errorf("got activity %+v, want %+v", got, a)
	}
	rows, err := s.Stock(ctx, a.Items[0].ID)
	if err != nil {
		t.Fatalf("read stock: %v", err)
	}
	if want := []domain.StockRow{{Bucket: 0, Available: 4}, {Bucket: 1, Available: 3}, {Bucket: 2, Available: 3}}; !slices.Equal(rows, want) {
		t.Errorf("got stock rows %v, want %v", rows, want)
	}
	if _, err := s.Activity(ctx, a.ID+100); !domain.IsCode(err, domain.ENotFound) {
		t.Errorf("read a missing activity: got %v, want not_found", err)
	}
	if err := s.SetState(ctx, a.ID, domain.StatePublished); err != nil {
		t.Fatalf("publish: %v", err)
	}
	list, err := s.Activities(ctx, domain.ActivityQuery{})
	if err != nil || len(list) != 1 || list[0].Version != 2 {
		t.Errorf("got published activities %v, %v, want the one at version 2", list, err)
	}

	name, limit, end := "renamed", 5, a.End.Add(time.Hour)
	if err := s.UpdateActivity(ctx, a.ID, domain.ActivityChange{Name: &name, PerUserLimit: &limit, End: &end}); err != nil {
		t.Fatalf("update activity: %v", err)
	}
	price := int64(100)
	if err := s.UpdateActivity(ctx, a.ID, domain.ActivityChange{Items: []domain.ItemChange{{ItemID: a.Items[0].ID, Name: &name, PriceCents: &price}}}); err != nil {
		t.Fatalf("update item: %v", err)
	}
	if err := s.AddStock(ctx, a.Items[0].ID, 1, 5); err != nil {
		t.Fatalf("add stock: %v", err)
	}
	if err := s.AddStock(ctx, a.Items[0].ID, 2, -4); !domain.IsCode(err, domain.ESoldOut) {
		t.Errorf("take more stock than a bucket has: got %v, want sold_out", err)
	}
	got, err = s.Activity(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || got.PerUserLimit != limit || !got.End.Equal(end) || got.Version != 4 ||
		got.Items[0].Name != name || got.Items[0].PriceCents != price || got.Items[0].TotalStock != 15 {
		t.Errorf("after updates: got %+v", got)
	}
	if rows, err := s.Stock(ctx, a.Items[0].ID); err != nil || rows[1] != (domain.StockRow{Bucket: 1, Available: 8, Version: 1}) {
		t.Errorf("after adding stock: got rows %+v, %v", rows, err)
	}
}

func TestStoreWriteOrder(t *testing.T) {
	ctx := context.Background()
	s := mysql.NewStore(mustStartMySQL(t, 4))
	a := mustCreateActivity(t, s, domain.StrategyAsync, 1, 2, 5)
	item := a.Items[0].ID

	type step struct {
		name     string
		req      domain.OrderRequest
		wantCode string // "" for a write
		wantDup  bool
	}
	steps := []step{
		{"first order", order(a, "t1", 7, 0, 1), "", false},
		{"redelivery", order(a, "t1", 7, 0, 1), "", true},
		{"second unit within the limit", order(a, "t2", 7, 0, 1), "", false},
		{"past the per-user limit", order(a, "t3", 7, 0, 1), domain.ELimitExceeded, false},
		{"another user takes 3", order(a, "t4", 8, 0, 2), "", false},
		{"another user takes 3 more", order(a, "t5", 9, 0, 1), "", false},
		{"sold out", order(a, "t6", 10, 0, 1), domain.ESoldOut, false},
		{"no such bucket", order(a, "t7", 11, 3, 1), domain.ENotFound, false},
	}
	ids := map[string]int64{}
	for _, st := range steps {
		w, err := s.WriteOrder(ctx, st.req, a.PerUserLimit)
		if got := domain.ErrorCode(err); got != st.wantCode {
			t.Fatalf("%s: got error %v, want code %q", st.name, err, st.wantCode)
		}
		if err != nil {
			if _, err := s.OrderByTicket(ctx, st.req.Ticket); !domain.IsCode(err, domain.ENotFound) {
				t.Errorf("%s: got order lookup error %v, want not_found (the refused write rolled back)", st.name, err)
			}
			continue
		}
		if w.Duplicate != st.wantDup {
			t.Errorf("%s: got duplicate %v, want %v", st.name, w.Duplicate, st.wantDup)
		}
		if prev, ok := ids[st.req.Ticket]; ok && w.Order.ID != prev {
			t.Errorf("%s: got order %d, want the first write's %d", st.name, w.Order.ID, prev)
		}
		if w.Order.ID == 0 || w.Order.Ticket != st.req.Ticket || w.Order.Status != domain.OrderCreated {
			t.Errorf("%s: got order %+v", st.name, w.Order)
		}
		ids[st.req.Ticket] = w.Order.ID
	}

	assertStock(t, s, item, 0, 4)
	v, err := s.View(ctx, item, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	buyers := v.Buyers
	if want := map[int64]int64{7: 2, 8: 2, 9: 1}; !mapsEqual(buyers, want) {
		t.Errorf("got buyers %v, want %v", buyers, want)
	}
	if c, err := s.Counts(ctx, item); err != nil || c != (domain.ItemCounts{Orders: 4, Units: 5}) {
		t.Errorf("got counts %+v, %v, want 4 orders of 5 units", c, err)
	}

	orders, err := s.Orders(ctx, domain.OrderQuery{UserID: 7})
	if err != nil {
		t.Fatalf("list orders: %v", err)
	}
	if len(orders) != 2 || orders[0].Ticket != "t2" || orders[1].Ticket != "t1" {
		t.Fatalf("got orders of user 7 %+v, want t2 then t1", orders)
	}
	if d := time.Since(orders[0].CreatedAt); d < -time.Minute || d > time.Minute || orders[0].CreatedAt.Location() != time.UTC {
		t.Errorf("got created_at %v, want about now in UTC", orders[0].CreatedAt)
	}

	// Cancelling gives the units back once; the user may buy again.
	o, changed, err := s.EndOrder(ctx, 7, ids["t1"], domain.OrderCancelled)
	if err != nil || !changed || o.Status != domain.OrderCancelled {
		t.Fatalf("end order: got %+v changed %v err %v, want it cancelled", o, changed, err)
	}
	o, changed, err = s.EndOrder(ctx, 7, ids["t1"], domain.OrderExpired)
	if err != nil || changed || o.Status != domain.OrderCancelled {
		t.Errorf("end it again: got %+v changed %v err %v, want it left cancelled", o, changed, err)
	}
	if _, _, err := s.EndOrder(ctx, 8, ids["t1"], domain.OrderCancelled); !domain.IsCode(err, domain.ENotFound) {
		t.Errorf("end another user's order: got %v, want not_found", err)
	}
	assertStock(t, s, item, 1, 5)
	if _, err := s.WriteOrder(ctx, order(a, "t8", 7, 0, 1), a.PerUserLimit); err != nil {
		t.Errorf("buy again after cancelling: %v", err)
	}
	assertStock(t, s, item, 0, 6)
	if c, err := s.Counts(ctx, item); err != nil || c != (domain.ItemCounts{Orders: 4, Units: 5}) {
		t.Errorf("got counts %+v, %v, want 4 orders of 5 units", c, err)
	}

	paid, err := s.PayOrder(ctx, 7, ids["t2"])
	if err != nil || paid.Status != domain.OrderPaid {
		t.Errorf("pay: got %+v, %v", paid, err)
	}
	stale, err := s.StaleOrders(ctx, time.Now().Add(time.Minute), 10)
	if err != nil || len(stale) != 3 {
		t.Errorf("got %d stale orders, %v, want 3 (t4, t5, t8)", len(stale), err)
	}
}

func assertStock(tb testing.TB, s *mysql.Store, item, wantAvail, wantVersion int64) {
	tb.Helper()
	rows, err := s.Stock(context.Background(), item)
	if err != nil {
		tb.Fatalf("read stock: %v", err)
	}
	if len(rows) != 1 || rows[0].Available != wantAvail || rows[0].Version != wantVersion {
		tb.Errorf("got stock rows %+v, want available %d version %d", rows, wantAvail, wantVersion)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestStoreHammer writes orders from many goroutines against one stock row, with
// redeliveries, and checks that exactly the stock was sold, once per ticket.
func TestStoreHammer(t *testing.T) {
	const (
		stock      = 50
		goroutines = 20
		each       = 5 // 100 requests for 50 units
	)
	tests := []struct {
		name     string
		maxConns int
	}{
		{"pool of 32", 32},
		{"one connection", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := mysql.NewStore(mustStartMySQL(t, tt.maxConns))
			a := mustCreateActivity(t, s, domain.StrategyAsync, 1, 1, stock)
			item := a.Items[0].ID

			var mu sync.Mutex
			created, soldOut, dups := 0, 0, 0
			var errs []error
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range each {
						user := int64(g*each + i + 1)
						r := order(a, fmt.Sprintf("h%d", user), user, 0, 1)
						w, err := s.WriteOrder(ctx, r, a.PerUserLimit)
						var again domain.Written
						if err == nil {
							again, err = s.WriteOrder(ctx, r, a.PerUserLimit) // a redelivery
						}
						mu.Lock()
						switch {
						case err == nil && !w.Duplicate && again.Duplicate && again.Order.ID == w.Order.ID:
							created++
						case err == nil:
							dups++
						case domain.IsCode(err, domain.ESoldOut):
							soldOut++
						default:
							errs = append(errs, err)
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Errorf("got errors: %v", err)
			}
			if created != stock || soldOut != goroutines*each-stock || dups != 0 {
				t.Errorf("got %d created (redelivery found), %d sold out, %d bad duplicates; want %d, %d, 0",
					created, soldOut, dups, stock, goroutines*each-stock)
			}
			c, err := s.Counts(ctx, item)
			if err != nil {
				t.Fatal(err)
			}
			if c.Orders != stock || c.Units != stock {
				t.Errorf("got %d orders of %d units in MySQL, want %d", c.Orders, c.Units, stock)
			}
			assertStock(t, s, item, 0, stock)
			var purchases int64
			if err := s.DB().QueryRowContext(ctx, `SELECT COALESCE(SUM(units), 0) FROM purchases WHERE item_id = ?`, item).Scan(&purchases); err != nil {
				t.Fatal(err)
			}
			if purchases != stock {
				t.Errorf("got %d units in purchases, want %d", purchases, stock)
			}
			t.Logf("optimistic retries: %d", s.Retries())
		})
	}
}

// TestOneTransactionAtATime checks the server's gate: a statement of another
// connection waits for an open transaction to end and then sees its result, and a
// connection that goes away inside a transaction leaves nothing behind.
func TestOneTransactionAtATime(t *testing.T) {
	ctx := context.Background()
	db := mustStartMySQL(t, 4)
	if _, err := db.ExecContext(ctx, `INSERT INTO purchases (item_id, user_id, units) VALUES (1, 1, 0)`); err != nil {
		t.Fatal(err)
	}
	units := func() int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, `SELECT units FROM purchases WHERE item_id = 1 AND user_id = 1`).Scan(&n); err != nil {
			t.Fatalf("read units: %v", err)
		}
		return n
	}

	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE purchases SET units = units + 1 WHERE item_id = 1 AND user_id = 1`); err != nil {
		t.Fatal(err)
	}
	read := make(chan int, 1)
	go func() { read <- units() }()
	select {
	case n := <-read:
		t.Fatalf("a read on another connection returned %d while a transaction was open, want it to wait", n)
	case <-time.After(50 * time.Millisecond):
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := <-read; got != 1 {
		t.Errorf("read after commit: got %d units, want 1", got)
	}

	// A connection closed inside a transaction: its work is dropped, the gate freed.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `START TRANSACTION`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `UPDATE purchases SET units = 100 WHERE item_id = 1 AND user_id = 1`); err != nil {
		t.Fatal(err)
	}
	if err := conn.Raw(func(c any) error { return c.(io.Closer).Close() }); err != nil {
		t.Fatalf("close the raw connection: %v", err)
	}
	conn.Close()
	done := make(chan int, 1)
	go func() { done <- units() }()
	select {
	case got := <-done:
		if got != 1 {
			t.Errorf("after a connection died in a transaction: got %d units, want 1", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the gate stayed taken after its connection closed")
	}

	// A failed statement outside a transaction frees the gate too.
	if _, err := db.ExecContext(ctx, `INSERT INTO purchases (item_id, user_id, units) VALUES (1, 1, 5)`); !isDuplicateKey(err) {
		t.Errorf("insert a duplicate key: got %v, want error 1062", err)
	}
	if got := units(); got != 1 {
		t.Errorf("after a failed insert: got %d units, want 1", got)
	}
}

func isDuplicateKey(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// TestStoreWriteBatchIDs: the ids a batch returns are the ones the embedded
// server gave its orders (the store takes them from the INSERT's first id when
// the server says its ids are consecutive).
func TestStoreWriteBatchIDs(t *testing.T) {
	ctx := context.Background()
	s := mysql.NewStore(mustStartMySQL(t, 4))
	a := mustCreateActivity(t, s, domain.StrategyBucket, 1, 1, 20)
	for round := range 2 {
		var reqs []domain.OrderRequest
		for k := range 5 {
			user := int64(round*10 + k + 1)
			reqs = append(reqs, order(a, fmt.Sprintf("b%d", user), user, 0, 1))
		}
		written, errs := s.WriteBatch(ctx, reqs, 1)
		for k, r := range reqs {
			got, err := s.OrderByTicket(ctx, r.Ticket)
			if errs[k] != nil || err != nil || got.ID != written[k].Order.ID {
				t.Errorf("%s: batch said id %d (%v); the server has %+v, %v", r.Ticket, written[k].Order.ID, errs[k], got, err)
			}
		}
	}
}
