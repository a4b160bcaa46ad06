// Package fleet makes a gateway one of a fleet: it applies the control state every
// gateway shares (the admission plugins and the rate limits, stored by the backends),
// as soon as a change is announced and on a timer so a missed announcement heals; it
// reports what it runs, with a time to live, so the fleet's view shows every live
// gateway and no dead one; and it sizes the fleet-wide rate limits by the number of
// live gateways.
package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/kitex/client/callopt"

	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// Bus is what the agent needs of the fleet's shared store (Redis, backend/redis).
type Bus interface {
	// Control names the channel where changes of the control state are announced
	// ("<kind> <version>").
	Control() string
	// Subscribe calls handle with the messages of channels until stop is called.
	Subscribe(ctx context.Context, handle func(channel string, fields []string), channels ...string) (stop func() error, err error)
	// Put records this gateway's report under id.
	Put(ctx context.Context, id string, report []byte) error
	// List returns the reports put within ttl, by id (older ones are dropped).
	List(ctx context.Context, ttl time.Duration) (map[string][]byte, error)
}

// Options configure an Agent.
type Options struct {
	ID       string // this gateway, unique in the fleet
	Addr     string // where it serves
	Backend  seckill.Client
	Plugins  *wasm.Manager
	Limiter  *ratelimit.Limiter
	Defaults ratelimit.Limits // the configured limits, until the fleet stores its own
	Bus      Bus              // nil: one gateway alone (no announcements, no reports)
	// Poll is how often the control state is read even without an announcement.
	Poll time.Duration
	// ReportEvery is how often this gateway reports; a report older than three
	// intervals is a dead gateway's.
	ReportEvery time.Duration
	Log         *slog.Logger
}

// Running is one plugin as a gateway runs it.
type Running struct {
	Version int64  `json:"version"`
	SHA256  string `json:"sha256"`
	Error   string `json:"error,omitempty"` // the desired version failed to load here
}

// Report is what a gateway runs, as the fleet sees it.
type Report struct {
	ID            string             `json:"id"`
	Addr          string             `json:"addr"`
	Ready         bool               `json:"ready"`
	StartedMS     int64              `json:"started_ms"`
	SeenMS        int64              `json:"seen_ms"`
	ChainVersion  int64              `json:"chain_version"`
	LimitsVersion int64              `json:"limits_version"`
	Plugins       map[string]Running `json:"plugins"`
}

// Agent keeps one gateway in line with the fleet.
type Agent struct {
	opts    Options
	log     *slog.Logger
	started time.Time

	chainMu       sync.Mutex // one sync of the chain at a time
	limitsMu      sync.Mutex // one sync of the limits at a time
	mu            sync.Mutex // guards the fields below
	running       map[string]Running
	modules       map[string][]byte // by SHA-256: the modules of the running chain
	chainVersion  int64
	limitsVersion int64
	chainReady    atomic.Bool
	limitsReady   atomic.Bool
	missing       atomic.Pointer[string] // a closed plugin the fleet wants that does not run here
	gateways      atomic.Int64           // live gateways, this one included
	wakeChain     chan struct{}
	wakeLimits    chan struct{}
	loops         sync.WaitGroup // what Start began (Wait)
}

