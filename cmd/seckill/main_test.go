package main

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/config"
	"github.com/seckill/flashsale/gateway/auth"
)

func TestMain(m *testing.M) {
	app.FrameworkLogs(slog.Default(), "warn")
	os.Exit(m.Run())
}

func TestHelpListsSettings(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out, &out); code != 0 {
		t.Fatalf("got exit %d, want 0", code)
	}
	for _, s := range config.Settings() {
		for _, want := range []string{s.Env + "  [" + s.Key + "]", s.Help} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("help: got no %q, want every setting's variable, key and help", want)
			}
		}
	}
}

func TestTokenCommand(t *testing.T) {
	t.Setenv("SECKILL_JWT_SECRET", "token-test-jwt-secret-c4ca4238a0b923")
	var out, errb bytes.Buffer
	if code := run([]string{"token", "-user", "42"}, &out, &errb); code != 0 {
		t.Fatalf("got exit %d: %s", code, errb.String())
	}
	if parts := strings.Split(strings.TrimSpace(out.String()), "."); len(parts) != 3 {
		t.Fatalf("got %q, want a JWT", out.String())
	}
	if code := run([]string{"token", "-user", "0"}, &out, &errb); code == 0 {
		t.Fatal("a token for user 0: got exit 0, want an error")
	}
}

// TestTokenCommandRefuses: absurd lifetimes and weak secrets are refused with a
// message naming what is wrong; a gateway's issuer and audience go into the token.
func TestTokenCommandRefuses(t *testing.T) {
	for _, tt := range []struct {
		secret string
		args   []string
		want   string
	}{
		{"token-test-jwt-secret-c4ca4238a0b923", []string{"-ttl", "0s"}, "-ttl"},
		{"token-test-jwt-secret-c4ca4238a0b923", []string{"-ttl", "-1h"}, "-ttl"},
		{"token-test-jwt-secret-c4ca4238a0b923", []string{"-ttl", "721h"}, "30 days"},
		{"token-test-jwt-secret-c4ca4238a0b923", []string{"-ttl", "87600h"}, "30 days"},
		{strings.Repeat("x", 40), nil, "gateway.jwt_secret"},
		{"", nil, "gateway.jwt_secret"},
	} {
		t.Setenv("SECKILL_JWT_SECRET", tt.secret)
		var out, errb bytes.Buffer
		if code := run(append([]string{"token", "-user", "42"}, tt.args...), &out, &errb); code == 0 || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%v with secret %q: got exit %d %q, want an error naming %q", tt.args, tt.secret, code, errb.String(), tt.want)
		}
	}
	t.Setenv("SECKILL_JWT_SECRET", "token-test-jwt-secret-c4ca4238a0b923")
	t.Setenv("SECKILL_GATEWAY_JWT_ISSUER", "https://id.example")
	t.Setenv("SECKILL_GATEWAY_JWT_AUDIENCE", "seckill")
	var out, errb bytes.Buffer
	if code := run([]string{"token", "-user", "42", "-ttl", "720h"}, &out, &errb); code != 0 {
		t.Fatalf("ttl 720h: got exit %d %s", code, errb.String())
	}
	v, err := auth.NewVerifierWith(auth.Options{Secret: []byte("token-test-jwt-secret-c4ca4238a0b923"), Issuer: "https://id.example", Audience: "seckill"})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.UserID(strings.TrimSpace(out.String())); err != nil || id != 42 {
		t.Fatalf("the minted token at a gateway checking iss and aud: got %d %v, want 42", id, err)
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "seckill ") {
		t.Fatalf("got exit %d %q, want 0 and a seckill version line", code, out.String())
	}
}
