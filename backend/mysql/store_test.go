package mysql_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/testenv"
)

func newActivity(tb testing.TB, st *mysql.Store, stock int64, buckets, limit int) *domain.Activity {
	tb.Helper()
	strategy := domain.StrategyAsync
	if buckets > 1 {
		strategy = domain.StrategyBucket
	}
	a := &domain.Activity{Name: "test sale", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour),
		Strategy: strategy, PerUserLimit: limit, BucketCount: buckets,
		Items: []domain.Item{{Name: "phone", PriceCents: 19900, TotalStock: stock}}}
	if err := st.CreateActivity(context.Background(), a); err != nil {
		tb.Fatal(err)
	}
	return a
}

func request(a *domain.Activity, user int64, ticket string, qty int) domain.OrderRequest {
	return domain.OrderRequest{Ticket: ticket, UserID: user, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: qty, AmountCents: 19900 * int64(qty)}
}

func available(tb testing.TB, st *mysql.Store, itemID int64) int64 {
	tb.Helper()
	rows, err := st.Stock(context.Background(), itemID)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, r := range rows {
		n += r.Available
	}
	return n
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := testenv.MySQL(t)
	applied, err := mysql.Migrate(context.Background(), db.DB)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second migrate: got %v, %v; want nothing applied", applied, err)
	}
}

// TestItemCountsBackfill: 0002 counts the live orders each buyer of a database
// written before it already holds (the stats read them from there since).
func TestItemCountsBackfill(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	a := newActivity(t, db.Store, 10, 1, 3)
	for _, r := range []domain.OrderRequest{request(a, 1, "u1a", 1), request(a, 1, "u1b", 2), request(a, 2, "u2", 1)} {
		if _, err := db.Store.WriteOrder(ctx, r, 3); err != nil {
			t.Fatal(err)
		}
	}
	o, err := db.Store.OrderByTicket(ctx, "u1b")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Store.EndOrder(ctx, 1, o.ID, domain.OrderCancelled); err != nil {
		t.Fatal(err)
	}
	want := domain.ItemCounts{Orders: 2, Units: 2}
	if c, err := db.Store.Counts(ctx, a.Items[0].ID); err != nil || c != want {
		t.Fatalf("counts as written: got %+v, %v; want %+v", c, err, want)
	}
	// As a database from before 0002 would have them, then the backfill.
	if _, err := db.ExecContext(ctx, `UPDATE purchases SET orders = 0`); err != nil {
		t.Fatal(err)
	}
	ms, err := mysql.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var backfill string
	for _, m := range ms {
		if m.Version == "0002_item_counts" {
			for _, stmt := range strings.Split(m.SQL, ";\n") {
				if strings.Contains(stmt, "UPDATE purchases") {
					backfill = stmt
				}
			}
		}
	}
	if backfill == "" {
		t.Fatal("0002_item_counts has no backfill")
	}
	if _, err := db.ExecContext(ctx, backfill); err != nil {
		t.Fatal(err)
	}
	if c, err := db.Store.Counts(ctx, a.Items[0].ID); err != nil || c != want {
		t.Fatalf("counts after the backfill: got %+v, %v; want %+v", c, err, want)
	}
}

