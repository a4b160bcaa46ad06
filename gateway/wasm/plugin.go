package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

const wasiModule = wasi_snapshot_preview1.ModuleName

// plugin is one loaded module: its runtime, compiled code and instance
// pool. A plugin is never changed after it joins a chain; replacing it means
// a new plugin.
type plugin struct {
	m           *Manager
	name        string
	spec        Spec // normalized; Wasm dropped
	config      []byte
	sha256      string
	size        int
	loadedAt    time.Time
	requestOnly bool
	startFn     string

	mod   *module // shared with the plugins loaded from the same bytes
	stats *stats

	// The pool: idle instances, how many exist (idle or busy), how many
	// it should have and how many requests wait for one. The refiller
	// makes instances while live < want, replacing discarded ones and
	// growing the pool, so requests never instantiate. want starts at
	// spec.PoolSize and grows, up to spec.PoolMax, when requests find no
	// idle instance (grow); every trimInterval the refiller closes the
	// instances that stayed idle all along, down to spec.PoolSize (trim):
	// minIdle is the fewest idle instances seen since the last trim.
	idle    chan *instance // capacity spec.PoolMax
	live    atomic.Int32
	want    atomic.Int32
	waiting atomic.Int32
	minIdle atomic.Int32
	// growFailed is when an instantiation of the refiller last failed
	// (unix nanoseconds): requests waiting since then stop counting on it.
	growFailed atomic.Int64
	// arriving counts instances the refiller has counted live and not yet put
	// in the pool.
	arriving atomic.Int32
	refill   chan struct{}
	done     chan struct{} // closed by close: stops the refiller and waiters
	refills  sync.WaitGroup

	// inflight counts requests inside the plugin; closingBit marks it
	// retired: no new request may enter.
	inflight  atomic.Int64
	drained   chan struct{}
	drainOnce sync.Once
	closeOnce sync.Once
}

const closingBit = int64(1) << 62

// instance is one instantiated guest. It serves one call at a time, whose
// state it keeps in cs: the call's context, so a call allocates nothing.
type instance struct {
	mod            api.Module
	handleRequest  api.Function
	handleResponse api.Function
	features       handler.Features // enabled during initialization
	stack          [2]uint64        // call stack of handle_request/handle_response
	mem            *guestMemory     // nil: wazero's own (memory.go)
	cs             callState        // the call in progress

	// The pace of the guest's check-ins (Manager.yield): its budget of
	// checks between two, and when it last checked in.
	budget    uint32
	lastYield time.Time
}

var errInstanceClosed = errors.New("wasm instance closed")

// call calls fn (handle_request or handle_response) with in.stack and in.cs
// as its context, if the instance's memory is still there (memory.go).
func (in *instance) call(fn api.Function) error {
	if in.mem != nil {
		if !in.mem.enter() {
			return errInstanceClosed
		}
		defer in.mem.leave()
	}
	err := fn.CallWithStack(&in.cs, in.stack[:])
	in.cs.watch.end()
	return err
}

func (m *Manager) instantiateHostModules(ctx context.Context, rt wazero.Runtime, compiled wazero.CompiledModule) error {
	var wasi, httpHandler, seckill bool
	for _, def := range compiled.ImportedFunctions() {
		mod, _, _ := def.Import()
		switch mod {
		case wasiModule:
			wasi = true
		case HTTPHandlerModule:
			httpHandler = true
		case SeckillModule:
			seckill = true
		}
	}
	if wasi {
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			return fmt.Errorf("instantiate wasi: %w", err)
		}
	}
	if err := m.instantiateYield(ctx, rt); err != nil { // every instrumented guest imports it
		return fmt.Errorf("instantiate %s: %w", yieldModule, err)
	}
	if httpHandler {
		if err := m.instantiateHTTPHandler(ctx, rt); err != nil {
			return fmt.Errorf("instantiate %s: %w", HTTPHandlerModule, err)
		}
	}
	if seckill {
		if err := m.instantiateSeckill(ctx, rt); err != nil {
			return fmt.Errorf("instantiate %s: %w", SeckillModule, err)
		}
	}
	return nil
}

// newInstance instantiates the guest and runs its start function, bounded by
// Options.InitTimeout whatever ctx says (a slow init must not be cut short
// by a caller's deadline, an endless one must end).
func (p *plugin) newInstance(ctx context.Context) (*instance, error) {
	inst := &instance{budget: initialBudget}
	inst.cs.begin(context.WithoutCancel(ctx), p, inst, nil, time.Now(), p.m.opts.InitTimeout, 0)
	ctx = experimental.WithMemoryAllocator(&inst.cs, memoryAllocator(inst, p.mod.image))

	id := strconv.FormatUint(p.mod.nextID.Add(1), 10)
	stderr := &guestOutput{log: p.m.log, plugin: p.name, level: slog.LevelWarn}
	cfg := wazero.NewModuleConfig().
		WithName(p.name + "#" + id).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStdout(&guestOutput{log: p.m.log, plugin: p.name, level: slog.LevelInfo}).
		WithStderr(stderr)
	if p.startFn != "" {
		cfg = cfg.WithStartFunctions(p.startFn)
	} else {
		cfg = cfg.WithStartFunctions()
	}
	mod, err := p.mod.runtime.InstantiateModule(ctx, p.mod.compiled, cfg)
	inst.cs.watch.end()
	if err != nil {
		if said := stderr.said(); said != "" {
			// What the guest said first (a Go guest's panic: "panic: bad config
			// ..."), before the trap it ended in: the operator's reason.
			return nil, fmt.Errorf("the guest said: %s: %w", said, err)
		}
		return nil, err
	}
	if mod.IsClosed() { // the start function exited with code 0
		return nil, fmt.Errorf("guest exited during initialization")
	}
	inst.mod = mod
	inst.handleRequest = mod.ExportedFunction(handler.FuncHandleRequest)
	inst.handleResponse = mod.ExportedFunction(handler.FuncHandleResponse)
	return inst, nil
}

