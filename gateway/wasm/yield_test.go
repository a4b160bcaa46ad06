package wasm

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCallWatchCharges: the running time of a call is what its thread ran,
// not the clock's: a stall (the thread not running) is not charged, a
// thread change is charged at most two check-in intervals, wall time is the
// fallback without a thread clock, and a demoted call is charged the clock.
func TestCallWatchCharges(t *testing.T) {
	const timeout = 20 * time.Millisecond
	t0 := time.Unix(1000, 0)
	type reading struct {
		at      time.Duration // since the start
		tid     int
		cpu     time.Duration
		ok      bool
		demoted bool // demoted after this reading
	}
	tests := []struct {
		name     string
		readings []reading
		want     time.Duration
	}{
		{"running", []reading{{at: 10 * time.Millisecond, tid: 1, cpu: 50 * time.Millisecond, ok: true}, {at: 15 * time.Millisecond, tid: 1, cpu: 55 * time.Millisecond, ok: true},
			{at: 20 * time.Millisecond, tid: 1, cpu: 60 * time.Millisecond, ok: true}},
			20 * time.Millisecond},
		{"stalled before the first reading", []reading{{at: 50 * time.Millisecond, tid: 1, cpu: 50 * time.Millisecond, ok: true}, {at: 51 * time.Millisecond, tid: 1, cpu: 51 * time.Millisecond, ok: true}},
			11 * time.Millisecond},
		{"stalled between readings", []reading{{at: 10 * time.Millisecond, tid: 1, cpu: 50 * time.Millisecond, ok: true}, {at: 90 * time.Millisecond, tid: 1, cpu: 51 * time.Millisecond, ok: true}},
			11 * time.Millisecond},
		{"moved to another thread", []reading{{at: 10 * time.Millisecond, tid: 1, cpu: 50 * time.Millisecond, ok: true}, {at: 40 * time.Millisecond, tid: 2, cpu: 900 * time.Millisecond, ok: true}},
			10*time.Millisecond + 2*yieldInterval},
		{"no thread clock", []reading{{at: 10 * time.Millisecond}, {at: 14 * time.Millisecond}, {at: 14*time.Millisecond + yieldInterval}},
			10*time.Millisecond + 3*yieldInterval},
		{"demoted", []reading{{at: 10 * time.Millisecond, tid: 1, cpu: 50 * time.Millisecond, ok: true, demoted: true}, {at: 18 * time.Millisecond, tid: 1, cpu: 51 * time.Millisecond, ok: true}},
			18 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w callWatch
			for _, r := range tt.readings {
				w.charge(t0.Add(r.at), r.at, timeout, r.tid, r.cpu, r.ok)
				w.demoted = r.demoted
			}
			if w.ran != tt.want {
				t.Errorf("got %v, want %v", w.ran, tt.want)
			}
		})
	}
}

// sleepyCounters is a counter store whose every increment blocks for a
// while without using the CPU, as a call does when its thread is not
// scheduled.
type sleepyCounters struct{ d time.Duration }

func (c sleepyCounters) Incr(context.Context, string, int64, time.Duration) (int64, error) {
	time.Sleep(c.d)
	return 1, nil
}

// stallModule is a guest whose handle_request calls seckill.counter_incr,
// then loops n times (checking in with the host now and then) and admits.
func stallModule(n int32) []byte {
	const i32, i64, funcType = 0x7f, 0x7e, 0x60
	code := []byte{0x01, 0x01, i32} // one i32 local
	code = append(code,
		0x41, 0x00, 0x41, 0x01, // key at 0, length 1
		0x42, 0x01, 0x42, 0xe8, 0x07, // delta 1, ttl 1000
		0x41, 0x08, 0x10, 0x00, 0x1a, // result at 8; call counter_incr; drop
		0x41) // i32.const n
	code = appendS32(code, n)
	code = append(code,
		0x21, 0x00, // local.set 0
		0x03, 0x40, // loop
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, // local.get 0; i32.const 1; i32.sub; local.tee 0; br_if 0
		0x0b,       // end
		0x42, 0x01, // i64.const 1
		0x0b)

	b := []byte("\x00asm\x01\x00\x00\x00")
	b = append(b, wasmSection(secType, wasmVec(
		[]byte{funcType, 0x00, 0x01, i64},
		[]byte{funcType, 0x02, i32, i32, 0x00},
		[]byte{funcType, 0x05, i32, i32, i64, i64, i32, 0x01, i32},
	))...)
	imp := appendName(appendName(nil, SeckillModule), FuncCounterIncr)
	b = append(b, wasmSection(secImport, wasmVec(append(imp, 0x00, 0x02)))...)
	b = append(b, wasmSection(secFunction, wasmVec([]byte{0x00}, []byte{0x01}))...)
	b = append(b, wasmSection(5, wasmVec([]byte{0x00, 0x01}))...) // memory: min 1 page
	b = append(b, wasmSection(secExport, wasmVec(
		wasmExport("handle_request", 0x00, 1),
		wasmExport("handle_response", 0x00, 2),
		wasmExport("memory", 0x02, 0),
	))...)
	return append(b, wasmSection(secCode, wasmVec(wasmBody(code), wasmBody([]byte{0x00, 0x0b})))...)
}

// TestDeadlineCountsRunningTime: a call that spends three times its
// deadline not running (blocked, as if its thread were not scheduled: a
// busy machine, a garbage collection, a swap's compile) and then runs
// briefly (a loop of a fraction of a millisecond, checking in several
// times) is not failed; its plugin fails closed, so a failure would show.
func TestDeadlineCountsRunningTime(t *testing.T) {
	const timeout = 20 * time.Millisecond
	m := newTestManager(t, Options{Counters: sleepyCounters{3 * timeout}})
	mustPut(t, m, "stall", Spec{Wasm: stallModule(50_000), FailPolicy: FailClosed, Timeout: timeout, PoolSize: 1})
	if v, ran := handle(m, newTestHost()); !v.Admitted || !ran {
		t.Errorf("got %+v, want admitted", v)
	}
	if st := m.List()[0].Stats; st.Timeouts != 0 {
		t.Errorf("got %d timeouts, want 0", st.Timeouts)
	}
}

