// Package config is the configuration of every seckill command: the YAML file, the
// environment variables that override it, and their documentation.
package config

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/seckill/flashsale/backend"
	"github.com/seckill/flashsale/backend/telemetry"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/ratelimit"
)

// Config is the whole configuration file. Every component reads the parts it needs.
// Precedence: defaults < file (-config) < environment < flags.
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

// Setting is one environment variable: the YAML key it overrides and what it means.
type Setting struct{ Env, Key, Help string }

// Settings are the environment variables Load reads.
func Settings() []Setting { return settings }

// settings documents each environment variable; WriteUsage prints them.
var settings = []Setting{
	{"SECKILL_CONFIG", "", "path of the YAML configuration file (same as -config)"},
	{"SECKILL_MYSQL_DSN", "mysql.dsn", "MySQL DSN, user:pass@tcp(host:port)/db; empty: the embedded stand-in (all-in-one only)"},
	{"SECKILL_REDIS_ADDR", "redis.addrs", "Redis address(es), comma-separated; empty: the embedded stand-in"},
	{"SECKILL_REDIS_CLUSTER", "redis.cluster", "true to use Redis Cluster even with one seed address"},
	{"SECKILL_REDIS_PASSWORD", "redis.password", "Redis password (never logged)"},
	{"SECKILL_ROCKETMQ_NAMESRV", "rocketmq.name_servers", "RocketMQ name server(s), comma-separated; empty: the in-process queue"},
	{"SECKILL_ROCKETMQ_TOPIC", "rocketmq.topic", "topic of admitted orders (default seckill_orders)"},
	{"SECKILL_ROCKETMQ_GROUP", "rocketmq.group", "consumer group of the workers (default seckill_workers)"},
	{"SECKILL_ROCKETMQ_TAG", "rocketmq.tag", "tag on every order message; workers take only it (default: none, all)"},
	{"SECKILL_BACKEND_LISTEN", "backend.listen", "kitex address of the backend (default 127.0.0.1:8888)"},
	{"SECKILL_BACKEND_ADDRS", "gateway.backend_addrs", "backends the gateway calls, comma-separated"},
	{"SECKILL_GATEWAY_LISTEN", "gateway.listen", "HTTP address of the gateway (default 127.0.0.1:8080)"},
	{"SECKILL_GATEWAY_READ_TIMEOUT", "gateway.read_timeout", "bound on reading one request, and on a new connection's wait for its first (default 10s)"},
	{"SECKILL_GATEWAY_WRITE_TIMEOUT", "gateway.write_timeout", "bound on writing one answer (default 10s)"},
	{"SECKILL_GATEWAY_IDLE_TIMEOUT", "gateway.idle_timeout", "how long a keep-alive connection may wait for its next request (default 2m)"},
	{"SECKILL_GATEWAY_MAX_CONNECTIONS", "gateway.max_connections", "client connections open at once; one over it gets 503 and is closed (default 16384, or the open files limit less 1024; -1 no cap)"},
	{"SECKILL_GATEWAY_PROCS", "gateway.procs", "Go processors the gateway asks for at least, so plugin guests that cannot be preempted do not hold the cores (default 4 a core, at least 8; -1 leaves GOMAXPROCS alone)"},
	{"SECKILL_GATEWAY_GC_PERCENT", "gateway.gc_percent", "GOGC the gateway sets, so a plugin upload's allocations do not stall requests (default 400; -1 leaves it alone)"},
	{"SECKILL_JWT_SECRET", "gateway.jwt_secret", "HS256 key of shoppers' tokens, 16+ bytes (never logged)"},
	{"SECKILL_ADMIN_TOKEN", "gateway.admin_token", "operators' bearer token, 16+ bytes (never logged)"},
	{"SECKILL_WORKER_GOROUTINES", "worker.goroutines", "batches a worker writes at once (default 8)"},
	{"SECKILL_WORKER_METRICS", "worker.metrics_listen", "where the worker serves /metrics (default 127.0.0.1:9102)"},
	{"SECKILL_WORKER_BATCH", "worker.batch_size", "most orders of one item and bucket per worker transaction (default 64; 1 turns batching off)"},
	{"SECKILL_TRACING_EXPORTER", "tracing.exporter", "OpenTelemetry spans: none (default), stdout or otlp"},
	{"SECKILL_TRACING_ENDPOINT", "tracing.endpoint", "OTLP/HTTP collector for otlp, e.g. 127.0.0.1:4318"},
	{"SECKILL_LOG_LEVEL", "log.level", "debug, info, warn or error"},
	{"SECKILL_LOG_FORMAT", "log.format", "text or json"},
}

