package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// FailPolicy says what a plugin's failure (trap, timeout, no free instance,
// sdk Fail) means for the request.
type FailPolicy string

const (
	// FailOpen admits the request as if the plugin had called next.
	FailOpen FailPolicy = "open"
	// FailClosed rejects the request with 503 unavailable.
	FailClosed FailPolicy = "closed"
)

// Options configure a Manager. Zero values take the defaults.
type Options struct {
	// Counters back seckill.counter_incr. Default: NewMemoryCounters(0),
	// which is right for one gateway instance only; when several gateways
	// share the limits, use a shared store (backend/redis.PluginCounters).
	Counters Counters
	// Logger receives guest logs (tagged with the plugin) and the manager's
	// own events. Default: a logger that discards everything.
	Logger *slog.Logger

	// DefaultTimeout is the timeout of plugins whose Spec has none: how
	// long a guest call may run (its running time, not the clock's; see
	// callWatch), and how long a request waits for an instance once the
	// pool is at its maximum. Default 10ms: an admission plugin answers in
	// microseconds, and a guest that loops burns a core until its deadline
	// (on a 2-core gateway, 50ms loops doubled the healthy requests' p99).
	DefaultTimeout time.Duration
	// DefaultMemoryPages is the memory limit in 64 KiB pages of plugins
	// whose Spec has none. Default 512 (32 MiB).
	DefaultMemoryPages uint32
	// DefaultPoolSize is the number of instances of plugins whose Spec has
	// none. Default GOMAXPROCS, within [2, 16].
	DefaultPoolSize int
	// DefaultPoolMax is how far the pools of plugins whose Spec has no
	// PoolMax grow on demand. Default 4 * DefaultPoolSize.
	DefaultPoolMax int
	// MaxModuleBytes bounds Spec.Wasm. Default 16 MiB.
	MaxModuleBytes int

	// DemoteAfter: a guest call still running after this long has its OS
	// thread's priority lowered (nice 10) until it returns, so that a guest
	// looping toward its deadline takes what CPU the requests leave rather
	// than an equal share (a guest cannot be preempted). Linux only, and
	// only where the gateway may raise a priority back (CAP_SYS_NICE, or a
	// RLIMIT_NICE of 20 or more: systemd's LimitNICE=-20... ). Default 2ms
	// (an admission plugin answers in microseconds); negative: never.
	DemoteAfter time.Duration

	// InitTimeout bounds the instantiation of one instance (the guest's
	// _initialize or _start). Default 10s.
	InitTimeout time.Duration
	// DrainTimeout bounds how long a replaced or deleted plugin may finish
	// its calls in flight before it is closed anyway. Default 10s.
	DrainTimeout time.Duration

	// ReadOnlyHeaders are request headers guests may read but not set, add
	// to or remove (names compared case-insensitively): the trusted context
	// the gateway puts in every request before the chain, so that no plugin
	// can make the plugins after it or the backend believe in another user,
	// activity, item or client address. A guest call that tries fails (a
	// trap; the fail policy applies) and the header keeps its value.
	// Default TrustedHeaders(); an empty, non-nil slice protects nothing.
	ReadOnlyHeaders []string

	// Features are the http-wasm features the Hosts given to Handle
	// support; a guest that enables features during its initialization gets
	// this answer. Default FeaturesDefault.
	Features Features
	// CompilationCache is shared by all plugins so a module is compiled
	// once. Default: an in-memory cache owned (and closed) by the Manager.
	CompilationCache wazero.CompilationCache
	// Now is the clock of seckill.now_unix_ms. Default time.Now.
	Now func() time.Time
}

// Spec is what an operator loads under a plugin name.
type Spec struct {
	Wasm       []byte          // the module (http-wasm guest)
	Order      int             // position in the chain: ascending, ties by name
	Config     json.RawMessage // handed verbatim to the guest by get_config
	FailPolicy FailPolicy      // default FailOpen
	Timeout    time.Duration   // per-call running time (see Options.DefaultTimeout); 0: Options.DefaultTimeout
	// MemoryLimitPages caps the guest memory in 64 KiB pages; 0:
	// Options.DefaultMemoryPages.
	MemoryLimitPages uint32
	// PoolSize is the number of instances made when the plugin is loaded;
	// 0: Options.DefaultPoolSize.
	PoolSize int
	// PoolMax is how many instances the pool may grow to when requests
	// find none free (each request through a guest without
	// seckill_request_only holds one until the response is written);
	// 0: Options.DefaultPoolMax. At least PoolSize.
	PoolMax int
}

