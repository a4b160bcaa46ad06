// Package gateway is the hertz edge of the platform: it parses and validates, checks
// identity, applies rate limits, answers from its edge cache, runs the Wasm admission
// chain, and forwards the survivors to the backend over kitex.
package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/connpool"
	"github.com/cloudwego/kitex/pkg/loadbalance"
	"github.com/cloudwego/kitex/pkg/loadbalance/lbcache"
	"github.com/cloudwego/kitex/pkg/transmeta"
	"github.com/cloudwego/kitex/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/time/rate"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/gateway/fleet"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
	"github.com/seckill/flashsale/internal/reqid"
	"github.com/seckill/flashsale/internal/secret"
)

// Config configures a gateway.
type Config struct {
	Listen string `yaml:"listen"` // HTTP address; port 0 picks one
	// OpsListen serves /metrics, /healthz, /readyz and pprof, apart from the public
	// listener (loopback by default: the internals are not public).
	OpsListen    string   `yaml:"ops_listen"`
	BackendAddrs []string `yaml:"backend_addrs"` // kitex backends, balanced
	// BackendService finds the backends by DNS ("host:port", e.g. a Kubernetes headless
	// Service), asked again every BackendRefresh; it takes the place of BackendAddrs.
	BackendService string        `yaml:"backend_service"`
	BackendRefresh time.Duration `yaml:"backend_refresh"`
	JWTSecret      string        `yaml:"jwt_secret"`  // HS256 key of shoppers' tokens; never logged
	AdminToken     string        `yaml:"admin_token"` // operators' bearer token; never logged
	// JWKSURL is a storefront identity provider's JWK Set: RS256 and ES256 tokens
	// signed by its keys are accepted too (or alone, without JWTSecret).
	JWKSURL string `yaml:"jwks_url"`
	// JWTIssuer and JWTAudience, when set, must be every token's iss and in its aud.
	JWTIssuer   string `yaml:"jwt_issuer"`
	JWTAudience string `yaml:"jwt_audience"`
	// JWTMaxAge, when positive, refuses tokens issued (iat) longer ago than this.
	JWTMaxAge time.Duration `yaml:"jwt_max_age"`
	// TrustedProxies are the proxies (CIDRs or addresses) whose forwarding header
	// names the client; from any other peer the peer is the client. None by default.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ForwardedHeader is the header the trusted proxies name the client in:
	// X-Forwarded-For (default), Forwarded or X-Real-IP.
	ForwardedHeader string           `yaml:"forwarded_header"`
	Limits          ratelimit.Limits `yaml:"limits"`
	MaxKeys         int              `yaml:"limiter_max_keys"` // per-key buckets kept per kind
	RPCTimeout      time.Duration    `yaml:"rpc_timeout"`
	CacheTTL        time.Duration    `yaml:"cache_ttl"`      // activity metadata
	NullTTL         time.Duration    `yaml:"null_ttl"`       // unknown ids
	SoldOutPoll     time.Duration    `yaml:"sold_out_poll"`  // how often flagged items are rechecked
	MaxBodyBytes    int              `yaml:"max_body_bytes"` // shoppers' bodies
	// ReadTimeout bounds reading one request, and a new connection's wait for
	// its first request; WriteTimeout writing one answer; IdleTimeout a
	// keep-alive connection's wait for its next request.
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	IdleTimeout  time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps the client connections open at once; one over it
	// is answered 503 and closed as it is accepted. 0: 16384, or the open
	// files limit less 1024 (kept for backends, Redis and logs) if that is
	// lower; -1: no cap.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP caps the connections open at once from one address (an
	// IPv6 client's /64), so one client cannot take every connection: one over it
	// is answered 429 and closed as it is accepted. Trusted proxies are not capped
	// (their connections carry many clients). 0: a sixteenth of max_connections, at
	// least 64 (1024 when max_connections is -1); -1: no cap.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxHeaderBytes caps a request's line and headers; past it the request is
	// answered 431 and the connection closed. 0: 16 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// PluginTimeout and PluginMemoryPages are the defaults of plugins loaded without.
	PluginTimeout     time.Duration `yaml:"plugin_timeout"`
	PluginMemoryPages uint32        `yaml:"plugin_memory_pages"`
	// ControlPoll is how often the gateway reads the fleet's control state even
	// without an announcement; ReportEvery how often it reports what it runs.
	ControlPoll time.Duration `yaml:"control_poll"`
	ReportEvery time.Duration `yaml:"report_every"`
	// Procs is how many Go processors (GOMAXPROCS) the gateway asks for at least.
	// Plugins' guest code runs without preemption points, so a guest that loops until
	// its deadline, or an instance being made, holds a processor; with more
	// processors than cores the OS shares the cores among them and other requests go
	// on. 0: four a core, at least 8; -1: leave GOMAXPROCS alone (as when the
	// GOMAXPROCS environment variable is set).
	Procs int `yaml:"procs"`
	// RPCSecrets are the credentials of the calls to the backends (backend.rpc_secret
	// and backend.rpc_operator_secret, which the composition hands over).
	RPCSecrets rpcauth.Secrets `yaml:"-"`
	// GCPercent is the garbage collector's GOGC the gateway sets: a plugin upload
	// allocates megabytes at once, and at the default 100 the collections it sets off
	// stall requests (mark assists). 0: 400; -1: leave it (as when the GOGC
	// environment variable is set). The gateway's live heap is small, so 400 costs
	// tens of MB.
	GCPercent int `yaml:"gc_percent"`
	// WaitingRoom tunes the waiting room of activities that have it on.
	WaitingRoom RoomConfig `yaml:"waiting_room"`
}

