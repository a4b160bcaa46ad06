//go:build !linux

package wasm

import "time"

// lowerPriority: background work runs at the gateway's priority here.
func lowerPriority() {}

// canDemote: threads have no priority of their own here.
func canDemote() bool { return false }

// demote: threads have no priority of their own here.
func demote(int) (int, bool) { return 0, false }

func undemote(int, int) {}

// threadNow: threads have no CPU clock of their own here.
func threadNow() (tid int, cpu time.Duration, ok bool) { return 0, 0, false }
