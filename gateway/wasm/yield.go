package wasm

import (
	"context"
	"errors"
	"time"

	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
)

// errDeadlineExceeded ends a guest call that runs past its deadline.
var errDeadlineExceeded = errors.New("guest call ran past its deadline")

// Pace of the check-ins (instrument.go): the budget of checks between two
// is doubled or halved after each so that they come about yieldInterval of
// guest time apart. That bounds how late a call is ended after its
// deadline and how long the Go runtime may wait to stop the goroutine for a
// garbage collection, at the cost of one host call per interval.
const (
	yieldInterval = 100 * time.Microsecond
	maxBudget     = 1 << 20
)

func (m *Manager) instantiateYield(ctx context.Context, r wazero.Runtime) error {
	_, err := r.NewHostModuleBuilder(yieldModule).
		NewFunctionBuilder().
		WithGoModuleFunction(wapi.GoModuleFunc(m.yield), nil, []wapi.ValueType{wapi.ValueTypeI32}).
		Export(yieldName).
		Instantiate(ctx)
	return err
}

// yield is where a guest checks in, every budget of loop iterations and
// function calls: a call past its deadline ends (a trap: the fail policy
// applies), a call whose instance was closed under it (its plugin closed
// before the call finished) ends, and a long call is watched (callWatch).
// It answers the next budget.
func (m *Manager) yield(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := stateOf(ctx)
	if mod.IsClosed() {
		panic(errInstanceClosed)
	}
	now := time.Now()
	if elapsed := now.Sub(cs.start); elapsed >= cs.watchAfter {
		if cs.watch.check(now, elapsed, cs.timeout, cs.demoteAfter > 0) {
			panic(errDeadlineExceeded)
		}
	}
	stack[0] = uint64(cs.inst.pace(now, cs.start))
}

// callWatch follows a call that has run for a while on the clock (from
// watchAfter: Options.DemoteAfter or half its timeout, whichever comes
// first), at each of its check-ins, to tell how long it has really run and
// whether it keeps its core busy.
//
// Its running time: a call that the machine keeps waiting (the process
// stopped for a garbage collection, its thread preempted by the kernel on a
// busy gateway, a hot swap's compiles and instantiations competing for the
// cores) must not fail for time it could not use, or a swap fails healthy
// requests. The clock bounds the running time, so the first check-in is
// charged the clock so far, at most half the timeout (the rest may be a
// stall); then each check-in its thread's CPU time since the previous one.
// A call that has changed threads since (in a host function, or preempted
// by the Go scheduler at a check-in) is charged the clock since, at most
// two intervals: the new thread's CPU time includes other goroutines'.
// Where threads have no CPU clock, the clock is charged the same way.
//
// Busy: a call whose running time grows by busyShare of the clock over a
// window of at least busyWindow is a guest computing, not a call kept
// waiting. If demote is on (Options.DemoteAfter), its thread is lowered to
// backgroundNice until it returns (where the gateway may raise it back:
// canDemote): a guest cannot be preempted, and one that loops until its
// deadline otherwise holds a core as firmly as the requests do; on a small
// gateway the requests wait. A demoted call is charged the clock from then
// on: the CPU it waits for is the price of its demotion, and a loop still
// ends after about its timeout on the clock. Demoting a call that only
// waits for a core would make it slower still, hence the busy test. The
// goroutine is not locked to its thread (a call that blocks in a host
// function would then cost a thread handoff each time); when a demoted
// call moves, the thread it left gets its priority back and the new one is
// demoted.
//
// Any call also ends after maxStretch on the clock, whatever it ran.
type callWatch struct {
	ran  time.Duration // running time charged so far
	tid  int           // the thread at the last check-in; 0: unknown (no clock, or blocked since)
	cpu  time.Duration // its CPU time then
	last time.Time     // the clock then; zero: not watched yet

	window    time.Time     // start of the busy window
	windowRan time.Duration // ran then
	busy      bool

	demoted    bool
	demotedTID int
	was        int // the demoted thread's nice value before
}

// The busy test of callWatch: the running time over a window of at least
// busyWindow must grow by busyShare of it.
const (
	busyWindow = time.Millisecond
	busyShare  = 0.6
)

// check takes a check-in at now, elapsed after the call's start, and
// reports whether the call is past its deadline. demote: lower a busy
// call's thread.
func (w *callWatch) check(now time.Time, elapsed, timeout time.Duration, demote bool) bool {
	tid, cpu, ok := threadNow()
	w.charge(now, elapsed, timeout, tid, cpu, ok)
	if demote && w.busy {
		w.demote(tid)
	}
	return w.ran >= timeout || elapsed >= maxStretch(timeout)
}

// charge adds the running time since the last check-in (read on thread tid
// with CPU time cpu; ok false: no thread clock) and runs the busy test.
func (w *callWatch) charge(now time.Time, elapsed, timeout time.Duration, tid int, cpu time.Duration, ok bool) {
	switch {
	case w.last.IsZero():
		w.ran = min(elapsed, timeout/2)
		w.window, w.windowRan = now, w.ran
	case w.demoted:
		w.ran += now.Sub(w.last)
	case ok && tid == w.tid:
		w.ran += min(cpu-w.cpu, now.Sub(w.last))
	default:
		w.ran += min(now.Sub(w.last), 2*yieldInterval)
	}
	w.tid, w.cpu, w.last = tid, cpu, now
	if !ok {
		w.tid = 0
	}
	if span := now.Sub(w.window); !w.busy && span >= busyWindow {
		w.busy = w.ran-w.windowRan >= time.Duration(busyShare*float64(span))
		w.window, w.windowRan = now, w.ran
	}
}

// blocked marks the thread reading stale: the call blocked in a host
// function, where its thread may have run other goroutines.
func (w *callWatch) blocked() { w.tid = 0 }

// demote lowers the thread tid of a busy call, giving the thread it ran on
// before its priority back if the call has moved.
func (w *callWatch) demote(tid int) {
	if w.demoted && w.demotedTID == tid {
		return
	}
	w.undemote()
	if was, ok := demote(tid); ok {
		w.demoted, w.demotedTID, w.was = true, tid, was
	}
}

func (w *callWatch) undemote() {
	if w.demoted {
		undemote(w.demotedTID, w.was)
		w.demoted = false
	}
}

// end gives a demoted thread its priority back and resets the watch; the
// call returns.
func (w *callWatch) end() {
	w.undemote()
	*w = callWatch{}
}

// maxStretch bounds a call by the clock whatever its running time: a guest
// starved of CPU on a saturated gateway still ends.
func maxStretch(timeout time.Duration) time.Duration { return max(10*timeout, time.Second) }

// pace adapts the instance's budget to the time since its last check-in, if
// that was in the same call (a call that started since tells nothing of the
// guest's pace), and returns it.
func (in *instance) pace(now, start time.Time) uint32 {
	last := in.lastYield
	in.lastYield = now
	if last.Before(start) {
		return in.budget
	}
	switch gap := now.Sub(last); {
	case gap < yieldInterval/2 && in.budget < maxBudget:
		in.budget *= 2
	case gap > 2*yieldInterval && in.budget > 1:
		in.budget /= 2
	}
	return in.budget
}
