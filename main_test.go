package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	quietFrameworks("warn")
	os.Exit(m.Run())
}

func TestHelpListsSettings(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out, &out); code != 0 {
		t.Fatalf("got exit %d, want 0", code)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), s.env) {
			t.Fatalf("help does not explain %s", s.env)
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

func TestConfigRedactsSecrets(t *testing.T) {
	t.Setenv("SECKILL_JWT_SECRET", "jwt-secret-value-0123456789")
	t.Setenv("SECKILL_ADMIN_TOKEN", "admin-secret-value-0123456789")
	t.Setenv("SECKILL_MYSQL_DSN", "seckill:pa55word@tcp(127.0.0.1:3306)/seckill")
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join([]string{cfg.redacted().Gateway.JWTSecret, cfg.redacted().Gateway.AdminToken, cfg.redacted().MySQL.DSN}, " ")
	for _, secret := range []string{"jwt-secret-value", "admin-secret-value", "pa55word"} {
		if strings.Contains(s, secret) {
			t.Fatalf("redacted config shows %q: %s", secret, s)
		}
	}
}

// TestReadmeConfigLoads: the configuration shown in the README is valid.
func TestReadmeConfigLoads(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "```yaml\n")
	end := strings.Index(s[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("README has no yaml block")
	}
	path := t.TempDir() + "/seckill.yaml"
	if err := os.WriteFile(path, []byte(s[start+8:start+8+end]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatalf("README's configuration: %v", err)
	}
	if cfg.Worker.BatchSize != 64 || cfg.Gateway.Limits.User.RPS != 5 || cfg.Backend.UnpaidTimeout.Minutes() != 15 {
		t.Fatalf("got %+v, want the README's values", cfg)
	}
}

// TestEnvSettings: settings from the environment land where the components read
// them, and a malformed value is an error that names the variable.
func TestEnvSettings(t *testing.T) {
	t.Setenv("SECKILL_GATEWAY_READ_TIMEOUT", "3s")
	t.Setenv("SECKILL_GATEWAY_WRITE_TIMEOUT", "4s")
	t.Setenv("SECKILL_GATEWAY_IDLE_TIMEOUT", "5m")
	t.Setenv("SECKILL_WORKER_BATCH", "32")
	t.Setenv("SECKILL_GATEWAY_PROCS", "-1")
	t.Setenv("SECKILL_GATEWAY_MAX_CONNECTIONS", "500")
	t.Setenv("SECKILL_REDIS_ADDR", "10.0.0.1:6379,10.0.0.2:6379")
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Gateway
	if g.ReadTimeout.Seconds() != 3 || g.WriteTimeout.Seconds() != 4 || g.IdleTimeout.Minutes() != 5 || g.Procs != -1 || g.MaxConnections != 500 ||
		cfg.Worker.BatchSize != 32 || len(cfg.Backend.Redis.Addrs) != 2 || cfg.Backend.Redis.Addrs[1] != "10.0.0.2:6379" {
		t.Fatalf("got gateway %+v, worker %+v, backend redis %+v", g, cfg.Worker, cfg.Backend.Redis)
	}
	t.Setenv("SECKILL_GATEWAY_IDLE_TIMEOUT", "forever")
	if _, err := loadConfig(""); err == nil || !strings.Contains(err.Error(), "SECKILL_GATEWAY_IDLE_TIMEOUT") {
		t.Fatalf("a malformed duration: got %v, want an error naming the variable", err)
	}
}
