package sale_test

import (
	"context"
	"hash/fnv"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/sale"
)

func home(user int64, buckets int) int {
	h := fnv.New32a()
	h.Write([]byte(strconv.FormatInt(user, 10)))
	return int(h.Sum32() % uint32(buckets))
}

// TestEmptyHomeBucketStillSells: users whose home bucket is empty get units from the
// other buckets; sold out only when every bucket is.
func TestEmptyHomeBucketStillSells(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{queue: true, batch: 8})
	a := e.saleN(t, domain.StrategyBucket, 8, 1, 4)
	var users []int64
	for u := int64(1); len(users) < 9; u++ {
		if home(u, 4) == 0 {
			users = append(users, u)
		}
	}
	for n, u := range users {
		_, err := e.svc().PlaceOrder(ctx, sale.PlaceOrder{UserID: u, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1})
		if n < 8 && err != nil {
			t.Fatalf("user %d (%d of 8, home bucket 0): got %v while stock remains", u, n+1, err)
		}
		if n == 8 && !domain.IsCode(err, domain.ESoldOut) {
			t.Fatalf("ninth user: got %v, want sold_out", err)
		}
	}
	e.settle(t, a, time.Minute)
	e.checkInvariants(t, a, 8, 0)
}

// TestRebalanceDuringHammer: the bucket count and the total stock change while
// shoppers buy; exactly the final stock is sold and nothing is lost.
func TestRebalanceDuringHammer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{queue: true, batch: 16})
	a := e.saleN(t, domain.StrategyBucket, 150, 1, 4)
	var wg sync.WaitGroup
	wg.Add(1)
	var tl *tally
	go func() {
		defer wg.Done()
		tl = e.hammer(t, a, 1000, 2)
	}()
	steps := []func() error{
		func() error { _, err := e.svc().SetBuckets(ctx, a.ID, 8); return err },
		func() error {
			total := int64(200)
			_, err := e.svc().Update(ctx, a.ID, domain.ActivityChange{Items: []domain.ItemChange{{ItemID: a.Items[0].ID, TotalStock: &total}}})
			return err
		},
		func() error { _, err := e.svc().SetBuckets(ctx, a.ID, 3); return err },
		func() error { return e.svc().RebalanceAll(ctx, 0) },
	}
	for i, step := range steps {
		time.Sleep(20 * time.Millisecond)
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	wg.Wait()
	e.settle(t, a, 2*time.Minute)
	// Units returned to buckets past the count by failures are swept back.
	if err := e.svc().RebalanceAll(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Stock left over (if the hammer ended before the added units were all taken) is
	// still on sale: sell it, then everything is sold.
	for u := int64(5000); ; u++ {
		_, err := e.svc().PlaceOrder(ctx, sale.PlaceOrder{UserID: u, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1})
		if domain.IsCode(err, domain.ESoldOut) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	e.settle(t, a, time.Minute)
	e.checkInvariants(t, a, 200, 0)
	t.Logf("outcomes during the changes: %v", tl.byCode)
}

// TestBatchWithDuplicates: a batch holding a redelivered message and a message twice
// commits the rest once and the duplicates not at all.
func TestBatchWithDuplicates(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	a := e.saleN(t, domain.StrategyBucket, 20, 1, 2)
	req := func(user int64, ticket string) domain.OrderRequest {
		return domain.OrderRequest{Ticket: ticket, UserID: user, ActivityID: a.ID, ItemID: a.Items[0].ID, Bucket: 1, Quantity: 1, AmountCents: 100}
	}
	if _, err := e.db.Store.WriteOrder(ctx, req(1, "old"), 1); err != nil {
		t.Fatal(err)
	}
	batch := []domain.OrderRequest{req(1, "old"), req(2, "b2"), req(3, "b3"), req(3, "b3"), req(4, "b4")}
	written, errs := e.db.Store.WriteBatch(ctx, batch, 1)
	wantDup := []bool{true, false, false, true, false}
	for i := range batch {
		if errs[i] != nil || written[i].Duplicate != wantDup[i] {
			t.Fatalf("order %d: got %+v, %v; want duplicate=%v", i, written[i], errs[i], wantDup[i])
		}
	}
	var orders int
	e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM orders WHERE item_id = ? AND status <> 'void'`, a.Items[0].ID).Scan(&orders)
	rows, _ := e.db.Store.Stock(ctx, a.Items[0].ID)
	if orders != 4 || rows[1].Available != 10-4 {
		t.Fatalf("got %d orders and %d left in bucket 1, want 4 and 6", orders, rows[1].Available)
	}
	// A batch with a buyer over the limit: the others still commit.
	_, errs = e.db.Store.WriteBatch(ctx, []domain.OrderRequest{req(2, "again"), req(5, "b5"), req(6, "b6")}, 1)
	if !domain.IsCode(errs[0], domain.ELimitExceeded) || errs[1] != nil || errs[2] != nil {
		t.Fatalf("got %v, want limit_exceeded for the first only", errs)
	}

}
