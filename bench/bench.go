// Package bench measures the whole system: it drives the gateway's HTTP API with its
// own load generator (bench/load) through the scenarios of the issue (a hot item, a
// mixed sale, a sustained rate) under each ordering strategy, next to baselines of the
// layers underneath (bare hertz, hertz -> kitex, a Redis EVALSHA, a MySQL hot-row
// UPDATE), checks the invariants after every run, and reports JSON, Markdown and SVG.
//
// The package does not start the system: the seckill command does (bench_cmd.go,
// demo.go) and hands a Target in.
package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/bench/load"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/auth"
)

// Target is the running system under test.
type Target struct {
	URL        string // the gateway
	Explicit   bool   // the user named URL (it may then be a non-loopback host)
	AdminToken string
	JWTSecret  string
	// MySQLDSN is the system's database, for the direct SQL checks and the hot-row
	// baseline (on a scratch database beside it); "" skips both.
	MySQLDSN      string
	RedisAddrs    []string // for the EVALSHA baseline; empty skips it
	RedisCluster  bool
	RedisPassword string
	// BackendAddr is a kitex backend for the hertz -> kitex baseline; "" uses an echo
	// server of the bench's own. RPCSecrets are its credentials (backend/rpcauth).
	BackendAddr string
	RPCSecrets  rpcauth.Secrets
	// InProcess: the system runs in this process, so its CPU and memory figures
	// include gateway, backend and worker.
	InProcess bool
	StandIns  []string       // embedded stand-ins in use
	Services  map[string]int // external service processes to account, name -> pid
}

func (t *Target) redisDesc() string {
	if t.RedisCluster {
		return "Redis Cluster " + strings.Join(t.RedisAddrs, ",")
	}
	for _, s := range t.StandIns {
		if strings.HasPrefix(s, "redis") {
			return "the embedded Redis stand-in (miniredis)"
		}
	}
	return "Redis " + strings.Join(t.RedisAddrs, ",")
}

// Options choose what runs.
type Options struct {
	Scenarios  []string // of Scenarios; empty: all
	Strategies []string // of Strategies; empty: all
	Sizes      Sizes
	Buckets    int // bucket count of the bucket strategy (default 4)

	Tries         int           // tries per order, the first included (default 3)
	Timeout       time.Duration // per try (default 5 s)
	SettleTimeout time.Duration // after the load, how long the system may take to settle (default 2 min)

	Baselines           bool
	BaselineDuration    time.Duration // each (default 3 s)
	BaselineConcurrency int           // clients of the HTTP and Redis baselines (default: the hot scenario's)

	// KeepLimits leaves the gateway's rate limits alone; otherwise the bench sets
	// generous ones for its run and puts the old ones back afterwards.
	KeepLimits bool

	// CPUProfile, when set, is the prefix of a CPU profile of this process written for
	// each run, over its load and settle: CPUProfile-<scenario>-<strategy>.pprof.
	// Worth it when the system runs in this process (Target.InProcess).
	CPUProfile string

	Progress io.Writer // status line; nil: none
	TTY      bool      // Progress is a terminal: redraw in place
	UserBase int64     // shoppers are UserBase+1 ...; default 1,000,000
	Tag      string    // names this run's activities and idempotency keys; default from the clock
	Notes    []string  // added to the report
}

// BenchLimits are the rate limits the bench sets: every layer stays on the path but
// none sheds the bench's own users.
var BenchLimits = api.Limits{
	Global:   api.Rule{RPS: 1_000_000, Burst: 1_000_000},
	Read:     api.Rule{RPS: 1_000_000, Burst: 1_000_000},
	User:     api.Rule{RPS: 1_000, Burst: 1_000},
	UserRead: api.Rule{RPS: 1_000, Burst: 1_000},
	Item:     api.Rule{RPS: 1_000_000, Burst: 1_000_000},
	IP:       api.Rule{RPS: 1_000_000, Burst: 1_000_000},
}

