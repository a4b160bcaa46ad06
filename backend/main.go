// Package backend runs the backend service: a kitex server in front of the sale engine
// (backend/sale), with MySQL, Redis and, for queued strategies, RocketMQ.
package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/cloudwego/kitex/pkg/rpcinfo"
	"github.com/cloudwego/kitex/pkg/transmeta"
	"github.com/cloudwego/kitex/server"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/rocketmq"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// MySQLConfig says where MySQL is.
type MySQLConfig struct {
	DSN      string `yaml:"dsn"`       // go-sql-driver syntax: user:pass@tcp(host:port)/db
	MaxConns int    `yaml:"max_conns"` // pool size
}

// RedisConfig says where Redis is.
type RedisConfig struct {
	Addrs    []string `yaml:"addrs"`    // one node, or the seed nodes of a cluster
	Password string   `yaml:"password"` // never logged
	Cluster  bool     `yaml:"cluster"`  // a cluster even with one seed address
}

// RocketMQConfig says where RocketMQ is.
type RocketMQConfig struct {
	NameServers []string `yaml:"name_servers"`
	Topic       string   `yaml:"topic"`
	Group       string   `yaml:"group"` // consumer group of the workers
	Tag         string   `yaml:"tag"`   // tag on every message; workers take only it ("" = all)
}

// Config configures the backend.
type Config struct {
	Listen            string         `yaml:"listen"` // kitex address; port 0 picks one
	MySQL             MySQLConfig    `yaml:"mysql"`
	Redis             RedisConfig    `yaml:"redis"`
	RocketMQ          RocketMQConfig `yaml:"rocketmq"`
	TicketTTL         time.Duration  `yaml:"ticket_ttl"`         // how long ticket results are kept
	ReconcileInterval time.Duration  `yaml:"reconcile_interval"` // 0: 10s; negative: off
	UnpaidTimeout     time.Duration  `yaml:"unpaid_timeout"`     // 0: unpaid orders never expire
	StaleTicket       time.Duration  `yaml:"stale_ticket"`       // in flight this long: the reconciler ends it
}

// Deps are connections a caller may hand in instead of addresses (the embedded mode
// and tests); what is nil is opened from Config.
type Deps struct {
	DB        *sql.DB
	Redis     goredis.UniversalClient
	Publisher domain.Publisher
	Registry  prometheus.Registerer
	Log       *slog.Logger
}

// Main is a running backend.
type Main struct {
	cfg     Config
	deps    Deps
	Service *sale.Service
	Store   *mysql.Store
	Stock   *redis.Stock
	srv     server.Server
	addr    net.Addr
	closers []func() error
	cancel  context.CancelFunc
	done    chan error
}

// Open connects to what cfg names (or takes deps) and builds the service; Run serves.
func Open(ctx context.Context, cfg Config, deps Deps) (_ *Main, err error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	m := &Main{cfg: cfg, deps: deps}
	defer func() {
		if err != nil {
			m.closeDeps()
		}
	}()
	if deps.DB == nil {
		if deps.DB, err = mysql.Open(ctx, cfg.MySQL.DSN, cfg.MySQL.MaxConns); err != nil {
			return nil, err
		}
		m.closers = append(m.closers, deps.DB.Close)
	}
	if deps.Redis == nil {
		if deps.Redis, err = redis.Open(ctx, cfg.Redis.Addrs, cfg.Redis.Password, cfg.Redis.Cluster); err != nil {
			return nil, err
		}
		m.closers = append(m.closers, deps.Redis.Close)
	}
	if deps.Publisher == nil && len(cfg.RocketMQ.NameServers) > 0 {
		p, err := rocketmq.NewProducer(rocketmq.ProducerConfig{NameServers: cfg.RocketMQ.NameServers, Topic: cfg.RocketMQ.Topic, Tag: cfg.RocketMQ.Tag})
		if err != nil {
			return nil, err
		}
		deps.Publisher = p
		m.closers = append(m.closers, p.Close)
	}
	m.deps = deps
	m.Store = mysql.NewStore(deps.DB)
	m.Stock = redis.NewStock(deps.Redis, cfg.TicketTTL)
	if err := m.Stock.Load(ctx); err != nil {
		return nil, err
	}
	m.Service = sale.New(sale.Deps{Catalog: m.Store, Orders: m.Store, Ledger: m.Stock, Cache: redis.NewCache(deps.Redis),
		Publisher: deps.Publisher, Metrics: sale.NewMetrics(deps.Registry), Log: deps.Log}, sale.Config{})
	return m, nil
}

// Start listens and serves in the background; Addr is valid once it returns.
func (m *Main) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", m.cfg.Listen)
	if err != nil {
		return fmt.Errorf("backend listen on %s: %w", m.cfg.Listen, err)
	}
	m.addr = ln.Addr()
	m.srv = seckill.NewServer(&handler{svc: m.Service},
		server.WithListener(ln),
		server.WithServerBasicInfo(&rpcinfo.EndpointBasicInfo{ServiceName: "seckill.backend"}),
		server.WithMetaHandler(transmeta.ServerTTHeaderHandler),
		server.WithExitWaitTime(5*time.Second),
	)
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	if m.cfg.ReconcileInterval >= 0 {
		go m.Service.Run(bg, m.cfg.ReconcileInterval, sale.ReconcileConfig{StaleTicket: m.cfg.StaleTicket}, m.cfg.UnpaidTimeout)
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.srv.Run() }()
	m.deps.Log.Info("backend serving", "addr", m.addr.String())
	return nil
}

// Addr is where the backend listens.
func (m *Main) Addr() net.Addr { return m.addr }

// Run serves until ctx ends, then shuts down gracefully.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return m.Close()
	case err := <-m.done:
		m.Close()
		return err
	}
}

// Close stops serving (requests in flight finish) and closes what Open opened.
func (m *Main) Close() error {
	var errs []error
	if m.cancel != nil {
		m.cancel()
	}
	if m.srv != nil {
		if err := m.srv.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop kitex server: %w", err))
		}
		m.srv = nil
	}
	errs = append(errs, m.closeDeps())
	return errors.Join(errs...)
}

func (m *Main) closeDeps() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	m.closers = nil
	return errors.Join(errs...)
}