func TestCreateAndReadActivity(t *testing.T) {
	db := testenv.MySQL(t)
	a := newActivity(t, db.Store, 10, 4, 2)
	got, err := db.Store.Activity(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != a.Name || got.BucketCount != 4 || got.PerUserLimit != 2 || got.State != domain.StateDraft || len(got.Items) != 1 {
		t.Fatalf("got %+v, want the activity created", got)
	}
	rows, err := db.Store.Stock(context.Background(), a.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{3, 3, 2, 2}
	for i, r := range rows {
		if r.Available != want[i] {
			t.Fatalf("bucket %d: got %d units, want %d", i, r.Available, want[i])
		}
	}
	if _, err := db.Store.Activity(context.Background(), a.ID+999); !domain.IsCode(err, domain.ENotFound) {
		t.Fatalf("unknown id: got %v, want not_found", err)
	}
}

func TestWriteOrder(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	a := newActivity(t, db.Store, 3, 1, 2)
	item := a.Items[0].ID

	w, err := db.Store.WriteOrder(ctx, request(a, 1, "t1", 2), a.PerUserLimit)
	if err != nil || w.Duplicate || w.Order.ID == 0 {
		t.Fatalf("first write: got %+v, %v", w, err)
	}
	again, err := db.Store.WriteOrder(ctx, request(a, 1, "t1", 2), a.PerUserLimit)
	if err != nil || !again.Duplicate || again.Order.ID != w.Order.ID {
		t.Fatalf("redelivery: got %+v, %v; want the first order as a duplicate", again, err)
	}
	if got := available(t, db.Store, item); got != 1 {
		t.Fatalf("after one order of 2 written twice: got %d available, want 1", got)
	}
	if _, err := db.Store.WriteOrder(ctx, request(a, 1, "t2", 1), a.PerUserLimit); !domain.IsCode(err, domain.ELimitExceeded) {
		t.Fatalf("over the per-user limit: got %v, want limit_exceeded", err)
	}
	if _, err := db.Store.WriteOrder(ctx, request(a, 2, "t3", 2), a.PerUserLimit); !domain.IsCode(err, domain.ESoldOut) {
		t.Fatalf("more than is left: got %v, want sold_out", err)
	}
	if _, err := db.Store.OrderByTicket(ctx, "t3"); !domain.IsCode(err, domain.ENotFound) {
		t.Fatalf("a refused write left an order: %v", err)
	}
	if got := available(t, db.Store, item); got != 1 {
		t.Fatalf("after refusals: got %d available, want 1", got)
	}
}

func TestEndOrderTwice(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	a := newActivity(t, db.Store, 5, 1, 1)
	w, err := db.Store.WriteOrder(ctx, request(a, 7, "t1", 1), 1)
	if err != nil {
		t.Fatal(err)
	}
	o, changed, err := db.Store.EndOrder(ctx, 7, w.Order.ID, domain.OrderCancelled)
	if err != nil || !changed || o.Status != domain.OrderCancelled {
		t.Fatalf("cancel: got %+v, %v, %v", o, changed, err)
	}
	_, changed, err = db.Store.EndOrder(ctx, 7, w.Order.ID, domain.OrderCancelled)
	if err != nil || changed {
		t.Fatalf("second cancel: got changed=%v, %v; want unchanged, no error", changed, err)
	}
	if got := available(t, db.Store, a.Items[0].ID); got != 5 {
		t.Fatalf("got %d available, want 5 (stock back once)", got)
	}
	if _, _, err := db.Store.EndOrder(ctx, 8, w.Order.ID, domain.OrderCancelled); !domain.IsCode(err, domain.ENotFound) {
		t.Fatalf("another user's order: got %v, want not_found", err)
	}
	// The unit came back to the user too: they may buy again.
	if _, err := db.Store.WriteOrder(ctx, request(a, 7, "t2", 1), 1); err != nil {
		t.Fatalf("buy again after cancel: %v", err)
	}
}

// TestWriteOrderHammer: many writers race on one stock row; the versioned update
// never oversells, and every write either commits or is refused as sold out.
func TestWriteOrderHammer(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	const stock, writers = 50, 80
	a := newActivity(t, db.Store, stock, 1, 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, soldOut := 0, 0
	for u := 1; u <= writers; u++ {
		wg.Add(1)
		go func(u int) {
			defer wg.Done()
			_, err := db.Store.WriteOrder(ctx, request(a, int64(u), fmt.Sprintf("h%d", u), 1), 1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case domain.IsCode(err, domain.ESoldOut):
				soldOut++
			default:
				t.Errorf("user %d: %v", u, err)
			}
		}(u)
	}
	wg.Wait()
	c, err := db.Store.Counts(ctx, a.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if created != stock || soldOut != writers-stock || c.Orders != stock || available(t, db.Store, a.Items[0].ID) != 0 {
		t.Fatalf("got %d created, %d sold out, %d orders in MySQL; want %d, %d, %d and nothing left",
			created, soldOut, c.Orders, stock, writers-stock, stock)
	}
	t.Logf("optimistic retries: %d", db.Store.Retries())
}

// TestWriteBatchIDs: batches written at the same time by several writers, on two
// buckets, each return the ids MySQL gave their orders (they are taken from the
// INSERT's first id, not read back, so a wrong step or an interleaving would show).
func TestWriteBatchIDs(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	const writers, batches, size = 8, 10, 12
	a := newActivity(t, db.Store, writers*batches*size, 2, 1)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				reqs := make([]domain.OrderRequest, size)
				for k := range reqs {
					user := int64((w*batches+b)*size + k + 1)
					reqs[k] = request(a, user, fmt.Sprintf("id-%d", user), 1)
					reqs[k].Bucket = w % 2
				}
				written, errs := db.Store.WriteBatch(ctx, reqs, 1)
				for k, r := range reqs {
					if errs[k] != nil {
						t.Errorf("%s: %v", r.Ticket, errs[k])
						continue
					}
					got, err := db.Store.OrderByTicket(ctx, r.Ticket)
					if err != nil || got.ID != written[k].Order.ID || got.UserID != r.UserID {
						t.Errorf("%s: batch said id %d; MySQL has %+v, %v", r.Ticket, written[k].Order.ID, got, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if left := available(t, db.Store, a.Items[0].ID); left != 0 {
		t.Fatalf("%d units left, want 0", left)
	}
}
