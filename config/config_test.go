package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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

// valueAt is the value of cfg at key (a leaf, copies included) as the environment
// writes it.
func valueAt(tb testing.TB, cfg Config, key string) string {
	tb.Helper()
	return format(fieldOf(reflect.ValueOf(&cfg).Elem(), key))
}

// writeFile writes a configuration file and returns its path.
func writeFile(tb testing.TB, yaml string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "seckill.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestSettingsTable: every key of Config has exactly one row and its own variable,
// so a field cannot ship undocumented or unreachable from the environment.
func TestSettingsTable(t *testing.T) {
	keys := map[string]bool{}
	for _, f := range fields() {
		keys[f.key] = true
		if _, ok := rowOf(f.key); !ok {
			t.Errorf("key %s has no row in the settings table", f.key)
		}
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if !keys[r.key] {
			t.Errorf("row %s names no key of Config", r.key)
		}
		if seen[r.key] {
			t.Errorf("key %s has two rows", r.key)
		}
		seen[r.key] = true
		if r.help == "" {
			t.Errorf("row %s has no help", r.key)
		}
	}
	vars := map[string]string{ConfigEnv: "the configuration file"}
	for _, s := range Settings() {
		if other, ok := vars[s.Env]; ok {
			t.Errorf("%s and %s share the variable %s", s.Key, other, s.Env)
		}
		vars[s.Env] = s.Key
		if !strings.HasPrefix(s.Env, "SECKILL_") {
			t.Errorf("%s: got variable %s, want SECKILL_...", s.Key, s.Env)
		}
	}
	for _, f := range fields() {
		if r, _ := rowOf(f.key); r.hide != nil {
			if k := fieldOf(reflect.ValueOf(Config{}), f.key).Kind(); k != reflect.String {
				t.Errorf("secret %s: got a %s, want a string (Redacted hides only strings)", f.key, k)
			}
		}
	}
}

// TestSecretsMarked: the settings that hold credentials are marked secret.
func TestSecretsMarked(t *testing.T) {
	secret := map[string]bool{}
	for _, s := range Settings() {
		secret[s.Key] = s.Secret
	}
	for _, key := range []string{"mysql.dsn", "redis.password", "gateway.jwt_secret", "gateway.admin_token", "backend.ticket_secret", "backend.previous_ticket_secret"} {
		if !secret[key] {
			t.Errorf("%s: got not secret, want secret", key)
		}
	}
}

// sampleFor is a value of v's kind unlike any default, as the environment writes it.
func sampleFor(v reflect.Value) string {
	if v.Type() == durationType {
		return "1m30s"
	}
	switch v.Kind() {
	case reflect.Bool:
		return fmt.Sprint(!v.Bool())
	case reflect.Int, reflect.Int64, reflect.Uint32:
		return "7"
	case reflect.Float64:
		return "0.25"
	case reflect.Slice:
		return "10.0.0.1:1,10.0.0.2:2"
	}
	return "sample-value"
}

// TestEveryKeyFromEnv: each setting's variable sets its key.
func TestEveryKeyFromEnv(t *testing.T) {
	for _, s := range Settings() {
		t.Run(s.Key, func(t *testing.T) {
			want := sampleFor(fieldOf(reflect.ValueOf(Default()), s.Key))
			cfg, err := Load("", envOf(map[string]string{s.Env: want}))
			if err != nil {
				t.Fatal(err)
			}
			if got := valueAt(t, cfg, s.Key); got != want {
				t.Errorf("%s=%s: got %s %q, want %q", s.Env, want, s.Key, got, want)
			}
		})
	}
}

// TestEnvSettings: the variables keep their names and meanings, and land where the
// components read them.
func TestEnvSettings(t *testing.T) {
	for _, tt := range []struct {
		env, value string
		keys       []string // where the value lands
	}{
		{"SECKILL_MYSQL_DSN", "u:p@tcp(10.0.0.1:3306)/db", []string{"mysql.dsn"}},
		{"SECKILL_REDIS_ADDR", "10.0.0.1:6379,10.0.0.2:6379", []string{"redis.addrs"}},
		{"SECKILL_REDIS_CLUSTER", "true", []string{"redis.cluster"}},
		{"SECKILL_REDIS_PASSWORD", "pw", []string{"redis.password"}},
		{"SECKILL_ROCKETMQ_NAMESRV", "10.0.0.1:9876", []string{"rocketmq.name_servers"}},
		{"SECKILL_ROCKETMQ_TOPIC", "t", []string{"rocketmq.topic"}},
		{"SECKILL_ROCKETMQ_GROUP", "g", []string{"rocketmq.group"}},
		{"SECKILL_ROCKETMQ_TAG", "tag", []string{"rocketmq.tag"}},
		{"SECKILL_BACKEND_LISTEN", "127.0.0.1:1", []string{"backend.listen"}},
		{"SECKILL_BACKEND_ADDRS", "10.0.0.1:8888,10.0.0.2:8888", []string{"gateway.backend_addrs"}},
		{"SECKILL_GATEWAY_LISTEN", "127.0.0.1:2", []string{"gateway.listen"}},
		{"SECKILL_GATEWAY_READ_TIMEOUT", "3s", []string{"gateway.read_timeout"}},
		{"SECKILL_GATEWAY_WRITE_TIMEOUT", "4s", []string{"gateway.write_timeout"}},
		{"SECKILL_GATEWAY_IDLE_TIMEOUT", "5m", []string{"gateway.idle_timeout"}},
		{"SECKILL_GATEWAY_MAX_CONNECTIONS", "500", []string{"gateway.max_connections"}},
		{"SECKILL_GATEWAY_PROCS", "-1", []string{"gateway.procs"}},
		{"SECKILL_GATEWAY_GC_PERCENT", "200", []string{"gateway.gc_percent"}},
		{"SECKILL_GATEWAY_LIMITS_USER_RPS", "2.5", []string{"gateway.limits.user.rps"}},
		{"SECKILL_GATEWAY_PLUGIN_TIMEOUT", "20ms", []string{"gateway.plugin_timeout"}},
		{"SECKILL_GATEWAY_PLUGIN_MEMORY_PAGES", "256", []string{"gateway.plugin_memory_pages"}},
		{"SECKILL_JWT_SECRET", "j", []string{"gateway.jwt_secret"}},
		{"SECKILL_ADMIN_TOKEN", "a", []string{"gateway.admin_token"}},
		{"SECKILL_WORKER_GOROUTINES", "3", []string{"worker.goroutines"}},
		{"SECKILL_WORKER_BATCH", "32", []string{"worker.batch_size"}},
		{"SECKILL_WORKER_OPS_LISTEN", "127.0.0.1:3", []string{"worker.ops_listen"}},
		{"SECKILL_BACKEND_OPS_LISTEN", "127.0.0.1:4", []string{"backend.ops_listen"}},
		{"SECKILL_PORT_BASE", "9000", []string{"port_base"}},
		{"SECKILL_BACKEND_UNPAID_TIMEOUT", "1h", []string{"backend.unpaid_timeout"}},
		{"SECKILL_TRACING_EXPORTER", "otlp", []string{"tracing.exporter"}},
		{"SECKILL_TRACING_ENDPOINT", "127.0.0.1:4318", []string{"tracing.endpoint"}},
		{"SECKILL_TRACING_SAMPLE", "0.1", []string{"tracing.sample"}},
		{"SECKILL_LOG_LEVEL", "debug", []string{"log.level"}},
		{"SECKILL_LOG_FORMAT", "json", []string{"log.format"}},
	} {
		t.Run(tt.env, func(t *testing.T) {
			cfg, err := Load("", envOf(map[string]string{tt.env: tt.value}))
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range tt.keys {
				if got := valueAt(t, cfg, key); got != tt.value {
					t.Errorf("%s: got %q, want %q", key, got, tt.value)
				}
			}
		})
	}
}

// TestEnvMalformed: a value that does not parse fails Load, naming the variable.
func TestEnvMalformed(t *testing.T) {
	for _, tt := range []struct{ env, value string }{
		{"SECKILL_GATEWAY_IDLE_TIMEOUT", "forever"},
		{"SECKILL_WORKER_BATCH", "many"},
		{"SECKILL_WORKER_GOROUTINES", ""},
		{"SECKILL_REDIS_CLUSTER", "maybe"},
		{"SECKILL_TRACING_SAMPLE", "half"},
		{"SECKILL_GATEWAY_PLUGIN_MEMORY_PAGES", "-1"},
		{"SECKILL_GATEWAY_LIMITS_IP_BURST", "1.5"},
	} {
		t.Run(tt.env, func(t *testing.T) {
			_, err := Load("", envOf(map[string]string{tt.env: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.env) {
				t.Errorf("%s=%q: got %v, want an error naming %s", tt.env, tt.value, err, tt.env)
			}
		})
	}
}

// TestPrecedence: defaults < file < environment; SECKILL_CONFIG names the file when
// no path is given.
func TestPrecedence(t *testing.T) {
	path := writeFile(t, "gateway: {listen: \"127.0.0.1:1\"}\nworker: {goroutines: 3}\n")
	for _, tt := range []struct {
		name string
		path string
		env  map[string]string
		want map[string]string
	}{
		{"defaults", "", nil, map[string]string{"gateway.listen": "127.0.0.1:8080", "worker.goroutines": "8"}},
		{"file", path, nil, map[string]string{"gateway.listen": "127.0.0.1:1", "worker.goroutines": "3", "log.level": "info"}},
		{"SECKILL_CONFIG", "", map[string]string{ConfigEnv: path}, map[string]string{"gateway.listen": "127.0.0.1:1"}},
		{"environment over file", path, map[string]string{"SECKILL_GATEWAY_LISTEN": "127.0.0.1:2"},
			map[string]string{"gateway.listen": "127.0.0.1:2", "worker.goroutines": "3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.path, envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range tt.want {
				if got := valueAt(t, cfg, key); got != want {
					t.Errorf("%s: got %q, want %q", key, got, want)
				}
			}
		})
	}
}

// TestFileErrors: a file with an unknown key fails Load naming the key.
func TestFileErrors(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"gateway: {listen_addr: x}\n", "listen_addr"},
		{"backend: {mysql: {dsn: \"u:p@tcp(h:1)/db\"}}\n", "field mysql not found"},
		{"port_base: 0\n", "port_base"},
	} {
		_, err := Load(writeFile(t, tt.yaml), envOf(nil))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error naming %s", tt.yaml, err, tt.want)
		}
	}
}

