// Package config is the configuration of every seckill command: the YAML file, the
// environment variables that override it, and their documentation.
package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/seckill/flashsale/backend"
	"github.com/seckill/flashsale/backend/telemetry"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/ratelimit"
)

// Config is the whole configuration file. Every component reads the parts it needs.
// Precedence: defaults < file (-config) < environment < flags. Every leaf key has a
// row in the settings table (settings.go), which names its environment variable.
type Config struct {
	MySQL    backend.MySQLConfig    `yaml:"mysql"`
	Redis    backend.RedisConfig    `yaml:"redis"`
	RocketMQ backend.RocketMQConfig `yaml:"rocketmq"`
	Backend  backend.Config         `yaml:"backend"`
	Worker   WorkerConfig           `yaml:"worker"`
	Gateway  gateway.Config         `yaml:"gateway"`
	Log      LogConfig              `yaml:"log"`
	Tracing  telemetry.Config       `yaml:"tracing"`
}

// WorkerConfig is the worker's part of the file.
type WorkerConfig struct {
	Goroutines  int           `yaml:"goroutines"`
	BatchSize   int           `yaml:"batch_size"`
	BatchWindow time.Duration `yaml:"batch_window"`
	MaxAttempts int           `yaml:"max_attempts"`
	MetricsAddr string        `yaml:"metrics_listen"`
}

// LogConfig chooses the log format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Default runs the all-in-one mode with the embedded stand-ins: no addresses.
func Default() Config {
	return Config{
		RocketMQ: backend.RocketMQConfig{Topic: "seckill_orders", Group: "seckill_workers"},
		Backend:  backend.Config{Listen: "127.0.0.1:8888", UnpaidTimeout: 15 * time.Minute},
		Worker:   WorkerConfig{Goroutines: 8, BatchSize: 64, BatchWindow: 2 * time.Millisecond, MaxAttempts: 8, MetricsAddr: "127.0.0.1:9102"},
		Gateway: gateway.Config{
			Listen: "127.0.0.1:8080",
			Limits: ratelimit.Limits{
				Global: ratelimit.Rule{RPS: 100_000, Burst: 20_000},
				User:   ratelimit.Rule{RPS: 5, Burst: 10},
				Item:   ratelimit.Rule{RPS: 50_000, Burst: 10_000},
				IP:     ratelimit.Rule{RPS: 200, Burst: 400},
			},
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// SplitList splits a comma-separated list, as the environment variables write lists.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// copies are sections Load fills from others: the backend connects to the servers
// of the top-level mysql, redis and rocketmq sections, as the worker does. They have
// no settings of their own and the file may not set them.
var copies = []struct{ to, from string }{
	{"backend.mysql", "mysql"},
	{"backend.redis", "redis"},
	{"backend.rocketmq", "rocketmq"},
}

// Load reads the file at path (if any; "" takes SECKILL_CONFIG) over the defaults,
// then every setting's environment variable as env looks it up (os.LookupEnv in a
// command).
func Load(path string, env func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path == "" {
		path, _ = env(ConfigEnv)
	}
	v := reflect.ValueOf(&cfg).Elem()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		for _, c := range copies {
			if !fieldOf(v, c.to).IsZero() {
				return cfg, fmt.Errorf("config %s: %s is taken from %s; set that instead", path, c.to, c.from)
			}
		}
	}
	for _, e := range table() {
		s, ok := env(e.Env)
		if !ok {
			continue
		}
		if err := parse(v.FieldByIndex(e.index), s); err != nil {
			return cfg, fmt.Errorf("%s (%s): %w", e.Env, e.Key, err)
		}
	}
	for _, c := range copies {
		fieldOf(v, c.to).Set(fieldOf(v, c.from))
	}
	if len(cfg.Gateway.CountersRedis) == 0 && !cfg.Redis.Cluster {
		cfg.Gateway.CountersRedis = cfg.Redis.Addrs
	}
	return cfg, nil
}

// Redacted is the configuration with its secrets hidden, for logs: every field of a
// secret setting (the copies in backend included) as the setting's row hides it.
func (c Config) Redacted() Config {
	v := reflect.ValueOf(&c).Elem()
	for _, f := range fields() {
		r, ok := rowOf(f.setting)
		if !ok || r.hide == nil {
			continue
		}
		if fv := v.FieldByIndex(f.index); fv.Kind() == reflect.String && fv.String() != "" {
			fv.SetString(r.hide(fv.String()))
		}
	}
	return c
}

// blank hides a secret whole.
func blank(string) string { return "<redacted>" }

// redactDSN hides the password of user:pass@tcp(...)/db.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return dsn
	}
	cred := dsn[:at]
	if i := strings.Index(cred, ":"); i >= 0 {
		cred = cred[:i] + ":<redacted>"
	}
	return cred + dsn[at:]
}