// RunReport is one scenario under one strategy.
type RunReport struct {
	Scenario    string  `json:"scenario"`
	Strategy    string  `json:"strategy"`
	Description string  `json:"description"`
	ActivityID  int64   `json:"activity_id"`
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"`
	Items       int     `json:"items"`
	Stock       int64   `json:"stock"`
	Users       int     `json:"users"`

	Planned        int     `json:"planned"`
	Sent           int64   `json:"sent"`
	Missed         int64   `json:"missed,omitempty"`
	Late           int64   `json:"late,omitempty"`
	Retries        int64   `json:"retries"`
	LoadSeconds    float64 `json:"load_s"`
	AttemptsPerSec float64 `json:"attempts_per_s"`

	Answers  map[string]int64 `json:"answers"` // "202 pending": n
	Admitted int64            `json:"admitted"`

	Orders        int64   `json:"orders"`
	UnitsSold     int64   `json:"units_sold"`
	SettleSeconds float64 `json:"settle_s"`
	OrdersPerSec  float64 `json:"orders_per_s"`
	// CommitSeconds is the span of the orders' created_at in MySQL (first to last
	// order), and CommitPerSec the orders over it: the rate while there was work.
	CommitSeconds float64 `json:"commit_s,omitempty"`
	CommitPerSec  float64 `json:"commit_per_s,omitempty"`

	Answer  load.Summary  `json:"answer_latency"`
	Ticket  *load.Summary `json:"ticket_latency,omitempty"`
	SendLag *load.Summary `json:"send_lag,omitempty"`

	TicketsCreated int   `json:"tickets_created,omitempty"`
	TicketsFailed  int   `json:"tickets_failed,omitempty"`
	TicketPolls    int64 `json:"ticket_polls,omitempty"`

	GatewayShed map[string]int64 `json:"gateway_shed"`
	BackendShed map[string]int64 `json:"backend_shed"`
	ShedByLayer map[string]int64 `json:"shed_by_layer"`

	Usage      Usage              `json:"usage"`
	Ratios     map[string]float64 `json:"ratios,omitempty"`
	Invariants []Check            `json:"invariants"`
	OK         bool               `json:"ok"`
	// Flood is the flood scenario's own figures (flood.go).
	Flood *FloodReport `json:"flood,omitempty"`

	// Around are the baselines measured just before and just after the run, ops/s by
	// name (hot: bare hertz; capacity: hertz -> kitex and the MySQL hot row); the
	// run's ratios to them are to their mean, since a shared machine's load moves
	// between the report's baselines and a run.
	Around map[string][2]float64 `json:"baselines_around,omitempty"`
}

// Report is a whole bench run.
type Report struct {
	Tool        string           `json:"tool"`
	Started     time.Time        `json:"started"`
	WallSeconds float64          `json:"wall_s"`
	LoadAvgEnd  float64          `json:"load_avg_end"`
	Machine     Machine          `json:"machine"`
	Target      TargetInfo       `json:"target"`
	Sizes       Sizes            `json:"sizes"`
	Buckets     int              `json:"buckets"`
	Limits      *api.Limits      `json:"limits_set,omitempty"`
	Baselines   []BaselineReport `json:"baselines,omitempty"`
	Runs        []RunReport      `json:"runs"`
	OK          bool             `json:"ok"`
	Failures    []string         `json:"failures,omitempty"`
	Notes       []string         `json:"notes,omitempty"`
	ActivityIDs []int64          `json:"activity_ids"`
}

// TargetInfo is the part of the Target a report shows (no secrets).
type TargetInfo struct {
	URL       string         `json:"url"`
	InProcess bool           `json:"in_process"`
	StandIns  []string       `json:"stand_ins,omitempty"`
	Services  map[string]int `json:"services,omitempty"`
}

type bencher struct {
	opts   Options
	target *Target
	shop   *load.Shop
	admin  *api.Client // the operator API
	prog   *progress
	tokens []string
	report *Report
	base   map[string]*BaselineReport
}

