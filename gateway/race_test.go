//go:build race

package gateway

// raceEnabled: the race detector is on; allocation counts would measure it.
const raceEnabled = true
