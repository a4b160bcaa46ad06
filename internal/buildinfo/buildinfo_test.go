package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		in   Info
		want string
	}{
		{Info{Version: "v1.2.0", Revision: "abc", Time: "2026-11-29T10:00:00Z", GoVersion: "go1.26.8"}, "seckill v1.2.0 revision abc (2026-11-29T10:00:00Z) go1.26.8"},
		{Info{Version: "(devel)", Revision: "abc", Modified: true, GoVersion: "go1.26.8"}, "seckill (devel) revision abc+dirty go1.26.8"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestGetNamesTheToolchain(t *testing.T) {
	in := Get()
	if in.GoVersion != runtime.Version() || !strings.HasPrefix(in.String(), "seckill ") {
		t.Fatalf("got %+v, want the running Go version and a seckill line", in)
	}
}