func (o *Options) defaults() error {
	if len(o.Scenarios) == 0 {
		o.Scenarios = Scenarios
	}
	if len(o.Strategies) == 0 {
		o.Strategies = Strategies
	}
	for _, s := range o.Strategies {
		if !slices.Contains(Strategies, s) {
			return fmt.Errorf("unknown strategy %q (want sync, async or bucket)", s)
		}
	}
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios, s) && s != Flood {
			return fmt.Errorf("unknown scenario %q (want hot, mixed, sustained, capacity or flood)", s)
		}
	}
	if o.Buckets <= 0 {
		o.Buckets = 4
	}
	if o.SettleTimeout <= 0 {
		o.SettleTimeout = 2 * time.Minute
	}
	if o.BaselineDuration <= 0 {
		o.BaselineDuration = 3 * time.Second
	}
	if o.BaselineConcurrency <= 0 {
		o.BaselineConcurrency = max(o.Sizes.HotConcurrency, 1)
	}
	if o.UserBase <= 0 {
		o.UserBase = 1_000_000
	}
	if o.Tag == "" {
		o.Tag = "b" + time.Now().UTC().Format("0102150405")
	}
	return nil
}

// Run benches target. The report comes back whenever the runs happened; check
// report.OK for the invariants. The error is for a run that could not be made.
func Run(ctx context.Context, opts Options, target *Target) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	u, err := load.CheckTarget(target.URL, target.Explicit)
	if err != nil {
		return nil, err
	}
	allow := ""
	if target.Explicit {
		allow = u.Host
		if u.Port() == "" {
			allow = u.Host + ":80"
		}
	}
	conns := max(opts.Sizes.HotConcurrency, opts.Sizes.MixedConcurrency, opts.Sizes.MaxInFlight, opts.Sizes.CapacityConcurrency, opts.BaselineConcurrency) + 64
	hc := load.NewHTTPClient(conns, allow)
	defer hc.CloseIdleConnections()
	base := strings.TrimRight(u.String(), "/")
	b := &bencher{
		opts:   opts,
		target: target,
		shop:   &load.Shop{HTTP: hc, Base: base, Tries: opts.Tries, Timeout: opts.Timeout},
		admin:  &api.Client{BaseURL: base, AdminToken: target.AdminToken, HTTP: hc, Timeout: 15 * time.Second},
		prog:   newProgress(opts.Progress, opts.TTY),
		base:   map[string]*BaselineReport{},
	}
	r := &Report{Tool: "seckill bench", Started: time.Now().UTC(), Machine: ReadMachine(), Sizes: opts.Sizes, Buckets: opts.Buckets,
		Target: TargetInfo{URL: base, InProcess: target.InProcess, StandIns: target.StandIns, Services: target.Services},
		Notes:  append([]string(nil), opts.Notes...), OK: true}
	b.report = r
	if target.InProcess {
		r.Notes = append(r.Notes, "gateway, backend and worker run inside the bench process: its CPU and memory figures are theirs and the load generator's together, and they share the cores")
	}
	if err := b.healthy(ctx); err != nil {
		return nil, err
	}
	if !opts.KeepLimits {
		old, err := b.admin.Limits(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the rate limits: %w", err)
		}
		if _, err := b.admin.SetLimits(ctx, BenchLimits); err != nil {
			return nil, fmt.Errorf("set the bench's rate limits: %w", err)
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := b.admin.SetLimits(rctx, *old); err != nil {
				b.prog.say("bench: could not put the old rate limits back: %v", err)
			}
		}()
		l := BenchLimits
		r.Limits = &l
		msg := fmt.Sprintf("rate limits set for the bench via PUT /admin/v1/limits (restored afterwards): per user %.0f/s burst %d (reads alike); global, reads, per item and per IP %.0f/s", BenchLimits.User.RPS, BenchLimits.User.Burst, BenchLimits.Global.RPS)
		r.Notes = append(r.Notes, msg)
		b.prog.say("bench: %s", msg)
	} else {
		r.Notes = append(r.Notes, "rate limits left as configured (-keep-limits): 429 answers are the rate-limit layer shedding")
	}

	var scs []*scenario
	maxUsers := 0
	for _, name := range opts.Scenarios {
		sc, err := buildScenario(name, opts.Sizes)
		if err != nil {
			return nil, err
		}
		scs = append(scs, sc)
		maxUsers = max(maxUsers, sc.users)
	}
	if err := b.mintTokens(maxUsers); err != nil {
		return nil, err
	}
	if opts.Baselines {
		b.runBaselines(ctx)
	}
	for _, sc := range scs {
		for _, strategy := range opts.Strategies {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			var rrs []RunReport
			if sc.name == Flood {
				rrs, err = b.runFlood(ctx, sc, strategy) // the waiting room off, then on
			} else {
				var rr RunReport
				rr, err = b.runOne(ctx, sc, strategy)
				rrs = []RunReport{rr}
			}
			if err != nil {
				return r, fmt.Errorf("%s/%s: %w", sc.name, strategy, err)
			}
			for _, rr := range rrs {
				r.Runs = append(r.Runs, rr)
				if !rr.OK {
					r.OK = false
					for _, c := range rr.Invariants {
						if !c.OK {
							r.Failures = append(r.Failures, fmt.Sprintf("%s/%s: %s: %s", rr.Scenario, rr.Strategy, c.Name, c.Detail))
						}
					}
				}
			}
		}
	}
	r.WallSeconds = round1(time.Since(r.Started).Seconds())
	r.LoadAvgEnd = LoadAvg1()
	return r, nil
}