// WriteUsage writes every environment variable with its help and YAML key, for --help.
func WriteUsage(w io.Writer) {
	for _, s := range settings {
		y := ""
		if s.Key != "" {
			y = " [" + s.Key + "]"
		}
		fmt.Fprintf(w, "  %-26s %s%s\n", s.Env, s.Help, y)
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

// Load reads the file at path (if any; "" takes SECKILL_CONFIG) over the defaults,
// then the environment as env looks variables up (os.LookupEnv in a command).
func Load(path string, env func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path == "" {
		path, _ = env("SECKILL_CONFIG")
	}
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
	}
	lookup := func(k string, set func(string) error) error {
		if v, ok := env(k); ok {
			if err := set(v); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	list := func(p *[]string) func(string) error { return func(v string) error { *p = SplitList(v); return nil } }
	num := func(p *int) func(string) error {
		return func(v string) (err error) { *p, err = strconv.Atoi(v); return err }
	}
	duration := func(p *time.Duration) func(string) error {
		return func(v string) (err error) { *p, err = time.ParseDuration(v); return err }
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) (err error) { *p, err = strconv.ParseBool(v); return err }
	}
	for _, e := range []error{
		lookup("SECKILL_MYSQL_DSN", str(&cfg.MySQL.DSN)),
		lookup("SECKILL_REDIS_ADDR", list(&cfg.Redis.Addrs)),
		lookup("SECKILL_REDIS_CLUSTER", boolean(&cfg.Redis.Cluster)),
		lookup("SECKILL_REDIS_PASSWORD", str(&cfg.Redis.Password)),
		lookup("SECKILL_ROCKETMQ_NAMESRV", list(&cfg.RocketMQ.NameServers)),
		lookup("SECKILL_ROCKETMQ_TOPIC", str(&cfg.RocketMQ.Topic)),
		lookup("SECKILL_ROCKETMQ_GROUP", str(&cfg.RocketMQ.Group)),
		lookup("SECKILL_ROCKETMQ_TAG", str(&cfg.RocketMQ.Tag)),
		lookup("SECKILL_BACKEND_LISTEN", str(&cfg.Backend.Listen)),
		lookup("SECKILL_BACKEND_ADDRS", list(&cfg.Gateway.BackendAddrs)),
		lookup("SECKILL_GATEWAY_LISTEN", str(&cfg.Gateway.Listen)),
		lookup("SECKILL_GATEWAY_READ_TIMEOUT", duration(&cfg.Gateway.ReadTimeout)),
		lookup("SECKILL_GATEWAY_WRITE_TIMEOUT", duration(&cfg.Gateway.WriteTimeout)),
		lookup("SECKILL_GATEWAY_IDLE_TIMEOUT", duration(&cfg.Gateway.IdleTimeout)),
		lookup("SECKILL_GATEWAY_MAX_CONNECTIONS", num(&cfg.Gateway.MaxConnections)),
		lookup("SECKILL_GATEWAY_PROCS", num(&cfg.Gateway.Procs)),
		lookup("SECKILL_GATEWAY_GC_PERCENT", num(&cfg.Gateway.GCPercent)),
		lookup("SECKILL_JWT_SECRET", str(&cfg.Gateway.JWTSecret)),
		lookup("SECKILL_ADMIN_TOKEN", str(&cfg.Gateway.AdminToken)),
		lookup("SECKILL_WORKER_GOROUTINES", num(&cfg.Worker.Goroutines)),
		lookup("SECKILL_WORKER_BATCH", num(&cfg.Worker.BatchSize)),
		lookup("SECKILL_WORKER_METRICS", str(&cfg.Worker.MetricsAddr)),
		lookup("SECKILL_TRACING_EXPORTER", str(&cfg.Tracing.Exporter)),
		lookup("SECKILL_TRACING_ENDPOINT", str(&cfg.Tracing.Endpoint)),
		lookup("SECKILL_LOG_LEVEL", str(&cfg.Log.Level)),
		lookup("SECKILL_LOG_FORMAT", str(&cfg.Log.Format)),
	} {
		if e != nil {
			return cfg, e
		}
	}
	cfg.Backend.MySQL, cfg.Backend.Redis, cfg.Backend.RocketMQ = cfg.MySQL, cfg.Redis, cfg.RocketMQ
	if len(cfg.Gateway.CountersRedis) == 0 && !cfg.Redis.Cluster {
		cfg.Gateway.CountersRedis = cfg.Redis.Addrs
	}
	return cfg, nil
}

// Redacted is the configuration with its secrets blanked, for logs.
func (c Config) Redacted() Config {
	blank := func(s *string) {
		if *s != "" {
			*s = "<redacted>"
		}
	}
	blank(&c.Gateway.JWTSecret)
	blank(&c.Gateway.AdminToken)
	blank(&c.Redis.Password)
	blank(&c.Backend.Redis.Password)
	if c.MySQL.DSN != "" {
		c.MySQL.DSN = redactDSN(c.MySQL.DSN)
		c.Backend.MySQL.DSN = c.MySQL.DSN
	}
	return c
}

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
