package ratelimit

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

func TestAllow(t *testing.T) {
	l := New(Limits{User: Rule{RPS: 1, Burst: 3}}, 100)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow(User, "u1"); !ok {
			t.Fatalf("request %d refused within the burst", i)
		}
	}
	ok, wait := l.Allow(User, "u1")
	if ok || wait <= 0 {
		t.Fatalf("got ok=%v wait=%v past the burst, want refused with a wait", ok, wait)
	}
	if ok, _ := l.Allow(User, "u2"); !ok {
		t.Fatal("another user was refused")
	}
	if ok, _ := l.Allow(Item, "i1"); !ok {
		t.Fatal("a kind without a rule refused")
	}
}

func TestGlobal(t *testing.T) {
	l := New(Limits{Global: Rule{RPS: 1, Burst: 2}}, 10)
	got := 0
	for i := 0; i < 10; i++ {
		if ok, _ := l.Allow(Global, strconv.Itoa(i)); ok {
			got++
		}
	}
	if got != 2 {
		t.Fatalf("got %d admitted, want 2", got)
	}
}

func TestSetAtRunTime(t *testing.T) {
	l := New(Limits{User: Rule{RPS: 1, Burst: 1}}, 10)
	l.Allow(User, "u")
	if ok, _ := l.Allow(User, "u"); ok {
		t.Fatal("second request admitted at burst 1")
	}
	l.Set(Limits{})
	if ok, _ := l.Allow(User, "u"); !ok {
		t.Fatal("refused after the limit was turned off")
	}
	if got := l.Limits().User.RPS; got != 0 {
		t.Fatalf("got rps %v, want 0", got)
	}
}

// TestBoundedMemory: a flood of distinct keys keeps at most maxKeys buckets.
func TestBoundedMemory(t *testing.T) {
	const maxKeys = 1000
	l := New(Limits{IP: Rule{RPS: 10, Burst: 10}, User: Rule{RPS: 10, Burst: 10}}, maxKeys)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20_000; i++ {
				l.Allow(IP, strconv.Itoa(g)+"-"+strconv.Itoa(i))
			}
		}(g)
	}
	wg.Wait()
	if got := l.Len(IP); got > maxKeys {
		t.Fatalf("got %d buckets, want at most %d", got, maxKeys)
	}
	if got := l.Len(User); got != 0 {
		t.Fatalf("got %d user buckets, want 0", got)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(Limits{Global: Rule{RPS: 1e9, Burst: 1e6}, User: Rule{RPS: 1e9, Burst: 1e6}}, 100_000)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(Global, "")
			l.Allow(User, strconv.Itoa(i%50_000))
			i++
		}
	})
}

// TestReadsApartFromChanges: the read bucket and the changes' bucket are apart, each
// split over the fleet; a shopper's read bucket is apart from their changes'.
func TestReadsApartFromChanges(t *testing.T) {
	l := New(Limits{Global: Rule{RPS: 1, Burst: 4}, Read: Rule{RPS: 1, Burst: 4}, User: Rule{RPS: 1, Burst: 1}, UserRead: Rule{RPS: 1, Burst: 2}}, 10)
	l.SetShare(2) // two gateways: 2 of each global burst here
	count := func(k Kind, key string) (n int) {
		for range 10 {
			if ok, _ := l.Allow(k, key); ok {
				n++
			}
		}
		return n
	}
	if got := count(Read, ""); got != 2 {
		t.Fatalf("reads: got %d admitted, want 2 (burst 4 over 2 gateways)", got)
	}
	if got := count(Global, ""); got != 2 {
		t.Fatalf("changes after the reads: got %d admitted, want 2", got)
	}
	if got := count(UserRead, "u"); got != 2 {
		t.Fatalf("a shopper's reads: got %d admitted, want 2 (per user, not split)", got)
	}
	if got := count(User, "u"); got != 1 {
		t.Fatalf("the shopper's changes after their reads: got %d admitted, want 1", got)
	}
	var l2 Limits
	for _, k := range Kinds {
		if l2.Rule(k) == nil {
			t.Errorf("kind %s has no rule", k)
		}
	}
}

// BenchmarkAllowPerUser takes tokens of 10,000 users' buckets from parallel
// goroutines, as the order route does: the per-key maps' locking is what it shows.
//
//	go test -run '^$' -bench AllowPerUser -cpu 1,2,4 ./gateway/ratelimit/
func BenchmarkAllowPerUser(b *testing.B) {
	l := New(Limits{User: Rule{RPS: 1e9, Burst: 1e6}}, 100_000)
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(keys))
		for pb.Next() {
			if ok, _ := l.Allow(User, keys[i%len(keys)]); !ok {
				b.Error("refused")
				return
			}
			i++
		}
	})
}

// TestSetRacesSetShare: a change of the fleet's size at the moment of a change of the
// limits (a gateway starting: its report sizes the buckets while its first sync sets
// the limits) never puts the old limits back.
func TestSetRacesSetShare(t *testing.T) {
	for i := range 5000 {
		l := New(Limits{User: Rule{RPS: 1, Burst: 1}}, 10)
		want := Limits{User: Rule{RPS: float64(i + 2), Burst: 3}}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); l.SetShare(2 + i%3) }()
		go func() { defer wg.Done(); l.Set(want) }()
		wg.Wait()
		if got := l.Limits(); got != want {
			t.Fatalf("run %d: got %+v after Set and SetShare at once, want %+v", i, got, want)
		}
	}
}
