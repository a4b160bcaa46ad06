package config

import (
	"os"
	"strings"
	"testing"
)

// envOf is an environment of exactly vars, for Load.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	cfg, err := Load("", envOf(map[string]string{
		"SECKILL_JWT_SECRET":  "jwt-secret-value-0123456789",
		"SECKILL_ADMIN_TOKEN": "admin-secret-value-0123456789",
		"SECKILL_MYSQL_DSN":   "seckill:pa55word@tcp(127.0.0.1:3306)/seckill",
	}))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Redacted()
	s := strings.Join([]string{r.Gateway.JWTSecret, r.Gateway.AdminToken, r.MySQL.DSN, r.Backend.MySQL.DSN}, " ")
	for _, secret := range []string{"jwt-secret-value", "admin-secret-value", "pa55word"} {
		if strings.Contains(s, secret) {
			t.Errorf("redacted config shows %q: %s", secret, s)
		}
	}
}

// TestReadmeConfigLoads: the configuration shown in the README is valid.
func TestReadmeConfigLoads(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "```yaml\n")
	if start < 0 {
		t.Fatal("README has no yaml block")
	}
	end := strings.Index(s[start+8:], "```")
	if end < 0 {
		t.Fatal("README's yaml block does not end")
	}
	path := t.TempDir() + "/seckill.yaml"
	if err := os.WriteFile(path, []byte(s[start+8:start+8+end]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, envOf(nil))
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
	cfg, err := Load("", envOf(map[string]string{
		"SECKILL_GATEWAY_READ_TIMEOUT":    "3s",
		"SECKILL_GATEWAY_WRITE_TIMEOUT":   "4s",
		"SECKILL_GATEWAY_IDLE_TIMEOUT":    "5m",
		"SECKILL_WORKER_BATCH":            "32",
		"SECKILL_GATEWAY_PROCS":           "-1",
		"SECKILL_GATEWAY_MAX_CONNECTIONS": "500",
		"SECKILL_REDIS_ADDR":              "10.0.0.1:6379,10.0.0.2:6379",
	}))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Gateway
	if g.ReadTimeout.Seconds() != 3 || g.WriteTimeout.Seconds() != 4 || g.IdleTimeout.Minutes() != 5 || g.Procs != -1 || g.MaxConnections != 500 ||
		cfg.Worker.BatchSize != 32 || len(cfg.Backend.Redis.Addrs) != 2 || cfg.Backend.Redis.Addrs[1] != "10.0.0.2:6379" {
		t.Fatalf("got gateway %+v, worker %+v, backend redis %+v", g, cfg.Worker, cfg.Backend.Redis)
	}
	_, err = Load("", envOf(map[string]string{"SECKILL_GATEWAY_IDLE_TIMEOUT": "forever"}))
	if err == nil || !strings.Contains(err.Error(), "SECKILL_GATEWAY_IDLE_TIMEOUT") {
		t.Fatalf("a malformed duration: got %v, want an error naming the variable", err)
	}
}
