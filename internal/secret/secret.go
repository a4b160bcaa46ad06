// Package secret refuses secrets an attacker could guess: too short, too few
// distinct characters, a run such as "0123456789...", or a placeholder left from an
// example ("change-me"). Every process checks its secrets at start, so a
// misconfigured deployment stops with a message naming the setting instead of
// running with a guessable key.
package secret

import (
	"fmt"
	"strings"

	"github.com/seckill/flashsale/internal/randhex"
)

// MinLen is the shortest secret accepted, in bytes (32 hex digits carry 128 bits).
const MinLen = 32

// minDistinct is the fewest distinct bytes a secret must have. 32 random hex digits
// have fewer than 8 distinct ones about once in 30 million.
const minDistinct = 8

// placeholders are parts of example values that must never be a secret.
var placeholders = []string{"change-me", "changeme", "change_me", "replace-me", "replaceme", "replace_me",
	"placeholder", "example", "your-", "your_", "insert-", "xxxxxxxx", "${", "<", ">"}

// Generate is a fresh random secret (32 random bytes as 64 hex digits).
func Generate() string { return randhex.String(32) }

// Check refuses a secret that is empty, shorter than MinLen, has fewer than 8
// distinct characters, is mostly a run or repetition of neighbouring characters, or
// holds a placeholder word. name says which setting it is in the error, e.g.
// "gateway.jwt_secret (SECKILL_JWT_SECRET)"; the value itself never appears.
func Check(name, v string) error {
	const how = "; generate one with `openssl rand -hex 32`"
	if v == "" {
		return fmt.Errorf("%s is not set%s", name, how)
	}
	if len(v) < MinLen {
		return fmt.Errorf("%s is %d bytes; at least %d random bytes are needed%s", name, len(v), MinLen, how)
	}
	lower := strings.ToLower(v)
	for _, p := range placeholders {
		if strings.Contains(lower, p) {
			return fmt.Errorf("%s holds the placeholder %q, not a secret%s", name, p, how)
		}
	}
	var seen [256]bool
	distinct := 0
	for i := 0; i < len(v); i++ {
		if !seen[v[i]] {
			seen[v[i]] = true
			distinct++
		}
	}
	if distinct < minDistinct {
		return fmt.Errorf("%s has only %d distinct characters; a random secret has many more%s", name, distinct, how)
	}
	// Neighbours that repeat or count up or down ("aaaa", "abcd", "4321"): in a
	// random secret about one pair in eight (hex) or far fewer.
	runs := 0
	for i := 1; i < len(v); i++ {
		if d := int(v[i]) - int(v[i-1]); d >= -1 && d <= 1 {
			runs++
		}
	}
	if 2*runs >= len(v) {
		return fmt.Errorf("%s is mostly a run of neighbouring characters; a random secret is not%s", name, how)
	}
	return nil
}
