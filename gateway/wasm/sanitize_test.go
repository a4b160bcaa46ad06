package wasm

import (
	"bytes"
	"testing"
)

// TestSanitize: what a guest writes reaches logs and operators' answers printable:
// control characters (C0, DEL, C1) and invisible format characters (a right-to-left
// override) become spaces, bad UTF-8 a question mark, and the text is bounded.
func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"panic: bad user \"alice\"", "panic: bad user \"alice\""},
		{"a\x01b\x7fc", "a b c"},
		{"a\u0085b", "a b"},                              // C1 next line
		{"user \u202Eecila\u202C ok", "user  ecila  ok"}, // right-to-left override and pop
		{"a\xffb", "a?b"},
		{"  padded \n", "padded"},
	}
	for _, tt := range tests {
		if got := sanitize([]byte(tt.in)); got != tt.want {
			t.Errorf("sanitize(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := sanitize(bytes.Repeat([]byte("a"), 4096)); len(got) > 512 {
		t.Errorf("4 KiB of output: %d bytes kept, want at most 512", len(got))
	}
}
