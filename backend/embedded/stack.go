package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/backend/mysql"
)

// Config tunes a Stack.
type Config struct {
	Queue inmem.Config
}

// Stack is the set of stand-ins one embedded process runs: MySQL with the schema
// migrated, Redis and the queue.
type Stack struct {
	MySQLDSN      string // go-sql-driver/mysql syntax, for mysql.Open
	RedisAddr     string // for redis.Open
	RedisPassword string
	Queue         *inmem.Queue

	stops []func()
}

// Start starts the stand-ins with default settings; see StartWith.
func Start(ctx context.Context) (*Stack, error) { return StartWith(ctx, Config{}) }

// StartWith starts MySQL and applies the migrations, starts Redis and creates the
// queue. Close stops them.
func StartWith(ctx context.Context, cfg Config) (_ *Stack, err error) {
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	dsn, stop, err := StartMySQL(ctx)
	if err != nil {
		return nil, err
	}
	s.MySQLDSN, s.stops = dsn, append(s.stops, stop)
	if err := migrate(ctx, dsn); err != nil {
		return nil, err
	}
	addr, password, stop, err := StartRedis()
	if err != nil {
		return nil, err
	}
	s.RedisAddr, s.RedisPassword, s.stops = addr, password, append(s.stops, stop)
	s.Queue = inmem.New(cfg.Queue)
	return s, nil
}

func migrate(ctx context.Context, dsn string) error {
	db, err := mysql.Open(ctx, dsn, 1)
	if err != nil {
		return fmt.Errorf("embedded mysql: %w", err)
	}
	_, err = mysql.Migrate(ctx, db)
	return errors.Join(err, db.Close())
}

// Close closes the queue (stopping its subscriptions) and stops Redis and MySQL. Close
// the pools and clients on them first.
func (s *Stack) Close() error {
	var err error
	if s.Queue != nil {
		err = s.Queue.Close()
	}
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
	return err
}
