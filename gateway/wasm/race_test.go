//go:build race

package wasm

// raceEnabled: the race detector is on; memory figures would measure it.
const raceEnabled = true
