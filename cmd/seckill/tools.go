package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/internal/buildinfo"
)

// migrateCommand applies the schema migrations: a command, never a side effect of
// starting.
func migrateCommand(name string, args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := parseConfig(name, args, stderr, nil)
	if !ok {
		return code
	}
	if err := migrate(context.Background(), stdout, cfg.MySQL.DSN); err != nil {
		fmt.Fprintln(stderr, "seckill:", err)
		return 1
	}
	return 0
}

func migrate(ctx context.Context, w io.Writer, dsn string) error {
	if dsn == "" {
		return errors.New("migrate: no MySQL configured; set SECKILL_MYSQL_DSN")
	}
	db, err := mysql.Open(ctx, dsn, 2)
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

// tokenCommand mints a shopper's token with the configured secret.
func tokenCommand(name string, args []string, stdout, stderr io.Writer) int {
	var user int64
	var ttl time.Duration
	cfg, code, ok := parseConfig(name, args, stderr, func(fs *flag.FlagSet) {
		fs.Int64Var(&user, "user", 0, "the user id the token is for")
		fs.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid")
	})
	if !ok {
		return code
	}
	if err := mintToken(stdout, cfg.Gateway.JWTSecret, user, ttl); err != nil {
		fmt.Fprintln(stderr, "seckill:", err)
		return 1
	}
	return 0
}

func mintToken(w io.Writer, secret string, user int64, ttl time.Duration) error {
	if user <= 0 {
		return errors.New("token: -user must be a positive user id")
	}
	if secret == "" {
		return errors.New("token: no secret; set SECKILL_JWT_SECRET or gateway.jwt_secret")
	}
	tok, err := auth.Mint([]byte(secret), user, ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, tok)
	return err
}

// versionCommand prints the module version and the VCS revision the binary was
// built from.
func versionCommand(_ string, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, buildinfo.Get())
	return 0
}
