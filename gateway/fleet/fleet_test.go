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

// TestRememberOutlivesARedisRestart: a gateway whose report vanished while young (Redis
// restarted empty) is still counted until its report would have expired; one whose
// report expired is not.
func TestRememberOutlivesARedisRestart(t *testing.T) {
	const ttl = 3 * time.Second
	now := time.Now()
	seen := map[string]Report{}
	three := []Report{{ID: "a", SeenMS: now.UnixMilli()}, {ID: "b", SeenMS: now.UnixMilli()}, {ID: "c", SeenMS: now.Add(-2 * time.Second).UnixMilli()}}
	if got := remember(seen, three, now, ttl); len(got) != 3 {
		t.Fatalf("three reports: got %d to count", len(got))
	}
	// Redis lost every report but the one just written again.
	later := now.Add(500 * time.Millisecond)
	got := remember(seen, []Report{{ID: "a", SeenMS: later.UnixMilli()}}, later, ttl)
	if len(got) != 3 {
		t.Fatalf("after Redis lost the reports: got %d to count, want 3", len(got))
	}
	// c's last report is now past its life (its gateway left); b's is not.
	got = remember(seen, []Report{{ID: "a", SeenMS: later.UnixMilli()}}, now.Add(1500*time.Millisecond), ttl)
	ids := map[string]bool{}
	for _, r := range got {
		ids[r.ID] = true
	}
	if len(got) != 2 || !ids["a"] || !ids["b"] {
		t.Fatalf("got %v, want a and b", got)
	}
	if _, kept := seen["c"]; kept {
		t.Errorf("an expired report stays remembered")
	}
}
