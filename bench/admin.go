package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/seckill/flashsale/gateway/api"
)

// createSale creates and publishes, through the operator API, an activity that
// is on sale now.
func createSale(ctx context.Context, op *api.Client, name, strategy string, buckets, perUser int, items []api.ItemSpec, room ...api.WaitingRoomChange) (*api.Activity, error) {
	now := time.Now()
	in := api.CreateActivityRequest{Name: name, Start: now.Add(-time.Minute).UTC().Format(time.RFC3339), End: now.Add(6 * time.Hour).UTC().Format(time.RFC3339),
		Strategy: strategy, PerUserLimit: int32(perUser), Items: items}
	if len(room) > 0 {
		in.WaitingRoom = &room[0]
	}
	if strategy == "bucket" {
		in.BucketCount = int32(buckets)
	}
	act, err := op.CreateActivity(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("create the sale: %w", err)
	}
	if len(act.Items) != len(items) {
		return nil, fmt.Errorf("create the sale: got %d items back, want %d", len(act.Items), len(items))
	}
	if _, err := op.Publish(ctx, act.ID); err != nil {
		return nil, fmt.Errorf("publish activity %d: %w", act.ID, err)
	}
	return act, nil
}

// isSettled: nothing pending or in flight, and Redis agrees with MySQL on every item.
func isSettled(s *api.Stats) bool {
	if s.PendingTickets != 0 {
		return false
	}
	for _, it := range s.Items {
		if it.InFlight != 0 || it.PendingTickets != 0 || it.RedisStock != it.MySQLStock {
			return false
		}
	}
	return true
}

func totals(s *api.Stats) (orders, units, redisStock, mysqlStock, inFlight int64) {
	for _, it := range s.Items {
		orders += it.Orders
		units += it.UnitsSold
		redisStock += it.RedisStock
		mysqlStock += it.MySQLStock
		inFlight += it.InFlight
	}
	return
}
