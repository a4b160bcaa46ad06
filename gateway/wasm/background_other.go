//go:build !linux

package wasm

import "time"

// lowerPriority: background work runs at the gateway's priority here.
func lowerPriority() {}

// canDemote: threads have no priority of their own here.
func canDemote() bool { return false }

// threadWatch: guest calls are not demoted here.
type threadWatch struct{}

func (*threadWatch) watch(time.Time) {}

func (*threadWatch) end() {}

// threadNow: threads have no CPU clock of their own here.
func threadNow() (tid int, cpu time.Duration, ok bool) { return 0, 0, false }
