package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/internal/buildinfo"
	"github.com/seckill/flashsale/internal/secret"
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
	if err := mintToken(stdout, cfg.Gateway, user, ttl); err != nil {
		fmt.Fprintln(stderr, "seckill:", err)
		return 1
	}
	return 0
}

// mintToken signs a token for user that lives ttl (more than 0, at most
// auth.MaxTokenTTL), with the issuer and audience the gateway checks.
func mintToken(w io.Writer, cfg gateway.Config, user int64, ttl time.Duration) error {
	if user <= 0 {
		return errors.New("token: -user must be a positive user id")
	}
	if ttl <= 0 || ttl > auth.MaxTokenTTL {
		return fmt.Errorf("token: -ttl must be more than 0 and at most %s (30 days), not %s", auth.MaxTokenTTL, ttl)
	}
	if cfg.JWTMaxAge > 0 && ttl > cfg.JWTMaxAge {
		return fmt.Errorf("token: -ttl %s is longer than gateway.jwt_max_age %s; the gateway would refuse the token before it expires", ttl, cfg.JWTMaxAge)
	}
	if err := secret.Check(gateway.SettingJWTSecret, cfg.JWTSecret); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tok, err := auth.MintFor([]byte(cfg.JWTSecret), user, ttl, cfg.JWTIssuer, cfg.JWTAudience)
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
