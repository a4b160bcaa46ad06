// Command seckill runs the flash-sale platform: each component on its own (gateway,
// backend, worker), all of them in one process (all, demo), and the tools around them
// (migrate, token, admin, bench).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cloudwego/hertz/pkg/common/hlog"
	"github.com/cloudwego/kitex/pkg/klog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seckill/flashsale/backend"
	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/telemetry"
	"github.com/seckill/flashsale/config"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/worker"
)

const usage = `seckill: a flash-sale edge gateway and ordering backend.

Usage: seckill <command> [flags]

Commands:
  all       run gateway, backend and worker in one process
  gateway   run the HTTP edge gateway
  backend   run the kitex backend
  worker    run the queue workers
  migrate   apply the MySQL schema migrations
  token     mint a shopper token:  seckill token -user 42 [-ttl 24h]
  bench     load-test the system, check the invariants, write bench/results (seckill bench -h)
  demo      run a sale in one process on the stand-ins and print the result (seckill demo -h)
  admin     the operator CLI: activities, plugins, limits (seckill admin -h)

Every command takes -config FILE (YAML). An environment variable overrides each key of
the file; there, lists are comma-separated and durations Go's (1m30s).
Settings (docs/CONFIGURATION.md has them as a table): variable [YAML key] default, then
what it means.
`

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	config.WriteUsage(w)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	if cmd == "bench" || cmd == "demo" { // flags of their own: bench_cmd.go, demo.go
		return runLoadCommand(cmd, rest, stdout, stderr)
	}
	if cmd == "admin" { // flags of its own
		if err := runAdmin(rest, stdout, stderr); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(stderr, "seckill:", err)
			}
			return 1
		}
		return 0
	}
	fs := flag.NewFlagSet("seckill "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: seckill %s [flags]\n", cmd)
		fs.PrintDefaults()
		fmt.Fprintln(stderr)
		printUsage(stderr)
	}
	var user int64
	var ttl time.Duration
	if cmd == "token" {
		fs.Int64Var(&user, "user", 0, "the user id the token is for")
		fs.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid")
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := config.Load(*cfgPath, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, "seckill:", err)
		return 2
	}
	log := newLogger(cfg.Log, stderr)
	quietFrameworks(cfg.Log.Level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdownTracing, err := telemetry.Setup(ctx, "seckill-"+cmd, cfg.Tracing)
	if err != nil {
		fmt.Fprintln(stderr, "seckill:", err)
		return 2
	}
	defer shutdownTracing(context.Background())

	switch cmd {
	case "token":
		err = mintToken(stdout, cfg, user, ttl)
	case "migrate":
		err = migrate(ctx, stdout, cfg)
	case "backend":
		err = runBackend(ctx, cfg, log)
	case "worker":
		err = runWorker(ctx, cfg, log)
	case "gateway":
		err = runGateway(ctx, cfg, log)
	case "all":
		err = runAll(ctx, cfg, log)
	default:
		fmt.Fprintf(stderr, "seckill: unknown command %q\n\n", cmd)
		printUsage(stderr)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "seckill:", err)
		return 1
	}
	return 0
}

func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// quietFrameworks keeps hertz's and kitex's own logs to warnings unless debugging.
func quietFrameworks(level string) {
	if level == "debug" {
		return
	}
	hlog.SetLevel(hlog.LevelWarn)
	klog.SetLevel(klog.LevelWarn)
}

func mintToken(w io.Writer, cfg config.Config, user int64, ttl time.Duration) error {
	if user <= 0 {
		return errors.New("token: -user must be a positive user id")
	}
	if cfg.Gateway.JWTSecret == "" {
		return errors.New("token: no secret; set SECKILL_JWT_SECRET or gateway.jwt_secret")
	}
	tok, err := auth.Mint([]byte(cfg.Gateway.JWTSecret), user, ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, tok)
	return err
}

func migrate(ctx context.Context, w io.Writer, cfg config.Config) error {
	if cfg.MySQL.DSN == "" {
		return errors.New("migrate: no MySQL configured; set SECKILL_MYSQL_DSN")
	}
	db, err := mysql.Open(ctx, cfg.MySQL.DSN, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := mysql.Migrate(ctx, db)
	for _, v := range applied {
		fmt.Fprintln(w, "applied", v)
	}
	if err == nil && len(applied) == 0 {
		fmt.Fprintln(w, "schema is up to date")
	}
	return err
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveMetrics serves /metrics of a process without an HTTP API of its own.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) {
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("metrics not served", "addr", addr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"status":"ok"}`) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("metrics serving", "addr", ln.Addr().String())
}

func requireReal(cfg config.Config, who string) error {
	var missing []string
	if cfg.MySQL.DSN == "" {
		missing = append(missing, "SECKILL_MYSQL_DSN")
	}
	if len(cfg.Redis.Addrs) == 0 {
		missing = append(missing, "SECKILL_REDIS_ADDR")
	}
	if who == "worker" && len(cfg.RocketMQ.NameServers) == 0 {
		missing = append(missing, "SECKILL_ROCKETMQ_NAMESRV")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: set %s (the embedded stand-ins exist only in the all-in-one mode: seckill all)", who, strings.Join(missing, ", "))
	}
	return nil
}

func runBackend(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := requireReal(cfg, "backend"); err != nil {
		return err
	}
	reg := newRegistry()
	m, err := backend.Open(ctx, cfg.Backend, backend.Deps{Registry: reg, Log: log})
	if err != nil {
		return err
	}
	serveMetrics(ctx, metricsAddrNear(cfg.Backend.Listen), reg, log)
	return m.Run(ctx)
}

// metricsAddrNear is the metrics address of the backend: its port plus 1000.
func metricsAddrNear(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1000))
}

func workerConfig(cfg config.Config) worker.MainConfig {
	return worker.MainConfig{MySQL: cfg.MySQL, Redis: cfg.Redis, RocketMQ: cfg.RocketMQ, Goroutines: cfg.Worker.Goroutines,
		BatchSize: cfg.Worker.BatchSize, BatchWindow: cfg.Worker.BatchWindow, MaxAttempts: cfg.Worker.MaxAttempts, TicketTTL: cfg.Backend.TicketTTL}
}

func runWorker(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := requireReal(cfg, "worker"); err != nil {
		return err
	}
	reg := newRegistry()
	m, err := worker.Open(ctx, workerConfig(cfg), worker.Deps{Registry: reg, Log: log})
	if err != nil {
		return err
	}
	serveMetrics(ctx, cfg.Worker.MetricsAddr, reg, log)
	return m.Run(ctx)
}

func runGateway(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if len(cfg.Gateway.BackendAddrs) == 0 {
		cfg.Gateway.BackendAddrs = []string{cfg.Backend.Listen}
	}
	m, err := gateway.Open(ctx, cfg.Gateway, gateway.Deps{Log: log})
	if err != nil {
		return err
	}
	return m.Run(ctx)
}

func runAll(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.Gateway.JWTSecret == "" || cfg.Gateway.AdminToken == "" {
		return errors.New("all: set SECKILL_JWT_SECRET and SECKILL_ADMIN_TOKEN (16+ bytes each)")
	}
	reg := newRegistry()
	s, err := StartStack(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	log.Info("all-in-one serving", "url", s.URL(), "stand-ins", strings.Join(s.Embedded, ", "), "config", fmt.Sprintf("%+v", s.Config.Redacted()))
	<-ctx.Done()
	return s.Close()
}