// procsFor is the GOMAXPROCS a gateway configured with procs wants on cpus cores, or
// 0 to leave it alone.
func procsFor(procs, cpus int, envSet bool) int {
	switch {
	case procs < 0 || envSet:
		return 0
	case procs == 0:
		return max(4*cpus, 8)
	}
	return procs
}

func (c *Config) defaults() {
	if c.RPCTimeout <= 0 {
		c.RPCTimeout = 3 * time.Second
	}
	if c.BackendRefresh <= 0 {
		c.BackendRefresh = 5 * time.Second
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = 2 * time.Second
	}
	if c.NullTTL <= 0 {
		c.NullTTL = 10 * time.Second
	}
	if c.SoldOutPoll <= 0 {
		c.SoldOutPoll = 500 * time.Millisecond
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 4 << 10
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultMaxConnections(openFilesLimit())
	}
	if c.MaxConnectionsPerIP == 0 {
		c.MaxConnectionsPerIP = 1024 // what a sixteenth of the default cap is
		if c.MaxConnections > 0 {
			c.MaxConnectionsPerIP = max(c.MaxConnections/16, 64)
		}
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 16 << 10
	}
}

// defaultMaxConnections is the cap on connections for a process that may
// open files files (0: unknown).
func defaultMaxConnections(files uint64) int {
	const most, reserve = 16384, 1024
	if files == 0 || files >= most+reserve {
		return most
	}
	return max(int(files)-reserve, int(files)/2)
}

// openFilesLimit is the soft limit on open files (Go raises it to the hard
// limit at start), or 0 if unknown.
func openFilesLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}

