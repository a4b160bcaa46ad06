// Package app is the composition root: it builds the system from the configuration,
// the adapters on the real services (or the embedded stand-ins where none is
// configured), the backend, the worker and the gateway, for every command
// (cmd/seckill) and for the end-to-end and fault tests. Nothing else wires parts
// together.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend"
	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/embedded"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/rocketmq"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/config"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/internal/secret"
	"github.com/seckill/flashsale/worker"
)

// Role is one part of the system a process runs.
type Role string

const (
	Gateway Role = "gateway"
	Backend Role = "backend"
	Worker  Role = "worker"
)

// All is every role: the all-in-one mode.
var All = []Role{Backend, Worker, Gateway}

// Options say what to run and with what.
type Options struct {
	// Roles are the parts to run; empty: All.
	Roles []Role
	// Embedded lets the stand-ins take the place of every server the configuration
	// does not name (the all-in-one mode, the demo). Without it a missing server is an
	// error.
	Embedded bool
	// Registry receives every part's metrics; nil: a new one.
	Registry *prometheus.Registry
	// Log receives every part's logs; nil: slog.Default.
	Log *slog.Logger
	// ServeOps serves /metrics and /healthz of the backend and the worker on their ops
	// addresses (the gateway serves its own). Commands set it; tests need not.
	ServeOps bool
}

// System is a running set of parts. Fields of roles not run are nil.
type System struct {
	Config   config.Config // as run: the stand-ins' addresses and the listeners' picked ports filled in
	Backend  *backend.Server
	Worker   *worker.Worker
	Gateway  *gateway.Main
	Registry *prometheus.Registry
	Embedded []string // which servers are stand-ins

	log     *slog.Logger
	queue   *inmem.Queue // the stand-in of RocketMQ, when it runs
	closers []func() error
}

