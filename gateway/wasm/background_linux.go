package wasm

import (
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// backgroundNice is the nice value of background work (inBackground) and of
// demoted guest calls (watchCall): under the kernel's fair scheduler a
// thread at 10 gets about a tenth of a core that a thread at 0 wants too,
// and all of a core that nobody else does.
const backgroundNice = 10

// lowerPriority moves the calling goroutine to an OS thread of its own for
// the rest of its life, at backgroundNice. On Linux a thread's priority is
// its own; the goroutine never unlocks the thread, so the runtime ends the
// thread with the goroutine rather than hand its priority to other
// goroutines. Best effort: a gateway already nicer than that stays so
// (raising priority back needs a privilege).
func lowerPriority() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), backgroundNice)
}

// canDemote reports whether a guest call's thread, once demoted, can be
// given its priority back: raising a priority needs CAP_SYS_NICE or a
// RLIMIT_NICE that allows it. Tried once, on a thread that ends afterwards.
var canDemote = sync.OnceValue(func() bool {
	ok := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		tid := unix.Gettid()
		was, err := nice(tid)
		ok <- err == nil && was < backgroundNice &&
			unix.Setpriority(unix.PRIO_PROCESS, tid, backgroundNice) == nil &&
			unix.Setpriority(unix.PRIO_PROCESS, tid, was) == nil
	}()
	return <-ok
})

// nice is the nice value of the thread tid (the system call answers 20 -
// nice, to keep its results positive).
func nice(tid int) (int, error) {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	return 20 - p, err
}

// watchCall runs f, a guest call, and lowers the priority of the OS thread
// it runs on to backgroundNice until f returns if f has run for `after` and
// then kept the thread busy for most of a millisecond. A guest cannot be
// preempted: one that loops until its deadline otherwise holds a core as
// firmly as the requests do, and on a small gateway the requests wait. The
// busy test is what tells such a guest from one that is slow only because
// it waits for a core (a gateway short of CPU): demoting that one would
// make it miss its deadline. Nothing is watched if after is 0 or the
// gateway may not raise a priority back (canDemote).
//
// The goroutine is not locked to its thread: a call that blocks in a host
// function (a Redis counter) would then cost a thread handoff each time.
// Running guest code cannot move to another thread, so the thread watched
// is the one running the guest, unless the guest blocked in a host call
// since it started; either way the priority is given back by thread id
// when f returns, so a demotion lasts at most as long as the call.
func watchCall(after time.Duration, f func() error) error {
	if after <= 0 || !canDemote() {
		return f()
	}
	w := &demotion{tid: unix.Gettid()}
	w.mu.Lock() // the timer's function reads w.timer
	w.timer = time.AfterFunc(after, w.check)
	w.mu.Unlock()
	defer w.end()
	return f()
}

// The busy test of watchCall: the thread's CPU time over busyWindow must
// grow by busyShare of it.
const (
	busyWindow = time.Millisecond
	busyShare  = 0.6
)

// demotion is one watched call.
type demotion struct {
	tid   int
	mu    sync.Mutex
	timer *time.Timer
	cpu   time.Duration // the thread's CPU time at the start of the window; 0: none yet
	was   int           // the nice value before
	on    bool          // demoted
	off   bool          // the call returned
}

// check runs from the timer: it opens a window on the thread's CPU time,
// or closes one and demotes the thread if it was busy, else opens the next.
func (w *demotion) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off || w.on {
		return
	}
	cpu, ok := threadCPU(w.tid)
	switch {
	case !ok:
		return // the thread is gone: nothing to demote
	case w.cpu == 0 || cpu-w.cpu < time.Duration(busyShare*float64(busyWindow)):
		w.cpu = max(cpu, 1)
		w.timer.Reset(busyWindow)
		return
	}
	was, err := nice(w.tid)
	if err != nil || was >= backgroundNice {
		return
	}
	if unix.Setpriority(unix.PRIO_PROCESS, w.tid, backgroundNice) == nil {
		w.was, w.on = was, true
	}
}

// end stops the watch and gives the thread its priority back.
func (w *demotion) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.off = true
	w.timer.Stop()
	if w.on {
		_ = unix.Setpriority(unix.PRIO_PROCESS, w.tid, w.was) // canDemote said it may
	}
}

// threadCPU is the CPU time the thread tid of this process has used. Its
// clock id is the kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED).
func threadCPU(tid int) (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^uint32(tid)<<3|6), &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
