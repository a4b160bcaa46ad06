// Command seckill runs the flash-sale platform: each part on its own (gateway,
// backend, worker), all of them in one process (all, demo), and the tools around them
// (migrate, token, admin, bench, version). main only dispatches; package app builds
// the system.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/seckill/flashsale/config"
)

const usage = `seckill: a flash-sale edge gateway and ordering backend.

Usage: seckill <command> [flags]

Commands:
  all       run gateway, backend and worker in one process (embedded stand-ins where no server is set)
  gateway   run the HTTP edge gateway
  backend   run the kitex backend
  worker    run the queue workers
  migrate   apply the MySQL schema migrations
  token     mint a shopper token:  seckill token -user 42 [-ttl 24h]
  bench     load-test the system, check the invariants, write bench/results (seckill bench -h)
  demo      run a sale in one process on the stand-ins and print the result (seckill demo -h)
  admin     the operator CLI: activities, plugins, limits (seckill admin -h)
  version   print the version and build of this binary

Every command takes -config FILE (YAML). Settings, by environment variable:
`

// command runs the command name with its arguments and returns the exit code.
type command func(name string, args []string, stdout, stderr io.Writer) int

var commands = map[string]command{
	"all":     serveCommand,
	"gateway": serveCommand,
	"backend": serveCommand,
	"worker":  serveCommand,
	"migrate": migrateCommand,
	"token":   tokenCommand,
	"bench":   benchCommand,
	"demo":    demoCommand,
	"admin":   adminCommand,
	"version": versionCommand,
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	config.WriteUsage(w)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "seckill: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	return cmd(args[0], args[1:], stdout, stderr)
}
