//go:build !race

package deploy

// raceFlag builds the fleet's binary as this test was built (see race_on_test.go).
var raceFlag []string
