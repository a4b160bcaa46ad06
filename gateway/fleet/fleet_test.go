package fleet

import (
	"testing"
	"time"
)

// TestSharing: the limits' rates are shared by this gateway, the ready ones and those
// that started a moment ago, not by a gateway that stays unready (it serves no order):
// a fleet probe's three gateways admitted three quarters of the global rate while a
// fourth that could not reach a backend ran.
func TestSharing(t *testing.T) {
	a := New(Options{ID: "self", ReportEvery: time.Second})
	now := time.Now()
	long, just := now.Add(-time.Minute).UnixMilli(), now.Add(-time.Second).UnixMilli()
	fleet := []Report{
		{ID: "self", StartedMS: long},               // this one, not ready yet: counted
		{ID: "ready", Ready: true, StartedMS: long}, // counted
		{ID: "stuck", StartedMS: long},              // unready for a minute: not counted
		{ID: "starting", StartedMS: just},           // on its way: counted
	}
	if got := a.sharing(fleet, now); got != 3 {
		t.Errorf("sharing: got %d, want 3 (self, ready, starting)", got)
	}
	if got := a.sharing(fleet[2:3], now); got != 0 {
		t.Errorf("sharing of the stuck one alone: got %d, want 0", got)
	}
}
