package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"os/exec"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/internal/randhex"
)

// RandomID is a short random name for the bench's own resources.
func RandomID() string { return randhex.String(5) }

// CreateDatabase makes a database of the bench's own on the server of dsn, applies
// the schema migrations, and starts its ids at a random offset (so the Redis keys of
// its activities meet no one else's). It returns the new database's DSN and a function
// that drops it.
func CreateDatabase(ctx context.Context, dsn, name string) (string, func() error, error) {
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("MySQL DSN: %w", err)
	}
	adminDB, err := mysql.Open(ctx, cfg.FormatDSN(), 2)
	if err != nil {
		return "", nil, err
	}
	defer adminDB.Close()
	if _, err := adminDB.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := mysql.Open(ctx, cfg.FormatDSN(), 1)
		if err != nil {
			return err
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	cfg.DBName = name
	newDSN := cfg.FormatDSN()
	db, err := mysql.Open(ctx, newDSN, 2)
	if err != nil {
		return "", nil, errJoin(err, drop())
	}
	defer db.Close()
	if _, err := mysql.Migrate(ctx, db); err != nil {
		return "", nil, errJoin(fmt.Errorf("migrate %s: %w", name, err), drop())
	}
	off, _ := rand.Int(rand.Reader, big.NewInt(1<<40))
	start := off.Int64() + 1_000_000
	for _, t := range []string{"activities", "items"} {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", t, start)); err != nil {
			return "", nil, errJoin(fmt.Errorf("offset ids: %w", err), drop())
		}
	}
	return newDSN, drop, nil
}

func errJoin(a, b error) error {
	if b == nil {
		return a
	}
	return fmt.Errorf("%w (and cleaning up: %v)", a, b)
}

// DeleteRedisKeys removes what the bench's activities left in Redis: their stock,
// buyer, ticket and cache keys. It returns how many keys went.
func DeleteRedisKeys(ctx context.Context, addrs []string, password string, cluster bool, activityIDs []int64) (int, error) {
	if len(addrs) == 0 || len(activityIDs) == 0 {
		return 0, nil
	}
	rdb := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: addrs, Password: password, IsClusterMode: cluster})
	defer rdb.Close()
	var patterns []string
	for _, id := range activityIDs {
		patterns = append(patterns, fmt.Sprintf("sk:{a%d:i*", id), fmt.Sprintf("sk:{cat:a:%d}*", id))
	}
	deleted := 0
	scan := func(ctx context.Context, c goredis.Cmdable) error {
		for _, p := range patterns {
			iter := c.Scan(ctx, 0, p, 1000).Iterator()
			for iter.Next(ctx) {
				if err := c.Del(ctx, iter.Val()).Err(); err != nil {
					return err
				}
				deleted++
			}
			if err := iter.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if cc, ok := rdb.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, rdb)
	}
	return deleted, err
}

// ServicesUp runs `script up` (output to w) and returns what `script env` exports.
func ServicesUp(ctx context.Context, script string, w io.Writer) (map[string]string, error) {
	up := exec.CommandContext(ctx, script, "up")
	up.Stdout, up.Stderr = w, w
	if err := up.Run(); err != nil {
		return nil, fmt.Errorf("%s up: %w", script, err)
	}
	out, err := exec.CommandContext(ctx, script, "env").Output()
	if err != nil {
		return nil, fmt.Errorf("%s env: %w", script, err)
	}
	return ParseExports(out), nil
}

// ParseExports reads `export KEY='value'` lines.
func ParseExports(b []byte) map[string]string {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '\'' && v[len(v)-1] == '\'' || v[0] == '"' && v[len(v)-1] == '"') {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	return env
}
