package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/kitex/pkg/rpcinfo"
	"github.com/cloudwego/kitex/pkg/transmeta"
	kserver "github.com/cloudwego/kitex/server"
	gomysql "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/bench/load"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// Baseline names.
const (
	BaseHertz      = "bare hertz"
	BaseHertzKitex = "hertz -> kitex"
	BaseRedis      = "redis EVALSHA"
	BaseMySQL      = "mysql hot-row UPDATE"
)

// BaselineReport is the ceiling one layer sets on its own.
type BaselineReport struct {
	Name        string       `json:"name"`
	What        string       `json:"what"`
	Concurrency int          `json:"concurrency"`
	Ops         int64        `json:"ops"`
	Errors      int64        `json:"errors"`
	OpsPerSec   float64      `json:"ops_per_s"`
	Latency     load.Summary `json:"latency"`
	Skipped     string       `json:"skipped,omitempty"` // why it did not run
}

func (b *BaselineReport) ok() bool { return b != nil && b.Skipped == "" && b.OpsPerSec > 0 }

// runBaseline drives op with the closed loop for d.
func runBaseline(ctx context.Context, name, what string, conc int, d time.Duration, op func(ctx context.Context) error) BaselineReport {
	// Warm up first (connections, pools, caches), unmeasured.
	load.Run(ctx, load.Config{Mode: load.Closed, Concurrency: conc, Count: load.MaxCount, Duration: min(d/4, 500*time.Millisecond)}, //nolint:errcheck
		func(ctx context.Context, _ int, _ time.Time) load.Outcome { op(ctx); return load.Outcome{} }, nil)
	res, err := load.Run(ctx, load.Config{Mode: load.Closed, Concurrency: conc, Count: load.MaxCount, Duration: d},
		func(ctx context.Context, _ int, _ time.Time) load.Outcome {
			if err := op(ctx); err != nil {
				return load.Outcome{Code: "error"}
			}
			return load.Outcome{Code: "ok"}
		}, nil)
	b := BaselineReport{Name: name, What: what, Concurrency: conc}
	if res == nil {
		b.Skipped = err.Error()
		return b
	}
	b.Ops, b.Errors = res.Codes["ok"], res.Codes["error"]
	if b.Ops == 0 {
		b.Skipped = fmt.Sprintf("every one of %d operations failed", b.Errors)
		return b
	}
	if s := res.Ended.Sub(res.Started).Seconds(); s > 0 {
		b.OpsPerSec = round1(float64(b.Ops) / s)
	}
	b.Latency = res.Latency.Summary()
	return b
}

// startHertz serves h on a free loopback port.
func startHertz(h func(context.Context, *app.RequestContext)) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := server.New(server.WithListener(ln), server.WithDisablePrintRoute(true), server.WithExitWaitTime(time.Second),
		server.WithIdleTimeout(2*time.Minute))
	srv.POST("/api/v1/orders", h) // the path the orders take, so requests are alike
	go srv.Run()                  //nolint:errcheck // returns when stopped (not Spin: that would take the process's signals)
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(ctx) //nolint:errcheck
	}
	// Wait until it answers.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("baseline hertz server did not start: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ln.Addr().String(), stop, nil
}

var orderBody = []byte(`{"activity_id":1,"item_id":1,"quantity":1}`)

// postLoop is the op of the HTTP baselines: the same POST a shopper sends.
func postLoop(hc *http.Client, url string) func(ctx context.Context) error {
	shop := &load.Shop{HTTP: hc, Base: url, Tries: 1}
	return func(ctx context.Context) error {
		a := shop.PlaceOrder(ctx, load.OrderRequest{Token: "baseline", ActivityID: 1, ItemID: 1, Quantity: 1})
		if a.Status != http.StatusOK {
			return fmt.Errorf("status %d %s", a.Status, a.Code)
		}
		return nil
	}
}

// baselineHertz: a hertz handler that answers 200 to POST, nothing else.
func baselineHertz(ctx context.Context, hc *http.Client, conc int, d time.Duration) BaselineReport {
	what := "hertz server on 127.0.0.1 answering 200 {} to POST, same client and request as the orders"
	addr, stop, err := startHertz(func(_ context.Context, c *app.RequestContext) {
		c.Data(http.StatusOK, "application/json", []byte(`{}`))
	})
	if err != nil {
		return BaselineReport{Name: BaseHertz, What: what, Skipped: err.Error()}
	}
	defer stop()
	defer hc.CloseIdleConnections() // (before stop: nothing for the shutdown to wait for)
	return runBaseline(ctx, BaseHertz, what, conc, d, postLoop(hc, "http://"+addr))
}

// echoBackend is a kitex server that only answers Ping.
type echoBackend struct{ rpc.Seckill }

func (echoBackend) Ping(_ context.Context, req *rpc.PingReq) (*rpc.PingResp, error) {
	return &rpc.PingResp{Payload: req.Payload}, nil
}

