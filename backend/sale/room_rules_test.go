package sale_test

import (
	"context"
	"testing"

	"github.com/seckill/flashsale/backend/domain"
)

// TestRulesWaitingRoomSetting: an activity's waiting room is off with k 1.5 unless
// said otherwise; an operator turns it on and changes k on a published sale, the
// catalog's readers see the change at once, and a k out of bounds is refused
// without changing anything.
func TestRulesWaitingRoomSetting(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategyAsync, 10, 1, 1)
	if want := (domain.Room{Factor: domain.DefaultRoomFactor}); a.Room != want {
		t.Fatalf("new activity: got waiting room %+v, want %+v", a.Room, want)
	}
	on, k := true, 2.5
	got, err := r.svc.Update(ctx, a.ID, domain.ActivityChange{RoomOn: &on, RoomFactor: &k})
	if err != nil {
		t.Fatal(err)
	}
	if want := (domain.Room{On: true, Factor: 2.5}); got.Room != want || got.Version <= a.Version {
		t.Fatalf("after the change: got %+v v%d, want %+v above v%d", got.Room, got.Version, want, a.Version)
	}
	read, err := r.svc.Activity(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if read.Room != got.Room {
		t.Fatalf("the catalog's copy: got %+v, want %+v", read.Room, got.Room)
	}
	for _, bad := range []float64{0, 0.05, -1, 100.5} {
		bad := bad
		if _, err := r.svc.Update(ctx, a.ID, domain.ActivityChange{RoomFactor: &bad}); !domain.IsCode(err, domain.EBadRequest) {
			t.Fatalf("k %g: got %v, want bad_request", bad, err)
		}
	}
	after, err := r.svc.AdminActivity(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Room != got.Room || after.Version != got.Version {
		t.Fatalf("after refused changes: got %+v v%d, want %+v v%d", after.Room, after.Version, got.Room, got.Version)
	}
	b := &domain.Activity{Name: "bad k", Start: a.Start, End: a.End, Strategy: domain.StrategySync, Room: domain.Room{On: true, Factor: 0.01},
		Items: []domain.Item{{Name: "x", TotalStock: 1}}}
	if err := r.svc.CreateActivity(ctx, b); !domain.IsCode(err, domain.EBadRequest) {
		t.Fatalf("create with k 0.01: got %v, want bad_request", err)
	}
}