// Start builds and starts the roles of opts on cfg. Close stops them.
func Start(ctx context.Context, cfg config.Config, opts Options) (_ *System, err error) {
	if len(opts.Roles) == 0 {
		opts.Roles = All
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	s := &System{Registry: opts.Registry, log: opts.Log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	runs := func(r Role) bool { return slices.Contains(opts.Roles, r) }
	if runs(Backend) && runs(Gateway) && cfg.Backend.RPCSecret == "" && cfg.Backend.RPCOperatorSecret == "" {
		// Gateway and backend in one process (seckill all, the demo, the tests): the
		// RPC credentials need be known to nobody else, so fresh random ones do; a
		// gateway elsewhere cannot call this backend.
		cfg.Backend.RPCSecret, cfg.Backend.RPCOperatorSecret = secret.Generate(), secret.Generate()
		opts.Log.Info("no backend.rpc_secret configured: this process's gateway and backend use random RPC credentials of their own")
	}
	needs := needed(cfg, opts.Roles)
	if err := s.standIns(ctx, &cfg, needs, opts); err != nil {
		return nil, err
	}
	var res *resources
	if needs.mysql || needs.redis {
		if res, err = s.open(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if runs(Backend) {
		if err := s.startBackend(ctx, &cfg, res, opts); err != nil {
			return nil, err
		}
	}
	if runs(Worker) {
		if err := s.startWorker(ctx, cfg, res, opts); err != nil {
			return nil, err
		}
	}
	if runs(Gateway) {
		if err := s.startGateway(ctx, &cfg, res, opts); err != nil {
			return nil, err
		}
	}
	s.Config = cfg
	return s, nil
}

// URL is the gateway's base URL.
func (s *System) URL() string { return "http://" + s.Gateway.Addr().String() }

// Close stops the parts in the reverse order of their start (the gateway drains
// first, then the worker finishes its batches, then the backend), then closes the
// connections and the stand-ins.
func (s *System) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

func (s *System) onClose(f func() error) { s.closers = append(s.closers, f) }

// needs says which servers the roles use.
type needs struct{ mysql, redis, queue bool }

func needed(cfg config.Config, roles []Role) needs {
	var n needs
	for _, r := range roles {
		switch r {
		case Backend:
			n.mysql, n.redis, n.queue = true, true, true
		case Worker:
			n.mysql, n.redis, n.queue = true, true, true
		case Gateway:
			n.redis = true // the plugins' shared counters
		}
	}
	return n
}

// standIns starts the embedded servers in place of those cfg does not name, when
// allowed; otherwise a missing server is an error naming its variable.
func (s *System) standIns(ctx context.Context, cfg *config.Config, n needs, opts Options) error {
	var missing []string
	if n.mysql && cfg.MySQL.DSN == "" {
		missing = append(missing, "SECKILL_MYSQL_DSN")
	}
	if n.redis && len(cfg.Redis.Addrs) == 0 {
		missing = append(missing, "SECKILL_REDIS_ADDR")
	}
	if n.queue && len(cfg.RocketMQ.NameServers) == 0 {
		missing = append(missing, "SECKILL_ROCKETMQ_NAMESRV")
	}
	if len(missing) == 0 {
		return nil
	}
	if !opts.Embedded {
		return fmt.Errorf("set %s (the embedded stand-ins run only in the all-in-one mode: seckill all)", strings.Join(missing, ", "))
	}
	emb, err := embedded.StartWith(ctx, embedded.Config{Queue: inmem.Config{Goroutines: cfg.Worker.Goroutines,
		BatchSize: cfg.Worker.BatchSize, MaxAttempts: cfg.Worker.MaxAttempts}})
	if err != nil {
		return fmt.Errorf("start the embedded stand-ins: %w", err)
	}
	s.onClose(emb.Close)
	if n.mysql && cfg.MySQL.DSN == "" {
		cfg.MySQL.DSN = emb.MySQLDSN
		s.Embedded = append(s.Embedded, "mysql (go-mysql-server)")
	}
	if n.redis && len(cfg.Redis.Addrs) == 0 {
		cfg.Redis = config.RedisConfig{Addrs: []string{emb.RedisAddr}, Password: emb.RedisPassword}
		s.Embedded = append(s.Embedded, "redis (miniredis)")
	}
	if n.queue && len(cfg.RocketMQ.NameServers) == 0 {
		s.queue = emb.Queue
		s.Embedded = append(s.Embedded, "queue (in-process)")
	}
	return nil
}

// Uses reports whether a server is a stand-in ("mysql", "redis", "queue").
func (s *System) Uses(standIn string) bool {
	return slices.ContainsFunc(s.Embedded, func(e string) bool { return strings.HasPrefix(e, standIn) })
}

// resources are the connections the roles of one process share.
type resources struct {
	db    *sql.DB
	rdb   goredis.UniversalClient
	store *mysql.Store
	stock *redis.Stock
}

func (s *System) open(ctx context.Context, cfg config.Config) (*resources, error) {
	r := &resources{}
	var err error
	if cfg.MySQL.DSN != "" {
		if r.db, err = mysql.Open(ctx, cfg.MySQL.DSN, cfg.MySQL.MaxConns); err != nil {
			return nil, err
		}
		s.onClose(r.db.Close)
		r.store = mysql.NewStore(r.db)
	}
	if r.rdb, err = redis.Open(ctx, cfg.Redis.Addrs, cfg.Redis.Password, cfg.Redis.Cluster); err != nil {
		return nil, err
	}
	s.onClose(r.rdb.Close)
	r.stock = redis.NewStock(r.rdb, cfg.Backend.TicketTTL)
	if err := r.stock.Load(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *System) startBackend(ctx context.Context, cfg *config.Config, res *resources, opts Options) error {
	var pub domain.Publisher
	if s.queue != nil {
		pub = s.queue
	} else {
		p, err := rocketmq.NewProducer(rocketmq.ProducerConfig{NameServers: cfg.RocketMQ.NameServers, Topic: cfg.RocketMQ.Topic, Tag: cfg.RocketMQ.Tag})
		if err != nil {
			return err
		}
		s.onClose(p.Close)
		pub = p
	}
	events := redis.NewEvents(res.rdb, cfg.Fleet)
	ticketSecret, previousTicketSecret := cfg.Backend.TicketSecrets()
	svc := sale.New(sale.Deps{Catalog: res.store, Orders: res.store, Ledger: res.stock, Cache: redis.NewCache(res.rdb),
		Publisher: pub, Tallies: redis.NewTallies(events), Changes: events, Leases: redis.NewLeases(res.rdb), Metrics: sale.NewMetrics(opts.Registry), Log: opts.Log},
		sale.Config{BatchSize: cfg.Backend.BatchSize, BatchWait: cfg.Backend.BatchWait, OrdersSettle: cfg.Backend.OrdersSettle,
			// Every backend of the fleet holds the ticket secret: a ticket one admitted
			// reads the same at another after Redis lost it.
			TicketSecret: ticketSecret, PreviousTicketSecret: previousTicketSecret, StaleTicket: cfg.Backend.StaleTicket, StaleSync: cfg.Backend.StaleSyncTicket})
	ctl := control.NewService(res.store, events, opts.Log)
	bcfg := cfg.Backend
	bcfg.Lease = "duties:" + cfg.Fleet
	s.Backend = backend.NewServer(bcfg, svc, ctl, opts.Log, opts.Registry)
	if err := s.Backend.Start(ctx); err != nil {
		return err
	}
	s.onClose(s.Backend.Close)
	cfg.Backend.Listen = s.Backend.Addr().String()
	if opts.ServeOps {
		return s.serveOps(ctx, cfg.Backend.OpsListen, "backend")
	}
	return nil
}

func (s *System) startWorker(ctx context.Context, cfg config.Config, res *resources, opts Options) error {
	catalog := sale.NewCatalog(res.store, redis.NewCache(res.rdb), sale.CatalogConfig{}, opts.Log)
	// The worker's copies of activities are dropped when a backend announces a change,
	// as the backends' are: a raised per-user limit must not refuse orders the ledger
	// admitted under it (the worker also rechecks before such a refusal).
	if stop, err := redis.NewEvents(res.rdb, cfg.Fleet).WatchActivities(context.WithoutCancel(ctx), catalog.Forget); err != nil {
		opts.Log.Warn("worker: not following the fleet's activity changes", "err", err)
	} else {
		s.onClose(stop)
	}
	s.Worker = worker.New(res.store, res.stock, catalog, worker.Config{BatchSize: cfg.Worker.BatchSize, BatchWindow: cfg.Worker.BatchWindow},
		worker.NewMetrics(opts.Registry), opts.Log)
	opts.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "seckill_worker_db_retries_total",
		Help: "Optimistic stock updates that lost a race and were tried again."}, func() float64 { return float64(res.store.Retries()) }))
	if s.queue != nil {
		stop, err := s.queue.Subscribe(s.Worker)
		if err != nil {
			return err
		}
		s.onClose(stop)
	} else {
		c, err := rocketmq.NewConsumer(rocketmq.ConsumerConfig{NameServers: cfg.RocketMQ.NameServers, Topic: cfg.RocketMQ.Topic,
			Group: cfg.RocketMQ.Group, Tag: cfg.RocketMQ.Tag, Goroutines: cfg.Worker.Goroutines, BatchSize: cfg.Worker.BatchSize,
			MaxAttempts: cfg.Worker.MaxAttempts}, s.Worker)
		if err != nil {
			return err
		}
		// Consumption stops before the connections close, so batches in hand finish.
		s.onClose(c.Close)
	}
	opts.Log.Info("worker consuming", "topic", cfg.RocketMQ.Topic, "group", cfg.RocketMQ.Group)
	if opts.ServeOps {
		return s.serveOps(ctx, cfg.Worker.OpsListen, "worker")
	}
	return nil
}

func (s *System) startGateway(ctx context.Context, cfg *config.Config, res *resources, opts Options) error {
	if len(cfg.Gateway.BackendAddrs) == 0 {
		cfg.Gateway.BackendAddrs = []string{cfg.Backend.Listen}
	}
	line := redis.NewLine(res.rdb)
	if err := line.Load(ctx); err != nil {
		return err
	}
	cfg.Gateway.RPCSecrets = cfg.Backend.Secrets()
	g, err := gateway.Open(ctx, cfg.Gateway, gateway.Deps{Registry: opts.Registry, Log: opts.Log, Line: line,
		Counters: redis.NewPluginCounters(res.rdb, "sk:wasm:"+cfg.Fleet+":"), Bus: redis.NewEvents(res.rdb, cfg.Fleet), SharedLimits: redis.NewSharedLimiter(res.rdb, cfg.Fleet),
		Keys: res.stock, Tallies: redis.NewTallies(redis.NewEvents(res.rdb, cfg.Fleet))})
	if err != nil {
		return err
	}
	if err := g.Start(ctx); err != nil {
		g.Close()
		return err
	}
	s.Gateway = g
	s.onClose(g.Close)
	cfg.Gateway.Listen = g.Addr().String()
	return nil
}