// Deps are what a caller may hand in.
type Deps struct {
	Registry *prometheus.Registry // nil: a new one; served at /metrics
	Log      *slog.Logger
	// Plugins is the Wasm plugin manager; nil: the gateway makes its own.
	Plugins *wasm.Manager
	// Counters are the plugins' shared counters (the same Redis as the rest of the
	// system, so every gateway sees the same counts); nil: this process's memory.
	Counters wasm.Counters
	// Bus joins the gateway to its fleet (Redis: announcements of control changes,
	// every gateway's report); nil: a gateway alone, which polls the backend.
	Bus fleet.Bus
	// SharedLimits holds the per-user limit across the fleet (Redis); nil: each
	// gateway's own buckets.
	SharedLimits SharedLimiter
	// ID names this gateway in the fleet; "": the host's name and the public port.
	ID string
	// Tallies sum the gateways' sheds over the fleet (Redis); nil: each gateway's own.
	Tallies Tallies
	// Keys tells whether the ledger admitted a shopper's idempotency key for an item,
	// so a retry reaches the backend (and learns its first outcome) even where the
	// item is flagged sold out; nil: only the keys this gateway forwarded.
	Keys KeyChecker
	// Line is the waiting room's line, shared by the fleet (Redis); nil: activities
	// with the waiting room on are served without it.
	Line domain.Line
}

// KeyChecker looks up admitted idempotency keys (backend/redis.Stock).
type KeyChecker interface {
	KeySeen(ctx context.Context, activityID, itemID, userID int64, key string) (bool, error)
}

// Main is a running gateway.
type Main struct {
	cfg     Config
	deps    Deps
	gw      *Gateway
	h       *server.Hertz
	addr    net.Addr
	ops     *http.Server
	opsAddr net.Addr
	cancel  context.CancelFunc
	bg      sync.WaitGroup // the background loops Start began (Close waits)
	closers []func() error
	conns   *connLimit
	// extraRoutes, when set (by the package's own tests), mounts routes after the API's,
	// under the same middleware.
	extraRoutes func(*server.Hertz)
}

// NewBackendClient returns a kitex client for the backends: TTHeader (so business
// errors travel), long connections reused from a pool, a per-call timeout, and one
// retry after a timeout for calls that are idempotent (retryingClient). Placing an order is idempotent
// too (it always carries a key) but is not retried here: after a retry, the last
// attempt's error (a refused connection, say) would hide that the first may have
// reached the backend, and the answer must tell "nothing was taken" (503) from
// "outcome unknown" (504, with the key for the client's own retry).
func NewBackendClient(cfg Config) (seckill.Client, error) {
	var find client.Option
	switch {
	case cfg.BackendService != "":
		r, err := newDNSResolver(cfg.BackendService)
		if err != nil {
			return nil, err
		}
		find = client.WithLoadBalancer(loadbalance.NewWeightedRoundRobinBalancer(), &lbcache.Options{RefreshInterval: cfg.BackendRefresh, Cacheable: true})
		c, err := newClient(cfg, client.WithResolver(r), find)
		return c, err
	case len(cfg.BackendAddrs) > 0:
		return newClient(cfg, client.WithHostPorts(cfg.BackendAddrs...))
	}
	return nil, errors.New("no backend configured: set gateway.backend_addrs or gateway.backend_service")
}

func newClient(cfg Config, find ...client.Option) (seckill.Client, error) {
	c, err := seckill.NewClient("seckill.backend", append(find,
		client.WithTransportProtocol(transport.TTHeader),
		client.WithMetaHandler(transmeta.ClientTTHeaderHandler),
		client.WithMiddleware(rpcauth.ClientMiddleware(cfg.RPCSecrets)),
		client.WithRPCTimeout(cfg.RPCTimeout),
		client.WithConnectTimeout(300*time.Millisecond),
		client.WithLongConnection(connpool.IdleConfig{MaxIdlePerAddress: 256, MaxIdleGlobal: 1024, MaxIdleTimeout: time.Minute}),
	)...)
	if err != nil {
		return nil, err
	}
	return retryingClient{c}, nil
}

