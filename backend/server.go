// Package backend is the backend service's kitex edge: a server in front of the sale
// engine (backend/sale) that converts messages and maps errors, and runs the engine's
// background duties (reconciler, rebalancer, expiry of unpaid orders) while it serves.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cloudwego/kitex/pkg/endpoint"
	"github.com/cloudwego/kitex/pkg/kerrors"
	"github.com/cloudwego/kitex/pkg/remote"
	"github.com/cloudwego/kitex/pkg/remote/codec"
	"github.com/cloudwego/kitex/pkg/rpcinfo"
	"github.com/cloudwego/kitex/pkg/transmeta"
	"github.com/cloudwego/kitex/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
	"github.com/seckill/flashsale/internal/reqid"
	"github.com/seckill/flashsale/internal/secret"
)

// Config configures the backend.
type Config struct {
	Listen            string        `yaml:"listen"`             // kitex address; port 0 picks one
	OpsListen         string        `yaml:"ops_listen"`         // /metrics and /healthz
	TicketTTL         time.Duration `yaml:"ticket_ttl"`         // how long ticket results are kept
	ReconcileInterval time.Duration `yaml:"reconcile_interval"` // 0: 10s; negative: off
	UnpaidTimeout     time.Duration `yaml:"unpaid_timeout"`     // 0: unpaid orders never expire
	StaleTicket       time.Duration `yaml:"stale_ticket"`       // in flight this long: the reconciler ends it
	StaleSyncTicket   time.Duration `yaml:"stale_sync_ticket"`  // the same for sync sales
	RepublishAfter    time.Duration `yaml:"republish_after"`    // a queued ticket in flight this long is sent again, once
	LeaseTTL          time.Duration `yaml:"lease_ttl"`          // the background duties' lease; 0: 10s
	BatchSize         int           `yaml:"batch_size"`         // requests of one item per script call, send or sync transaction; 1: no batching
	BatchWait         time.Duration `yaml:"batch_wait"`         // how long a batch waits behind its item's calls in progress
	OrdersSettle      time.Duration `yaml:"orders_settle"`      // orders this recent are held back from the operators' pages
	Lease             string        `yaml:"-"`                  // the lease's name (the fleet's)
	// RPCSecret is the service credential every kitex call must carry (gateways
	// send it); RPCOperatorSecret the one operators' calls must carry (gateways send
	// it only after checking the admin token). See backend/rpcauth. Never logged.
	RPCSecret         string `yaml:"rpc_secret"`
	RPCOperatorSecret string `yaml:"rpc_operator_secret"`
	// TicketSecret is the secret the key of the backends' tickets is derived from
	// (sale.Config.TicketSecret); empty: RPCSecret, which gateways hold too.
	// PreviousTicketSecret is the one it replaced (tickets of that key still read as
	// the fleet's): the previous TicketSecret, or RPCSecret's previous value while
	// TicketSecret is empty. Never logged.
	TicketSecret         string `yaml:"ticket_secret"`
	PreviousTicketSecret string `yaml:"previous_ticket_secret"`
}

// The ticket secrets' settings, as errors name them.
const (
	SettingTicketSecret         = "backend.ticket_secret (SECKILL_BACKEND_TICKET_SECRET)"
	SettingPreviousTicketSecret = "backend.previous_ticket_secret (SECKILL_BACKEND_PREVIOUS_TICKET_SECRET)"
)

// MaxRequestBytes bounds one RPC request's payload: the largest is an operator's
// plugin module (at most control.MaxModuleBytes) with its spec.
const MaxRequestBytes = control.MaxModuleBytes + 4<<20

// limitedDecodes is kitex's default codec with a size limit on what the backend reads
// only: kitex's own limit applies to encoding too, and answers may be larger than any
// request (a plugin chain with its configs, a plugin's history).
type limitedDecodes struct {
	remote.Codec // encodes, unlimited
	in           interface {
		remote.Codec
		remote.MetaDecoder
	}
}

