package sdk

import "testing"

func TestHostOf(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.1:8080", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"2001:db8::1", "2001:db8::1"},
		{"192.0.2.1", "192.0.2.1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := hostOf(tt.addr); got != tt.want {
			t.Errorf("hostOf(%q): got %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"42", 42, true},
		{"999999999999999999", 999999999999999999, true},
		{"1234567890123456789", 1234567890123456789, true}, // a snowflake id
		{"9223372036854775807", 9223372036854775807, true}, // the largest int64
		{"9223372036854775808", 0, false},
		{"9999999999999999999", 0, false},
		{"10000000000000000000", 0, false}, // 20 digits
		{"0", 0, false},
		{"", 0, false},
		{"-4", 0, false},
		{"4 ", 0, false},
		{"+4", 0, false},
		{"4x", 0, false},
	}
	for _, tt := range tests {
		var b []byte
		if tt.in != "" {
			b = []byte(tt.in)
		}
		if got, ok := parseID(b); got != tt.want || ok != tt.ok {
			t.Errorf("parseID(%q): got %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
