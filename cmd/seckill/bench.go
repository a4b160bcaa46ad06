package main

import (
	"context"
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
	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/bench"
	"github.com/seckill/flashsale/config"
	"github.com/seckill/flashsale/internal/randhex"
)

// benchCommand is `seckill bench`.
func benchCommand(_ string, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runBench(ctx, args, stdout, stderr)
}

// benchFlags are the flags of `seckill bench`.
type benchFlags struct {
	config                string
	scenarios, strategies string
	sizes                 bench.Sizes
	buckets, retries      int
	timeout, settle       time.Duration
	baselines             bool
	baselineDur           time.Duration
	url, adminToken, jwt  string
	mysqlDSN, redisAddr   string
	backendAddr           string
	embedded              bool
	out, name             string
	keepDB, keepLimits    bool
	quiet                 bool
	cpuProfile            string
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchFlags, error) {
	f := &benchFlags{sizes: bench.DefaultSizes()}
	fs := flag.NewFlagSet("seckill bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	z := &f.sizes
	fs.StringVar(&f.config, "config", "", "YAML configuration file of the system the bench starts")
	fs.StringVar(&f.scenarios, "scenario", "all", "scenarios, comma-separated: hot, mixed, sustained, capacity, flood, or all (all but flood, which runs only when named)")
	fs.StringVar(&f.strategies, "strategy", "all", "strategies, comma-separated: sync, async, bucket, or all")
	fs.IntVar(&z.HotAttempts, "attempts", z.HotAttempts, "order attempts of the hot scenario (and of mixed and capacity, unless -mixed-attempts, -capacity-attempts)")
	fs.IntVar(&z.HotUsers, "users", z.HotUsers, "shoppers of the hot scenario (and of mixed, unless -mixed-users)")
	fs.Int64Var(&z.HotStock, "stock", z.HotStock, "units of the hot item (and of each of mixed's hot items, unless -mixed-stock)")
	fs.IntVar(&z.HotConcurrency, "concurrency", z.HotConcurrency, "closed-loop clients of hot, mixed and capacity")
	def := bench.DefaultSizes()
	mixedAttempts := fs.Int("mixed-attempts", 0, fmt.Sprintf("order attempts of the mixed scenario (default %d, or -attempts when given)", def.MixedAttempts))
	mixedUsers := fs.Int("mixed-users", 0, fmt.Sprintf("shoppers of the mixed scenario (default %d, or -users when given)", def.MixedUsers))
	mixedStock := fs.Int64("mixed-stock", 0, fmt.Sprintf("units of each hot item of the mixed scenario (default %d, or -stock when given)", def.MixedHotStock))
	capacityAttempts := fs.Int("capacity-attempts", 0, fmt.Sprintf("attempts of the capacity scenario, each from a new user, with a unit for each (default %d, or -attempts when given)", def.CapacityAttempts))
	fs.Int64Var(&z.MixedColdStock, "cold-stock", z.MixedColdStock, "units of each cold item of the mixed scenario")
	fs.IntVar(&z.MixedItems, "items", z.MixedItems, "items of the mixed scenario")
	fs.IntVar(&z.MixedHotItems, "hot-items", z.MixedHotItems, "hot items among them")
	fs.Float64Var(&z.MixedSkew, "skew", z.MixedSkew, "Zipf exponent of the mixed scenario's demand over items")
	fs.Float64Var(&z.Rate, "rate", z.Rate, "attempts per second of the sustained scenario (open loop)")
	fs.DurationVar(&z.Duration, "duration", z.Duration, "how long the sustained scenario sends")
	fs.IntVar(&z.MaxInFlight, "max-inflight", z.MaxInFlight, "open loop: most attempts in flight; more are counted as missed")
	fs.Int64Var(&z.FloodStock, "flood-stock", z.FloodStock, "units of the flood scenario's item")
	fs.IntVar(&z.FloodDemand, "flood-demand", z.FloodDemand, "shoppers per unit in the flood scenario")
	fs.Float64Var(&z.FloodRate, "flood-rate", z.FloodRate, "shoppers arriving per second in the flood scenario")
	fs.Float64Var(&z.FloodK, "flood-k", z.FloodK, "the waiting room's k in the flood scenario's run with it on")
	fs.DurationVar(&z.FloodPatience, "flood-patience", z.FloodPatience, "how long a flood shopper keeps asking before giving up")
	fs.DurationVar(&z.FloodWait, "flood-wait", z.FloodWait, "a queued flood shopper's next try waits at the gateway this long (?wait=, at most 10s); 0: it asks again after retry_after_ms")
	fs.IntVar(&f.buckets, "buckets", 4, "bucket count of the bucket strategy")
	fs.IntVar(&f.retries, "retries", 2, "retries of an order that timed out or met 502/503/504 (same Idempotency-Key)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "timeout of one try")
	fs.DurationVar(&f.settle, "settle-timeout", 2*time.Minute, "how long a run may take to settle after the load")
	fs.BoolVar(&f.baselines, "baselines", true, "measure the baselines (bare hertz, hertz -> kitex, Redis EVALSHA, MySQL hot-row UPDATE)")
	fs.DurationVar(&f.baselineDur, "baseline-duration", 3*time.Second, "how long each baseline runs")
	fs.StringVar(&f.url, "url", "", "bench a running gateway at this http:// URL instead of starting the system (needs -admin-token and -jwt-secret)")
	fs.StringVar(&f.adminToken, "admin-token", "", "with -url: the operators' token (default $SECKILL_ADMIN_TOKEN)")
	fs.StringVar(&f.jwt, "jwt-secret", "", "with -url: the shoppers' HS256 secret (default $SECKILL_JWT_SECRET)")
	fs.StringVar(&f.mysqlDSN, "mysql-dsn", "", "with -url: the deployment's MySQL, for the direct SQL checks and the MySQL baseline")
	fs.StringVar(&f.redisAddr, "redis-addr", "", "with -url: a Redis for the EVALSHA baseline")
	fs.StringVar(&f.backendAddr, "backend-addr", "", "with -url: a kitex backend for the hertz -> kitex baseline (its credential from $SECKILL_BACKEND_RPC_SECRET)")
	fs.BoolVar(&f.embedded, "embedded", false, "start the system on the embedded stand-ins wherever no server is configured, instead of the real services")
	fs.StringVar(&f.out, "out", filepath.Join("bench", "results"), "directory of the results")
	fs.StringVar(&f.name, "name", "latest", "file name of the results: NAME.json, NAME.md, NAME-*.svg")
	fs.BoolVar(&f.keepDB, "keep-db", false, "keep the bench's database afterwards")
	fs.BoolVar(&f.keepLimits, "keep-limits", false, "leave the gateway's rate limits as they are")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress line")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of each run (load and settle) to PREFIX-<scenario>-<strategy>.pprof; the system is in this process unless -url")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: seckill bench [flags]\n\nRuns the scenarios under each strategy and writes JSON, Markdown and SVG to -out.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	z.MixedAttempts = pick(*mixedAttempts, set["attempts"], z.HotAttempts, def.MixedAttempts)
	z.MixedUsers = pick(*mixedUsers, set["users"], z.HotUsers, def.MixedUsers)
	z.MixedHotStock = pick(*mixedStock, set["stock"], z.HotStock, def.MixedHotStock)
	z.CapacityAttempts = pick(*capacityAttempts, set["attempts"], z.HotAttempts, def.CapacityAttempts)
	z.MixedConcurrency = z.HotConcurrency
	z.CapacityConcurrency = z.HotConcurrency
	return f, nil
}

// pick is a flag's value when set, else the shared flag's when that was set, else
// the default.
func pick[T int | int64](explicit T, fromShared bool, shared, def T) T {
	switch {
	case explicit > 0:
		return explicit
	case fromShared:
		return shared
	}
	return def
}

func list(s string, all []string) []string {
	if s == "" || s == "all" {
		return nil
	}
	out := config.SplitList(s)
	if len(out) == 1 && out[0] == "all" {
		return all
	}
	return out
}

func randomSecret() string { return randhex.String(24) }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app.FrameworkLogs(app.NewLogger(config.LogConfig{Level: "warn"}, stderr), loadLogLevel("warn"))
	f, err := parseBenchFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "seckill bench:", err)
		return 2
	}
	opts := bench.Options{
		Scenarios: list(f.scenarios, bench.Scenarios), Strategies: list(f.strategies, bench.Strategies), Sizes: f.sizes,
		Buckets: f.buckets, Tries: f.retries + 1, Timeout: f.timeout, SettleTimeout: f.settle,
		Baselines: f.baselines, BaselineDuration: f.baselineDur, KeepLimits: f.keepLimits, TTY: isTerminal(stderr), CPUProfile: f.cpuProfile,
	}
	if !f.quiet {
		opts.Progress = stderr
	}
	started := time.Now()
	var target *bench.Target
	var cleanup func(activityIDs []int64)
	if f.url != "" {
		target, err = urlTarget(f)
	} else {
		target, cleanup, opts.Notes, err = startBenchStack(ctx, f, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "seckill bench:", err)
		return 1
	}
	rep, err := bench.Run(ctx, opts, target)
	if cleanup != nil {
		var ids []int64
		if rep != nil {
			ids = rep.ActivityIDs
		}
		cleanup(ids)
	}
	if rep == nil {
		fmt.Fprintln(stderr, "seckill bench:", err)
		return 1
	}
	files, werr := bench.WriteFiles(rep, f.out, f.name)
	fmt.Fprint(stdout, bench.TablesMarkdown(rep))
	if werr != nil {
		fmt.Fprintln(stderr, "seckill bench: write the results:", werr)
		return 1
	}
	fmt.Fprintf(stdout, "Results: %s, %s; charts: %s, %s, %s (wall time %.0f s)\n", files.JSON, files.Markdown, files.Throughput, files.Latency, files.Shed, time.Since(started).Seconds())
	if err != nil {
		fmt.Fprintln(stderr, "seckill bench:", err)
		return 1
	}
	if !rep.OK {
		fmt.Fprintln(stderr, "\nseckill bench: INVARIANTS BROKEN:")
		for _, fl := range rep.Failures {
			fmt.Fprintln(stderr, "  -", fl)
		}
		return 1
	}
	return 0
}