func (b *bencher) healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.shop.Base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := b.shop.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("the gateway at %s does not answer: %w", b.shop.Base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the gateway at %s: /healthz answered %d", b.shop.Base, resp.StatusCode)
	}
	return nil
}

// mintTokens makes every shopper's token up front, off the measured path.
func (b *bencher) mintTokens(n int) error {
	b.tokens = make([]string, n)
	secret := []byte(b.target.JWTSecret)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				tok, err := auth.Mint(secret, b.opts.UserBase+int64(i)+1, 6*time.Hour)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				b.tokens[i] = tok
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("mint tokens: %w", *p)
	}
	return nil
}

func (b *bencher) runBaselines(ctx context.Context) {
	d, conc := b.opts.BaselineDuration, b.opts.BaselineConcurrency
	type job struct {
		name string
		run  func() BaselineReport
	}
	jobs := []job{
		{BaseHertz, func() BaselineReport { return baselineHertz(ctx, b.shop.HTTP, conc, d) }},
		{BaseHertzKitex, func() BaselineReport {
			return baselineHertzKitex(ctx, b.shop.HTTP, b.target.BackendAddr, b.target.RPCSecrets, conc, d)
		}},
		{BaseRedis, func() BaselineReport { return baselineRedis(ctx, b.target, conc, d) }},
		{BaseMySQL, func() BaselineReport { return baselineMySQL(ctx, b.target.MySQLDSN, d) }},
	}
	for _, j := range jobs {
		b.prog.begin("baseline", j.name, 0, nil, nil)
		rep := j.run()
		b.prog.end()
		if rep.Skipped != "" {
			b.prog.say("baseline %s skipped: %s", rep.Name, rep.Skipped)
		} else {
			b.prog.say("baseline %-22s %9.0f ops/s  p50 %.3f ms  p99 %.3f ms", rep.Name, rep.OpsPerSec, rep.Latency.P50, rep.Latency.P99)
		}
		b.report.Baselines = append(b.report.Baselines, rep)
	}
	for i := range b.report.Baselines {
		b.base[b.report.Baselines[i].Name] = &b.report.Baselines[i]
	}
}

