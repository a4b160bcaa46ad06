package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/backend/telemetry"
	"github.com/seckill/flashsale/config"
)

// roles are the parts each serving command runs.
var roles = map[string][]app.Role{
	"all":     app.All,
	"gateway": {app.Gateway},
	"backend": {app.Backend},
	"worker":  {app.Worker},
}

// serveCommand runs `seckill all|gateway|backend|worker` until SIGINT or SIGTERM.
func serveCommand(name string, args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := parseConfig(name, args, stderr, nil)
	if !ok {
		return code
	}
	log := app.NewLogger(cfg.Log, stderr)
	app.FrameworkLogs(log, cfg.Log.Level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, name, cfg, log); err != nil {
		fmt.Fprintln(stderr, "seckill:", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, name string, cfg config.Config, log *slog.Logger) error {
	all := name == "all"
	if all && (cfg.Gateway.JWTSecret == "" || cfg.Gateway.AdminToken == "") {
		return errors.New("all: set SECKILL_JWT_SECRET and SECKILL_ADMIN_TOKEN (32+ random bytes each, e.g. `openssl rand -hex 32`)")
	}
	shutdownTracing, err := telemetry.Setup(ctx, "seckill-"+name, cfg.Tracing)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background())
	s, err := app.Start(ctx, cfg, app.Options{Roles: roles[name], Embedded: all, Log: log, ServeOps: true})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	attrs := []any{"part", name, "config", fmt.Sprintf("%+v", s.Config.Redacted())}
	if len(s.Embedded) > 0 {
		attrs = append(attrs, "stand-ins", strings.Join(s.Embedded, ", "))
	}
	if s.Gateway != nil {
		attrs = append(attrs, "url", s.URL())
	}
	log.Info("serving", attrs...)
	var done <-chan error
	if s.Backend != nil {
		done = s.Backend.Done()
	}
	select {
	case <-ctx.Done():
		return s.Close()
	case err := <-done:
		return errors.Join(err, s.Close())
	}
}

// parseConfig parses a command's flags, -config among them (more is called to add
// the command's own), and loads the configuration. ok is false when the command must
// exit with code.
func parseConfig(name string, args []string, stderr io.Writer, more func(fs *flag.FlagSet)) (cfg config.Config, code int, ok bool) {
	fs := flag.NewFlagSet("seckill "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file")
	if more != nil {
		more(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: seckill %s [flags]\n", name)
		fs.PrintDefaults()
		fmt.Fprintln(stderr)
		printUsage(stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, 0, false
		}
		return cfg, 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seckill %s: unexpected arguments: %v\n", name, fs.Args())
		return cfg, 2, false
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, "seckill:", err)
		return cfg, 2, false
	}
	return cfg, 0, true
}
