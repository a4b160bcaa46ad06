//go:build linux

package wasm

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWatchCallDemotes: a guest call that runs past the threshold is
// lowered to backgroundNice while it runs and gets its priority back when
// it returns; a short call is never touched.
func TestWatchCallDemotes(t *testing.T) {
	if !canDemote() {
		t.Skip("this process may not raise a thread's priority back (no CAP_SYS_NICE or RLIMIT_NICE)")
	}
	runtime.LockOSThread() // nests with watchCall's: the thread stays this test's
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	before, err := nice(tid)
	if err != nil {
		t.Fatal(err)
	}

	var during int
	err = watchCall(time.Millisecond, func() error {
		for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
			if n, _ := nice(tid); n == backgroundNice {
				during = n
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if during != backgroundNice {
		t.Errorf("nice during a long call: never %d within 50ms", backgroundNice)
	}
	if after, _ := nice(tid); after != before {
		t.Errorf("nice after the call: got %d, want %d back", after, before)
	}

	err = watchCall(time.Hour, func() error {
		during, _ = nice(tid)
		return nil
	})
	if err != nil || during != before {
		t.Errorf("short call: got nice %d (err %v), want %d", during, err, before)
	}
	if n, _ := nice(tid); n != before {
		t.Errorf("after a short call: got nice %d, want %d", n, before)
	}
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
