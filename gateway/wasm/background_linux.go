package wasm

import (
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// backgroundNice is the nice value of background work (inBackground) and of
// demoted guest calls (threadWatch): under the kernel's fair scheduler a
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

// threadWatch lowers the priority of the OS thread of a guest call to
// backgroundNice once the call has run for Options.DemoteAfter and then kept
// the thread busy for most of a millisecond, and gives it back when the
// call returns (end). A guest cannot be preempted: one that loops until its
// deadline otherwise holds a core as firmly as the requests do, and on a
// small gateway the requests wait. The busy test is what tells such a guest
// from one that is slow only because it waits for a core (a gateway short
// of CPU): demoting that one would make it slower still. The guest's
// check-ins (yield) drive it, so a call costs no timer.
//
// The goroutine is not locked to its thread: a call that blocks in a host
// function (a Redis counter) would then cost a thread handoff each time.
// Guest code cannot move to another thread, but a call can between two
// check-ins (in a host function, or when the Go scheduler preempts it at a
// check-in); the watch then gives the old thread its priority back and
// starts over on the new one.
type threadWatch struct {
	tid   int
	since time.Time     // start of the busy window; zero: none yet
	cpu   time.Duration // the thread's CPU time at since
	was   int           // the nice value before the demotion
	on    bool          // demoted
}

// The busy test of threadWatch: the thread's CPU time over a window of at
// least busyWindow must grow by busyShare of it.
const (
	busyWindow = time.Millisecond
	busyShare  = 0.6
)

// watch runs at a check-in of a call that has run for DemoteAfter: it opens
// a window on the thread's CPU time, or closes one and demotes the thread
// if it was busy, else opens the next.
func (w *threadWatch) watch(now time.Time) {
	if !canDemote() || (!w.on && !w.since.IsZero() && now.Sub(w.since) < busyWindow) {
		return
	}
	tid := unix.Gettid()
	if w.on {
		if tid != w.tid { // the call moved: free the thread it left
			w.end()
		}
		return
	}
	cpu, ok := threadCPU(tid)
	switch {
	case !ok:
		return
	case tid != w.tid || w.since.IsZero() || cpu-w.cpu < time.Duration(busyShare*float64(now.Sub(w.since))):
		w.tid, w.since, w.cpu = tid, now, cpu
		return
	}
	was, err := nice(tid)
	if err != nil || was >= backgroundNice {
		return
	}
	if unix.Setpriority(unix.PRIO_PROCESS, tid, backgroundNice) == nil {
		w.was, w.on = was, true
	}
}

// end gives a demoted thread its priority back and resets the watch.
func (w *threadWatch) end() {
	if w.on {
		_ = unix.Setpriority(unix.PRIO_PROCESS, w.tid, w.was) // canDemote said it may
	}
	*w = threadWatch{}
}

// threadNow returns the calling thread's id and CPU time.
func threadNow() (tid int, cpu time.Duration, ok bool) {
	tid = unix.Gettid()
	cpu, ok = threadCPU(tid)
	return tid, cpu, ok
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
