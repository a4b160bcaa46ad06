package backend

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// TestUpdateRefusedFieldChangesNothing (issue "Invariants under every failure
// sequence", sequence 12): an operator's update through the RPC edge with one field
// refused changes nothing, on the real MariaDB and Redis. Fails before the fix: the edge
// applied bucket_count (SetBuckets) before the per-user limit was checked.
func TestUpdateRefusedFieldChangesNothing(t *testing.T) {
	ctx := context.Background()
	db, rdb := testenv.MySQL(t), testenv.Redis(t)
	stock := redis.NewStock(rdb, time.Hour)
	svc := sale.New(sale.Deps{Catalog: db.Store, Orders: db.Store, Ledger: stock, Cache: redis.NewCache(rdb),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, sale.Config{})
	h := &handler{svc: svc}
	a := &domain.Activity{Name: "before", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), Strategy: domain.StrategyBucket,
		PerUserLimit: 2, BucketCount: 2, Items: []domain.Item{{Name: "x", PriceCents: 1, TotalStock: 10}}}
	if err := svc.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	a, err := svc.Publish(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	name, buckets, limit := "after", int32(3), int32(0)
	_, err = h.UpdateActivity(ctx, &rpc.UpdateActivityReq{Id: a.ID, Name: &name, BucketCount: &buckets, PerUserLimit: &limit})
	if code := domain.ErrorCode(rpcerr.FromRPC(err)); code != domain.EBadRequest {
		t.Fatalf("got %v (%q), want bad_request", err, code)
	}
	got, err := db.Store.Activity(ctx, a.ID)
	if err != nil || got.Name != "before" || got.BucketCount != 2 || got.PerUserLimit != 2 || got.Version != a.Version {
		t.Fatalf("got %+v, %v; want the activity as it was (version %d)", got, err, a.Version)
	}
	rows, err := db.Store.Stock(ctx, a.Items[0].ID)
	if err != nil || len(rows) != 2 {
		t.Fatalf("got stock rows %+v, %v; want 2", rows, err)
	}
	meta, err := rdb.HGet(ctx, fmt.Sprintf("sk:{a%d:i%d}:meta", a.ID, a.Items[0].ID), "buckets").Result()
	if err != nil || meta != "2" {
		t.Fatalf("redis bucket count: got %q, %v; want 2", meta, err)
	}
}
