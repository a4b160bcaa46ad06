package worker

import (
	"context"
	"flag"
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

var (
	benchBuckets = flag.Int("write-buckets", 2, "BenchmarkWritePath: stock rows of the bucketed item")
	benchBatch   = flag.Int("write-batch", 128, "BenchmarkWritePath: most orders in one transaction")
	benchInHand  = flag.Int("write-in-hand", 256, "BenchmarkWritePath: orders the bucketed worker holds at once")
	benchRounds  = flag.Int("write-rounds", 4, "BenchmarkWritePath: rounds the three paths take in turn")
)

// BenchmarkWritePath compares, on the real MySQL, how many orders per second reach
// the database on one hot item:
//   - single-row: each order its own transaction on one stock row (the unbatched
//     path: B = 1), 64 writers;
//   - buckets+batch: the stock split in -write-buckets rows, orders grouped up to
//     -write-batch to a transaction, -write-in-hand orders at once (a worker's
//     consumers times their message batches);
//   - plain-update: a bare `UPDATE ... SET available = available - 1 WHERE ... AND
//     available > 0` loop on 8 connections, the hot-row limit of the machine.
//
// The three take turns in -write-rounds rounds of b.N/rounds orders each, so noise
// from the rest of the machine lands on all of them; each has its own item for the
// whole run. It reports each path's orders/s and the two ratios the bucketed
// strategy is judged by (goals: 5x and 3x). ns/op covers all three; read the metrics.
//
//	go test -run '^$' -bench WritePath -benchtime 20000x -count 3 ./worker/
func BenchmarkWritePath(b *testing.B) {
	db := testenv.MySQL(b)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rounds := max(*benchRounds, 1)
	newItem := func(buckets int) int64 {
		a := &domain.Activity{Name: "bench", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour),
			Strategy: domain.StrategyBucket, PerUserLimit: 1, BucketCount: buckets,
			Items: []domain.Item{{Name: "hot", PriceCents: 1, TotalStock: int64(b.N) + 1000}}}
		if err := db.Store.CreateActivity(ctx, a); err != nil {
			b.Fatal(err)
		}
		return a.Items[0].ID
	}
	type path struct {
		name    string
		writers int
		write   func(i int) error
		orders  int
		elapsed time.Duration
	}
	order := func(item int64, i, buckets int) domain.OrderRequest {
		return domain.OrderRequest{Ticket: fmt.Sprintf("w%d-%d", item, i), UserID: int64(i), ItemID: item,
			Bucket: i % buckets, Quantity: 1, AmountCents: 1}
	}
	single, bucketed, plain := newItem(1), newItem(*benchBuckets), newItem(1)
	w := New(db.Store, nil, nil, Config{BatchSize: *benchBatch, BatchWindow: 5 * time.Millisecond}, nil, quiet)
	paths := []*path{
		{name: "single-row", writers: 64, write: func(i int) error {
			_, err := db.Store.WriteOrder(ctx, order(single, i, 1), 1)
			return err
		}},
		{name: "buckets+batch", writers: *benchInHand, write: func(i int) error {
			_, err := w.writeOrder(ctx, order(bucketed, i, *benchBuckets), 1)
			return err
		}},
		{name: "plain-update", writers: 8, write: func(int) error {
			_, err := db.ExecContext(ctx, `UPDATE item_stock SET available = available - 1 WHERE item_id = ? AND bucket = 0 AND available > 0`, plain)
			return err
		}},
	}
	// run writes orders from..to-1 on p with its writers and adds the time it took.
	run := func(p *path, from, to int) {
		var next atomic.Int64
		next.Store(int64(from) - 1)
		var wg sync.WaitGroup
		start := time.Now()
		for range p.writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1))
					if i >= to {
						return
					}
					if err := p.write(i); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		p.elapsed += time.Since(start)
		p.orders += to - from
	}
	b.ResetTimer()
	done := 0
	for r := range rounds {
		n := (b.N - done) / (rounds - r)
		for _, p := range paths {
			run(p, done+1, done+1+n)
		}
		done += n
	}
	b.StopTimer()
	rate := map[string]float64{}
	for _, p := range paths {
		rate[p.name] = float64(p.orders) / p.elapsed.Seconds()
		b.ReportMetric(rate[p.name], p.name+"/s")
	}
	b.ReportMetric(rate["buckets+batch"]/rate["single-row"], "x-single-row")
	b.ReportMetric(rate["buckets+batch"]/rate["plain-update"], "x-plain-update")
	// Every order reached the database once: the stock rows say so.
	for _, p := range paths[:2] {
		rows, err := db.Store.Stock(ctx, map[string]int64{"single-row": single, "buckets+batch": bucketed}[p.name])
		if err != nil {
			b.Fatal(err)
		}
		var left int64
		for _, r := range rows {
			left += r.Available
		}
		if sold := int64(b.N) + 1000 - left; sold != int64(p.orders) {
			b.Errorf("%s: %d units gone from stock, want %d", p.name, sold, p.orders)
		}
	}
}
