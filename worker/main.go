package worker

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend"
	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/rocketmq"
	"github.com/seckill/flashsale/backend/sale"
)

// MainConfig configures a worker process.
type MainConfig struct {
	MySQL       backend.MySQLConfig    `yaml:"mysql"`
	Redis       backend.RedisConfig    `yaml:"redis"`
	RocketMQ    backend.RocketMQConfig `yaml:"rocketmq"`
	Goroutines  int                    `yaml:"goroutines"`   // batches written at once
	BatchSize   int                    `yaml:"batch_size"`   // most orders of one item and bucket per transaction
	BatchWindow time.Duration          `yaml:"batch_window"` // how long a batch waits to fill
	MaxAttempts int                    `yaml:"max_attempts"` // deliveries before a message is settled for good
	TicketTTL   time.Duration          `yaml:"ticket_ttl"`
}

// Subscriber starts delivering messages to h; the returned function stops it.
type Subscriber func(h domain.Handler) (stop func() error, err error)

// Deps are connections a caller may hand in (the embedded mode and tests).
type Deps struct {
	DB        *sql.DB
	Redis     goredis.UniversalClient
	Subscribe Subscriber // nil: RocketMQ from the config
	Registry  prometheus.Registerer
	Log       *slog.Logger
}

// Main is a running worker.
type Main struct {
	cfg     MainConfig
	deps    Deps
	Worker  *Worker
	closers []func() error
}

// Open connects and builds the worker; Start begins consuming.
func Open(ctx context.Context, cfg MainConfig, deps Deps) (_ *Main, err error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	m := &Main{cfg: cfg}
	defer func() {
		if err != nil {
			m.Close()
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
	if deps.Subscribe == nil {
		deps.Subscribe = func(h domain.Handler) (func() error, error) {
			c, err := rocketmq.NewConsumer(rocketmq.ConsumerConfig{NameServers: cfg.RocketMQ.NameServers, Topic: cfg.RocketMQ.Topic,
				Group: cfg.RocketMQ.Group, Tag: cfg.RocketMQ.Tag, Goroutines: cfg.Goroutines, BatchSize: cfg.BatchSize, MaxAttempts: cfg.MaxAttempts}, h)
			if err != nil {
				return nil, err
			}
			return c.Close, nil
		}
	}
	m.deps = deps
	store := mysql.NewStore(deps.DB)
	stock := redis.NewStock(deps.Redis, cfg.TicketTTL)
	if err := stock.Load(ctx); err != nil {
		return nil, err
	}
	catalog := sale.NewCatalog(store, redis.NewCache(deps.Redis), sale.CatalogConfig{}, deps.Log)
	reg := deps.Registry
	m.Worker = New(store, stock, catalog, Config{BatchSize: cfg.BatchSize, BatchWindow: cfg.BatchWindow}, NewMetrics(reg), deps.Log)
	if reg != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "seckill_worker_db_retries_total",
			Help: "Optimistic stock updates that lost a race and were tried again."}, func() float64 { return float64(store.Retries()) }))
	}
	return m, nil
}

// Start begins consuming.
func (m *Main) Start() error {
	stop, err := m.deps.Subscribe(m.Worker)
	if err != nil {
		return err
	}
	// Consumption stops before the connections close, so batches in hand finish.
	m.closers = append(m.closers, stop)
	m.deps.Log.Info("worker consuming", "topic", m.cfg.RocketMQ.Topic, "group", m.cfg.RocketMQ.Group)
	return nil
}

// Run consumes until ctx ends.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return m.Close()
}

// Close stops consuming (batches in hand finish; unacknowledged ones are redelivered
// to another worker) and closes connections.
func (m *Main) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	m.closers = nil
	return errors.Join(errs...)
}