func (in *instance) close(ctx context.Context) {
	_ = in.mod.Close(ctx) // closing a module we throw away; nothing to do on error
}

// errNoInstance: no instance became idle before the call's deadline, the
// pool at its maximum.
var errNoInstance = errors.New("no free instance before the deadline (pool at its maximum)")

// acquire takes an idle instance. If there is none it has the pool grow
// and waits: for as long as an instance it asked for is on its way, then
// until the deadline (start + the plugin's timeout) or until ctx ends.
func (p *plugin) acquire(ctx context.Context, start time.Time) (*instance, error) {
	select {
	case in := <-p.idle:
		p.noteIdle(int32(len(p.idle)))
		return in, nil
	default:
	}
	p.noteIdle(0)
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	p.grow()
	t := time.NewTimer(time.Until(start.Add(p.spec.Timeout))) // only when the pool is empty
	defer t.Stop()
	for {
		select {
		case in := <-p.idle:
			return in, nil
		case <-t.C:
			// An instance still to come (the refiller is making the ones
			// asked for, and has not failed meanwhile) is worth waiting
			// for: it takes milliseconds, and the deadline is for the
			// guest's call, not for the pool's growth.
			if (p.live.Load() < p.want.Load() || p.arriving.Load() > 0) && p.growFailed.Load() < start.UnixNano() {
				t.Reset(p.spec.Timeout)
				continue
			}
			select { // one that arrived as the timer fired
			case in := <-p.idle:
				return in, nil
			default:
			}
			return nil, errNoInstance
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.done:
			return nil, errClosed
		}
	}
}

// grow asks the refiller for one more instance, up to spec.PoolMax, unless
// those on their way already cover the requests waiting.
func (p *plugin) grow() {
	for {
		want := p.want.Load()
		if want >= int32(p.spec.PoolMax) || want-p.live.Load() >= p.waiting.Load() {
			return
		}
		if p.want.CompareAndSwap(want, want+1) {
			p.askRefill()
			return
		}
	}
}

// noteIdle records n idle instances for trim.
func (p *plugin) noteIdle(n int32) {
	for {
		least := p.minIdle.Load()
		if n >= least || p.minIdle.CompareAndSwap(least, n) {
			return
		}
	}
}

// trimInterval is how long a grown pool's extra instances must stay idle
// before trim closes them: long enough that requests arriving in waves keep
// their instances, short enough that a quiet gateway gives the memory back
// soon (an instance costs a Go guest about 2 ms of CPU to make again).
const trimInterval = 2 * time.Second

// trim closes as many idle instances as stayed idle since the last trim,
// keeping spec.PoolSize at least, unless requests are waiting.
func (p *plugin) trim() {
	surplus := min(p.minIdle.Load(), p.live.Load()-int32(p.spec.PoolSize))
	for range max(surplus, 0) {
		if p.waiting.Load() > 0 || !p.closeIdle() {
			break
		}
	}
	p.minIdle.Store(int32(len(p.idle)))
}

// closeIdle closes an idle instance, if there is one, and lowers want with
// it (not under spec.PoolSize).
func (p *plugin) closeIdle() bool {
	select {
	case in := <-p.idle:
		in.close(context.Background())
		p.live.Add(-1)
	default:
		return false
	}
	for {
		want := p.want.Load()
		if want <= int32(p.spec.PoolSize) || p.want.CompareAndSwap(want, want-1) {
			return true
		}
	}
}

func (p *plugin) askRefill() {
	select {
	case p.refill <- struct{}{}:
	default:
	}
}

// release returns a healthy instance to the pool, or closes it if the
// plugin has closed meanwhile (its module may live on in another plugin).
func (p *plugin) release(in *instance) {
	select {
	case <-p.done:
		in.close(context.Background())
		p.live.Add(-1)
		return
	default:
	}
	select {
	case p.idle <- in:
	default: // cannot happen: the pool never holds more than PoolMax
		in.close(context.Background())
		p.live.Add(-1)
	}
}

// discard throws an instance away (after a trap or timeout) and asks the
// refiller for a fresh one.
func (p *plugin) discard(in *instance) {
	in.close(context.Background())
	p.live.Add(-1)
	p.stats.discarded.Add(1)
	p.askRefill()
}

