//go:build !unix

package gateway_test

import "time"

// processCPU is unknown here: the CPU figure of BenchmarkEdge reads 0.
func processCPU() time.Duration { return 0 }
