package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/testenv"
)

// BenchmarkWritePath compares, on the real MySQL and on one item, how many orders per
// second reach the database:
//   - single-row: each order its own transaction on one stock row (the unbatched path);
//   - buckets+batch: the stock split in 4 rows, orders grouped up to 64 to a
//     transaction, 256 orders in hand (16 consumer goroutines x 16-message batches);
//   - plain-update: a bare `UPDATE ... SET available = available - 1 WHERE ... AND
//     available > 0` loop on 8 connections, the hot-row limit of the machine.
//
// single-row runs 64 writers. Run: go test -run '^$' -bench WritePath -benchtime 4000x ./worker/
func BenchmarkWritePath(b *testing.B) {
	db := testenv.MySQL(b)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newItem := func(b *testing.B, buckets int) *domain.Activity {
		a := &domain.Activity{Name: "bench", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour),
			Strategy: domain.StrategyBucket, PerUserLimit: 1, BucketCount: buckets,
			Items: []domain.Item{{Name: "hot", PriceCents: 1, TotalStock: int64(b.N) + 1000}}}
		if err := db.Store.CreateActivity(ctx, a); err != nil {
			b.Fatal(err)
		}
		return a
	}
	run := func(b *testing.B, writers int, write func(i int) error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		start := time.Now()
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1))
					if i > b.N {
						return
					}
					if err := write(i); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "orders/s")
	}
	var round atomic.Int64
	req := func(a *domain.Activity, i, buckets int) domain.OrderRequest {
		return domain.OrderRequest{Ticket: fmt.Sprintf("b%d-%d-%d", round.Load(), a.ID, i), UserID: int64(i), ActivityID: a.ID, ItemID: a.Items[0].ID,
			Bucket: i % buckets, Quantity: 1, AmountCents: 1}
	}

	b.Run("single-row", func(b *testing.B) {
		round.Add(1)
		a := newItem(b, 1)
		run(b, 64, func(i int) error {
			_, err := db.Store.WriteOrder(ctx, req(a, i, 1), 1)
			return err
		})
	})
	b.Run("buckets+batch", func(b *testing.B) {
		round.Add(1)
		a := newItem(b, 4)
		w := New(db.Store, nil, nil, Config{BatchSize: 64, BatchWindow: 5 * time.Millisecond}, nil, quiet)
		run(b, 256, func(i int) error {
			_, err := w.write(ctx, req(a, i, 4), 1)
			return err
		})
	})
	b.Run("plain-update", func(b *testing.B) {
		a := newItem(b, 1)
		run(b, 8, func(int) error {
			_, err := db.ExecContext(ctx, `UPDATE item_stock SET available = available - 1 WHERE item_id = ? AND bucket = 0 AND available > 0`, a.Items[0].ID)
			return err
		})
	})
}