// startRefiller starts the goroutine that replaces discarded instances,
// grows the pool and trims it.
func (p *plugin) startRefiller() {
	p.refills.Add(1)
	go func() {
		defer p.refills.Done()
		trims := time.NewTicker(trimInterval)
		defer trims.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-trims.C:
				p.trim()
				continue
			case <-p.refill:
			}
			for p.live.Load() < p.want.Load() {
				// One of the Manager's instantiation slots, unless requests
				// wait for the instance or half the pool is gone: then
				// requests wait, which costs more than a core.
				slot := p.waiting.Load() == 0 && p.live.Load() > p.want.Load()/2
				if slot {
					select {
					case <-p.done:
						return
					case p.m.instantiating <- struct{}{}:
					}
				}
				// In the background if it waits for a slot; else at once.
				var in *instance
				var err error
				if slot {
					inBackground(func() { in, err = p.newInstance(context.Background()) })
				} else {
					in, err = p.newInstance(context.Background())
				}
				if slot {
					<-p.m.instantiating
				}
				if err != nil {
					p.growFailed.Store(time.Now().UnixNano())
					p.m.log.Error("wasm instance", "plugin", p.name, "err", err)
					select { // retry later; requests fail per policy meanwhile
					case <-p.done:
						return
					case <-time.After(time.Second):
					}
					continue
				}
				select {
				case <-p.done:
					in.close(context.Background())
					return
				default:
				}
				// Counted live before it goes idle (a request that takes it
				// at once sees it counted); arriving covers the moment in
				// between, for a request whose wait ends then.
				p.arriving.Add(1)
				p.live.Add(1)
				p.stats.created.Add(1)
				p.release(in)
				p.arriving.Add(-1)
			}
		}
	}()
}

// enter registers a request in flight; false if the plugin is retired.
func (p *plugin) enter() bool {
	if p.inflight.Add(1)&closingBit != 0 {
		p.leave()
		return false
	}
	return true
}

func (p *plugin) leave() {
	if p.inflight.Add(-1) == closingBit {
		p.drainOnce.Do(func() { close(p.drained) })
	}
}

// drain refuses new requests and waits for those in flight, at most timeout
// or until ctx ends. It reports whether all finished.
func (p *plugin) drain(ctx context.Context, timeout time.Duration) bool {
	if p.inflight.Or(closingBit) == 0 {
		p.drainOnce.Do(func() { close(p.drained) })
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.drained:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// close stops the refiller, closes the idle instances and lets go of the
// module; the last plugin using it closes its runtime, which closes every
// instance left and releases the compiled code (from the cache too, once
// no other plugin uses the same module).
func (p *plugin) close(ctx context.Context) {
	p.closeOnce.Do(func() {
		close(p.done)
		p.refills.Wait()
		for {
			select {
			case in := <-p.idle:
				in.close(ctx)
				p.live.Add(-1)
				continue
			default:
			}
			break
		}
		if err := p.mod.unref(ctx); err != nil {
			p.m.log.Warn("wasm runtime close", "plugin", p.name, "err", err)
		}
	})
}

func (p *plugin) info() Info {
	st := p.stats.snapshot()
	st.InstancesLive = int(p.live.Load())
	return Info{
		Name:             p.name,
		Order:            p.spec.Order,
		Config:           p.spec.Config,
		FailPolicy:       p.spec.FailPolicy,
		SHA256:           p.sha256,
		Size:             p.size,
		Timeout:          p.spec.Timeout,
		MemoryLimitPages: p.spec.MemoryLimitPages,
		PoolSize:         p.spec.PoolSize,
		PoolMax:          p.spec.PoolMax,
		RequestOnly:      p.requestOnly,
		LoadedAt:         p.loadedAt,
		Stats:            st,
	}
}

// guestOutput logs what a guest writes to stdout or stderr, line by line,
// bounded (a Go guest's panic goes to stderr).
type guestOutput struct {
	log    *slog.Logger
	plugin string
	level  slog.Level
	buf    []byte
	lines  int
	first  string // the first line written, sanitized
}

// said is the first line the guest wrote, or "" (the line being written counts).
func (w *guestOutput) said() string {
	if w.first == "" && len(bytes.TrimSpace(w.buf)) > 0 {
		return sanitize(w.buf)
	}
	return w.first
}

const (
	maxGuestLine  = 1 << 10
	maxGuestLines = 64 // per instance; the rest is dropped
)

func (w *guestOutput) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 && w.lines < maxGuestLines {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.buf = append(w.buf, b[:min(len(b), maxGuestLine-len(w.buf))]...)
			break
		}
		w.buf = append(w.buf, b[:min(i, maxGuestLine-len(w.buf))]...)
		b = b[i+1:]
		if len(bytes.TrimSpace(w.buf)) > 0 {
			w.lines++
			line := sanitize(w.buf)
			if w.first == "" {
				w.first = line
			}
			w.log.Log(context.Background(), w.level, "wasm guest output", "plugin", w.plugin, "line", line)
		}
		w.buf = w.buf[:0]
	}
	return n, nil
}
