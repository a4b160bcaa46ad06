package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/config"
)

const (
	jwtSecret  = "cli-test-jwt-secret-eccbc87e4b5ce2fe"
	adminToken = "cli-test-admin-token-a87ff679a2f3e71d"
)

// TestAdminCLI drives the operator CLI against the embedded stack.
func TestAdminCLI(t *testing.T) {
	cfg := config.Default()
	cfg.Gateway.JWTSecret, cfg.Gateway.AdminToken = jwtSecret, adminToken
	cfg.AnyPorts()
	s, err := app.Start(context.Background(), cfg, app.Options{Embedded: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	dir := t.TempDir()
	sale := dir + "/sale.json"
	os.WriteFile(sale, []byte(`{"name": "cli", "start": "2026-01-01T00:00:00Z", "end": "2036-01-01T00:00:00Z", "strategy": "sync",
		"per_user_limit": 1, "items": [{"name": "pen", "price_cents": 100, "stock": 3}]}`), 0o600)
	admin := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := run(append([]string{"admin", "-url", s.URL(), "-token", adminToken}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}
	out, code := admin("activities", "create", "-file", sale)
	if code != 0 || !strings.Contains(out, `"state": "draft"`) {
		t.Fatalf("create: exit %d: %s", code, out)
	}
	var a struct{ ID int64 }
	json.Unmarshal([]byte(out), &a)
	id := strconv.FormatInt(a.ID, 10)
	for _, args := range [][]string{{"activities", "publish", id}, {"activities", "stats", id}, {"activities", "list"}, {"limits", "get"},
		{"plugins", "load", "blocklist", "-wasm", "../../plugins/examples/blocklist/blocklist.wasm", "-config", `{"users": ["9"]}`}, {"plugins", "list"}, {"plugins", "remove", "blocklist"}} {
		if out, code := admin(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, out)
		}
	}
	if out, code := admin("activities", "get", "999999"); code == 0 || !strings.Contains(out, "not_found") {
		t.Fatalf("unknown id: exit %d: %s", code, out)
	}
	if code := run([]string{"admin", "-url", s.URL(), "-token", "wrong-token-0123456789", "limits", "get"}, io.Discard, io.Discard); code == 0 {
		t.Fatal("wrong token: exit 0, want an error")
	}
}

// TestAdminUsageHidesTheToken: a mistyped flag prints the usage, which must not show
// the token taken from the environment (it would land in terminals and CI logs).
func TestAdminUsageHidesTheToken(t *testing.T) {
	const token = "usage-must-not-show-this-0123456789abcdef"
	t.Setenv("SECKILL_ADMIN_TOKEN", token)
	var out, errw strings.Builder
	if err := runAdmin([]string{"-badflag"}, &out, &errw); err == nil {
		t.Fatal("a bad flag: got no error")
	}
	if strings.Contains(errw.String()+out.String(), token) {
		t.Fatalf("usage shows the admin token:\n%s", errw.String())
	}
	if !strings.Contains(errw.String(), "-token") {
		t.Fatalf("usage does not list -token:\n%s", errw.String())
	}
}
