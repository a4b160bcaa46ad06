package app_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/internal/randhex"
)

// The fleet as separate processes of the built binary, on the real services: gateways,
// backends and workers, each with its own port base, all of one fleet name, database,
// topic tag and consumer group of the test's own. Each subtest checks one promise of
// the fleet; they share the processes and run in order (some kill them).

type fleetProc struct {
	name, role string
	base       int
	env        []string
	cmd        *exec.Cmd
	log        string
	done       chan struct{}
}

func (p *fleetProc) url() string { return "http://127.0.0.1:" + strconv.Itoa(p.base) }

// opsURL is the process's ops listener: gateway base+1, backend base+3, worker base+4.
func (p *fleetProc) opsURL() string {
	off := map[string]int{"gateway": 1, "backend": 3, "worker": 4}[p.role]
	return "http://127.0.0.1:" + strconv.Itoa(p.base+off)
}

func (p *fleetProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

type testFleet struct {
	t          *testing.T
	bin, dir   string
	env        []string
	db         *testenv.DB
	stock      *redis.Stock
	jwt, admin string
	procs      []*fleetProc
	users      atomic.Int64 // the last shopper id handed out

	mu       sync.Mutex
	failures []string // said again after the processes' logs, which would bury them
}

// fail fails t with a message the fleet repeats at the end of the test.
func (f *testFleet) fail(t *testing.T, fatal bool, format string, args ...any) {
	t.Helper()
	msg := t.Name() + ": " + fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.failures = append(f.failures, msg)
	f.mu.Unlock()
	if fatal {
		t.Fatal(msg)
	}
	t.Error(msg)
}

func (f *testFleet) nextUser() int64 { return f.users.Add(1) }

// buy places an order of one unit through p.
func (f *testFleet) buy(p *fleetProc, u int64, a, i int64, key string) (*api.PlaceOrderResponse, error) {
	return f.shopper(p, u).PlaceOrder(context.Background(), api.PlaceOrderRequest{ActivityID: a, ItemID: i, Quantity: 1}, key)
}

// ticketEnd polls a ticket through via until it ends (a gateway or backend
// restarting meanwhile is asked again).
func (f *testFleet) ticketEnd(t *testing.T, via *fleetProc, u int64, ticket string) string {
	for start := time.Now(); time.Since(start) < 60*time.Second; time.Sleep(50 * time.Millisecond) {
		got, err := f.shopper(via, u).Ticket(context.Background(), ticket)
		if err == nil && got.Status != "pending" {
			return got.Status
		}
	}
	t.Errorf("ticket %s of user %d did not end within a minute", ticket, u)
	return "pending"
}

// Fleet processes take ports from 11000-16999: below the kernel's ephemeral range
// (32768 up), from which outgoing connections and port-0 listeners of other tests take
// theirs (one took a restarted worker's ops port once), clear of the services' ports
// (the broker's 10909-10912, the cluster's bus 17001-17003) and of the deploy tests'
// fleets (20000-32399).
const fleetPortsLow, fleetPortsSpan = 11000, 6000

var fleetPorts atomic.Int64

func init() { fleetPorts.Store(int64(rand.IntN(fleetPortsSpan))) }

// freeBase finds five free ports in a row.
func freeBase(t *testing.T) int {
	t.Helper()
	for range 200 {
		b := fleetPortsLow + int(fleetPorts.Add(10))%(fleetPortsSpan-10)
		ok := true
		for p := b; p < b+5 && ok; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			ln.Close()
		}
		if ok {
			return b
		}
	}
	t.Fatal("no five free ports in a row")
	return 0
}

// fleetOpts change where the fleet's processes find their services (a Redis of the
// test's own, MySQL through a proxy the test cuts).
type fleetOpts struct {
	redisAddr string              // "": the shared Redis
	mysqlDSN  func(string) string // the processes' DSN from the test database's; nil: the same
}

