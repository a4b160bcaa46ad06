// Package wasm is the gateway's admission plugin host: an ordered chain of
// WebAssembly plugins that run for every shopper request before it is
// forwarded, loaded, replaced, reordered and removed at run time.
//
// The package knows no HTTP framework; package hertzhost adapts it to hertz.
//
// # ABI
//
// Guests speak http-wasm (host module "http_handler"), the ABI of
// github.com/http-wasm/http-wasm-host-go, so guests written for other
// http-wasm hosts run here unchanged (the upstream TCK passes against the
// hertz adapter). A guest exports memory, handle_request () -> i64 and
// handle_response (i32, i32) -> (). handle_request returns next=1 in its low
// 32 bits to admit the request; otherwise it rejects it, having set a status
// and written a body. The gateway's extension module "seckill" adds what
// admission needs (see SeckillModule): counter_incr (shared fixed-window
// counters, Counters), now_unix_ms (the real clock) and fail (apply the fail
// policy without trapping). WASI preview 1 is provided (real clocks, crypto
// random, stdout/stderr to the log; no files, no network), so Go guests
// built with GOOS=wasip1 -buildmode=c-shared run; their _initialize (or a
// command's _start) runs once per instance.
//
// # Why not handler.NewMiddleware
//
// http-wasm-host-go's handler.Middleware keeps guests in a sync.Pool: the
// pool is unbounded, instances are closed by finalizers, an instance that
// trapped goes back into the pool, a runtime is created per middleware with
// no extra host module, and the host is fixed at construction. The gateway
// needs the opposite on each point, so this package implements the
// http_handler host functions itself on wazero (same names, signatures and
// semantics, including the before/after-next rules and lower-case header
// names) while keeping the upstream contract for hosts: a host is a
// handler.Host (type Host), exactly what an adapter written for
// http-wasm-host-go implements. Upstream's own code is not used, only its
// API types and its TCK.
//
// # Plugins, pools and limits
//
// Each plugin has its own wazero runtime, because the memory limit
// (RuntimeConfig.WithMemoryLimitPages) is a runtime setting. All runtimes
// share one compilation cache, so a module is compiled once however often
// it is loaded; its compiled code is released with the last plugin that
// uses it.
//
// A plugin owns a pool of instances: Put makes PoolSize of them (off the
// request path), and the pool grows on demand up to PoolMax. A request
// takes an idle instance; if none is idle it asks the refiller for one more
// (up to PoolMax) and waits for whichever comes first, an instance another
// request returns or the new one. Only a request that finds the pool at
// PoolMax with every instance busy waits at most until the plugin's
// deadline and then fails: counted as PoolExhausted
// (seckill_wasm_plugin_pool_exhausted_total), so a plugin under load keeps
// applying within its limits, and says so when it cannot. A grown pool
// shrinks back toward PoolSize once its extra instances have stayed idle
// for 2 s, and its replacement in a hot swap grows to its size right after
// the swap. An instance whose call trapped, exited or timed out is closed
// and never reused; the refiller instantiates its replacement, so requests
// never pay for instantiation. A guest that exports seckill_request_only
// (every guest built with plugins/sdk) returns its instance right after
// handle_request; other guests keep it until the rest of the gateway has
// answered and handle_response has run, as the ABI requires, so each
// request in flight through them holds an instance and their pool grows
// with the requests in flight.
//
// The trusted request headers the gateway sets before the chain
// (TrustedHeaders: the user, the activity, the item, the client's IP) are
// read-only to guests (Options.ReadOnlyHeaders): a guest that sets, adds to
// or removes one traps, so no plugin can make the plugins after it or the
// backend believe in another user or address.
//
// # Deadlines
//
// Compiled guest code cannot be preempted, and wazero's way to stop it
// (WithCloseOnContextDone) costs every loop iteration a return to Go and
// every call a goroutine. Instead the host rewrites each module before
// compiling it (instrument.go): every loop head and function entry counts a
// budget down, and at zero the guest calls the host (yield), about every
// 100 µs of guest time. There the host ends a call that is past its
// deadline or whose plugin has closed, and lowers the thread priority of a
// long call that keeps its core busy (Options.DemoteAfter). A call costs no
// goroutine, timer or context: the instance's call state is the call's
// context, and its deadline on the clock bounds the host's I/O (the Redis
// counters).
//
// The timeout is on the call's running time (callWatch: its thread's CPU
// time, read once the call has run half its timeout on the clock): a
// healthy call that the machine keeps waiting (a garbage collection, the
// kernel giving its core to another thread, a hot swap's compile and
// instantiations competing for the cores) is not failed for time it could
// not use. A guest that loops still ends: after running its timeout, and a
// demoted one after about its timeout on the clock; any call after ten
// timeouts (at least a second) on the clock. So a hot swap, which costs
// milliseconds of CPU per instance, fails no healthy request, whatever the
// plugins' fail policy and deadline.
//
// # Fail policy
//
// A plugin fails when its call traps (a Go panic, unreachable, out of
// bounds, a read-only header changed), exits, passes its deadline, finds no
// free instance in time (the pool at PoolMax), or calls seckill.fail.
// FailOpen admits the request as if the plugin had called next; FailClosed
// refuses it with 503 {"error":"unavailable","message":"admission plugin
// <name> failed"}: the gateway could not decide, so the answer says
// "unavailable" (retry later) rather than 403 (you may not). A rejection
// (next=0) is 403 {"error":"rejected","message":"<name>: <reason>"}, or the
// status the plugin set if it is >= 400, with the body the plugin wrote as
// the reason. The Verdict carries these; the adapter writes them.
//
// # Hot swap
//
// The chain is an immutable snapshot behind an atomic.Pointer. Put builds
// and validates the new plugin completely, then swaps in a new snapshot;
// errors leave the running chain untouched. A request enters every plugin of
// the snapshot it loaded (an atomic count per plugin) before running any, so
// the replaced plugin can tell when it is idle: it refuses new entries
// (requests then load the new snapshot), waits for those in flight (bounded
// by Options.DrainTimeout), and closes its runtime explicitly. No finalizer
// is involved and no request fails because of a swap.
//
// # Using it
//
//	m, err := wasm.NewManager(ctx, wasm.Options{Counters: counters, Logger: log}) // counters: backend/redis.PluginCounters
//	reg.MustRegister(wasm.NewCollector(m))
//	h.Use(hertzhost.Middleware(m)) // after auth and the trusted headers
//	defer m.Close(ctx)
//
// Operators load and unload plugins through the gateway's admin API
// (gateway/admin_plugins.go), which calls Manager.Put and Manager.Delete.
package wasm