func newLimitedDecodes(maxBytes int) remote.Codec {
	in, ok := codec.NewDefaultCodecWithSizeLimit(maxBytes).(interface {
		remote.Codec
		remote.MetaDecoder
	})
	if !ok {
		panic("kitex's default codec decodes in two stages no more")
	}
	return limitedDecodes{Codec: codec.NewDefaultCodec(), in: in}
}

func (c limitedDecodes) Decode(ctx context.Context, msg remote.Message, in remote.ByteBuffer) error {
	return c.in.Decode(ctx, msg, in)
}

func (c limitedDecodes) DecodeMeta(ctx context.Context, msg remote.Message, in remote.ByteBuffer) error {
	return c.in.DecodeMeta(ctx, msg, in)
}

func (c limitedDecodes) DecodePayload(ctx context.Context, msg remote.Message, in remote.ByteBuffer) error {
	return c.in.DecodePayload(ctx, msg, in)
}

// Secrets are the RPC credentials of c.
func (c Config) Secrets() rpcauth.Secrets {
	return rpcauth.Secrets{Service: c.RPCSecret, Operator: c.RPCOperatorSecret}
}

// TicketSecrets are the secrets the key of tickets is derived from, the current and
// the previous (nil when unset).
func (c Config) TicketSecrets() (current, previous []byte) {
	current = []byte(c.TicketSecret)
	if c.TicketSecret == "" {
		current = []byte(c.RPCSecret)
	}
	if c.PreviousTicketSecret != "" {
		previous = []byte(c.PreviousTicketSecret)
	}
	return current, previous
}

// checkTicketSecrets refuses guessable ticket secrets, and a ticket secret that is one
// of the RPC credentials (gateways hold those: the point of a ticket secret is that
// they do not).
func (c Config) checkTicketSecrets() error {
	if c.TicketSecret != "" {
		if err := secret.Check(SettingTicketSecret, c.TicketSecret); err != nil {
			return err
		}
		if c.TicketSecret == c.RPCSecret || c.TicketSecret == c.RPCOperatorSecret {
			return fmt.Errorf("%s must differ from %s and %s: gateways hold those", SettingTicketSecret, rpcauth.SettingService, rpcauth.SettingOperator)
		}
	}
	if c.PreviousTicketSecret != "" {
		if err := secret.Check(SettingPreviousTicketSecret, c.PreviousTicketSecret); err != nil {
			return err
		}
	}
	return nil
}

// Server is a running backend: the kitex server and the background duties.
type Server struct {
	cfg    Config
	svc    *sale.Service
	ctl    *control.Service
	log    *slog.Logger
	srv    server.Server
	addr   net.Addr
	cancel context.CancelFunc
	bg     sync.WaitGroup // the background duties Start began
	done   chan error
	panics prometheus.Counter
}

// NewServer returns a Server of svc and the fleet's control state ctl; Start serves it.
// Its metrics go to reg (nil: none).
func NewServer(cfg Config, svc *sale.Service, ctl *control.Service, log *slog.Logger, reg prometheus.Registerer) *Server {
	if log == nil {
		log = slog.Default()
	}
	panics := prometheus.NewCounter(prometheus.CounterOpts{Name: "seckill_backend_panics_total",
		Help: "Panics while serving an RPC call, each answered INTERNAL (the log has the stack under the request id)."})
	if reg != nil {
		reg.MustRegister(panics)
	}
	return &Server{cfg: cfg, svc: svc, ctl: ctl, log: slog.New(reqid.Handler(log.Handler())), panics: panics}
}

