package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/bench"
	"github.com/seckill/flashsale/config"
)

// runDemo is `seckill demo`: the all-in-one mode (embedded stand-ins wherever no
// server is configured) runs one sale under a short load, settles, checks the
// invariants and prints the result.
// demoCommand is `seckill demo`.
func demoCommand(_ string, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("seckill demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	stock := fs.Int64("stock", 500, "units on sale")
	attempts := fs.Int("attempts", 20_000, "order attempts")
	users := fs.Int("users", 5_000, "shoppers (each may buy one unit)")
	clients := fs.Int("concurrency", 64, "concurrent clients (closed loop)")
	strategy := fs.String("strategy", "async", "ordering strategy: sync, async or bucket")
	out := fs.String("out", "", "directory for the chart and the JSON (default: a new temporary directory)")
	quiet := fs.Bool("quiet", false, "no progress line")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: seckill demo [flags]\n\nRuns a flash sale in one process and prints what happened.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seckill demo: unexpected arguments: %v\n", fs.Args())
		return 2
	}
	if err := demo(ctx, demoArgs{config: *cfgPath, stock: *stock, attempts: *attempts, users: *users, clients: *clients,
		strategy: *strategy, out: *out, quiet: *quiet}, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "seckill demo:", err)
		return 1
	}
	return 0
}

type demoArgs struct {
	config                   string
	stock                    int64
	attempts, users, clients int
	strategy, out            string
	quiet                    bool
}

func demo(ctx context.Context, a demoArgs, stdout, stderr io.Writer) error {
	cfg, err := config.Load(a.config, os.LookupEnv)
	if err != nil {
		return err
	}
	if cfg.Gateway.JWTSecret == "" || cfg.Gateway.AdminToken == "" {
		if cfg.Gateway.JWTSecret == "" {
			cfg.Gateway.JWTSecret = randomSecret()
		}
		if cfg.Gateway.AdminToken == "" {
			cfg.Gateway.AdminToken = randomSecret()
		}
		fmt.Fprintln(stdout, "demo: no SECKILL_JWT_SECRET / SECKILL_ADMIN_TOKEN configured; using random demo secrets for this run (not shown)")
	}
	cfg.AnyPorts()
	if cfg.Log.Level != "debug" {
		cfg.Log.Level = "warn"
	}
	log := app.NewLogger(cfg.Log, stderr)
	app.FrameworkLogs(log, loadLogLevel(cfg.Log.Level))
	start := time.Now()
	s, err := app.Start(ctx, cfg, app.Options{Embedded: true, Log: log})
	if err != nil {
		return err
	}
	defer s.Close()
	real := []string{}
	if !s.Uses("mysql") {
		real = append(real, "MySQL")
	}
	if !s.Uses("redis") {
		real = append(real, "Redis")
	}
	if !s.Uses("queue") {
		real = append(real, "RocketMQ")
	}
	fmt.Fprintf(stdout, "demo: gateway, backend and worker in one process at %s\n", s.URL())
	if len(s.Embedded) > 0 {
		fmt.Fprintf(stdout, "demo: embedded stand-ins: %s\n", strings.Join(s.Embedded, ", "))
	}
	if len(real) > 0 {
		fmt.Fprintf(stdout, "demo: configured servers: %s\n", strings.Join(real, ", "))
	}
	fmt.Fprintf(stdout, "demo: a %s sale of %d units; %d order attempts from %d shoppers (limit 1 each), %d at a time\n\n",
		a.strategy, a.stock, a.attempts, a.users, a.clients)

	z := bench.DefaultSizes()
	z.HotStock, z.HotAttempts, z.HotUsers, z.HotConcurrency = a.stock, a.attempts, a.users, a.clients
	opts := bench.Options{Scenarios: []string{bench.Hot}, Strategies: []string{a.strategy}, Sizes: z, TTY: isTerminal(stderr),
		SettleTimeout: time.Minute, Tag: "demo" + bench.RandomID()}
	if !a.quiet {
		opts.Progress = stderr
	}
	t := &bench.Target{URL: s.URL(), AdminToken: cfg.Gateway.AdminToken, JWTSecret: cfg.Gateway.JWTSecret,
		MySQLDSN: s.Config.MySQL.DSN, InProcess: true, StandIns: s.Embedded}
	rep, err := bench.Run(ctx, opts, t)
	if err != nil {
		return err
	}
	dir := a.out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "seckill-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	chart := filepath.Join(dir, "demo.svg")
	if err := os.WriteFile(chart, []byte(bench.DemoSVG(rep)), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	rr := rep.Runs[0]
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, bench.TablesMarkdown(rep))
	fmt.Fprintf(stdout, "Sold %d of %d units as %d orders; %d of %d attempts admitted; settled %.2f s after the last answer.\n",
		rr.UnitsSold, rr.Stock, rr.Orders, rr.Admitted, rr.Sent, rr.SettleSeconds)
	fmt.Fprintf(stdout, "Chart: %s (figures: %s). Took %.1f s.\n", chart, filepath.Join(dir, "demo.json"), time.Since(start).Seconds())
	if !rep.OK {
		return fmt.Errorf("INVARIANTS BROKEN:\n  - %s", strings.Join(rep.Failures, "\n  - "))
	}
	fmt.Fprintln(stdout, "Invariants hold: no oversell, no undersell, per-user limit, one order per ticket, no stuck ticket, Redis = MySQL.")
	return nil
}
