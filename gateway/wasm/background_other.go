//go:build !linux

package wasm

import "time"

// lowerPriority: background work runs at the gateway's priority here.
func lowerPriority() {}

// canDemote: threads have no priority of their own here.
func canDemote() bool { return false }

// watchCall runs f: guest calls are not demoted here.
func watchCall(_ time.Duration, f func() error) error { return f() }