func startEchoBackend() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := seckill.NewServer(&echoBackend{}, kserver.WithListener(ln),
		kserver.WithServerBasicInfo(&rpcinfo.EndpointBasicInfo{ServiceName: "seckill.bench.echo"}),
		kserver.WithMetaHandler(transmeta.ServerTTHeaderHandler), kserver.WithExitWaitTime(time.Second))
	go srv.Run() //nolint:errcheck
	return ln.Addr().String(), func() { srv.Stop() }, nil
}

// baselineHertzKitex: a hertz handler that calls the backend's Ping over kitex with
// the gateway's own client settings.
func baselineHertzKitex(ctx context.Context, hc *http.Client, backendAddr string, creds rpcauth.Secrets, conc int, d time.Duration) BaselineReport {
	what := "hertz handler calling Ping over kitex (gateway.NewBackendClient) on the system's backend"
	if backendAddr == "" {
		addr, stop, err := startEchoBackend()
		if err != nil {
			return BaselineReport{Name: BaseHertzKitex, What: what, Skipped: err.Error()}
		}
		defer stop()
		backendAddr = addr
		what = "hertz handler calling Ping over kitex (gateway.NewBackendClient) on an echo server of the bench's own (the backend's address is unknown)"
	}
	cl, err := gateway.NewBackendClient(gateway.Config{BackendAddrs: []string{backendAddr}, RPCTimeout: 3 * time.Second, RPCSecrets: creds})
	if err != nil {
		return BaselineReport{Name: BaseHertzKitex, What: what, Skipped: err.Error()}
	}
	payload := []byte("ping")
	addr, stop, err := startHertz(func(ctx context.Context, c *app.RequestContext) {
		if _, err := cl.Ping(ctx, &rpc.PingReq{Payload: payload}); err != nil {
			c.Data(http.StatusServiceUnavailable, "application/json", []byte(`{"error":"unavailable"}`))
			return
		}
		c.Data(http.StatusOK, "application/json", []byte(`{}`))
	})
	if err != nil {
		return BaselineReport{Name: BaseHertzKitex, What: what, Skipped: err.Error()}
	}
	defer stop()
	defer hc.CloseIdleConnections()
	return runBaseline(ctx, BaseHertzKitex, what, conc, d, postLoop(hc, "http://"+addr))
}

// baselineRedis: EVALSHA of `return 1`.
func baselineRedis(ctx context.Context, t *Target, conc int, d time.Duration) BaselineReport {
	what := "EVALSHA of a one-line Lua script (return 1) on " + t.redisDesc()
	if len(t.RedisAddrs) == 0 {
		return BaselineReport{Name: BaseRedis, What: "EVALSHA of a one-line Lua script", Skipped: "no Redis address given"}
	}
	rdb := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: t.RedisAddrs, Password: t.RedisPassword,
		IsClusterMode: t.RedisCluster, PoolSize: conc})
	defer rdb.Close()
	script := goredis.NewScript(`return 1`)
	if err := script.Load(ctx, rdb).Err(); err != nil {
		return BaselineReport{Name: BaseRedis, What: what, Skipped: err.Error()}
	}
	key := []string{"sk:{bench}:evalsha"}
	return runBaseline(ctx, BaseRedis, what, conc, d, func(ctx context.Context) error {
		return script.EvalSha(ctx, rdb, key).Err()
	})
}

// baselineMySQL: the single-row UPDATE loop on 8 connections, on a scratch database
// of its own, dropped afterwards.
func baselineMySQL(ctx context.Context, dsn string, d time.Duration) BaselineReport {
	const conns = 8
	what := "UPDATE item_stock SET available = available - 1 WHERE item_id = ? AND available > 0, autocommit, one row, 8 connections, scratch database"
	skip := func(err error) BaselineReport {
		return BaselineReport{Name: BaseMySQL, What: what, Concurrency: conns, Skipped: err.Error()}
	}
	if dsn == "" {
		return skip(errors.New("no MySQL DSN given"))
	}
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return skip(err)
	}
	adminDB, err := mysql.Open(ctx, cfg.FormatDSN(), 2)
	if err != nil {
		return skip(err)
	}
	defer adminDB.Close()
	name := "seckill_bench_scratch_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	if _, err := adminDB.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return skip(fmt.Errorf("create the scratch database: %w", err))
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		adminDB.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name) //nolint:errcheck // best effort
	}()
	cfg.DBName = name
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return skip(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	for _, q := range []string{
		"CREATE TABLE item_stock (item_id BIGINT NOT NULL PRIMARY KEY, available BIGINT NOT NULL)",
		"INSERT INTO item_stock (item_id, available) VALUES (1, 1000000000000)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return skip(fmt.Errorf("scratch table: %w", err))
		}
	}
	stmt, err := db.PrepareContext(ctx, "UPDATE item_stock SET available = available - 1 WHERE item_id = ? AND available > 0")
	if err != nil {
		return skip(err)
	}
	defer stmt.Close()
	return runBaseline(ctx, BaseMySQL, what, conns, d, func(ctx context.Context) error {
		res, err := stmt.ExecContext(ctx, 1)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errors.New("no row updated")
		}
		return nil
	})
}