func (b *bencher) runOne(ctx context.Context, sc *scenario, strategy string) (RunReport, error) {
	label := sc.name + "/" + strategy
	buckets := 1
	if strategy == "bucket" {
		buckets = b.opts.Buckets
	}
	act, err := createSale(ctx, b.admin, fmt.Sprintf("bench %s %s %s", sc.name, strategy, b.opts.Tag), strategy, buckets, sc.perUser, sc.items)
	if err != nil {
		return RunReport{}, err
	}
	b.report.ActivityIDs = append(b.report.ActivityIDs, act.ID)
	itemIDs := make([]int64, len(act.Items))
	for k, it := range act.Items {
		itemIDs[k] = it.ID
	}
	var before map[string]float64
	if bracketed[sc.name] && b.opts.Baselines {
		before = b.bracket(ctx, sc.name, label, "baselines before")
	}
	// Every 202 is followed, whatever the strategy: a sync order whose transaction
	// is slow may be answered with a ticket too.
	poller := &load.Poller{Shop: b.shop, Workers: 32}
	poller.Start(ctx)
	var followed atomic.Int64
	recs := make([]attemptRec, sc.pace.Count)
	attempt := func(ctx context.Context, i int, due time.Time) load.Outcome {
		u, k := sc.pick(i)
		tok := b.tokens[u]
		ans := b.shop.PlaceOrder(ctx, load.OrderRequest{Token: tok, ActivityID: act.ID, ItemID: itemIDs[k], Quantity: 1,
			Key: fmt.Sprintf("%s-%d-%d", b.opts.Tag, act.ID, i)})
		recs[i] = attemptRec{sent: true, user: int32(u), item: int32(k), status: int16(ans.Status), tries: int8(min(ans.Tries, 127)),
			ticket: ans.Ticket, orderID: ans.OrderID}
		if ans.Status == http.StatusAccepted && ans.Ticket != "" {
			followed.Add(1)
			poller.Add(load.Ticket{ID: ans.Ticket, Token: tok, Started: due, ItemID: itemIDs[k], Attempt: i})
		}
		return load.Outcome{Code: ans.Label(), Retries: ans.Tries - 1}
	}
	pending := func() string {
		if followed.Load() == 0 {
			return ""
		}
		return fmt.Sprintf("tickets open %d", poller.Outstanding())
	}
	live := &load.Live{}
	stopProfile, err := startProfile(b.opts.CPUProfile, sc.name, strategy)
	if err != nil {
		poller.Stop()
		return RunReport{}, err
	}
	defer stopProfile()
	m := startMeter(b.target.Services)
	b.prog.begin(label, "load", int64(sc.pace.Count), live, pending)
	res, err := load.Run(ctx, sc.pace, attempt, live)
	b.prog.end()
	if err != nil {
		m.stop()
		poller.Stop()
		return RunReport{}, err
	}

	// Settle: wait until nothing is pending or in flight and Redis agrees with MySQL.
	st, settled, settledAt := b.settle(ctx, label, act.ID, poller)
	stopProfile()
	finals := poller.Stop()
	polls := poller.Polls.Load()
	usage := m.stop()
	if st == nil {
		return RunReport{}, fmt.Errorf("read the stats after the run: no answer")
	}

	rr := RunReport{Scenario: sc.name, Strategy: strategy, Description: sc.description, ActivityID: act.ID, Mode: string(sc.pace.Mode),
		Concurrency: sc.pace.Concurrency, Items: len(sc.items), Stock: sc.stock(), Users: sc.users, Planned: sc.pace.Count,
		Sent: res.Sent, Missed: res.Missed, Late: res.Late, Retries: res.Retries, Answers: res.Codes,
		GatewayShed: st.GatewayShed, BackendShed: st.BackendShed, ShedByLayer: map[string]int64{}, Usage: usage}
	if sc.pace.Mode == load.Open {
		rr.Rate = sc.pace.Rate
		lag := res.SendLag.Summary()
		rr.SendLag = &lag
	}
	rr.measured(res, st, settledAt, followed.Load() > 0, poller, finals, polls)
	if before != nil {
		after := b.bracket(ctx, sc.name, label, "baselines after")
		rr.Around = map[string][2]float64{}
		for name, ops := range before {
			if a, ok := after[name]; ok {
				rr.Around[name] = [2]float64{ops, a}
			}
		}
	}
	rr.Ratios = b.ratios(&rr)

	var db *sql.DB
	if b.target.MySQLDSN != "" {
		if db, err = mysql.Open(ctx, b.target.MySQLDSN, 2); err != nil {
			return RunReport{}, fmt.Errorf("open MySQL for the checks: %w", err)
		}
		defer db.Close()
	}
	if db != nil {
		rr.CommitSeconds, rr.CommitPerSec = commitWindow(ctx, db, act.ID)
	}
	rr.Invariants = checkInvariants(ctx, checkInput{sc: sc, act: act, stats: st, recs: recs, finals: finals, async: followed.Load() > 0,
		db: db, settled: settled, settleIn: b.opts.SettleTimeout.String(), userBase: b.opts.UserBase})
	verdict := rr.judge()
	b.prog.say("%-18s %d attempts %.0f/s, %d orders %.0f/s, answer p50 %.1f ms p99 %.1f ms, settled in %.2fs: %s",
		label, rr.Sent, rr.AttemptsPerSec, rr.Orders, rr.OrdersPerSec, rr.Answer.P50, rr.Answer.P99, rr.SettleSeconds, verdict)
	return rr, nil
}

