package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/config"
)

func TestMain(m *testing.M) {
	app.QuietFrameworks("warn")
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
	t.Setenv("SECKILL_JWT_SECRET", "token-test-secret-0123456789")
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

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "seckill ") {
		t.Fatalf("got exit %d %q, want 0 and a seckill version line", code, out.String())
	}
}
