package wasm

import (
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// backgroundNice is the nice value of background work (inBackground) and of
// demoted guest calls (callWatch): under the kernel's fair scheduler a
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

// demote lowers the priority of thread tid to backgroundNice and returns
// the nice value it had; false if it may not be given back (canDemote), is
// already that low or the call failed.
func demote(tid int) (was int, ok bool) {
	if !canDemote() {
		return 0, false
	}
	was, err := nice(tid)
	if err != nil || was >= backgroundNice {
		return 0, false
	}
	return was, unix.Setpriority(unix.PRIO_PROCESS, tid, backgroundNice) == nil
}

// undemote gives thread tid its nice value was back.
func undemote(tid, was int) {
	_ = unix.Setpriority(unix.PRIO_PROCESS, tid, was) // canDemote said it may
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
