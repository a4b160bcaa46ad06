//go:build linux

package wasm

import (
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCallWatchDemotes: a guest call that keeps its thread busy is lowered
// to backgroundNice at a check-in and gets its priority back when it
// returns; a long call that waits is never touched.
func TestCallWatchDemotes(t *testing.T) {
	if !canDemote() {
		if os.Geteuid() == 0 { // as in CI: root may always raise a priority back
			t.Fatal("canDemote is false for root, want true")
		}
		t.Skip("this process may not raise a thread's priority back (no CAP_SYS_NICE or RLIMIT_NICE)")
	}
	runtime.LockOSThread() // the thread stays this test's
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	before, err := nice(tid)
	if err != nil {
		t.Fatal(err)
	}
	check := func(w *callWatch, start time.Time) {
		now := time.Now()
		w.check(now, now.Sub(start), time.Hour, true)
	}

	// Spin for up to half a second of CPU (not of the clock: on a busy
	// machine the thread gets only part of a core), checking in as a guest
	// does, until demoted.
	var w callWatch
	var during int
	start := time.Now()
	cpu0, _ := threadCPU(tid)
	for cpu := cpu0; cpu-cpu0 < 500*time.Millisecond; cpu, _ = threadCPU(tid) {
		check(&w, start)
		if n, _ := nice(tid); n == backgroundNice {
			during = n
			break
		}
	}
	w.end()
	if during != backgroundNice {
		t.Errorf("nice during a long busy call: never %d within 500ms of CPU", backgroundNice)
	}
	if after, _ := nice(tid); after != before {
		t.Errorf("nice after the call: got %d, want %d back", after, before)
	}

	// A call that waits rather than runs (a guest short of a core looks
	// the same from the clock) is not demoted.
	start = time.Now()
	for range 10 {
		time.Sleep(3 * time.Millisecond) // the thread idles: it is locked to this goroutine
		check(&w, start)
		if n, _ := nice(tid); n != before {
			t.Fatalf("nice %d while the call waits, want %d", n, before)
		}
	}
	w.end()
}

// TestInBackgroundLowersPriority: background work runs at backgroundNice on
// a thread of its own, and the caller's thread keeps its priority.
func TestInBackgroundLowersPriority(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	before, err := nice(tid)
	if err != nil {
		t.Fatal(err)
	}
	var inside, insideTID int
	inBackground(func() {
		insideTID = unix.Gettid()
		inside, _ = nice(insideTID)
	})
	if insideTID == tid {
		t.Error("background work ran on the caller's thread")
	}
	if want := max(before, backgroundNice); inside != want {
		t.Errorf("nice in the background: got %d, want %d", inside, want)
	}
	if n, _ := nice(tid); n != before {
		t.Errorf("caller's nice: got %d, want %d", n, before)
	}

	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("panic in the background: got %v in the caller, want boom", r)
		}
	}()
	inBackground(func() { panic("boom") })
}

// TestThreadCPU: another thread's CPU clock counts the time it runs, not
// the time it sleeps.
func TestThreadCPU(t *testing.T) {
	tids := make(chan int)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid := unix.Gettid()
		tids <- tid
		// 30ms of CPU by its own clock (CLOCK_THREAD_CPUTIME_ID).
		var ts unix.Timespec
		for unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) == nil && ts.Nano() < int64(30*time.Millisecond) {
		}
		tids <- tid
		<-done
	}()
	tid := <-tids
	<-tids // spun
	busy, ok := threadCPU(tid)
	if !ok || busy < 30*time.Millisecond {
		t.Errorf("after spinning 30ms of CPU: got %v (ok %v), want at least 30ms", busy, ok)
	}
	time.Sleep(30 * time.Millisecond) // it waits on done
	idle, _ := threadCPU(tid)
	if idle-busy > 5*time.Millisecond {
		t.Errorf("while waiting: the clock went from %v to %v, want it still", busy, idle)
	}
	close(done)
}