// Open builds the gateway; Start serves it.
func Open(ctx context.Context, cfg Config, deps Deps) (_ *Main, err error) {
	cfg.defaults()
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	deps.Log = slog.New(reqid.Handler(deps.Log.Handler())) // records logged with a request's context name it
	_, envSet := os.LookupEnv("GOMAXPROCS")
	if n, was := procsFor(cfg.Procs, runtime.NumCPU(), envSet), runtime.GOMAXPROCS(0); n > was {
		runtime.GOMAXPROCS(n)
		deps.Log.Info("raised GOMAXPROCS so plugin guests, which cannot be preempted, do not hold the cores", "from", was, "to", n)
	}
	if _, set := os.LookupEnv("GOGC"); !set && cfg.GCPercent >= 0 {
		gc := cmp.Or(cfg.GCPercent, 400)
		if was := debug.SetGCPercent(gc); was != gc {
			deps.Log.Info("set GOGC for the gateway", "from", was, "to", gc)
		}
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
		deps.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Main{cfg: cfg, deps: deps}
	defer func() {
		if err != nil {
			m.Close() // what was made before the failure
		}
	}()
	verifier, err := m.verifier(ctx)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := secret.Check(SettingAdminToken, cfg.AdminToken); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if cfg.AdminToken == cfg.JWTSecret {
		return nil, fmt.Errorf("gateway: %s and %s must differ", SettingAdminToken, SettingJWTSecret)
	}
	if err := cfg.RPCSecrets.Check(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := checkLimits(cfg.Limits); err != nil {
		return nil, fmt.Errorf("gateway.limits: %w", err)
	}
	admin, err := auth.NewAdminCheck(cfg.AdminToken)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	ips, err := newClientIPs(cfg.TrustedProxies, cfg.ForwardedHeader)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cl, err := NewBackendClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	rm, err := newRoom(deps.Line, cfg.WaitingRoom, cfg.JWTSecret, cfg.RPCTimeout, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if deps.Plugins == nil {
		counters := deps.Counters
		if counters == nil {
			counters = wasm.NewMemoryCounters(100_000)
		}
		pm, err := wasm.NewManager(ctx, wasm.Options{Counters: counters, Logger: deps.Log,
			DefaultTimeout: cfg.PluginTimeout, DefaultMemoryPages: cfg.PluginMemoryPages})
		if err != nil {
			return nil, fmt.Errorf("gateway: plugins: %w", err)
		}
		deps.Plugins = pm
		m.closers = append(m.closers, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			return pm.Close(ctx)
		})
		deps.Registry.MustRegister(wasm.NewCollector(pm))
	}
	gw := &Gateway{
		cfg: cfg, backend: cl, verifier: verifier, admin: admin, log: deps.Log, ips: ips,
		limiter:  ratelimit.New(cfg.Limits, cfg.MaxKeys),
		edge:     newEdgeCache(cl, cfg.CacheTTL, cfg.NullTTL, cfg.SoldOutPoll, deps.Log),
		tickets:  newEndedTickets(ticketEntries),
		shed:     newShedCounter(deps.Registry, deps.Tallies, deps.Log),
		metrics:  newHTTPMetrics(deps.Registry),
		registry: deps.Registry,
		plugins:  deps.Plugins,
		shared:   deps.SharedLimits,
		keys:     deps.Keys,
		room:     rm,
		failLog:  rate.NewLimiter(failLogRate, failLogRate),
	}
	gw.shed.known = gw.edge.knownActivity
	gw.fleet = fleet.New(fleet.Options{Backend: cl, Plugins: deps.Plugins, Limiter: gw.limiter, Defaults: cfg.Limits, Bus: deps.Bus,
		Poll: cfg.ControlPoll, ReportEvery: cfg.ReportEvery, Log: deps.Log})
	deps.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seckill_gateway_fleet_size",
		Help: "Live gateways of the fleet, as this one last counted (its global and per-item buckets are this share)."},
		func() float64 { return float64(gw.fleet.Gateways()) }))
	m.deps, m.gw = deps, gw
	m.conns = &connLimit{max: int64(max(m.cfg.MaxConnections, 0)), perPeer: int32(max(m.cfg.MaxConnectionsPerIP, 0)),
		exempt:  gw.ips.isTrusted,
		refused: func(reason string) { gw.shed.add(0, layerInput, reason) }}
	deps.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seckill_gateway_connections_open",
		Help: "Client connections open (counted against gateway.max_connections)."},
		func() float64 { return float64(m.conns.open.Load()) }))
	return m, nil
}