// finalStats reads the stats once more, retrying a busy backend for a while; if it
// still does not answer, the last snapshot of the settle wait stands in (the run is
// then unsettled and fails its checks) so one swamped run does not end the bench.
// judge sets OK from the run's invariant checks and says the verdict.
func (rr *RunReport) judge() string {
	rr.OK = true
	for _, c := range rr.Invariants {
		if !c.OK {
			rr.OK = false
		}
	}
	if !rr.OK {
		return "INVARIANT BROKEN"
	}
	return "invariants hold"
}

// measured fills in what a run's load, its final stats and its tickets say: rates,
// orders, answers' latency, tickets (when some were followed) and the shed by layer.
func (rr *RunReport) measured(res *load.Result, st *api.Stats, settledAt time.Time, followed bool, poller *load.Poller, finals []load.Final, polls int64) {
	loadS := res.Ended.Sub(res.Started).Seconds()
	rr.LoadSeconds = round2(loadS)
	if loadS > 0 {
		rr.AttemptsPerSec = round1(float64(res.Sent) / loadS)
	}
	for code, n := range res.Codes {
		if strings.HasPrefix(code, "201 ") || strings.HasPrefix(code, "202 ") && code != "202 queued" {
			rr.Admitted += n
		}
	}
	rr.Orders, rr.UnitsSold, _, _, _ = totals(st)
	rr.SettleSeconds = round2(settledAt.Sub(res.Ended).Seconds())
	if span := settledAt.Sub(res.Started).Seconds(); span > 0 {
		rr.OrdersPerSec = round1(float64(rr.Orders) / span)
	}
	rr.Answer = res.Latency.Summary()
	if followed {
		tk := poller.Completion.Summary()
		rr.Ticket = &tk
		rr.TicketPolls = polls
		for _, f := range finals {
			switch f.Status {
			case "created":
				rr.TicketsCreated++
			case "failed":
				rr.TicketsFailed++
			}
		}
	}
	for k, n := range st.GatewayShed {
		layer, _, _ := strings.Cut(k, "/")
		rr.ShedByLayer[layer] += n
	}
}

