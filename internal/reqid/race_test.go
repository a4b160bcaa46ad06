//go:build race

package reqid

// raceEnabled: the race detector is on; allocation counts would measure it.
const raceEnabled = true
