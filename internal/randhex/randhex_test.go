package randhex

import (
	"encoding/hex"
	"testing"
)

func TestString(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range []int{1, 5, 12, 16, 24} {
		s := String(n)
		if len(s) != 2*n {
			t.Errorf("String(%d) = %q: got %d characters, want %d", n, s, len(s), 2*n)
		}
		if _, err := hex.DecodeString(s); err != nil {
			t.Errorf("String(%d) = %q: not hex: %v", n, s, err)
		}
		if seen[s] {
			t.Errorf("String(%d) repeated %q", n, s)
		}
		seen[s] = true
	}
}
