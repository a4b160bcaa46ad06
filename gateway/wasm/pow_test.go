package wasm

import (
	"crypto/sha256"
	"math/bits"
)

func zeroBits(s string) int {
	sum := sha256.Sum256([]byte(s))
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}
