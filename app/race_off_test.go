//go:build !race

package app_test

var raceFlag []string