// New returns an Agent; Start runs it.
func New(opts Options) *Agent {
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	if opts.ReportEvery <= 0 {
		opts.ReportEvery = 2 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	a := &Agent{opts: opts, log: opts.Log, started: time.Now(), running: map[string]Running{}, modules: map[string][]byte{},
		wakeChain: make(chan struct{}, 1), wakeLimits: make(chan struct{}, 1)}
	a.gateways.Store(1)
	return a
}

// SetID names this gateway and where it serves, before Start.
func (a *Agent) SetID(id, addr string) { a.opts.ID, a.opts.Addr = id, addr }

// Ready reports whether the fleet's control state was loaded whole at least once.
func (a *Agent) Ready() bool { return a.chainReady.Load() && a.limitsReady.Load() }

// MissingClosed names a plugin of fail policy closed that the fleet's chain holds and
// this gateway runs no version of (it failed to load here, and none ran before), or
// "". Orders are refused while there is one, as the plugin would refuse them failing.
func (a *Agent) MissingClosed() string {
	if p := a.missing.Load(); p != nil {
		return *p
	}
	return ""
}

// Gateways is the number of live gateways (this one included), as last reported.
func (a *Agent) Gateways() int { return int(a.gateways.Load()) }

// Start loads the control state (trying until it succeeds, in the background), then
// follows announcements and polls, and reports, until ctx ends.
func (a *Agent) Start(ctx context.Context) error {
	if a.opts.Bus != nil {
		stop, err := a.opts.Bus.Subscribe(ctx, a.onAnnounce, a.opts.Bus.Control())
		if err != nil {
			return err
		}
		a.loops.Go(func() { <-ctx.Done(); stop() })
		a.loops.Go(func() { a.reportLoop(ctx) })
	}
	// Apart, so a module compiling for seconds never holds back a change of limits.
	a.loops.Go(func() { a.syncLoop(ctx, a.wakeChain, a.SyncChain) })
	a.loops.Go(func() { a.syncLoop(ctx, a.wakeLimits, a.SyncLimits) })
	return nil
}

// Wait returns once what Start began has ended (its ctx ended): a sync under way
// finishes first.
func (a *Agent) Wait() { a.loops.Wait() }

// onAnnounce wakes the sync loop for an announced change newer than what runs here.
func (a *Agent) onAnnounce(_ string, f []string) {
	if len(f) != 2 {
		return
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return
	}
	var wake chan struct{}
	a.mu.Lock()
	switch {
	case f[0] == "plugins" && v > a.chainVersion:
		wake = a.wakeChain
	case f[0] == "limits" && v > a.limitsVersion:
		wake = a.wakeLimits
	}
	a.mu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// syncLoop runs sync at once, on each wake and every poll interval until ctx ends;
// until it first succeeds, it retries sooner.
func (a *Agent) syncLoop(ctx context.Context, wake chan struct{}, sync func(context.Context) error) {
	retry := 100 * time.Millisecond
	synced := false
	for {
		wait := a.opts.Poll
		if err := sync(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("sync with the fleet's control state", "err", err)
			if !synced {
				wait, retry = retry, min(2*retry, a.opts.Poll)
			}
		} else {
			synced = true
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-time.After(wait):
		}
	}
}

// controlTimeout bounds a control call: a module is megabytes.
var controlTimeout = callopt.WithRPCTimeout(30 * time.Second)

// Sync reads the desired control state and applies what differs: plugins loaded,
// replaced or removed (a plugin that fails to load here keeps its earlier version
// running and is reported with the error), and the limits.
func (a *Agent) Sync(ctx context.Context) error {
	return errors.Join(a.SyncLimits(ctx), a.SyncChain(ctx))
}

// SyncChain reads the desired plugin chain and applies what differs.
func (a *Agent) SyncChain(ctx context.Context) error {
	a.chainMu.Lock()
	defer a.chainMu.Unlock()
	chain, err := a.opts.Backend.GetPlugins(ctx, &rpc.EmptyReq{}, controlTimeout)
	if err = rpcerr.FromRPC(err); err != nil {
		return fmt.Errorf("read the plugin chain: %w", err)
	}
	if err := a.applyChain(ctx, chain); err != nil {
		return err
	}
	a.chainReady.Store(true)
	return nil
}

// SyncLimits reads the desired limits and applies them when they changed.
func (a *Agent) SyncLimits(ctx context.Context) error {
	a.limitsMu.Lock()
	defer a.limitsMu.Unlock()
	limits, err := a.opts.Backend.GetLimits(ctx, &rpc.EmptyReq{}, controlTimeout)
	if err = rpcerr.FromRPC(err); err != nil {
		return fmt.Errorf("read the limits: %w", err)
	}
	if err := a.applyLimits(limits); err != nil {
		return err
	}
	a.limitsReady.Store(true)
	return nil
}

// specOf is a desired plugin as the plugin host takes it.
func specOf(p *rpc.PluginSpec, module []byte) wasm.Spec {
	s := wasm.Spec{Wasm: module, Order: int(p.Order), FailPolicy: wasm.FailPolicy(p.FailPolicy),
		Timeout: time.Duration(p.TimeoutMs) * time.Millisecond, MemoryLimitPages: uint32(max(p.MemoryLimitPages, 0)), PoolSize: int(p.PoolSize)}
	if p.Config != "" {
		s.Config = json.RawMessage(p.Config)
	}
	return s
}

// runs reports whether the plugin host runs p as it is desired (loaded here by an
// operator's request, or before a restart of the agent's bookkeeping).
func runs(info wasm.Info, p *rpc.PluginSpec) bool {
	want := specOf(p, nil)
	return info.SHA256 == p.Sha256 && info.Order == want.Order && bytes.Equal(info.Config, want.Config) &&
		(want.FailPolicy == "" || info.FailPolicy == want.FailPolicy) && (want.Timeout == 0 || info.Timeout == want.Timeout) &&
		(want.MemoryLimitPages == 0 || info.MemoryLimitPages == want.MemoryLimitPages) && (want.PoolSize == 0 || info.PoolSize == want.PoolSize)
}

func (a *Agent) applyChain(ctx context.Context, chain *rpc.PluginChain) error {
	a.mu.Lock()
	current := a.chainVersion
	a.mu.Unlock()
	loaded := map[string]wasm.Info{}
	for _, in := range a.opts.Plugins.List() {
		loaded[in.Name] = in
	}
	desired := map[string]bool{}
	var errs []error
	for _, p := range chain.Plugins {
		desired[p.Name] = true
		a.mu.Lock()
		r, ok := a.running[p.Name]
		a.mu.Unlock()
		// The whole spec, not only the module: a local change the fleet's store then
		// refused (same module, another config or policy) must be put back.
		if ok && r.Version == p.Version && r.Error == "" && runs(loaded[p.Name], p) {
			continue
		}
		if in, ok := loaded[p.Name]; ok && runs(in, p) {
			a.setRunning(p.Name, Running{Version: p.Version, SHA256: p.Sha256})
			continue
		}
		if err := a.load(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	for name := range loaded {
		if desired[name] {
			continue
		}
		if err := a.opts.Plugins.Delete(ctx, name); err != nil && wasm.Code(err) != wasm.CodeNotFound {
			errs = append(errs, fmt.Errorf("unload plugin %s: %w", name, err))
			continue
		}
		a.mu.Lock()
		delete(a.running, name)
		a.mu.Unlock()
		a.log.Info("plugin unloaded as the fleet wants", "plugin", name)
	}
	a.noteMissing(chain)
	a.mu.Lock()
	if chain.Version > current {
		a.chainVersion = chain.Version
	}
	keep := map[string]bool{}
	for _, p := range chain.Plugins {
		keep[p.Sha256] = true
	}
	maps.DeleteFunc(a.modules, func(sum string, _ []byte) bool { return !keep[sum] })
	a.mu.Unlock()
	return errors.Join(errs...)
}

// noteMissing records the first plugin of chain with fail policy closed that the
// plugin host does not run (see MissingClosed).
func (a *Agent) noteMissing(chain *rpc.PluginChain) {
	loaded := map[string]bool{}
	for _, in := range a.opts.Plugins.List() {
		loaded[in.Name] = true
	}
	for _, p := range chain.Plugins {
		if wasm.FailPolicy(p.FailPolicy) == wasm.FailClosed && !loaded[p.Name] {
			if was := a.missing.Swap(&p.Name); was == nil || *was != p.Name {
				a.log.Error("a plugin of fail policy closed does not run here: orders are refused until it loads", "plugin", p.Name, "version", p.Version)
			}
			return
		}
	}
	if was := a.missing.Swap(nil); was != nil {
		a.log.Info("every plugin of fail policy closed runs here again", "was_missing", *was)
	}
}

// load fetches p's module (kept from an earlier load when it has one) and loads p.
// A failure is recorded for the report; the running version, if any, stays.
func (a *Agent) load(ctx context.Context, p *rpc.PluginSpec) error {
	a.mu.Lock()
	module := a.modules[p.Sha256]
	a.mu.Unlock()
	if module == nil {
		resp, err := a.opts.Backend.GetPluginModule(ctx, &rpc.PluginModuleReq{Sha256: p.Sha256}, controlTimeout)
		if err = rpcerr.FromRPC(err); err != nil {
			return fmt.Errorf("fetch plugin %s's module: %w", p.Name, err)
		}
		module = resp.Module
	}
	info, err := a.opts.Plugins.Put(ctx, p.Name, specOf(p, module))
	if err != nil {
		a.log.Error("plugin the fleet wants does not load here", "plugin", p.Name, "version", p.Version, "err", err)
		a.mu.Lock()
		r := a.running[p.Name]
		a.running[p.Name] = Running{Version: r.Version, SHA256: r.SHA256, Error: fmt.Sprintf("version %d: %v", p.Version, err)}
		a.mu.Unlock()
		return nil // reported, not retried in a loop: the next change or poll tries again
	}
	a.mu.Lock()
	a.modules[info.SHA256] = module
	a.running[p.Name] = Running{Version: p.Version, SHA256: info.SHA256}
	a.mu.Unlock()
	a.log.Info("plugin loaded as the fleet wants", "plugin", p.Name, "version", p.Version)
	return nil
}

func (a *Agent) setRunning(name string, r Running) {
	a.mu.Lock()
	a.running[name] = r
	a.mu.Unlock()
}

// StoredModule returns the module the fleet stores for the plugin name, and its
// sha256 (false when it stores no such plugin): kept here when this gateway loaded it,
// else fetched.
func (a *Agent) StoredModule(ctx context.Context, name string) ([]byte, string, bool, error) {
	chain, err := a.opts.Backend.GetPlugins(ctx, &rpc.EmptyReq{}, controlTimeout)
	if err = rpcerr.FromRPC(err); err != nil {
		return nil, "", false, fmt.Errorf("read the plugin chain: %w", err)
	}
	for _, p := range chain.Plugins {
		if p.Name != name {
			continue
		}
		a.mu.Lock()
		module := a.modules[p.Sha256]
		a.mu.Unlock()
		if module != nil {
			return module, p.Sha256, true, nil
		}
		resp, err := a.opts.Backend.GetPluginModule(ctx, &rpc.PluginModuleReq{Sha256: p.Sha256}, controlTimeout)
		if err = rpcerr.FromRPC(err); err != nil {
			return nil, "", false, fmt.Errorf("fetch plugin %s's module: %w", name, err)
		}
		return resp.Module, p.Sha256, true, nil
	}
	return nil, "", false, nil
}

// KeepModule remembers a module this gateway loaded for an operator, so applying the
// stored version does not fetch it back.
func (a *Agent) KeepModule(sha256 string, module []byte) {
	a.mu.Lock()
	a.modules[sha256] = module
	a.mu.Unlock()
}

// Limits are the limits the fleet stores (or the configured ones before any), with
// their version.
func (a *Agent) Limits(l *rpc.LimitsState) (ratelimit.Limits, error) {
	if l.Body == "" {
		return a.opts.Defaults, nil
	}
	// Over the configured limits: a rule the stored body does not name (one stored
	// before the rule existed) keeps its configured value, not 0 (off).
	out := a.opts.Defaults
	if err := json.Unmarshal([]byte(l.Body), &out); err != nil {
		return a.opts.Defaults, fmt.Errorf("stored limits version %d: %w", l.Version, err)
	}
	return out, nil
}

func (a *Agent) applyLimits(l *rpc.LimitsState) error {
	a.mu.Lock()
	same := l.Version == a.limitsVersion && a.limitsReady.Load()
	a.mu.Unlock()
	if same {
		return nil
	}
	lim, err := a.Limits(l)
	if err != nil {
		return err
	}
	if l.Version > 0 || !a.limitsReady.Load() {
		a.opts.Limiter.Set(lim)
	}
	a.mu.Lock()
	a.limitsVersion = l.Version
	a.mu.Unlock()
	return nil
}

// Report is this gateway's report now.
func (a *Agent) Report() Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Report{ID: a.opts.ID, Addr: a.opts.Addr, Ready: a.Ready(), StartedMS: a.started.UnixMilli(), SeenMS: time.Now().UnixMilli(),
		ChainVersion: a.chainVersion, LimitsVersion: a.limitsVersion, Plugins: maps.Clone(a.running)}
}

func (a *Agent) reportLoop(ctx context.Context) {
	t := time.NewTicker(a.opts.ReportEvery)
	defer t.Stop()
	seen := map[string]Report{} // the reports of the last lists, by id
	for {
		b, err := json.Marshal(a.Report())
		if err == nil {
			err = a.opts.Bus.Put(ctx, a.opts.ID, b)
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn("report to the fleet", "err", err)
		}
		if fleet, err := a.Fleet(ctx); err == nil {
			n := int64(max(a.sharing(remember(seen, fleet, time.Now(), 3*a.opts.ReportEvery), time.Now()), 1))
			if a.gateways.Swap(n) != n {
				a.opts.Limiter.SetShare(int(n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// remember merges fleet into seen and returns the gateways to count: those of fleet,
// and those missing from it whose last report is younger than ttl. A report that
// expired is old by then; one that vanished young went with Redis's data (a restart
// empty), and its gateway reports again within an interval: counting only the
// gateways that had reported since, each took a whole share of the rates, the fleet
// running at about twice its limits until they all had (a fleet probe).
func remember(seen map[string]Report, fleet []Report, now time.Time, ttl time.Duration) []Report {
	in := map[string]bool{}
	for _, r := range fleet {
		seen[r.ID], in[r.ID] = r, true
	}
	out := fleet
	for id, r := range seen {
		switch {
		case in[id]:
		case now.Sub(time.UnixMilli(r.SeenMS)) < ttl:
			out = append(out, r)
		default:
			delete(seen, id)
		}
	}
	return out
}

// sharing counts the gateways of fleet that share the limits' rates: this one, the
// ready ones, and those started within three report intervals (on their way to ready).
// One that stays unready (it cannot reach a backend, say) serves no order and takes
// no share: counted, it held the others to (n-1)/n of the rates for as long as it ran.
func (a *Agent) sharing(fleet []Report, now time.Time) int {
	n := 0
	for _, r := range fleet {
		if r.ID == a.opts.ID || r.Ready || now.Sub(time.UnixMilli(r.StartedMS)) < 3*a.opts.ReportEvery {
			n++
		}
	}
	return n
}

// Fleet returns the reports of the live gateways, by id order; without a bus, this
// gateway's alone.
func (a *Agent) Fleet(ctx context.Context) ([]Report, error) {
	if a.opts.Bus == nil {
		return []Report{a.Report()}, nil
	}
	raw, err := a.opts.Bus.List(ctx, 3*a.opts.ReportEvery)
	if err != nil {
		return nil, err
	}
	out := make([]Report, 0, len(raw))
	for _, id := range slices.Sorted(maps.Keys(raw)) {
		var r Report
		if json.Unmarshal(raw[id], &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}