// The settings of the gateway's secrets, as errors name them.
const (
	SettingJWTSecret  = "gateway.jwt_secret (SECKILL_JWT_SECRET)"
	SettingAdminToken = "gateway.admin_token (SECKILL_ADMIN_TOKEN)"
	SettingRoomSecret = "gateway.waiting_room.secret (SECKILL_GATEWAY_WAITING_ROOM_SECRET)"
)

// verifier checks the token settings and returns the shoppers' token check: HS256
// with the secret, RS256/ES256 with the JWKS's keys, or both.
func (m *Main) verifier(ctx context.Context) (*auth.Verifier, error) {
	cfg := m.cfg
	opts := auth.Options{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, MaxAge: cfg.JWTMaxAge}
	if cfg.JWTSecret != "" || cfg.JWKSURL == "" {
		if err := secret.Check(SettingJWTSecret, cfg.JWTSecret); err != nil {
			return nil, err
		}
		opts.Secret = []byte(cfg.JWTSecret)
	}
	if cfg.JWTMaxAge < 0 {
		return nil, fmt.Errorf("gateway.jwt_max_age must not be negative, not %s", cfg.JWTMaxAge)
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("gateway.jwks_url must be an http(s) URL, not %q", cfg.JWKSURL)
		}
		// The key set is fetched now (a failure is logged, not fatal: the identity
		// provider may come up later), again every 15 minutes, and at once for a kid
		// it does not have, at most once in 5 minutes; a token of an unknown kid
		// waits at most 2 s for that refresh, never for the rate limit.
		jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		log := m.deps.Log
		kf, err := keyfunc.NewDefaultOverrideCtx(jctx, []string{cfg.JWKSURL}, keyfunc.Override{
			HTTPTimeout: 5 * time.Second, RateLimitWaitMax: 2 * time.Second, RefreshInterval: 15 * time.Minute,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					log.WarnContext(ctx, "fetch the JWK Set of gateway.jwks_url", "url", u, "err", err)
				}
			},
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("gateway.jwks_url: %w", err)
		}
		m.closers = append(m.closers, func() error { cancel(); return nil })
		opts.JWKS = kf.Keyfunc
	}
	return auth.NewVerifierWith(opts)
}

// Gateway is the request handling of a Main, for tests that drive it in process.
func (m *Main) Gateway() *Gateway { return m.gw }