// Limits on Spec values.
const (
	MaxTimeout = 10 * time.Second
	// MaxConfigBytes bounds Spec.Config: a config travels with every read of the
	// fleet's chain and history (backend/control.MaxConfigBytes).
	MaxConfigBytes = 1 << 20
	MaxPoolSize    = 256
	MaxMemoryPages = 65536 // 4 GiB, the wasm32 limit
)

// Info describes a loaded plugin.
type Info struct {
	Name             string
	Order            int
	Config           json.RawMessage
	FailPolicy       FailPolicy
	SHA256           string // hex of the module bytes
	Size             int    // module bytes
	Timeout          time.Duration
	MemoryLimitPages uint32
	PoolSize         int
	PoolMax          int
	// RequestOnly is true when the guest exports seckill_request_only, so
	// the response phase is skipped.
	RequestOnly bool
	LoadedAt    time.Time
	Stats       Stats
}

// Manager holds the admission chain: the plugins in order, swapped
// atomically as operators change them.
type Manager struct {
	opts      Options
	log       *slog.Logger
	counters  Counters
	cache     wazero.CompilationCache
	ownsCache bool

	chain atomic.Pointer[chain]

	// instantiating bounds the instantiations running at once, all plugins
	// together (pool fills on load and swap, replacements of discarded
	// instances): half the cores, at least 1. Cores, not GOMAXPROCS: the
	// gateway raises GOMAXPROCS to four a core (gateway.Open), and four
	// instantiations at once on two cores held both for as long as they
	// ran. An instantiation is milliseconds of CPU that cannot yield; on a
	// 2-core gateway two at once, or one beside a looping guest, left no
	// core to the requests. A pool down to half
	// its size, or with requests waiting for an instance, is refilled
	// without waiting for a slot (plugin.go).
	instantiating chan struct{}

	mu     sync.Mutex // serializes changes of the chain
	stats  map[string]*stats
	closed bool
}

