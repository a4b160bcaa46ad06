//go:build !linux

package wasm

// lowerPriority: background work runs at the gateway's priority here.
func lowerPriority() {}
