//go:build faults

// The fault suite (make test-faults): each case injects a fault during a sale on the
// real services and then checks the invariants. It runs apart from the other tests
// because some cases stop shared servers.
package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/config"
)

// faultEnv is a backend (and optionally an in-process worker) on a test database.
type faultEnv struct {
	db      *testenv.DB
	cfg     config.Config
	backend *app.System
	stock   *redis.Stock // the same Redis, to read the sale's state
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tw{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tw struct{ t testing.TB }

func (w tw) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func newFaultEnv(t *testing.T, dsn, redisAddr string, inprocWorker bool) *faultEnv {
	t.Helper()
	cfg, db := realConfig(t)
	if dsn != "" {
		cfg.MySQL.DSN = dsn
	}
	cfg.Redis.Addrs = []string{redisAddr}
	cfg.Backend.ReconcileInterval = -1
	cfg.Worker.BatchSize, cfg.Worker.MaxAttempts = 8, 16
	e := &faultEnv{db: db, cfg: cfg}
	e.backend = start(t, cfg, app.Options{Roles: []app.Role{app.Backend}, Log: testLogger(t)}).sys
	if inprocWorker { // a system of its own, so the backend can stop without it
		start(t, cfg, app.Options{Roles: []app.Role{app.Worker}, Log: testLogger(t)})
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	t.Cleanup(func() { rdb.Close() })
	e.stock = redis.NewStock(rdb, time.Hour)
	return e
}

func (e *faultEnv) svc() *sale.Service { return e.backend.Backend.Service() }

func (e *faultEnv) sale(t *testing.T, strategy domain.Strategy, stock int64) *domain.Activity {
	t.Helper()
	a := &domain.Activity{Name: "fault", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), Strategy: strategy,
		PerUserLimit: 1, BucketCount: 1, Items: []domain.Item{{Name: "x", PriceCents: 1, TotalStock: stock}}}
	if err := e.svc().CreateActivity(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	a, err := e.svc().Publish(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// buy sends one attempt per user in [from, to) with 32 at a time and counts outcomes.
func (e *faultEnv) buy(a *domain.Activity, from, to int64) map[string]int {
	var mu sync.Mutex
	out := map[string]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for u := from; u < to; u++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := e.svc().PlaceOrder(context.Background(), sale.PlaceOrder{UserID: u, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1, IdempotencyKey: fmt.Sprint("k", u)})
			code := "ok"
			if err != nil {
				code = domain.ErrorCode(err)
			}
			mu.Lock()
			out[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// settle waits until no ticket is in flight and returns how long it took.
func (e *faultEnv) settle(t *testing.T, a *domain.Activity, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		st, err := e.stock.State(context.Background(), a.ID, a.Items[0].ID, 1)
		if err == nil && st.Tickets == 0 {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("not settled after %v: %+v %v", within, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// invariants checks the sale once settled; soldOut says demand exceeded stock.
func (e *faultEnv) invariants(t *testing.T, a *domain.Activity, soldOut bool) (orders int64) {
	t.Helper()
	ctx := context.Background()
	item := a.Items[0].ID
	var units, over, dups, left int64
	q := func(dst *int64, sql string) {
		if err := e.db.QueryRowContext(ctx, sql, item).Scan(dst); err != nil {
			t.Fatal(err)
		}
	}
	q(&orders, `SELECT COUNT(*) FROM orders WHERE item_id = ? AND status = 'created'`)
	q(&units, `SELECT COALESCE(SUM(quantity),0) FROM orders WHERE item_id = ? AND status = 'created'`)
	q(&over, `SELECT COUNT(*) FROM (SELECT user_id FROM orders WHERE item_id = ? AND status = 'created' GROUP BY user_id HAVING SUM(quantity) > 1) x`)
	q(&dups, `SELECT COUNT(*) - COUNT(DISTINCT ticket) FROM orders WHERE item_id = ?`)
	q(&left, `SELECT SUM(available) FROM item_stock WHERE item_id = ?`)
	// The reconciler brings Redis to MySQL's count once the sale is quiet.
	if _, err := e.svc().Reconcile(ctx, sale.ReconcileConfig{Quiet: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	st, err := e.stock.State(ctx, a.ID, item, 1)
	if err != nil {
		t.Fatal(err)
	}
	total := a.Items[0].TotalStock
	switch {
	case units+left != total:
		t.Fatalf("units sold %d + left %d != stock %d", units, left, total)
	case units > total:
		t.Fatalf("oversold: %d units of %d", units, total)
	case soldOut && left != 0:
		t.Fatalf("undersold: %d left while demand exceeded stock", left)
	case over != 0 || dups != 0:
		t.Fatalf("%d users over the limit, %d duplicate tickets", over, dups)
	case st.Available() != left || st.Tickets != 0:
		t.Fatalf("redis %d left with %d pending, mysql %d left", st.Available(), st.Tickets, left)
	}
	return orders
}

// TestFaultWorkerKilled: a worker process killed with SIGKILL mid-sale, then started
// again: no order lost, none twice.
func TestFaultWorkerKilled(t *testing.T) {
	e := newFaultEnv(t, "", testenv.RedisAddr(), false)
	bin := filepath.Join(t.TempDir(), "seckill")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/seckill").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	startWorker := func() *exec.Cmd {
		cmd := exec.Command(bin, "worker")
		mq := e.cfg.RocketMQ
		cmd.Env = append(os.Environ(), "SECKILL_MYSQL_DSN="+e.cfg.MySQL.DSN, "SECKILL_REDIS_ADDR="+testenv.RedisAddr(),
			"SECKILL_ROCKETMQ_NAMESRV="+mq.NameServers[0], "SECKILL_ROCKETMQ_TOPIC="+mq.Topic, "SECKILL_ROCKETMQ_GROUP="+mq.Group,
			"SECKILL_ROCKETMQ_TAG="+mq.Tag, "SECKILL_WORKER_BATCH=16", "SECKILL_LOG_LEVEL=warn", "SECKILL_WORKER_OPS_LISTEN=127.0.0.1:0")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	a := e.sale(t, domain.StrategyAsync, 400)
	w := startWorker()
	var outcome map[string]int
	done := make(chan struct{})
	go func() { outcome = e.buy(a, 1, 1201); close(done) }()
	// Kill it once it is writing.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		e.db.QueryRow(`SELECT COUNT(*) FROM orders WHERE item_id = ? AND status <> 'void'`, a.Items[0].ID).Scan(&n)
		if n >= 50 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.Process.Signal(syscall.SIGKILL)
	w.Wait()
	killedAt := time.Now()
	<-done
	w = startWorker()
	defer func() { w.Process.Signal(syscall.SIGKILL); w.Wait() }()
	took := e.settle(t, a, 3*time.Minute)
	orders := e.invariants(t, a, true)
	t.Logf("worker SIGKILLed mid-sale and restarted: outcomes %v; %d orders of 400, settled %v after the restart (%v after the kill)",
		outcome, orders, took.Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond))
}

// TestFaultRedisRestartedEmpty: Redis dies and comes back empty during a sale; the
// backend answers 503 while it is down, restores the sale from MySQL, sells again,
// never oversells.
func TestFaultRedisRestartedEmpty(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			t.Fatalf("redis-server: %v", err)
		}
		waitPort(t, port)
		return cmd
	}
	rs := start()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := newFaultEnv(t, "", addr, true)
	a := e.sale(t, domain.StrategyAsync, 500)
	before := e.buy(a, 1, 301)
	rs.Process.Signal(syscall.SIGKILL)
	rs.Wait()
	down := e.buy(a, 301, 341)
	if down[domain.EUnavailable] != 40 {
		t.Fatalf("while Redis is down: got %v, want 40 unavailable", down)
	}
	rs = start()
	defer func() { rs.Process.Signal(syscall.SIGKILL); rs.Wait() }()
	restarted := time.Now()
	after := e.buy(a, 341, 1500)
	took := e.settle(t, a, 2*time.Minute)
	orders := e.invariants(t, a, true)
	t.Logf("redis restarted empty: before %v, while down %v, after %v; %d orders of 500; selling again at once, settled %v after the restart",
		before, down, after, orders, took.Round(time.Millisecond)+time.Since(restarted).Round(time.Millisecond)-took.Round(time.Millisecond))
}

// TestFaultMySQLUnreachable: MySQL cut off for 10 s. Sync answers 503 and deducts
// nothing; async orders wait in the queue and complete afterwards.
func TestFaultMySQLUnreachable(t *testing.T) {
	db := testenv.MySQL(t)
	cfg, _ := parseDSN(db.DSN)
	proxy := testenv.NewProxy(t, cfg.Addr)
	cfg.Addr = proxy.Addr()
	e := newFaultEnv(t, cfg.FormatDSN(), testenv.RedisAddr(), true)
	e.db = db
	syncSale := e.sale(t, domain.StrategySync, 100)
	asyncSale := e.sale(t, domain.StrategyAsync, 100)
	e.buy(syncSale, 1, 21)
	proxy.Cut()
	cutAt := time.Now()
	syncDown := e.buy(syncSale, 1000, 1020)
	st, _ := e.stock.State(context.Background(), syncSale.ID, syncSale.Items[0].ID, 1)
	if syncDown[domain.EUnavailable] != 20 || st.Available() != 80 || st.Tickets != 0 {
		t.Fatalf("sync while MySQL is down: got %v, redis %d left, %d in flight; want 20 unavailable, 80 left, nothing in flight", syncDown, st.Available(), st.Tickets)
	}
	asyncDown := e.buy(asyncSale, 1, 61)
	if asyncDown["ok"] != 60 {
		t.Fatalf("async while MySQL is down: got %v, want 60 admitted", asyncDown)
	}
	time.Sleep(10*time.Second - time.Since(cutAt))
	proxy.Restore()
	took := e.settle(t, asyncSale, 2*time.Minute)
	if n := e.invariants(t, asyncSale, false); n != 60 {
		t.Fatalf("async orders after the outage: got %d, want 60", n)
	}
	if n := e.invariants(t, syncSale, false); n != 20 {
		t.Fatalf("sync orders: got %d, want 20", n)
	}
	t.Logf("mysql cut for 10 s: sync %v while down (nothing deducted), async %v admitted and all 60 written %v after MySQL came back",
		syncDown, asyncDown, took.Round(time.Millisecond))
}

// TestFaultBackendRestarted: the gateway answers 503 while the backend is down and
// recovers when it is back on the same address.
func TestFaultBackendRestarted(t *testing.T) {
	e := newFaultEnv(t, "", testenv.RedisAddr(), true)
	a := e.sale(t, domain.StrategyAsync, 50)
	addr := e.backend.Backend.Addr().String()
	gcfg := e.cfg
	gcfg.Gateway.BackendAddrs, gcfg.Gateway.RPCTimeout = []string{addr}, time.Second
	s := start(t, gcfg, app.Options{Roles: []app.Role{app.Gateway}, Log: testLogger(t)})
	order := map[string]any{"activity_id": a.ID, "item_id": a.Items[0].ID, "quantity": 1}
	if code, out := s.do(t, "POST", "/api/v1/orders", token(t, 1), order, nil); code != http.StatusAccepted {
		t.Fatalf("before: got %d %v", code, out)
	}
	e.backend.Close()
	for u := int64(2); u < 7; u++ {
		if code, out := s.do(t, "POST", "/api/v1/orders", token(t, u), order, nil); code != http.StatusServiceUnavailable || out["error"] != "unavailable" {
			t.Fatalf("backend down: got %d %v, want 503 unavailable", code, out)
		}
	}
	downAt := time.Now()
	bcfg := e.cfg
	bcfg.Backend.Listen = addr
	e.backend = start(t, bcfg, app.Options{Roles: []app.Role{app.Backend}, Log: testLogger(t)}).sys
	var recovered time.Duration
	for u := int64(10); ; u++ {
		code, out := s.do(t, "POST", "/api/v1/orders", token(t, u), order, nil)
		if code == http.StatusAccepted {
			recovered = time.Since(downAt)
			break
		}
		if time.Since(downAt) > 30*time.Second {
			t.Fatalf("gateway did not recover: %d %v", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.settle(t, a, time.Minute)
	e.invariants(t, a, false)
	t.Logf("backend restarted: 503 while down, orders accepted again %v after it was started", recovered.Round(time.Millisecond))
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("port %d never opened", port)
}

func parseDSN(dsn string) (*gomysql.Config, error) { return gomysql.ParseDSN(dsn) }

// TestFaultBrokerRestarted: the RocketMQ broker is killed and started again during an
// async sale. Sends fail cleanly while it is down (503, stock given back); every
// ticket acknowledged before is written; the sale then sells out exactly.
// It runs last: the other tests share the broker.
func TestFaultBrokerRestarted(t *testing.T) {
	pidFile := filepath.Join(os.Getenv("SECKILL_STATE_DIR"), "rocketmq", "broker.pid")
	if os.Getenv("SECKILL_STATE_DIR") == "" {
		pidFile = "/tmp/seckill-services/rocketmq/broker.pid"
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("broker pid (started by deploy/services.sh): %v", err)
	}
	pid, err := strconv.Atoi(string(trimSpace(raw)))
	if err != nil {
		t.Fatalf("broker pid %q: %v", raw, err)
	}
	e := newFaultEnv(t, "", testenv.RedisAddr(), true)
	a := e.sale(t, domain.StrategyAsync, 300)
	before := e.buy(a, 1, 201)
	if before["ok"] != 200 {
		t.Fatalf("before: got %v, want 200 admitted", before)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill broker: %v", err)
	}
	killed := time.Now()
	time.Sleep(time.Second)
	down := e.buy(a, 201, 221)
	st, _ := e.stock.State(context.Background(), a.ID, a.Items[0].ID, 1)
	t.Logf("while the broker is down: %v; redis %d left, %d in flight", down, st.Available(), st.Tickets)
	if down["ok"] != 0 || down[domain.EUnavailable] != 20 {
		t.Fatalf("while the broker is down: got %v, want 20 unavailable", down)
	}
	up := exec.Command("../deploy/services.sh", "up")
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("restart the broker: %v\n%s", err, out)
	}
	restarted := time.Since(killed)
	// Sends work again once the producer sees the broker; then the sale sells out.
	var after map[string]int
	deadline := time.Now().Add(90 * time.Second)
	for u := int64(1000); ; u += 400 {
		after = e.buy(a, u, u+400)
		if after["ok"] > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	e.buy(a, 5000, 5400)
	took := e.settle(t, a, 3*time.Minute)
	orders := e.invariants(t, a, true)
	t.Logf("broker killed and restarted (back in %v): before %v, down %v, after %v; %d orders of 300, settled %v later",
		restarted.Round(time.Second), before, down, after, orders, took.Round(time.Millisecond))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
