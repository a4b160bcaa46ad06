//go:build !race

package reqid

const raceEnabled = false
