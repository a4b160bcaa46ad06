//go:build faults

package app_test

import (
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/seckill/flashsale/backend/testenv"
)

// The fault suite against a fleet of separate processes (2 gateways, 2 backends, 2
// workers): a shared service fails in the middle of a sale, every shopper is a
// client that retries a lost answer with its key, and afterwards every unit is sold,
// none twice, and Redis holds what MySQL holds.

// TestFaultFleetRedisRestartedEmpty: the fleet's Redis (one of the test's own) is
// SIGKILLed mid-sale and started again empty 3 s later.
func TestFaultFleetRedisRestartedEmpty(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	startRedis := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			t.Fatalf("redis-server: %v", err)
		}
		waitPort(t, port)
		return cmd
	}
	rs := startRedis()
	t.Cleanup(func() { rs.Process.Signal(syscall.SIGKILL); rs.Wait() })
	f := newTestFleet(t, fleetOpts{redisAddr: fmt.Sprintf("127.0.0.1:%d", port)})
	_, gws, _ := f.startFleet(2, 2, 2)
	for _, strategy := range []string{"async", "sync"} {
		t.Run(strategy, func(t *testing.T) {
			f.sellOut(t, gws, strategy, func() {
				rs.Process.Signal(syscall.SIGKILL)
				rs.Wait()
				time.Sleep(3 * time.Second)
				rs = startRedis()
			})
		})
	}
}

// TestFaultFleetMySQLCut: every process's MySQL connections are cut for 3 s mid-sale.
func TestFaultFleetMySQLCut(t *testing.T) {
	var proxy *testenv.Proxy
	f := newTestFleet(t, fleetOpts{mysqlDSN: func(dsn string) string {
		cfg, err := gomysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		proxy = testenv.NewProxy(t, cfg.Addr)
		cfg.Addr = proxy.Addr()
		return cfg.FormatDSN()
	}})
	_, gws, _ := f.startFleet(2, 2, 2)
	for _, strategy := range []string{"async", "sync"} {
		t.Run(strategy, func(t *testing.T) {
			f.sellOut(t, gws, strategy, func() {
				proxy.Cut()
				time.Sleep(3 * time.Second)
				proxy.Restore()
			})
		})
	}
}
