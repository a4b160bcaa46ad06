package wasm

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// backgroundNice is the nice value of background work (inBackground): under
// the kernel's fair scheduler a thread at 10 gets about a tenth of a core
// that a thread at 0 wants too, and all of a core that nobody else does.
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