func newTestFleet(t *testing.T, opts ...fleetOpts) *testFleet {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes (-short)")
	}
	var o fleetOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	db := testenv.MySQL(t) // a database of its own: the fleet's reconciler sees only it
	dsn := db.DSN
	if o.mysqlDSN != nil {
		dsn = o.mysqlDSN(dsn)
	}
	redisAddr := testenv.RedisAddr()
	if o.redisAddr != "" {
		redisAddr = o.redisAddr
	}
	rdb, err := redis.Open(context.Background(), []string{redisAddr}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	dir := t.TempDir()
	bin := filepath.Join(dir, "seckill")
	build := exec.Command("go", append(append([]string{"build"}, raceFlag...), "-o", bin, "../cmd/seckill")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	id := testenv.ID()
	f := &testFleet{t: t, bin: bin, dir: dir, db: db, stock: redis.NewStock(rdb, time.Hour),
		jwt: randhex.String(32), admin: randhex.String(32)}
	f.users.Store(1000)
	f.env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "SECKILL_") }),
		"SECKILL_FLEET=fleettest-"+id, "SECKILL_MYSQL_DSN="+dsn, "SECKILL_REDIS_ADDR="+redisAddr,
		"SECKILL_ROCKETMQ_NAMESRV="+strings.Join(testenv.NameServers(), ","), "SECKILL_ROCKETMQ_TOPIC="+testenv.TestTopic(),
		"SECKILL_ROCKETMQ_GROUP=g_fleettest_"+id, "SECKILL_ROCKETMQ_TAG=fleettest_"+id,
		"SECKILL_JWT_SECRET="+f.jwt, "SECKILL_ADMIN_TOKEN="+f.admin, "SECKILL_LOG_LEVEL=info",
		"SECKILL_BACKEND_RPC_SECRET="+randhex.String(32), "SECKILL_BACKEND_RPC_OPERATOR_SECRET="+randhex.String(32),
		"SECKILL_BACKEND_TICKET_SECRET="+randhex.String(32))
	t.Cleanup(func() {
		for _, p := range f.procs {
			if p.alive() {
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, p := range f.procs {
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			for _, p := range f.procs {
				f.tail(p, 25)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.failures) > 0 {
				t.Logf("the failures, after the logs:\n%s", strings.Join(f.failures, "\n"))
			}
		}
	})
	return f
}

func (f *testFleet) tail(p *fleetProc, n int) {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f.t.Logf("--- last %d lines of %s ---\n%s", n, p.name, strings.Join(lines[max(0, len(lines)-n):], "\n"))
}

// start runs one process of role with extra settings and waits until it is ready.
// A port found free may be taken by another process before ours binds it (the
// machine is shared): such a start is tried again on other ports.
func (f *testFleet) start(name, role string, extra ...string) *fleetProc {
	f.t.Helper()
	p := &fleetProc{name: name, role: role, log: filepath.Join(f.dir, name+".log")}
	for try := 0; ; try++ {
		p.base, p.done = freeBase(f.t), make(chan struct{})
		p.env = append(slices.Clone(f.env), append([]string{"SECKILL_PORT_BASE=" + strconv.Itoa(p.base)}, extra...)...)
		if f.run(p, try < 3) {
			return p
		}
	}
}

// restart runs p again, on its ports and settings. A port another test holds for a
// moment (a freeness check) is waited for: up to five tries a second apart.
func (f *testFleet) restart(p *fleetProc) {
	f.t.Helper()
	for try := 0; ; try++ {
		p.done = make(chan struct{})
		if f.run(p, try < 5) {
			return
		}
		time.Sleep(time.Second)
	}
}

// run starts p and waits until it is ready. With portRetry, a process that exits
// because a port was taken returns false.
func (f *testFleet) run(p *fleetProc, portRetry bool) bool {
	f.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	var logged int64 // what earlier runs of p wrote
	if st, err := logf.Stat(); err == nil {
		logged = st.Size()
	}
	p.cmd = exec.Command(f.bin, p.role)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	done := p.done
	go func() { p.cmd.Wait(); logf.Close(); close(done) }()
	if !slices.Contains(f.procs, p) {
		f.procs = append(f.procs, p)
	}
	ready := p.opsURL() + "/healthz"
	if p.role == "gateway" {
		ready = p.opsURL() + "/readyz"
	}
	deadline := time.Now().Add(3 * time.Minute) // a race-built gateway compiles the chain's modules first
	for {
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		if !p.alive() && portRetry {
			if b, _ := os.ReadFile(p.log); strings.Contains(string(b[logged:]), "address already in use") {
				f.t.Logf("%s: a port of base %d was taken meanwhile; trying again", p.name, p.base)
				return false
			}
		}
		if !p.alive() || time.Now().After(deadline) {
			f.tail(p, 40)
			f.t.Fatalf("%s did not get ready (alive %v)", p.name, p.alive())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends p at once (SIGKILL): no goodbye, no release of anything it holds.
func (f *testFleet) kill(p *fleetProc) {
	f.t.Helper()
	p.cmd.Process.Kill()
	<-p.done
}

func (f *testFleet) operator(p *fleetProc) *api.Client {
	return &api.Client{BaseURL: p.url(), AdminToken: f.admin, Timeout: 15 * time.Second}
}

func (f *testFleet) shopper(p *fleetProc, user int64) *api.Client {
	f.t.Helper()
	tok, err := auth.Mint([]byte(f.jwt), user, time.Hour)
	if err != nil {
		f.t.Fatal(err)
	}
	return &api.Client{BaseURL: p.url(), ShopperToken: tok, Timeout: 15 * time.Second}
}

// sale creates and publishes an activity of one item through p.
func (f *testFleet) sale(p *fleetProc, strategy string, stock int64, limit int32) (int64, int64) {
	f.t.Helper()
	ctx := context.Background()
	a, err := f.operator(p).CreateActivity(ctx, api.CreateActivityRequest{Name: "fleet " + strategy, Strategy: strategy,
		Start: time.Now().Add(-time.Minute).Format(time.RFC3339), End: time.Now().Add(time.Hour).Format(time.RFC3339),
		PerUserLimit: limit, Items: []api.ItemSpec{{Name: "phone", PriceCents: 100, Stock: stock}}})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.operator(p).Publish(ctx, a.ID); err != nil {
		f.t.Fatal(err)
	}
	return a.ID, a.Items[0].ID
}

// metric sums the samples of a series whose name and labels start with prefix.
func metric(t *testing.T, p *fleetProc, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(p.opsURL() + "/metrics")
	if err != nil {
		t.Fatalf("%s metrics: %v", p.name, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err == nil {
				sum += v
			}
		}
	}
	return sum
}

func statusOf(err error) int {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Status
	}
	if err != nil {
		return -1
	}
	return 200
}

func within(t *testing.T, what string, limit time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// fleetLeaseTTL is the test fleets' lease, short so a takeover is quick to see.
const fleetLeaseTTL = 3 * time.Second

// startFleet starts backends, then workers, then gateways (calling every backend), and
// returns the backends, the gateways and the gateways' backend setting. The backends'
// duties run every second, and end tickets left in flight after 3 s.
func (f *testFleet) startFleet(backends, workers, gateways int) ([]*fleetProc, []*fleetProc, string) {
	var bs, gs []*fleetProc
	var addrs []string
	for i := range backends {
		b := f.start(fmt.Sprint("backend-", i+1), "backend", "SECKILL_BACKEND_LEASE_TTL="+fleetLeaseTTL.String(),
			"SECKILL_BACKEND_RECONCILE_INTERVAL=1s", "SECKILL_BACKEND_STALE_SYNC_TICKET=3s", "SECKILL_BACKEND_REPUBLISH_AFTER=3s")
		bs = append(bs, b)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(b.base+2))
	}
	backendAddrs := "SECKILL_BACKEND_ADDRS=" + strings.Join(addrs, ",")
	for i := range workers {
		f.start(fmt.Sprint("worker-", i+1), "worker")
	}
	for i := range gateways {
		gs = append(gs, f.start(fmt.Sprint("gateway-", i+1), "gateway", backendAddrs))
	}
	return bs, gs, backendAddrs
}

func TestFleet(t *testing.T) {
	f := newTestFleet(t)
	ctx := context.Background()
	const leaseTTL = fleetLeaseTTL
	backends, gws, backendAddrs := f.startFleet(2, 2, 3)
	addrs := strings.Split(strings.TrimPrefix(backendAddrs, "SECKILL_BACKEND_ADDRS="), ",")
	nextUser, buy := f.nextUser, f.buy

	// A sale every probe may buy from: plenty of stock, a generous per-user limit.
	probeA, probeI := f.sale(gws[0], "async", 1_000_000, 1000)
	probe := nextUser()
	answers := func(p *fleetProc) int {
		_, err := buy(p, probe, probeA, probeI, "")
		return statusOf(err)
	}

	t.Run("a plugin put through one gateway runs on every gateway within 2s", func(t *testing.T) {
		// A module of a few bytes that traps, failing closed: every order is refused
		// with 503 where it runs. Its compile takes microseconds, so the time is the
		// control plane's (a Go-built module adds its compile, 0.5-1.5 s here).
		trap, err := os.ReadFile("../gateway/wasm/testdata/unreachable.wasm")
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gws {
			if st := answers(g); st != 200 {
				t.Fatalf("%s answers %d before any plugin", g.name, st)
			}
		}
		if _, err := f.operator(gws[0]).PutPlugin(ctx, "gate", api.PutPluginRequest{WasmBase64: base64.StdEncoding.EncodeToString(trap),
			FailPolicy: "closed"}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for _, g := range gws[1:] {
			within(t, g.name+" applies the plugin", 2*time.Second-time.Since(start), func() bool { return answers(g) == http.StatusServiceUnavailable })
		}
		t.Logf("the plugin answered on gateways 2 and 3 %v after the PUT's answer", time.Since(start).Round(time.Millisecond))
		if err := f.operator(gws[2]).DeletePlugin(ctx, "gate"); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		for _, g := range gws {
			within(t, g.name+" drops the plugin", 2*time.Second-time.Since(start), func() bool { return answers(g) == 200 })
		}
	})

	t.Run("a gateway started afterwards serves the chain at its first ready answer", func(t *testing.T) {
		// A Go-built module (the blocklist example, 3.4 MB) as operators load them; a
		// race-built gateway compiles one for tens of seconds, so under -race the
		// few-byte trap stands in.
		name, path, spec, refusal := "blocklist", "../plugins/examples/blocklist/blocklist.wasm",
			api.PutPluginRequest{Config: json.RawMessage(fmt.Sprintf(`{"users":["%d"]}`, probe)), FailPolicy: "closed"}, http.StatusForbidden
		if len(raceFlag) > 0 {
			name, path, spec, refusal = "gate", "../gateway/wasm/testdata/unreachable.wasm", api.PutPluginRequest{FailPolicy: "closed"}, http.StatusServiceUnavailable
		}
		wasm, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		spec.WasmBase64 = base64.StdEncoding.EncodeToString(wasm)
		op := f.operator(gws[0])
		op.Timeout = time.Minute
		put, err := op.PutPlugin(ctx, name, spec)
		if err != nil {
			t.Fatal(err)
		}
		took := within(t, "every gateway reports the plugin", time.Minute, func() bool {
			list, err := f.operator(gws[1]).PluginChain(ctx)
			if err != nil || len(list.Plugins) != 1 || len(list.Plugins[0].Gateways) < len(gws) {
				return false
			}
			for _, g := range list.Plugins[0].Gateways {
				if g.Version != put.Version {
					return false
				}
			}
			return true
		})
		t.Logf("plugin %s (%d bytes) ran on every gateway %v after the PUT's answer", name, len(wasm), took.Round(time.Millisecond))
		late := f.start("gateway-late", "gateway", backendAddrs)
		if st := answers(late); st != refusal {
			t.Fatalf("the late gateway's first answer: %d, want %d from the fleet's plugin", st, refusal)
		}
		gws = append(gws, late)
		if err := f.operator(gws[1]).DeletePlugin(ctx, name); err != nil {
			t.Fatal(err)
		}
		for _, g := range gws {
			within(t, g.name+" drops the plugin", 2*time.Second, func() bool { return answers(g) == 200 })
		}
	})

	t.Run("a sale published through one gateway sells at once on every gateway", func(t *testing.T) {
		// Every gateway and backend holds copies of activities; the one that made
		// the change announces it and the others drop theirs.
		for round := range 15 {
			a, i := f.sale(gws[round%len(gws)], "async", 100, 1)
			for k := range 2 * len(gws) {
				g := gws[(round+k)%len(gws)]
				if _, err := buy(g, nextUser(), a, i, ""); err != nil {
					t.Fatalf("round %d: the order %d through %s right after the publish: %v", round, k, g.name, err)
				}
			}
		}
	})

	t.Run("limits put through one gateway reach every gateway", func(t *testing.T) {
		// Burst 40 (10 a gateway): a gateway stalled for a moment (2 shared cores, the
		// race detector, eight processes) loses no more than its burst's worth.
		put, err := f.operator(gws[2]).SetLimits(ctx, api.Limits{Global: api.Rule{RPS: 60, Burst: 40}, User: api.Rule{RPS: 1000, Burst: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		within(t, "every live gateway reports the new version", 10*time.Second, func() bool {
			l, err := f.operator(gws[0]).Limits(ctx)
			if err != nil || len(l.Gateways) < len(gws) {
				return false
			}
			for _, g := range l.Gateways {
				if g.Version != put.Version || g.Share != len(gws) {
					return false
				}
			}
			return true
		})
	})

	t.Run("the global limit holds for the fleet within 20%", func(t *testing.T) {
		// 60/s over the fleet, burst 40; 4 gateways take ~300/s between them for 4s.
		const dur = 4 * time.Second
		var passed, limited, other atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(dur)
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; time.Now().Before(stop); n++ {
					_, err := buy(gws[(w+n)%len(gws)], nextUser(), probeA, probeI, "")
					switch statusOf(err) {
					case 200:
						passed.Add(1)
					case http.StatusTooManyRequests:
						limited.Add(1)
					default:
						other.Add(1)
						t.Logf("unexpected answer: %v", err)
					}
					time.Sleep(45 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		want := 60*dur.Seconds() + 40
		got := float64(passed.Load())
		t.Logf("passed %v (want %.0f), limited %d, other %d", got, want, limited.Load(), other.Load())
		if limited.Load() == 0 || got < want*0.8 || got > want*1.2 {
			t.Fatalf("%v orders passed a fleet-wide limit of 60/s over %v; want %.0f within 20%%", got, dur, want)
		}
		if other.Load() != 0 {
			t.Fatalf("%d answers neither passed nor limited", other.Load())
		}
		if _, err := f.operator(gws[0]).SetLimits(ctx, api.Limits{Global: api.Rule{RPS: 100000, Burst: 100000}}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the per-user limit holds across gateways", func(t *testing.T) {
		if _, err := f.operator(gws[0]).SetLimits(ctx, api.Limits{User: api.Rule{RPS: 5, Burst: 5}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // the patch reaches every gateway (checked above)
		u := nextUser()
		var passed int
		const dur = 3 * time.Second
		for start, n := time.Now(), 0; time.Since(start) < dur; n++ {
			if _, err := buy(gws[n%len(gws)], u, probeA, probeI, ""); err == nil {
				passed++
			} else if statusOf(err) != http.StatusTooManyRequests {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		want := 5*dur.Seconds() + 5
		t.Logf("one user, every gateway in turn: %d passed (want %.0f)", passed, want)
		if float64(passed) > want*1.2 || float64(passed) < want*0.8 {
			t.Fatalf("%d orders of one user passed a limit of 5/s over %v across gateways; want %.0f within 20%%", passed, dur, want)
		}
		if _, err := f.operator(gws[0]).SetLimits(ctx, api.Limits{User: api.Rule{RPS: 1000, Burst: 1000}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	})

	// A sale of one unit: sold out through gateway 1, flagged on the others by push.
	soldA, soldI := f.sale(gws[0], "sync", 1, 1)
	edgeSoldOut := `seckill_gateway_shed_total{layer="cache",reason="sold_out"}`
	t.Run("a sold-out flag reaches every gateway within 200ms and clears after a cancel", func(t *testing.T) {
		for _, g := range gws[1:] { // each gateway knows the sale before it sells out
			if _, err := f.shopper(g, nextUser()).PublicActivity(ctx, soldA); err != nil {
				t.Fatal(err)
			}
		}
		first := nextUser()
		o, err := buy(gws[0], first, soldA, soldI, "")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		for _, g := range gws[1:] {
			before := metric(t, g, edgeSoldOut)
			if _, err := buy(g, nextUser(), soldA, soldI, ""); statusOf(err) != http.StatusConflict {
				t.Fatalf("%s: got %v, want 409 sold_out", g.name, err)
			}
			if after := metric(t, g, edgeSoldOut); after != before+1 {
				t.Fatalf("%s answered sold out without the flag (edge refusals %v -> %v)", g.name, before, after)
			}
		}
		if _, err := f.shopper(gws[0], first).Cancel(ctx, o.OrderID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := buy(gws[2], nextUser(), soldA, soldI, ""); err != nil {
			t.Fatalf("the unit given back by a cancel through gateway 1 did not sell through gateway 3: %v", err)
		}
	})

	t.Run("the stats of any gateway are the fleet's sums", func(t *testing.T) {
		// Gateways 2, 3 and the late one each refused one order at the edge above.
		want := int64(len(gws) - 1)
		within(t, "the fleet's edge refusals summed", 5*time.Second, func() bool {
			st, err := f.operator(gws[0]).Stats(ctx, soldA)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for k, v := range st.GatewayShed {
				if strings.Contains(k, "sold_out") {
					n += v
				}
			}
			return n == want
		})
	})

	t.Run("a retry after a 504 gets the first attempt's ticket from any gateway", func(t *testing.T) {
		a, i := f.sale(gws[0], "async", 1, 1)
		// A gateway whose backend's answers come late: requests reach it at once.
		proxy := testenv.NewProxy(t, addrs[0])
		slow := f.start("gateway-slow", "gateway", "SECKILL_BACKEND_ADDRS="+proxy.Addr(), "SECKILL_GATEWAY_RPC_TIMEOUT=500ms")
		if _, err := f.shopper(slow, nextUser()).PublicActivity(ctx, a); err != nil { // cached at its edge
			t.Fatal(err)
		}
		proxy.Delay(time.Second)
		u, key := nextUser(), "k-"+randhex.String(6)
		if _, err := buy(slow, u, a, i, key); statusOf(err) != http.StatusGatewayTimeout {
			t.Fatalf("through a gateway whose backend answers late: got %v, want 504", err)
		}
		f.kill(slow)
		within(t, "the first attempt takes the unit", 5*time.Second, func() bool {
			n, _, err := f.stock.Available(ctx, a, i, 1)
			return err == nil && n == 0
		})
		time.Sleep(200 * time.Millisecond) // sold out: flagged on every gateway
		first, err := buy(gws[1], u, a, i, key)
		if err != nil {
			t.Fatalf("the retry through gateway 2 (item flagged sold out): %v", err)
		}
		again, err := buy(gws[2], u, a, i, key)
		if err != nil || again.Ticket != first.Ticket {
			t.Fatalf("the retry through gateway 3: got %+v, %v; want ticket %s", again, err, first.Ticket)
		}
		if _, err := buy(gws[2], nextUser(), a, i, ""); statusOf(err) != http.StatusConflict {
			t.Fatalf("another user: got %v, want sold out", err)
		}
	})

	t.Run("the duties' lease moves when its holder is killed", func(t *testing.T) {
		held := func() []int {
			var out []int
			for i, b := range backends {
				if b.alive() && metric(t, b, "seckill_backend_lease_held") == 1 {
					out = append(out, i)
				}
			}
			return out
		}
		within(t, "one backend holds the lease", 2*leaseTTL, func() bool { return len(held()) == 1 })
		holder := held()[0]
		f.kill(backends[holder])
		took := within(t, "the other backend takes the lease", leaseTTL+leaseTTL/3+2*time.Second, func() bool {
			h := held()
			return len(h) == 1 && h[0] != holder
		})
		t.Logf("the lease moved %v after its holder was killed (lease %v)", took.Round(time.Millisecond), leaseTTL)
		f.restart(backends[holder])
		time.Sleep(2 * leaseTTL)
		if h := held(); len(h) != 1 {
			t.Fatalf("backends %v hold the lease, want exactly one", h)
		}
	})

	t.Run("a gateway killed mid-sale loses nothing", func(t *testing.T) {
		victim := gws[1]
		f.sellOut(t, gws, "async", func() { f.kill(victim) })
		gws = slices.DeleteFunc(gws, func(p *fleetProc) bool { return p == victim })
	})

	for _, strategy := range []string{"async", "sync"} {
		t.Run("a backend and a worker killed mid-sale lose nothing: "+strategy, func(t *testing.T) {
			var workers []*fleetProc
			for _, p := range f.procs {
				if p.role == "worker" && p.alive() {
					workers = append(workers, p)
				}
			}
			f.sellOut(t, gws, strategy, func() {
				f.kill(backends[0])
				f.kill(workers[0])
				time.Sleep(time.Second)
				f.restart(backends[0])
				f.restart(workers[0])
			})
		})
	}
}

// sellOut runs a sale of stock units to 3x as many shoppers over the live gateways,
// disturb running once a quarter of the units are sold, each shopper a client behind a load balancer: a
// failed connection, a 503 or a 504 is retried with the same key on the next
// gateway. Then every unit must be sold, each admitted ticket ended, and MySQL
// and Redis must hold exactly the units sold.
func (f *testFleet) sellOut(t *testing.T, gws []*fleetProc, strategy string, disturb func()) {
	ctx := context.Background()
	const stock = 200
	a, i := f.sale(gws[0], strategy, stock, 1)
	live := slices.Clone(gws)
	var wg sync.WaitGroup
	var admitted, soldOut, retried atomic.Int64
	disturbed := make(chan struct{})
	go func() { // mid-sale: once a quarter of the units are sold
		defer close(disturbed)
		for admitted.Load() < stock/4 {
			time.Sleep(2 * time.Millisecond)
		}
		disturb()
	}()
	sem := make(chan struct{}, 24)
	for n := range 3 * stock {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A shopper: an answer lost (a failed connection, a 503, a 504) is asked
			// again with the same key on the next gateway; a ticket that ends
			// failed took nothing, so the shopper tries again with a new key.
			// The shopper keeps trying for as long as a client would wait out an
			// outage (a count of tries would end with the outage when each refusal
			// comes back at once).
			u, key := f.nextUser(), "m-"+randhex.String(6)
			giveUp := time.Now().Add(45 * time.Second)
			var last error
			for try := 0; ; try++ {
				if time.Now().After(giveUp) {
					f.fail(t, false, "user %d: no outcome after %d tries in 45 s; the last answer: %v", u, try, last)
					return
				}
				o, err := f.buy(live[(n+try)%len(live)], u, a, i, key)
				last = err
				switch st := statusOf(err); {
				case err == nil && o.OrderID != "":
					admitted.Add(1)
					return
				case err == nil:
					switch end := f.ticketEnd(t, gws[0], u, o.Ticket); end {
					case "created":
						admitted.Add(1)
						return
					case "failed":
						key = "m-" + randhex.String(6)
						retried.Add(1)
						continue
					}
					return
				case st == http.StatusConflict:
					soldOut.Add(1)
					return
				case st == -1 || st == http.StatusServiceUnavailable || st == http.StatusGatewayTimeout:
					retried.Add(1)
					time.Sleep(50 * time.Millisecond)
				case st == http.StatusTooManyRequests: // its retries met the per-user limit
					time.Sleep(300 * time.Millisecond)
				default:
					f.fail(t, false, "user %d: %v", u, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-disturbed
	t.Logf("admitted %d, sold out %d, retried %d", admitted.Load(), soldOut.Load(), retried.Load())
	if admitted.Load() != stock {
		f.fail(t, true, "admitted %d of %d units with demand 3x the stock", admitted.Load(), stock)
	}
	var orders, users, left int64
	f.db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT user_id) FROM orders WHERE item_id = ? AND status = 'created'`, i).Scan(&orders, &users)
	f.db.QueryRowContext(ctx, `SELECT SUM(available) FROM item_stock WHERE item_id = ?`, i).Scan(&left)
	if orders != stock || users != stock || left != 0 {
		f.fail(t, true, "orders %d by %d users, mysql %d left; want %d, %d, 0", orders, users, left, stock, stock)
	}
	// Redis holds the same within moments: a ticket's settle may trail the answer
	// its retry got from MySQL by a round trip.
	var avail, inFlight int64
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		st, err := f.stock.State(ctx, a, i, 1)
		if err != nil {
			t.Fatal(err)
		}
		avail, inFlight = st.Available(), int64(st.Tickets)
		if avail == 0 && inFlight == 0 {
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Logf("redis settled %v after the last answer", d.Round(time.Millisecond))
			}
			return
		}
		if time.Since(start) > 5*time.Second {
			break
		}
	}
	f.fail(t, true, "redis %d left with %d in flight 5 s after the last answer; want 0, 0", avail, inFlight)
}
