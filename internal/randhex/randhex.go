// Package randhex makes random identifiers: tickets, idempotency keys, lock tokens,
// secrets and names of scratch resources.
package randhex

import (
	"crypto/rand"
	"encoding/hex"
)

// String returns n random bytes from crypto/rand as 2n hex digits.
func String(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read does not fail on supported platforms (it panics itself when the
	// system source fails, since Go 1.24).
	rand.Read(b)
	return hex.EncodeToString(b)
}