// chain is an immutable snapshot of the plugins in order.
type chain struct {
	plugins []*plugin
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// NewManager returns a Manager with an empty chain.
func NewManager(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Counters == nil {
		opts.Counters = NewMemoryCounters(0)
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = 10 * time.Millisecond
	}
	if opts.DefaultMemoryPages == 0 {
		opts.DefaultMemoryPages = 512
	}
	if opts.DefaultPoolSize <= 0 {
		opts.DefaultPoolSize = min(max(runtime.GOMAXPROCS(0), 2), 16)
	}
	if opts.DefaultPoolMax <= 0 {
		opts.DefaultPoolMax = min(4*opts.DefaultPoolSize, MaxPoolSize)
	}
	switch {
	case opts.DemoteAfter == 0:
		opts.DemoteAfter = 2 * time.Millisecond
	case opts.DemoteAfter < 0:
		opts.DemoteAfter = 0 // never
	}
	if opts.MaxModuleBytes <= 0 {
		opts.MaxModuleBytes = 16 << 20
	}
	if opts.InitTimeout <= 0 {
		opts.InitTimeout = 10 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.ReadOnlyHeaders == nil {
		opts.ReadOnlyHeaders = TrustedHeaders()
	}
	if opts.Features == 0 {
		opts.Features = FeaturesDefault
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch {
	case opts.DefaultTimeout > MaxTimeout:
		return nil, fmt.Errorf("wasm: default timeout %v over %v", opts.DefaultTimeout, MaxTimeout)
	case opts.DefaultMemoryPages > MaxMemoryPages:
		return nil, fmt.Errorf("wasm: default memory pages %d over %d", opts.DefaultMemoryPages, MaxMemoryPages)
	case opts.DefaultPoolSize > MaxPoolSize:
		return nil, fmt.Errorf("wasm: default pool size %d over %d", opts.DefaultPoolSize, MaxPoolSize)
	case opts.DefaultPoolMax > MaxPoolSize:
		return nil, fmt.Errorf("wasm: default pool maximum %d over %d", opts.DefaultPoolMax, MaxPoolSize)
	}
	m := &Manager{
		opts:     opts,
		log:      opts.Logger,
		counters: opts.Counters,
		cache:    opts.CompilationCache,
		stats:    make(map[string]*stats),

		instantiating: make(chan struct{}, max(runtime.NumCPU()/2, 1)),
	}
	if opts.DemoteAfter > 0 && !canDemote() {
		m.opts.DemoteAfter = 0
		m.log.Info("wasm: long guest calls keep their priority: demoting one needs Linux and the right to raise a priority back (CAP_SYS_NICE or RLIMIT_NICE)",
			"demote_after", opts.DemoteAfter)
	}
	if m.cache == nil {
		m.cache = wazero.NewCompilationCache()
		m.ownsCache = true
	}
	m.chain.Store(&chain{})
	return m, nil
}

// normalize validates spec and fills in the defaults.
func (m *Manager) normalize(name string, spec Spec) (Spec, error) {
	if !namePattern.MatchString(name) {
		return spec, invalidf(nil, "plugin name %q: want 1-63 of [a-z0-9_-], starting with a letter or digit", name)
	}
	if len(spec.Wasm) == 0 {
		return spec, invalidf(nil, "plugin %s: empty module", name)
	}
	if len(spec.Wasm) > m.opts.MaxModuleBytes {
		return spec, invalidf(nil, "plugin %s: module of %d bytes over the limit of %d", name, len(spec.Wasm), m.opts.MaxModuleBytes)
	}
	switch spec.FailPolicy {
	case "":
		spec.FailPolicy = FailOpen
	case FailOpen, FailClosed:
	default:
		return spec, invalidf(nil, "plugin %s: fail policy %q: want %q or %q", name, spec.FailPolicy, FailOpen, FailClosed)
	}
	if len(spec.Config) > MaxConfigBytes {
		return spec, invalidf(nil, "plugin %s: config of %d bytes over the limit of %d", name, len(spec.Config), MaxConfigBytes)
	}
	if len(spec.Config) > 0 && !json.Valid(spec.Config) {
		return spec, invalidf(nil, "plugin %s: config is not valid JSON", name)
	}
	spec.Config = bytes.Clone(spec.Config) // the caller's slice may change
	switch {
	case spec.Timeout < 0 || spec.Timeout > MaxTimeout:
		return spec, invalidf(nil, "plugin %s: timeout %v: want (0, %v]", name, spec.Timeout, MaxTimeout)
	case spec.Timeout == 0:
		spec.Timeout = m.opts.DefaultTimeout
	}
	switch {
	case spec.MemoryLimitPages > MaxMemoryPages:
		return spec, invalidf(nil, "plugin %s: memory limit %d pages over %d", name, spec.MemoryLimitPages, MaxMemoryPages)
	case spec.MemoryLimitPages == 0:
		spec.MemoryLimitPages = m.opts.DefaultMemoryPages
	}
	switch {
	case spec.PoolSize < 0 || spec.PoolSize > MaxPoolSize:
		return spec, invalidf(nil, "plugin %s: pool size %d: want [1, %d]", name, spec.PoolSize, MaxPoolSize)
	case spec.PoolSize == 0:
		spec.PoolSize = m.opts.DefaultPoolSize
	}
	switch {
	case spec.PoolMax < 0 || spec.PoolMax > MaxPoolSize:
		return spec, invalidf(nil, "plugin %s: pool maximum %d: want [pool size, %d]", name, spec.PoolMax, MaxPoolSize)
	case spec.PoolMax == 0:
		spec.PoolMax = max(m.opts.DefaultPoolMax, spec.PoolSize)
	case spec.PoolMax < spec.PoolSize:
		return spec, invalidf(nil, "plugin %s: pool maximum %d under the pool size %d", name, spec.PoolMax, spec.PoolSize)
	}
	return spec, nil
}

// Put loads spec under name, or replaces the plugin of that name. The module
// is validated, compiled and instantiated (its whole pool) before the chain
// changes; on any error the running chain is untouched and the error has
// CodeInvalid (or CodeClosed). Then the new chain is swapped in atomically,
// and the replaced plugin drains its calls in flight (at most
// Options.DrainTimeout, or until ctx ends) and is closed before Put returns.
func (m *Manager) Put(ctx context.Context, name string, spec Spec) (Info, error) {
	spec, err := m.normalize(name, spec)
	if err != nil {
		return Info{}, err
	}
	if m.isClosed() {
		return Info{}, errClosed
	}
	var p *plugin
	inBackground(func() { p, err = m.newPlugin(ctx, name, spec) }) // hash, compile, fill the pool
	if err != nil {
		return Info{}, err
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		p.close(ctx)
		return Info{}, errClosed
	}
	st := m.stats[name]
	if st == nil {
		st = &stats{}
		m.stats[name] = st
	}
	p.stats = st
	p.stats.created.Add(uint64(p.live.Load()))
	old := m.chain.Load().plugins
	next := make([]*plugin, 0, len(old)+1)
	var replaced *plugin
	for _, q := range old {
		if q.name == name {
			replaced = q
			continue
		}
		next = append(next, q)
	}
	if replaced != nil {
		// The new pool grows, right after the swap and in the background,
		// to the size the pool it replaces had grown to: the load that grew
		// it is still there.
		p.want.Store(min(max(p.want.Load(), replaced.want.Load()), int32(spec.PoolMax)))
	}
	next = append(next, p)
	slices.SortFunc(next, func(a, b *plugin) int {
		if a.spec.Order != b.spec.Order {
			return a.spec.Order - b.spec.Order
		}
		if a.name < b.name {
			return -1
		}
		return 1
	})
	m.chain.Store(&chain{plugins: next})
	p.startRefiller()
	p.askRefill()
	m.mu.Unlock()

	if replaced != nil {
		m.retire(ctx, replaced)
	}
	m.log.InfoContext(ctx, "wasm plugin loaded", "plugin", name, "sha256", p.sha256, "order", spec.Order, "replaced", replaced != nil)
	return p.info(), nil
}

// Delete unloads the plugin name: it leaves the chain at once, then drains
// and is closed before Delete returns. Unknown names: CodeNotFound.
func (m *Manager) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errClosed
	}
	old := m.chain.Load().plugins
	i := slices.IndexFunc(old, func(p *plugin) bool { return p.name == name })
	if i < 0 {
		m.mu.Unlock()
		return &Error{Code: CodeNotFound, Message: fmt.Sprintf("plugin %s not found", name)}
	}
	victim := old[i]
	m.chain.Store(&chain{plugins: slices.Delete(slices.Clone(old), i, i+1)})
	delete(m.stats, name)
	m.mu.Unlock()

	m.retire(ctx, victim)
	m.log.InfoContext(ctx, "wasm plugin unloaded", "plugin", name)
	return nil
}

// List describes the loaded plugins in chain order.
func (m *Manager) List() []Info {
	ps := m.chain.Load().plugins
	out := make([]Info, len(ps))
	for i, p := range ps {
		out[i] = p.info()
	}
	return out
}

// Close unloads every plugin (draining them, bounded by ctx and
// Options.DrainTimeout) and releases the compilation cache if the Manager
// owns it. Handle admits everything afterwards; Put and Delete fail.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	old := m.chain.Load().plugins
	m.chain.Store(&chain{})
	m.mu.Unlock()

	var wg sync.WaitGroup
	for _, p := range old {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.retire(ctx, p)
		}()
	}
	wg.Wait()
	if m.ownsCache {
		if err := m.cache.Close(ctx); err != nil {
			return fmt.Errorf("close compilation cache: %w", err)
		}
	}
	return nil
}

