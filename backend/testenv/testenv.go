// Package testenv gives tests the real services: a fresh MySQL database with the
// schema applied, a Redis client, RocketMQ addresses. Addresses come from the
// environment (deploy/services.sh env prints them) and default to what
// deploy/services.sh up starts. A service that does not answer fails the test with
// what to run: tests never skip because a server is missing.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/internal/randhex"
)

const hint = "start the services with `deploy/services.sh up` (make test does it)"

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// MySQLDSN is the server's DSN from SECKILL_MYSQL_DSN (default: the services script's).
func MySQLDSN() string {
	return env("SECKILL_MYSQL_DSN", "seckill:seckill@tcp(127.0.0.1:3306)/seckill?parseTime=true")
}

// RedisAddr is the single Redis node.
func RedisAddr() string { return env("SECKILL_REDIS_ADDR", "127.0.0.1:6379") }

// RedisClusterAddrs are the seed nodes of the local Redis Cluster.
func RedisClusterAddrs() []string {
	return strings.Split(env("SECKILL_REDIS_CLUSTER_ADDRS", "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"), ",")
}

// NameServers are the RocketMQ name servers.
func NameServers() []string {
	return strings.Split(env("SECKILL_ROCKETMQ_NAMESRV", "127.0.0.1:9876"), ",")
}

// TestTopic is the RocketMQ topic tests share; each test tags its messages.
func TestTopic() string { return env("SECKILL_ROCKETMQ_TEST_TOPIC", "seckill_orders_test") }

// ID returns a short random name for per-test resources.
func ID() string { return randhex.String(5) }

// DB is a fresh database on the real MySQL server.
type DB struct {
	*sql.DB
	DSN   string
	Store *mysql.Store
}

// Tests do not wait for a MySQL that is not there: they fail at once with the hint
// to start the services (mysql.Open waits 30 s for a restarting one otherwise).
func init() { mysql.OpenWait = 2 * time.Second }

// MySQL creates a database of its own for the test, applies the migrations, starts
// its ids at a random offset (so Redis keys of concurrent test packages never meet),
// and drops it when the test ends.
func MySQL(tb testing.TB) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := gomysql.ParseDSN(MySQLDSN())
	if err != nil {
		tb.Fatalf("SECKILL_MYSQL_DSN: %v", err)
	}
	admin, err := mysql.Open(ctx, cfg.FormatDSN(), 2)
	if err != nil {
		tb.Fatalf("mysql: %v; %s", err, hint)
	}
	defer admin.Close()
	name := "seckill_test_" + ID()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	cfg.DBName = name
	dsn := cfg.FormatDSN()
	db, err := mysql.Open(ctx, dsn, 64)
	if err != nil {
		tb.Fatalf("mysql: %v", err)
	}
	tb.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if a, err := mysql.Open(ctx, MySQLDSN(), 1); err == nil {
			a.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
			a.Close()
		}
	})
	if _, err := mysql.Migrate(ctx, db); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	off, _ := rand.Int(rand.Reader, big.NewInt(1<<40))
	start := off.Int64() + 1_000_000
	for _, t := range []string{"activities", "items"} {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", t, start)); err != nil {
			tb.Fatalf("offset ids: %v", err)
		}
	}
	return &DB{DB: db, DSN: dsn, Store: mysql.NewStore(db)}
}

// Redis returns a client of the single Redis node, closed when the test ends.
func Redis(tb testing.TB) goredis.UniversalClient {
	tb.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: RedisAddr(), PoolSize: 64})
	ping(tb, rdb, RedisAddr())
	return rdb
}

// RedisCluster returns a client of the local Redis Cluster.
func RedisCluster(tb testing.TB) goredis.UniversalClient {
	tb.Helper()
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: RedisClusterAddrs(), PoolSize: 64})
	ping(tb, rdb, strings.Join(RedisClusterAddrs(), ","))
	return rdb
}

func ping(tb testing.TB, rdb goredis.UniversalClient, addr string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		tb.Fatalf("redis at %s: %v; %s", addr, err, hint)
	}
	tb.Cleanup(func() { rdb.Close() })
}