// TestConfigRedactsSecrets: no secret survives Redacted, in its section or in the
// backend's copy, and the configuration itself keeps them.
func TestConfigRedactsSecrets(t *testing.T) {
	env := map[string]string{}
	for _, s := range Settings() {
		if s.Secret {
			env[s.Env] = "secret-of-" + s.Env
		}
	}
	env["SECKILL_MYSQL_DSN"] = "seckill:secret-of-dsn@tcp(127.0.0.1:3306)/seckill"
	cfg, err := Load("", envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	shown := fmt.Sprintf("%+v", cfg.Redacted())
	for _, s := range Settings() {
		if s.Secret && strings.Contains(shown, "secret-of-"+s.Env) {
			t.Errorf("redacted config shows %s: %s", s.Env, shown)
		}
	}
	if strings.Contains(shown, "secret-of-dsn") {
		t.Errorf("redacted config shows the DSN's password: %s", shown)
	}
	if got, want := cfg.Redacted().MySQL.DSN, "seckill:<redacted>@tcp(127.0.0.1:3306)/seckill"; got != want {
		t.Errorf("redacted DSN: got %q, want %q", got, want)
	}
	if got, want := cfg.Gateway.JWTSecret, env["SECKILL_JWT_SECRET"]; got != want {
		t.Errorf("after Redacted the configuration's JWT secret: got %q, want %q", got, want)
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
	cfg, err := Load(writeFile(t, s[start+8:start+8+end]), envOf(nil))
	if err != nil {
		t.Fatalf("README's configuration: %v", err)
	}
	for key, want := range map[string]string{"worker.batch_size": "64", "gateway.limits.user.rps": "5", "backend.unpaid_timeout": "15m"} {
		if got := valueAt(t, cfg, key); got != want {
			t.Errorf("%s: got %q, want the README's %q", key, got, want)
		}
	}
}

// TestConfigurationDoc: docs/CONFIGURATION.md is what the settings table generates.
func TestConfigurationDoc(t *testing.T) {
	got, err := os.ReadFile("../docs/CONFIGURATION.md")
	if err != nil {
		t.Fatal(err)
	}
	gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(Markdown()), "\n")
	for i := range max(len(gotLines), len(wantLines)) {
		var g, w string
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Fatalf("docs/CONFIGURATION.md differs from the settings table (make docs regenerates it): line %d: got %q, want %q", i+1, g, w)
		}
	}
}