// urlTarget benches a running deployment.
func urlTarget(f *benchFlags) (*bench.Target, error) {
	t := &bench.Target{URL: f.url, Explicit: true, AdminToken: f.adminToken, JWTSecret: f.jwt, MySQLDSN: f.mysqlDSN, BackendAddr: f.backendAddr,
		RPCSecrets: rpcauth.Secrets{Service: os.Getenv("SECKILL_BACKEND_RPC_SECRET")}}
	if t.AdminToken == "" {
		t.AdminToken = os.Getenv("SECKILL_ADMIN_TOKEN")
	}
	if t.JWTSecret == "" {
		t.JWTSecret = os.Getenv("SECKILL_JWT_SECRET")
	}
	if t.AdminToken == "" || t.JWTSecret == "" {
		return nil, errors.New("-url needs -admin-token and -jwt-secret (or SECKILL_ADMIN_TOKEN and SECKILL_JWT_SECRET)")
	}
	if f.redisAddr != "" {
		t.RedisAddrs = config.SplitList(f.redisAddr)
	}
	if u := strings.TrimPrefix(f.url, "http://"); strings.HasPrefix(u, "127.") || strings.HasPrefix(u, "localhost") || strings.HasPrefix(u, "[::1]") {
		t.Services, _ = bench.ResolveServices(bench.ServicesIn(stateDir()))
	}
	return t, nil
}