// Start listens and serves in the background; Addr is valid once it returns.
func (m *Main) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", m.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway listen on %s: %w", m.cfg.Listen, err)
	}
	m.addr = ln.Addr()
	fr := firstRequest{timeout: m.cfg.ReadTimeout, limit: m.conns}
	m.h = server.New(
		server.WithListener(ln),
		// Bodies longer than a shopper's limit are streamed, not read
		// ahead, so each route decides on its own limit (boundBody) before
		// reading them: plugin uploads take megabytes, orders a few bytes.
		server.WithStreamBody(true),
		// No API takes a multipart form; parsed ahead, one was read whole (to
		// temporary files) before any limit or token was checked.
		server.WithDisablePreParseMultipartForm(true),
		server.WithMaxRequestBodySize(m.cfg.MaxBodyBytes),
		server.WithMaxHeaderBytes(m.cfg.MaxHeaderBytes),
		server.WithReadTimeout(m.cfg.ReadTimeout),
		server.WithWriteTimeout(m.cfg.WriteTimeout),
		server.WithIdleTimeout(m.cfg.IdleTimeout),
		server.WithOnAccept(fr.onAccept),
		server.WithExitWaitTime(5*time.Second),
		server.WithDisablePrintRoute(true),
		// A path asked with a method it does not take is 405, not 404; a path
		// with a stray trailing slash is 404, not a redirect hertz would answer
		// before any middleware (no request id, no metrics).
		server.WithHandleMethodNotAllowed(true),
		server.WithRedirectTrailingSlash(false),
	)
	// Anything that asks hertz for the client's address gets the gateway's answer,
	// never hertz's own (which believes any X-Forwarded-For).
	m.h.SetClientIPFunc(func(c *app.RequestContext) string { return m.gw.ips.of(c).String() })
	m.h.Use(fr.served)
	m.gw.Register(m.h)
	if m.extraRoutes != nil {
		m.extraRoutes(m.h)
	}
	if err := m.serveOps(); err != nil {
		ln.Close()
		return err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.gw.fleet.SetID(m.id(), m.addr.String())
	if err := m.gw.fleet.Start(bg); err != nil {
		cancel()
		ln.Close()
		return fmt.Errorf("gateway: join the fleet: %w", err)
	}
	if m.deps.Bus != nil {
		stop, err := m.deps.Bus.Subscribe(bg, m.gw.edge.onStock, StockChannel)
		if err != nil {
			cancel()
			ln.Close()
			return fmt.Errorf("gateway: follow the stock announcements: %w", err)
		}
		m.closers = append(m.closers, stop)
	}
	m.bg.Go(func() { m.gw.edge.run(bg) })
	m.bg.Go(func() { m.gw.shed.run(bg) })
	go func() {
		if err := m.h.Run(); err != nil {
			m.deps.Log.Error("gateway stopped", "err", err)
		}
	}()
	// Orders wait for the fleet's plugin chain and limits (503 until then): give the
	// first load a moment before returning, so a caller that sends at once is served.
	for deadline := time.Now().Add(readyWait); !m.gw.fleet.Ready() && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(10 * time.Millisecond)
	}
	m.deps.Log.Info("gateway serving", "addr", m.addr.String(), "ready", m.gw.fleet.Ready())
	return nil
}

// readyWait bounds how long Start waits for the fleet's control state.
const readyWait = 3 * time.Second

// StockChannel is where the ledger announces items sold out and units back
// (backend/redis.StockChannel).
const StockChannel = "sk:stock"

// id names this gateway in the fleet.
func (m *Main) id() string {
	if m.deps.ID != "" {
		return m.deps.ID
	}
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(m.addr.String())
	return host + ":" + port
}

// Ready reports whether the gateway loaded the fleet's control state.
func (m *Main) Ready() bool { return m.gw.fleet.Ready() }

// serveOps serves the ops endpoints on their own listener.
func (m *Main) serveOps() error {
	if m.cfg.OpsListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.cfg.OpsListen)
	if err != nil {
		return fmt.Errorf("gateway ops listen on %s: %w", m.cfg.OpsListen, err)
	}
	m.opsAddr = ln.Addr()
	m.ops = &http.Server{Handler: m.gw.opsHandler(), ReadHeaderTimeout: 5 * time.Second}
	go m.ops.Serve(ln)
	m.deps.Log.Info("gateway ops serving", "addr", m.opsAddr.String())
	return nil
}

// OpsAddr is where the ops endpoints listen (nil when they do not).
func (m *Main) OpsAddr() net.Addr { return m.opsAddr }

// OpenConnections is how many client connections are open.
func (m *Main) OpenConnections() int64 { return m.conns.open.Load() }

// Addr is where the gateway listens.
func (m *Main) Addr() net.Addr { return m.addr }

// Run serves until ctx ends, then shuts down gracefully.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return m.Close()
}

// Close stops accepting, lets requests in flight finish (up to the exit wait), and
// releases what it holds.
func (m *Main) Close() error {
	var errs []error
	if m.h != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, m.h.Shutdown(ctx))
		cancel()
		m.h = nil
	}
	if m.cancel != nil {
		m.cancel()
		m.bg.Wait()
		m.gw.fleet.Wait()
	}
	if m.ops != nil {
		errs = append(errs, m.ops.Close())
		m.ops = nil
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	return errors.Join(errs...)
}
