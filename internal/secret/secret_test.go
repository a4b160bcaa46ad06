package secret

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		name, v, want string // want: a part of the error; "" accepted
	}{
		{"empty", "", "is not set"},
		{"short", "0f3a9c2b7e1d4a6f", "16 bytes"},
		{"one letter", strings.Repeat("a", 32), "distinct"},
		{"few letters", strings.Repeat("abcd", 10), "distinct"},
		{"k8s placeholder", "change-me-to-32-random-bytes-000", "change-me"},
		{"placeholder upper", "REPLACE_ME_WITH_A_REAL_SECRET_OK!", "replace_me"},
		{"template", "${SECKILL_JWT_SECRET}-0123456789ab", "${"},
		{"ascending", "abcdefghijklmnopqrstuvwxyz012345", "run"},
		{"hex run", "0123456789abcdef0123456789abcdef", "run"},
		{"hex 16 bytes", "9f86d081884c7d659a2feaa0c55ad015", ""},
		{"hex 32 bytes", Generate(), ""},
		{"base64", "q3Jx8vV2mW9sT0ePZr1Yk5LbN7cHdAuF4gIoQ6tEw8M=", ""},
	} {
		err := Check("gateway.jwt_secret (SECKILL_JWT_SECRET)", tt.v)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: got %v, want accepted", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want an error with %q", tt.name, err, tt.want)
		case err != nil && !strings.Contains(err.Error(), "gateway.jwt_secret"):
			t.Errorf("%s: got %v, want the setting named", tt.name, err)
		case err != nil && tt.v != "" && strings.Contains(err.Error(), tt.v):
			t.Errorf("%s: the error shows the secret", tt.name)
		}
	}
	for range 1000 {
		if err := Check("s", Generate()); err != nil {
			t.Fatalf("a generated secret: %v", err)
		}
	}
}
