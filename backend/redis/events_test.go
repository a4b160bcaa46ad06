package redis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/testenv"
)

// Two fleets on one Redis hear only their own control changes and count only their
// own gateways; every process hears activity changes.
func TestEventsKeepFleetsApart(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			id := testenv.ID()
			a, b := redis.NewEvents(rdb, "a"+id), redis.NewEvents(rdb, "b"+id)
			heard := make(chan []string, 16)
			stop, err := a.Subscribe(ctx, func(_ string, f []string) { heard <- f }, a.Control())
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			changed := make(chan [2]int64, 16)
			stopW, err := b.WatchActivities(ctx, func(id, v int64) { changed <- [2]int64{id, v} })
			if err != nil {
				t.Fatal(err)
			}
			defer stopW()

			if err := b.Announce(ctx, "plugins", 7); err != nil {
				t.Fatal(err)
			}
			if err := a.Announce(ctx, "limits", 3); err != nil {
				t.Fatal(err)
			}
			select {
			case f := <-heard:
				if len(f) != 2 || f[0] != "limits" || f[1] != "3" {
					t.Fatalf("fleet a heard %q, want its own \"limits 3\" first", f)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("fleet a heard nothing")
			}
			if err := a.AnnounceActivity(ctx, 42, 5); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-changed:
				if got != [2]int64{42, 5} {
					t.Fatalf("got %v, want activity 42 at version 5", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("an activity change was not heard by the other fleet's process")
			}
			select {
			case f := <-heard:
				t.Fatalf("fleet a heard %q from elsewhere", f)
			case <-time.After(100 * time.Millisecond):
			}

			if err := a.Put(ctx, "gw-1", []byte(`{"n":1}`)); err != nil {
				t.Fatal(err)
			}
			if err := b.Put(ctx, "gw-2", []byte(`{"n":2}`)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				rdb.Del(context.Background(), "sk:{fleet:a"+id+"}:gateways", "sk:{fleet:b"+id+"}:gateways")
			})
			got, err := a.List(ctx, time.Minute)
			if err != nil || len(got) != 1 || string(got["gw-1"]) != `{"n":1}` {
				t.Fatalf("fleet a lists %v, %v; want only its gateway gw-1", got, err)
			}
		})
	}
}

// Every process adds its counts; a read sees the sum.
func TestTalliesSum(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			activity := time.Now().UnixNano() % 1_000_000_000
			t.Cleanup(func() { rdb.Del(context.Background(), "sk:{tally:a"+strconv.FormatInt(activity, 10)+"}") })
			p1 := redis.NewTallies(redis.NewEvents(rdb, "one"))
			p2 := redis.NewTallies(redis.NewEvents(rdb, "two"))
			if err := p1.Add(ctx, "gw:", map[int64]map[string]int64{activity: {"sold_out": 3, "rate_limited": 1}}); err != nil {
				t.Fatal(err)
			}
			if err := p2.Add(ctx, "gw:", map[int64]map[string]int64{activity: {"sold_out": 4}}); err != nil {
				t.Fatal(err)
			}
			if err := p2.Add(ctx, "be:", map[int64]map[string]int64{activity: {"sold_out": 9}}); err != nil {
				t.Fatal(err)
			}
			got, err := p1.Read(ctx, activity, "gw:")
			if err != nil || len(got) != 2 || got["sold_out"] != 7 || got["rate_limited"] != 1 {
				t.Fatalf("got %v, %v; want sold_out 7 and rate_limited 1", got, err)
			}
		})
	}
}