func (b *bencher) finalStats(ctx context.Context, id int64, last *api.Stats) (*api.Stats, error) {
	var err error
	for try := 0; try < 8; try++ {
		var st *api.Stats
		if st, err = b.admin.Stats(ctx, id); err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(250<<min(try, 3)) * time.Millisecond)
	}
	if last != nil {
		b.prog.say("bench: the stats did not answer after the run (%v); using the last ones read while settling", err)
		return last, nil
	}
	return nil, err
}

// commitWindow reads when the activity's first and last orders were written.
func commitWindow(ctx context.Context, db *sql.DB, activityID int64) (secs, perSec float64) {
	var n int64
	var first, last sql.NullTime
	err := db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM orders WHERE activity_id = ? AND status <> 'void'`, activityID).Scan(&n, &first, &last)
	if err != nil || n < 2 || !first.Valid || !last.Valid {
		return 0, 0
	}
	secs = last.Time.Sub(first.Time).Seconds()
	if secs <= 0 {
		return 0, 0
	}
	return round2(secs), round1(float64(n) / secs)
}

// bracketed are the scenarios whose runs are bracketed by the baselines their ratios
// are to: hot (nearly all sold-out answers) by the bare hertz handler, capacity by the
// hertz -> kitex echo and the MySQL hot-row loop.
var bracketed = map[string]bool{Hot: true, Capacity: true}

// bracket measures the baselines of scenario's ratios; it returns the ops/s of those
// that ran.
func (b *bencher) bracket(ctx context.Context, scenario, label, what string) map[string]float64 {
	b.prog.begin(label, what, 0, nil, nil)
	defer b.prog.end()
	d, conc := b.opts.BaselineDuration, b.opts.BaselineConcurrency
	var reps []BaselineReport
	if scenario == Hot {
		reps = append(reps, baselineHertz(ctx, b.shop.HTTP, conc, d))
	} else {
		reps = append(reps, baselineHertzKitex(ctx, b.shop.HTTP, b.target.BackendAddr, b.target.RPCSecrets, conc, d),
			baselineMySQL(ctx, b.target.MySQLDSN, d))
	}
	out := map[string]float64{}
	for _, rep := range reps {
		if rep.ok() {
			out[rep.Name] = rep.OpsPerSec
		}
	}
	return out
}

// baseline is the ops/s of a baseline for rr: the mean of those measured around it,
// else the report's.
func (b *bencher) baseline(rr *RunReport, name string) (float64, bool) {
	if a, ok := rr.Around[name]; ok {
		return (a[0] + a[1]) / 2, true
	}
	if r := b.base[name]; r.ok() {
		return r.OpsPerSec, true
	}
	return 0, false
}

// ratios put a run's figures next to the baselines.
func (b *bencher) ratios(rr *RunReport) map[string]float64 {
	out := map[string]float64{}
	if h, ok := b.baseline(rr, BaseHertz); ok {
		out["attempts_vs_bare_hertz"] = round3(rr.AttemptsPerSec / h)
	}
	if h := b.base[BaseHertz]; h.ok() && h.Latency.P50 > 0 {
		out["answer_p50_vs_bare_hertz"] = round1(rr.Answer.P50 / h.Latency.P50)
	}
	if k, ok := b.baseline(rr, BaseHertzKitex); ok {
		out["attempts_vs_hertz_kitex"] = round3(rr.AttemptsPerSec / k)
	}
	if r := b.base[BaseRedis]; r.ok() {
		out["attempts_vs_redis_evalsha"] = round3(rr.AttemptsPerSec / r.OpsPerSec)
	}
	if m, ok := b.baseline(rr, BaseMySQL); ok {
		out["orders_vs_mysql_hot_row"] = round3(rr.OrdersPerSec / m)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// startProfile starts a CPU profile of this process into prefix-<scenario>-<strategy>.pprof
// (nothing when prefix is ""); the returned stop may be called more than once.
func startProfile(prefix, scenario, strategy string) (stop func(), err error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(fmt.Sprintf("%s-%s-%s.pprof", prefix, scenario, strategy))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}