var errClosed = &Error{Code: CodeClosed, Message: "plugin manager closed"}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// retire drains p (its calls in flight finish, bounded) and closes it.
func (m *Manager) retire(ctx context.Context, p *plugin) {
	if !p.drain(ctx, m.opts.DrainTimeout) {
		m.log.WarnContext(ctx, "wasm plugin closed before its calls in flight finished",
			"plugin", p.name, "sha256", p.sha256, "drain_timeout", m.opts.DrainTimeout)
	}
	p.close(ctx)
}

// newPlugin compiles spec.Wasm in a runtime of its own (the memory limit is
// per runtime) sharing the compilation cache, checks the ABI and fills the
// instance pool. A module already loaded from the same bytes with the same
// memory limit is reused as it is: it was checked when it was compiled.
func (m *Manager) newPlugin(ctx context.Context, name string, spec Spec) (*plugin, error) {
	sum := politeSHA256(spec.Wasm)
	p := &plugin{
		m:        m,
		name:     name,
		spec:     spec,
		config:   spec.Config,
		sha256:   hex.EncodeToString(sum[:]),
		size:     len(spec.Wasm),
		loadedAt: time.Now(),
		idle:     make(chan *instance, spec.PoolMax),
		refill:   make(chan struct{}, 1),
		done:     make(chan struct{}),
		drained:  make(chan struct{}),
		stats:    &stats{}, // replaced by the name's stats when swapped in
	}
	p.spec.Wasm = nil // not kept: the compiled module is

	md := m.sharedModule(p.sha256, spec.MemoryLimitPages)
	if md == nil {
		var err error
		if md, err = m.compile(ctx, name, spec.Wasm, p.sha256, spec.MemoryLimitPages); err != nil {
			return nil, err
		}
	}
	p.mod = md
	p.requestOnly, p.startFn = md.requestOnly, md.startFn

	// Fill the pool now, off the request path; this also proves the
	// guest initializes (a bad config can make it panic here). At most
	// Manager.instantiating at once: a swap under load must not take
	// every core from the requests the old plugin is still serving.
	// The first failure ends the fill: a guest whose start loops costs one
	// instance's init deadline, not the pool's (a pool of 256 was 43 minutes of
	// a core before the answer).
	errs := make([]error, spec.PoolSize)
	insts := make([]*instance, spec.PoolSize)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for i := range spec.PoolSize {
		m.instantiating <- struct{}{}
		if failed.Load() {
			<-m.instantiating
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-m.instantiating }()
			// A goroutine of its own is not on Put's background thread.
			inBackground(func() { insts[i], errs[i] = p.newInstance(ctx) })
			if errs[i] != nil {
				failed.Store(true)
			}
			runtime.Gosched() // let requests have the core before the next one
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, in := range insts {
			if in != nil {
				in.close(ctx)
			}
		}
		_ = md.unref(ctx) // a runtime that never served this plugin; the cause matters
		return nil, invalidf(firstErr(errs), "plugin %s: instantiate", name)
	}
	for _, in := range insts {
		p.idle <- in
	}
	p.live.Store(int32(spec.PoolSize))
	p.want.Store(int32(spec.PoolSize))
	p.minIdle.Store(int32(spec.PoolSize))
	return p, nil
}

