package wasm

import (
	"github.com/http-wasm/http-wasm-host-go/api/handler"
)

// Host is the request and response of one HTTP exchange as the http_handler
// host functions see them. It is handler.Host of
// github.com/http-wasm/http-wasm-host-go, so a host written for that library
// serves here unchanged and the core needs no HTTP framework: the hertz
// adapter (package hertzhost) implements it over *app.RequestContext.
//
// Every method receives the context passed to Manager.Handle (with values
// added by the core), so a stateless Host may keep the request in a context
// value, as the upstream net/http host does.
type Host = handler.Host

// Features re-exports the http-wasm feature flags.
type Features = handler.Features

// Names of the ABI. The http_handler functions are those of http-wasm
// (handler.FuncGetMethod and friends).
const (
	// HTTPHandlerModule is the http-wasm host module.
	HTTPHandlerModule = handler.HostModule

	// SeckillModule is the gateway's extension host module. Its functions:
	//
	//	counter_incr(key_ptr i32, key_len i32, delta i64, ttl_ms i64, result_ptr i32) -> errno i32
	//	    Adds delta to the shared counter key (private to the plugin: the
	//	    host prefixes it with the plugin name) and writes the new value at
	//	    result_ptr as a little-endian i64. The first increment of a key sets
	//	    its time to live to ttl_ms; when it expires the key counts from zero
	//	    again (a fixed window). errno: 0 ok, 1 counter store unavailable
	//	    (nothing written), 2 invalid argument (empty key, key over 256
	//	    bytes, ttl_ms <= 0). Counters are shared by every gateway instance
	//	    that uses the same store (Redis).
	//
	//	now_unix_ms() -> i64
	//	    The host's wall clock in Unix milliseconds (WASI clocks also work,
	//	    this saves the guest a syscall layer).
	//
	//	fail(msg_ptr i32, msg_len i32)
	//	    Marks the current call failed: when handle_request returns, the
	//	    host applies the plugin's fail policy whatever it returned, and
	//	    keeps the instance (unlike a trap).
	SeckillModule = "seckill"

	FuncCounterIncr = "counter_incr"
	FuncNowUnixMS   = "now_unix_ms"
	FuncFail        = "fail"

	// ExportRequestOnly is an optional guest export, () -> (). A guest that
	// exports it declares that its handle_response does nothing: the host
	// then returns the instance to the pool as soon as handle_request
	// returns and never calls handle_response. Without it the instance is
	// held until the rest of the gateway has produced the response, as the
	// http-wasm ABI requires, which ties up a pool slot for the whole request.
	ExportRequestOnly = "seckill_request_only"

	// CounterErrnoOK and friends are the results of counter_incr.
	CounterErrnoOK          = 0
	CounterErrnoUnavailable = 1
	CounterErrnoInvalid     = 2

	// MaxCounterKeyLen is the longest key a guest may pass to counter_incr.
	MaxCounterKeyLen = 256
)

// TrustedHeaders returns the request headers the gateway sets before the
// chain from what it has verified (it drops any a client sent): the user,
// the activity and item of an order, the client's IP. They are read-only to
// guests by default (Options.ReadOnlyHeaders).
func TrustedHeaders() []string {
	return []string{"X-Seckill-User", "X-Seckill-Activity", "X-Seckill-Item", "X-Real-IP"}
}

// FeaturesDefault are the http-wasm features a host is assumed to support
// when Options.Features is zero: buffered request and response bodies (hertz
// buffers both), no trailers.
const FeaturesDefault = handler.FeatureBufferRequest | handler.FeatureBufferResponse
