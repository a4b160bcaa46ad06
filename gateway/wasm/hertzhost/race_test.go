//go:build race

package hertzhost

// raceEnabled: the race detector is on; memory figures would measure it.
const raceEnabled = true
