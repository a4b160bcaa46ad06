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
// function calls: a call that has run for its timeout ends (a trap: the
// fail policy applies), a call whose instance was closed under it (its
// plugin closed before the call finished) ends, and a long call that keeps
// its thread busy has the thread demoted (threadWatch). It answers the next
// budget.
func (m *Manager) yield(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := stateOf(ctx)
	if mod.IsClosed() {
		panic(errInstanceClosed)
	}
	now := time.Now()
	if elapsed := now.Sub(cs.start); elapsed >= cs.timeout/2 {
		tid, cpu, ok := threadNow()
		if cs.run.charge(now, cs.timeout, tid, cpu, ok) >= cs.timeout || elapsed >= maxStretch(cs.timeout) {
			panic(errDeadlineExceeded)
		}
	}
	if cs.demoteAfter > 0 && now.Sub(cs.start) >= cs.demoteAfter {
		cs.thread.watch(now)
	}
	stack[0] = uint64(cs.inst.pace(now, cs.start))
}

// runClock measures how long a call has run, as opposed to how long ago it
// started: a call's timeout is on its running time. A call that the
// scheduler keeps waiting (the process stopped for a garbage collection,
// its thread preempted by the kernel on a busy machine, compiles and
// instantiations of a hot swap competing for the cores) is not failed for
// time it could not use; a guest that loops still ends after running for
// its timeout. Wall time since the start bounds the running time, so a call
// is charged nothing until half its timeout has passed on the clock; the
// first check-in after that charges it half its timeout (it may have run
// all along; more may be a stall), then each check-in its thread's CPU time
// since the previous one. A call that has changed threads since (in a host function,
// or preempted by the Go scheduler at a check-in) is charged the wall time
// since the previous check-in, at most two intervals: the new thread's CPU
// time includes other goroutines'. Where threads have no CPU clock, wall
// time is charged.
type runClock struct {
	ran  time.Duration // charged so far
	tid  int           // the thread at the last reading; 0: none (or lost, blocked)
	cpu  time.Duration // its CPU time then
	last time.Time     // the wall time then; zero: not reading yet
}

// charge reads the clock at a check-in at now, at least half the timeout
// after the call's start, on thread tid with CPU time cpu (ok false: no
// thread clock), and returns the running time so far.
func (c *runClock) charge(now time.Time, timeout time.Duration, tid int, cpu time.Duration, ok bool) time.Duration {
	switch {
	case c.last.IsZero():
		c.ran = timeout / 2
	case ok && tid == c.tid:
		c.ran += min(cpu-c.cpu, now.Sub(c.last))
	default:
		c.ran += min(now.Sub(c.last), 2*yieldInterval)
	}
	c.tid, c.cpu, c.last = tid, cpu, now
	if !ok {
		c.tid = 0
	}
	return c.ran
}

// lost marks the thread reading stale: the call blocked in a host function,
// where its thread may have run other goroutines.
func (c *runClock) lost() { c.tid = 0 }

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