// compile decodes, validates and compiles wasmBytes in a new runtime with
// the memory limit pages, checks the ABI and instantiates the host modules
// the guest imports. The module has one reference, the caller's.
func (m *Manager) compile(ctx context.Context, name string, wasmBytes []byte, sum string, pages uint32) (*module, error) {
	// No WithCloseOnContextDone: the guest checks in with the host itself
	// (instrument.go), which ends a call past its deadline.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(m.cache).
		WithMemoryLimitPages(pages))
	var image *dataImage
	var compiled wazero.CompiledModule
	fail := func(err error) (*module, error) {
		_ = rt.Close(ctx) // closing a runtime that never served; the cause matters
		if compiled != nil {
			_ = compiled.Close(ctx) // likewise
		}
		image.close()
		return nil, err
	}
	// The data segments are applied once, here, where the instances'
	// memories can start from their image (dataimage.go).
	if stripped, img, ok := splitData(wasmBytes); ok {
		wasmBytes, image = stripped, newDataImage(img)
	}
	wasmBytes, err := instrument(wasmBytes)
	if err != nil {
		return fail(invalidf(err, "plugin %s: module does not compile", name))
	}
	compiled, err = compileModule(ctx, rt, wasmBytes) // in the background already: Put
	if err != nil {
		return fail(invalidf(err, "plugin %s: module does not compile", name))
	}
	md := &module{runtime: rt, compiled: compiled, sha256: sum, memoryPages: pages, image: image}
	if err := md.checkABI(name); err != nil {
		return fail(err)
	}
	if err := m.instantiateHostModules(ctx, rt, compiled); err != nil {
		return fail(&Error{Code: CodeInternal, Message: "plugin " + name + ": host modules", Err: err})
	}
	md.refs.Store(1)
	return md, nil
}

