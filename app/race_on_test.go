//go:build race

package app_test

// raceFlag builds the fleet's binary as this test was built, so under
// `go test -race ./...` it reuses the packages the other tests compiled.
var raceFlag = []string{"-race"}