// options are the kitex server's: TTHeader, and before any handler the caller's
// request id, the panic recovery and the credential check.
func (s *Server) options(ln net.Listener) []server.Option {
	return []server.Option{
		server.WithListener(ln),
		// A frame's length is checked when its header arrives: a stranger cannot make
		// the server read and hold gigabytes before the credential check refuses it.
		server.WithCodec(newLimitedDecodes(MaxRequestBytes)),
		server.WithServerBasicInfo(&rpcinfo.EndpointBasicInfo{ServiceName: "seckill.backend"}),
		server.WithMetaHandler(transmeta.ServerTTHeaderHandler),
		server.WithExitWaitTime(5 * time.Second),
		server.WithMiddleware(rpcauth.ServerRequestID),
		server.WithMiddleware(recoverPanics(s.log, s.panics)),
		server.WithMiddleware(rpcauth.ServerMiddleware(s.cfg.Secrets(), s.log)),
	}
}

// recoverPanics makes a panic in a call (kitex recovers a handler's into ErrPanic; a
// middleware's is recovered here) a logged, counted INTERNAL business error, so the
// caller gets a coded answer on a connection that goes on.
func recoverPanics(log *slog.Logger, panics prometheus.Counter) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req, resp any) (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = panicked(ctx, log, panics, fmt.Sprint(r), string(debug.Stack()))
				}
			}()
			err = next(ctx, req, resp)
			if errors.Is(err, kerrors.ErrPanic) {
				stack := ""
				if st, ok := err.(interface{ Stack() string }); ok {
					stack = st.Stack()
				}
				err = panicked(ctx, log, panics, err.Error(), stack)
			}
			return err
		}
	}
}

func panicked(ctx context.Context, log *slog.Logger, panics prometheus.Counter, what, stack string) error {
	panics.Inc()
	method := ""
	if ri := rpcinfo.GetRPCInfo(ctx); ri != nil {
		method = ri.Invocation().MethodName()
	}
	log.ErrorContext(ctx, "panic serving an RPC call", "method", method, "panic", what, "stack", stack)
	msg := "internal error"
	if id := reqid.From(ctx); id != "" {
		msg += "; the backend's log has it under the request id " + id
	}
	return rpcauth.Refuse(ctx, kerrors.NewBizStatusError(int32(rpc.ErrorCode_INTERNAL), msg))
}

// Service is the engine the server serves.
func (s *Server) Service() *sale.Service { return s.svc }

// Start listens and serves in the background; Addr is valid once it returns.
func (s *Server) Start(ctx context.Context) error {
	if err := s.cfg.Secrets().Check(); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	if err := s.cfg.checkTicketSecrets(); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("backend listen on %s: %w", s.cfg.Listen, err)
	}
	s.addr = ln.Addr()
	s.srv = seckill.NewServer(&handler{ControlRPC: NewControlRPC(s.ctl), svc: s.svc}, s.options(ln)...)
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.bg.Go(func() { s.svc.FlushTallies(bg, time.Second) })
	if err := s.svc.FollowChanges(bg); err != nil {
		// Copies then live out their few seconds; orders refused on a stale copy
		// are rechecked against the shared one.
		s.log.Warn("not following the fleet's activity changes", "err", err)
	}
	if s.cfg.ReconcileInterval >= 0 {
		duties := sale.Duties{Interval: s.cfg.ReconcileInterval, Reconcile: sale.ReconcileConfig{StaleTicket: s.cfg.StaleTicket, StaleSync: s.cfg.StaleSyncTicket, Republish: s.cfg.RepublishAfter},
			UnpaidTimeout: s.cfg.UnpaidTimeout, Lease: s.cfg.Lease, LeaseTTL: s.cfg.LeaseTTL, Holder: "backend@" + s.addr.String()}
		s.bg.Go(func() { s.svc.Run(bg, duties) })
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Run() }()
	s.log.Info("backend serving", "addr", s.addr.String())
	return nil
}

// Addr is where the backend listens.
func (s *Server) Addr() net.Addr { return s.addr }

// Done receives the server's error when it stops serving on its own.
func (s *Server) Done() <-chan error { return s.done }

// Close stops the background duties and serving (requests in flight finish), and
// returns once the duties have ended.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	defer s.bg.Wait()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Stop()
	s.srv = nil
	s.svc.Close() // after the last request: none starts work for it
	if err != nil {
		return fmt.Errorf("stop kitex server: %w", err)
	}
	return nil
}