func stateDir() string {
	if d := os.Getenv("SECKILL_STATE_DIR"); d != "" {
		return d
	}
	return "/tmp/seckill-services"
}

// startBenchStack starts gateway, backend and worker in this process on the real
// services (starting them with deploy/services.sh when none is configured), on a
// database of the bench's own.
func startBenchStack(ctx context.Context, f *benchFlags, stderr io.Writer) (*bench.Target, func(activityIDs []int64), []string, error) {
	cfg, err := config.Load(f.config, os.LookupEnv)
	if err != nil {
		return nil, nil, nil, err
	}
	var notes []string
	say := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		notes = append(notes, msg)
		if !f.quiet {
			fmt.Fprintln(stderr, "bench:", msg)
		}
	}
	missing := cfg.MySQL.DSN == "" || len(cfg.Redis.Addrs) == 0 || len(cfg.RocketMQ.NameServers) == 0
	if missing && !f.embedded {
		script := filepath.Join("deploy", "services.sh")
		if _, err := os.Stat(script); err != nil {
			return nil, nil, nil, fmt.Errorf("no services configured (SECKILL_MYSQL_DSN, SECKILL_REDIS_ADDR, SECKILL_ROCKETMQ_NAMESRV) and no %s here to start them; run from the repository, set them, or use -embedded", script)
		}
		fmt.Fprintf(stderr, "bench: no services configured; starting them with %s up\n", script)
		env, err := bench.ServicesUp(ctx, script, stderr)
		if err != nil {
			return nil, nil, nil, err
		}
		if cfg.MySQL.DSN == "" {
			cfg.MySQL.DSN = env["SECKILL_MYSQL_DSN"]
		}
		if len(cfg.Redis.Addrs) == 0 {
			cfg.Redis.Addrs = config.SplitList(env["SECKILL_REDIS_ADDR"])
		}
		if len(cfg.RocketMQ.NameServers) == 0 {
			cfg.RocketMQ.NameServers = config.SplitList(env["SECKILL_ROCKETMQ_NAMESRV"])
		}
		say("started the services with %s up", script)
	}
	if cfg.Gateway.JWTSecret == "" || cfg.Gateway.AdminToken == "" {
		if cfg.Gateway.JWTSecret == "" {
			cfg.Gateway.JWTSecret = randomSecret()
		}
		if cfg.Gateway.AdminToken == "" {
			cfg.Gateway.AdminToken = randomSecret()
		}
		say("no JWT secret or admin token configured: random ones made for this run (not shown)")
	}
	if cfg.Gateway.MaxConnectionsPerIP == 0 {
		// Every shopper of the load comes from this host's one address.
		cfg.Gateway.MaxConnectionsPerIP = -1
		say("connections per address not capped (gateway.max_connections_per_ip -1): the load comes from one address")
	}
	id := bench.RandomID()
	var cleanups []func([]int64) // run last to first
	cleanup := func(ids []int64) {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i](ids)
		}
	}
	if cfg.MySQL.DSN != "" {
		name := "seckill_bench_" + id
		dsn, drop, err := bench.CreateDatabase(ctx, cfg.MySQL.DSN, name)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.MySQL.DSN = dsn
		if f.keepDB {
			say("database %s is kept (-keep-db)", name)
		} else {
			cleanups = append(cleanups, func([]int64) {
				if err := drop(); err != nil {
					fmt.Fprintln(stderr, "bench:", err)
				}
			})
			say("ran on a database of its own, %s, dropped afterwards", name)
		}
	}
	if len(cfg.RocketMQ.NameServers) > 0 {
		cfg.RocketMQ.Group, cfg.RocketMQ.Tag = "seckill_bench_"+id, "bench"+id
	}
	cfg.Fleet = "bench" + id // apart from a fleet already running on the same Redis
	cfg.AnyPorts()
	if cfg.Log.Level != "debug" {
		cfg.Log.Level = "warn"
	}
	log := app.NewLogger(cfg.Log, stderr)
	app.FrameworkLogs(log, loadLogLevel(cfg.Log.Level))
	s, err := app.Start(ctx, cfg, app.Options{Embedded: f.embedded, Log: log})
	if err != nil {
		cleanup(nil)
		return nil, nil, nil, err
	}
	t := &bench.Target{URL: s.URL(), AdminToken: cfg.Gateway.AdminToken, JWTSecret: cfg.Gateway.JWTSecret,
		MySQLDSN: s.Config.MySQL.DSN, RedisAddrs: s.Config.Redis.Addrs, RedisPassword: s.Config.Redis.Password,
		RedisCluster: s.Config.Redis.Cluster || len(s.Config.Redis.Addrs) > 1, BackendAddr: s.Backend.Addr().String(), RPCSecrets: s.Config.Backend.Secrets(),
		InProcess: true, StandIns: s.Embedded}
	if len(s.Embedded) < 3 {
		var skipped []string
		t.Services, skipped = bench.ResolveServices(bench.ServicesIn(stateDir()))
		notes = append(notes, skipped...)
	}
	realRedis := !s.Uses("redis")
	// Afterwards: stop the system, then delete its Redis keys, then drop the database.
	cleanups = append(cleanups, func(ids []int64) {
		if !realRedis || f.keepDB {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := bench.DeleteRedisKeys(ctx, t.RedisAddrs, t.RedisPassword, t.RedisCluster, ids); err != nil {
			fmt.Fprintln(stderr, "bench: delete the bench's Redis keys:", err)
		}
	})
	cleanups = append(cleanups, func([]int64) {
		if err := s.Close(); err != nil {
			fmt.Fprintln(stderr, "bench: stop the system:", err)
		}
	})
	return t, cleanup, notes, nil
}

// loadLogLevel is the frameworks' log level under load: errors only unless debugging,
// since under overload hertz's and kitex's warnings (a retried RPC, a slow dial) come
// by the thousand and bury the progress line; the report counts what happened.
func loadLogLevel(level string) string {
	if level == "debug" {
		return level
	}
	return "error"
}