// compileModule is rt.CompileModule with a panic of wazero's turned into an
// error: its validator indexes some tables before checking the index (a
// function whose type is out of range), and an uploaded module must not
// take the gateway down.
func compileModule(ctx context.Context, rt wazero.Runtime, wasm []byte) (compiled wazero.CompiledModule, err error) {
	defer func() {
		if r := recover(); r != nil {
			compiled, err = nil, fmt.Errorf("wazero panicked: %v", r)
		}
	}()
	return rt.CompileModule(ctx, wasm)
}

// politeSHA256 hashes b in pieces of 256 KiB, yielding the processor
// between them (a module is megabytes; see decodeBase64Politely in
// package gateway).
func politeSHA256(b []byte) [sha256.Size]byte {
	const piece = 256 << 10
	h := sha256.New()
	for i := 0; i < len(b); i += piece {
		h.Write(b[i:min(i+piece, len(b))])
		runtime.Gosched()
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkABI verifies the exports the http-wasm ABI requires and the imports
// the host can satisfy (of the plugin name), and finds the start function.
func (p *module) checkABI(name string) error {
	exports := p.compiled.ExportedFunctions()
	want := func(fn string, params, results []api.ValueType) error {
		def, ok := exports[fn]
		if !ok {
			return invalidf(nil, "plugin %s: module does not export function %s", name, fn)
		}
		if !slices.Equal(def.ParamTypes(), params) || !slices.Equal(def.ResultTypes(), results) {
			return invalidf(nil, "plugin %s: function %s has signature %s, want %s", name, fn,
				signature(def.ParamTypes(), def.ResultTypes()), signature(params, results))
		}
		return nil
	}
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	if err := want("handle_request", nil, []api.ValueType{i64}); err != nil {
		return err
	}
	if err := want("handle_response", []api.ValueType{i32, i32}, nil); err != nil {
		return err
	}
	if _, ok := p.compiled.ExportedMemories()["memory"]; !ok {
		return invalidf(nil, "plugin %s: module does not export its memory as \"memory\"", name)
	}
	if def, ok := exports[ExportRequestOnly]; ok {
		if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
			return invalidf(nil, "plugin %s: function %s must be () -> ()", name, ExportRequestOnly)
		}
		p.requestOnly = true
	}
	switch {
	case exports["_initialize"] != nil:
		p.startFn = "_initialize"
	case exports["_start"] != nil:
		p.startFn = "_start"
	}
	for _, def := range p.compiled.ImportedFunctions() {
		mod, fn, _ := def.Import()
		switch mod {
		case HTTPHandlerModule, SeckillModule, wasiModule, yieldModule: // instrument refuses guests' own yieldModule imports
		default:
			return invalidf(nil, "plugin %s: imports %s.%s; the host provides only %s, %s and %s",
				name, mod, fn, HTTPHandlerModule, SeckillModule, wasiModule)
		}
	}
	return nil
}

func signature(params, results []api.ValueType) string {
	name := func(ts []api.ValueType) string {
		s := "("
		for i, t := range ts {
			if i > 0 {
				s += ", "
			}
			s += api.ValueTypeName(t)
		}
		return s + ")"
	}
	return name(params) + " -> " + name(results)
}
