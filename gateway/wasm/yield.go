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
	maxBudget     = 1 << 24
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
// before the call finished) ends, and a long call that keeps its thread
// busy has the thread demoted (threadWatch). It answers the next budget.
func (m *Manager) yield(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := stateOf(ctx)
	if mod.IsClosed() {
		panic(errInstanceClosed)
	}
	now := time.Now()
	if now.After(cs.deadline) {
		panic(errDeadlineExceeded)
	}
	if cs.demoteAfter > 0 && now.Sub(cs.start) >= cs.demoteAfter {
		cs.thread.watch(now)
	}
	stack[0] = uint64(cs.inst.pace(now, cs.start))
}

// pace adapts the instance's budget to the time since its last check-in
// (or since the call started) and returns it.
func (in *instance) pace(now, start time.Time) uint32 {
	last := in.lastYield
	if last.Before(start) {
		last = start
	}
	gap := now.Sub(last)
	in.lastYield = now
	switch {
	case gap < yieldInterval/2 && in.budget < maxBudget:
		in.budget *= 2
	case gap > 2*yieldInterval && in.budget > 1:
		in.budget /= 2
	}
	return in.budget
}
