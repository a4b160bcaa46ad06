//go:build !race

package hertzhost

const raceEnabled = false
