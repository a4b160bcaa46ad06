package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/flashsale/backend"
	"github.com/seckill/flashsale/backend/embedded"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/config"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/worker"
)

// Stack is gateway, backend and worker in one process: the all-in-one mode. Where
// the configuration names no server, an in-process stand-in takes its place
// (go-mysql-server, miniredis, an in-process queue).
type Stack struct {
	Config   config.Config // as run: the stand-ins' addresses filled in
	Backend  *backend.Main
	Worker   *worker.Main
	Gateway  *gateway.Main
	Embedded []string // which parts are stand-ins
	closers  []func() error
}

// URL is the gateway's base URL.
func (s *Stack) URL() string { return "http://" + s.Gateway.Addr().String() }

// StartStack starts the all-in-one mode.
func StartStack(ctx context.Context, cfg config.Config, reg *prometheus.Registry, log *slog.Logger) (_ *Stack, err error) {
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	var emb *embedded.Stack
	needMySQL, needRedis, needQueue := cfg.MySQL.DSN == "", len(cfg.Redis.Addrs) == 0, len(cfg.RocketMQ.NameServers) == 0
	if needMySQL || needRedis || needQueue {
		emb, err = embedded.StartWith(ctx, embedded.Config{Queue: inmem.Config{Goroutines: cfg.Worker.Goroutines,
			BatchSize: cfg.Worker.BatchSize, MaxAttempts: cfg.Worker.MaxAttempts}})
		if err != nil {
			return nil, fmt.Errorf("start the embedded stand-ins: %w", err)
		}
		s.closers = append(s.closers, emb.Close)
	}
	if needMySQL {
		cfg.MySQL.DSN = emb.MySQLDSN
		s.Embedded = append(s.Embedded, "mysql (go-mysql-server)")
	}
	if needRedis {
		cfg.Redis.Addrs = []string{emb.RedisAddr}
		s.Embedded = append(s.Embedded, "redis (miniredis)")
	}
	cfg.Backend.MySQL, cfg.Backend.Redis, cfg.Backend.RocketMQ = cfg.MySQL, cfg.Redis, cfg.RocketMQ
	bdeps := backend.Deps{Registry: reg, Log: log}
	wdeps := worker.Deps{Registry: reg, Log: log}
	if needQueue {
		bdeps.Publisher = emb.Queue
		wdeps.Subscribe = emb.Queue.Subscribe
		s.Embedded = append(s.Embedded, "queue (in-process)")
	}
	if s.Backend, err = backend.Open(ctx, cfg.Backend, bdeps); err != nil {
		return nil, err
	}
	if err = s.Backend.Start(ctx); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Backend.Close)
	if s.Worker, err = worker.Open(ctx, workerConfig(cfg), wdeps); err != nil {
		return nil, err
	}
	if err = s.Worker.Start(); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Worker.Close)
	cfg.Gateway.BackendAddrs = []string{s.Backend.Addr().String()}
	if len(cfg.Gateway.CountersRedis) == 0 && !cfg.Redis.Cluster {
		cfg.Gateway.CountersRedis = cfg.Redis.Addrs
	}
	if s.Gateway, err = gateway.Open(ctx, cfg.Gateway, gateway.Deps{Registry: reg, Log: log}); err != nil {
		return nil, err
	}
	if err = s.Gateway.Start(ctx); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Gateway.Close)
	s.Config = cfg
	return s, nil
}

// Close stops the gateway first (it drains), then the worker, the backend and the
// stand-ins.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}
