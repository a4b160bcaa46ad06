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