// slowInitCounters is a counter store that takes a while for increments by
// 2 (slowInitModule's initialization) and records, for the others, how
// much of the call's deadline is left.
type slowInitCounters struct {
	mu   sync.Mutex
	left []time.Duration
}

func (c *slowInitCounters) Incr(ctx context.Context, _ string, delta int64, _ time.Duration) (int64, error) {
	if delta == 2 {
		time.Sleep(300 * time.Millisecond)
		return 1, nil
	}
	d, _ := ctx.Deadline()
	c.mu.Lock()
	c.left = append(c.left, time.Until(d))
	c.mu.Unlock()
	return 1, nil
}

// slowInitModule is a guest whose _initialize and handle_request each call
// seckill.counter_incr, with delta 2 and 1; it keeps its instance for
// handle_response.
func slowInitModule() []byte { return initModule(nil) }

// initModule is slowInitModule with then code at the end of _initialize.
func initModule(then []byte) []byte {
	const i32, i64, funcType = 0x7f, 0x7e, 0x60
	incr := func(delta byte) []byte {
		return []byte{0x41, 0x00, 0x41, 0x01, 0x42, delta, 0x42, 0xe8, 0x07, 0x41, 0x08, 0x10, 0x00, 0x1a}
	}
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = append(b, wasmSection(secType, wasmVec(
		[]byte{funcType, 0x00, 0x01, i64},
		[]byte{funcType, 0x02, i32, i32, 0x00},
		[]byte{funcType, 0x05, i32, i32, i64, i64, i32, 0x01, i32},
		[]byte{funcType, 0x00, 0x00},
	))...)
	imp := appendName(appendName(nil, SeckillModule), FuncCounterIncr)
	b = append(b, wasmSection(secImport, wasmVec(append(imp, 0x00, 0x02)))...)
	b = append(b, wasmSection(secFunction, wasmVec([]byte{0x00}, []byte{0x01}, []byte{0x03}))...)
	b = append(b, wasmSection(5, wasmVec([]byte{0x00, 0x01}))...) // memory: min 1 page
	b = append(b, wasmSection(secExport, wasmVec(
		wasmExport("handle_request", 0x00, 1),
		wasmExport("handle_response", 0x00, 2),
		wasmExport("_initialize", 0x00, 3),
		wasmExport("memory", 0x02, 0),
	))...)
	request := append(append([]byte{0x00}, incr(1)...), 0x42, 0x01, 0x0b)
	initialize := append(append(append([]byte{0x00}, incr(2)...), then...), 0x0b)
	return append(b, wasmSection(secCode, wasmVec(wasmBody(request), wasmBody([]byte{0x00, 0x0b}), wasmBody(initialize)))...)
}

// TestWaitForGrowthKeepsTheDeadline: a request that waited for the pool to
// grow (an instance that takes three deadlines to make) starts its call
// with its whole deadline: its host I/O is not cut short by the wait.
func TestWaitForGrowthKeepsTheDeadline(t *testing.T) {
	const timeout = 100 * time.Millisecond
	counters := &slowInitCounters{}
	m := newTestManager(t, Options{Counters: counters})
	mustPut(t, m, "slow", Spec{Wasm: slowInitModule(), PoolSize: 1, PoolMax: 2, FailPolicy: FailClosed, Timeout: timeout})
	release := make(chan struct{})
	held := holdInNext(t, m, release) // takes the only instance
	if v, ran := handle(m, newTestHost()); !v.Admitted || !ran {
		t.Errorf("request that waited for the pool to grow: got %+v, want admitted", v)
	}
	close(release)
	<-held
	counters.mu.Lock()
	defer counters.mu.Unlock()
	if len(counters.left) != 2 {
		t.Fatalf("got %d request increments, want 2", len(counters.left))
	}
	if left := counters.left[1]; left <= 0 {
		t.Errorf("the call after the wait had %v of its deadline left for its I/O, want some", left)
	}
}

// countingInitCounters counts the initializations of loopInitModule.
type countingInitCounters struct{ inits atomic.Int32 }

func (c *countingInitCounters) Incr(context.Context, string, int64, time.Duration) (int64, error) {
	c.inits.Add(1)
	return 1, nil
}

// loopInitModule is slowInitModule whose _initialize, after its increment, loops
// for ever.
func loopInitModule() []byte { return initModule([]byte{0x03, 0x40, 0x0c, 0x00, 0x0b}) }

// TestFailedFillStopsEarly: a guest whose initialization runs past its deadline fails
// the Put after the instances already under way, not after every instance of the
// pool: it tried each (a probe: a start that loops took pool size x 10 s, a core
// spinning the while).
func TestFailedFillStopsEarly(t *testing.T) {
	counters := &countingInitCounters{}
	m := newTestManager(t, Options{Counters: counters, InitTimeout: 50 * time.Millisecond})
	if _, err := m.Put(context.Background(), "loopinit", Spec{Wasm: loopInitModule(), PoolSize: 16}); err == nil {
		t.Fatal("Put of a guest whose init loops: got nil, want an error")
	}
	if n, most := counters.inits.Load(), int32(cap(m.instantiating)); n > most {
		t.Errorf("%d instances initialized before the Put failed, want at most %d (the ones at once)", n, most)
	}
}