// fieldOf is the field of the Config v at key, a leaf or a section.
func fieldOf(v reflect.Value, key string) reflect.Value {
next:
	for name := range strings.SplitSeq(key, ".") {
		for i := range v.NumField() {
			if n, _ := yamlName(v.Type().Field(i)); n == name {
				v = v.Field(i)
				continue next
			}
		}
		panic("config: no key " + key)
	}
	return v
}

// TestListenersFromPortBase: listeners not set on their own follow port_base, and an
// ops listener follows its listener, so processes with their own bases never collide.
func TestListenersFromPortBase(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want [4]string // gateway, backend, backend ops, worker ops
	}{
		{"defaults", nil, [4]string{"127.0.0.1:8080", "127.0.0.1:8082", "127.0.0.1:8083", "127.0.0.1:8084"}},
		{"base", map[string]string{"SECKILL_PORT_BASE": "9100"}, [4]string{"127.0.0.1:9100", "127.0.0.1:9102", "127.0.0.1:9103", "127.0.0.1:9104"}},
		{"backend set", map[string]string{"SECKILL_PORT_BASE": "9100", "SECKILL_BACKEND_LISTEN": "0.0.0.0:7000"}, [4]string{"127.0.0.1:9100", "0.0.0.0:7000", "127.0.0.1:7001", "127.0.0.1:9104"}},
		{"any port", map[string]string{"SECKILL_BACKEND_LISTEN": "127.0.0.1:0"}, [4]string{"127.0.0.1:8080", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:8084"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load("", envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			got := [4]string{cfg.Gateway.Listen, cfg.Backend.Listen, cfg.Backend.OpsListen, cfg.Worker.OpsListen}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if want := opsNext(cfg.Gateway.Listen); cfg.Gateway.OpsListen != want {
				t.Errorf("gateway ops: got %s, want %s", cfg.Gateway.OpsListen, want)
			}
		})
	}
	if _, err := Load("", envOf(map[string]string{"SECKILL_PORT_BASE": "70000"})); err == nil {
		t.Error("port_base 70000: got no error, want one")
	}
}
