// Package config is the configuration of every seckill command: the YAML file, the
// environment variables that override it, and their documentation.
package config

import (
	"fmt"
	"net"
	"os"
	"reflect"
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
// Precedence: defaults < file (-config) < environment < flags. Every leaf key has a
// row in the settings table (settings.go), which names its environment variable.
type Config struct {
	// PortBase is where the listeners' default ports start, so several processes on
	// one host never collide: the gateway on PortBase and its ops listener on the next
	// port, the backend on PortBase+2 and its ops on PortBase+3, the worker's ops on
	// PortBase+4. A listener set on its own keeps its address; an ops listener left
	// unset follows its listener (port + 1, on loopback).
	PortBase int `yaml:"port_base"`
	// Fleet names the deployment: its processes share announcements, reports and
	// rate-limit buckets in Redis under this name, apart from any other fleet on the
	// same Redis.
	Fleet    string           `yaml:"fleet"`
	MySQL    MySQLConfig      `yaml:"mysql"`
	Redis    RedisConfig      `yaml:"redis"`
	RocketMQ RocketMQConfig   `yaml:"rocketmq"`
	Backend  backend.Config   `yaml:"backend"`
	Worker   WorkerConfig     `yaml:"worker"`
	Gateway  gateway.Config   `yaml:"gateway"`
	Log      LogConfig        `yaml:"log"`
	Tracing  telemetry.Config `yaml:"tracing"`
}

// MySQLConfig says where MySQL is.
type MySQLConfig struct {
	DSN      string `yaml:"dsn"`       // go-sql-driver syntax: user:pass@tcp(host:port)/db
	MaxConns int    `yaml:"max_conns"` // pool size
}

// RedisConfig says where Redis is: one node, or a cluster's seed nodes. Every part
// of the system (stock, tickets, the catalog cache, plugins' counters) uses it.
type RedisConfig struct {
	Addrs    []string `yaml:"addrs"`
	Password string   `yaml:"password"`
	Cluster  bool     `yaml:"cluster"` // a cluster even with one seed address
}

// RocketMQConfig says where RocketMQ is.
type RocketMQConfig struct {
	NameServers []string `yaml:"name_servers"`
	Topic       string   `yaml:"topic"`
	Group       string   `yaml:"group"` // consumer group of the workers
	Tag         string   `yaml:"tag"`   // tag on every message; workers take only it ("" = all)
}

// WorkerConfig is the worker's part of the file.
type WorkerConfig struct {
	Goroutines  int           `yaml:"goroutines"`
	BatchSize   int           `yaml:"batch_size"`
	BatchWindow time.Duration `yaml:"batch_window"`
	MaxAttempts int           `yaml:"max_attempts"`
	OpsListen   string        `yaml:"ops_listen"` // /metrics and /healthz
}

// LogConfig chooses the log format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// DefaultPortBase is the default of port_base.
const DefaultPortBase = 8080

// Default runs the all-in-one mode with the embedded stand-ins (no server addresses),
// its listeners on loopback from DefaultPortBase.
func Default() Config {
	c := defaults()
	c.deriveListeners()
	return c
}

// defaults are Default's values before the listeners are derived from the port base.
func defaults() Config {
	return Config{
		PortBase: DefaultPortBase,
		Fleet:    "seckill",
		RocketMQ: RocketMQConfig{Topic: "seckill_orders", Group: "seckill_workers"},
		Backend:  backend.Config{UnpaidTimeout: 15 * time.Minute},
		Worker:   WorkerConfig{Goroutines: 8, BatchSize: 64, BatchWindow: 2 * time.Millisecond, MaxAttempts: 8},
		Gateway: gateway.Config{
			Limits: ratelimit.Limits{
				Global:   ratelimit.Rule{RPS: 100_000, Burst: 20_000},
				Read:     ratelimit.Rule{RPS: 50_000, Burst: 10_000},
				User:     ratelimit.Rule{RPS: 5, Burst: 10},
				UserRead: ratelimit.Rule{RPS: 10, Burst: 20},
				Item:     ratelimit.Rule{RPS: 50_000, Burst: 10_000},
				IP:       ratelimit.Rule{RPS: 200, Burst: 400},
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

// Load reads the file at path (if any; "" takes SECKILL_CONFIG) over the defaults,
// then every setting's environment variable as env looks it up (os.LookupEnv in a
// command).
func Load(path string, env func(string) (string, bool)) (Config, error) {
	cfg := defaults()
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
	if cfg.PortBase <= 0 || cfg.PortBase > 65535-4 {
		return cfg, fmt.Errorf("port_base must be 1 to %d, not %d", 65535-4, cfg.PortBase)
	}
	cfg.deriveListeners()
	return cfg, nil
}

// Redacted is the configuration with its secrets hidden, for logs: every field of a
// secret setting as the setting's row hides it.
func (c Config) Redacted() Config {
	v := reflect.ValueOf(&c).Elem()
	for _, f := range fields() {
		r, ok := rowOf(f.key)
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

// deriveListeners fills the listeners left empty from the port base (see PortBase).
func (c *Config) deriveListeners() {
	at := func(off int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.PortBase+off)) }
	if c.Gateway.Listen == "" {
		c.Gateway.Listen = at(0)
	}
	if c.Gateway.OpsListen == "" {
		c.Gateway.OpsListen = opsNext(c.Gateway.Listen)
	}
	if c.Backend.Listen == "" {
		c.Backend.Listen = at(2)
	}
	if c.Backend.OpsListen == "" {
		c.Backend.OpsListen = opsNext(c.Backend.Listen)
	}
	if c.Worker.OpsListen == "" {
		c.Worker.OpsListen = at(4)
	}
}

// AnyPorts puts every listener on a free loopback port (tests, the demo, the bench:
// processes that must not collide with a running system).
func (c *Config) AnyPorts() {
	const any = "127.0.0.1:0"
	c.Gateway.Listen, c.Gateway.OpsListen, c.Backend.Listen, c.Backend.OpsListen, c.Worker.OpsListen = any, any, any, any, any
}

// opsNext is where a listener's ops listener goes unless configured: loopback, the
// port after addr's (port 0, any free port, stays 0).
func opsNext(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1))
}
