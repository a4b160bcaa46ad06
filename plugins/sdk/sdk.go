// Package sdk is the guest SDK for seckill admission plugins: Go programs
// compiled to WebAssembly that the gateway runs for every shopper request
// before it is forwarded.
//
// Plugins speak the http-wasm handler ABI (host module "http_handler") plus
// the gateway's small extension module "seckill" (shared counters, the real
// clock, explicit failure). Build a plugin with the standard Go toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags="-s -w" -o plugin.wasm .
//
// A plugin is a main package that registers its handler in init (a
// c-shared module never runs main):
//
//	func init() { sdk.HandleRequest(handle) }
//
//	func main() {}
//
//	func handle(req sdk.Request, resp sdk.Response) (next bool) {
//		if req.UserID() == "42" {
//			return resp.Reject(403, "user 42 is blocked")
//		}
//		return true
//	}
//
// See plugins/README.md for the whole guide.
package sdk

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"time"
	"unsafe"
)

// Trusted request headers. The gateway strips any such header a client sent
// and sets them from the authenticated request before the admission chain.
const (
	HeaderUser     = "X-Seckill-User"     // authenticated user id (decimal)
	HeaderActivity = "X-Seckill-Activity" // activity id of the order, if any
	HeaderItem     = "X-Seckill-Item"     // item id of the order, if any
	HeaderRealIP   = "X-Real-IP"          // client IP as the gateway saw it
)

// Features of the http-wasm ABI (see enable_features).
const (
	FeatureBufferRequest  uint32 = 1 << 0
	FeatureBufferResponse uint32 = 1 << 1
	FeatureTrailers       uint32 = 1 << 2
)

const (
	kindRequest  uint32 = 0
	kindResponse uint32 = 1
)

// Handler decides on one request. Return true to admit it (the gateway goes
// on with the next plugin and then the backend); return false to reject it,
// after setting a status and writing a reason with resp (see Response.Reject).
// A panic is a plugin failure: the gateway applies the plugin's fail policy
// and throws the instance away.
type Handler func(req Request, resp Response) (next bool)

var requestHandler Handler

// HandleRequest registers the plugin's handler. Call it from init.
func HandleRequest(h Handler) { requestHandler = h }

func handleRequest() uint64 {
	if requestHandler == nil || requestHandler(Request{}, Response{}) {
		return 1 // next=1, no request context
	}
	return 0
}

// handleResponse is the http-wasm response hook. SDK plugins decide on the
// request alone, so it does nothing (and the module says so through its
// seckill_request_only export).
func handleResponse(reqCtx, isError uint32) {}

// ---- errors ----

var (
	// ErrCountersUnavailable: the gateway's counter store did not answer
	// (for example Redis is down). Decide yourself, or call Fail to apply the
	// plugin's fail policy.
	ErrCountersUnavailable = errors.New("sdk: counter store unavailable")
	// ErrInvalidArgument: an empty or too long key, or a ttl <= 0.
	ErrInvalidArgument = errors.New("sdk: invalid argument")
)

// ---- memory helpers ----

var buf = make([]byte, 2048)

func bufPtr() unsafe.Pointer { return unsafe.Pointer(&buf[0]) }

// readString calls a host function that writes up to limit bytes into memory
// and returns the full length, retrying with a larger buffer if needed.
func readString(get func(p unsafe.Pointer, limit uint32) uint32) string {
	n := get(bufPtr(), uint32(len(buf)))
	if n > uint32(len(buf)) {
		buf = make([]byte, n)
		n = get(bufPtr(), uint32(len(buf)))
	}
	return string(buf[:n])
}

func strPtr(s string) (unsafe.Pointer, uint32) {
	if len(s) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func bytesPtr(b []byte) (unsafe.Pointer, uint32) {
	if len(b) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(&b[0]), uint32(len(b))
}

// readList calls a host function that writes NUL-terminated strings and
// returns count<<32|length.
func readList(get func(p unsafe.Pointer, limit uint32) uint64) []string {
	countLen := get(bufPtr(), uint32(len(buf)))
	if countLen == 0 {
		return nil
	}
	n := uint32(countLen)
	if n > uint32(len(buf)) {
		buf = make([]byte, n)
		countLen = get(bufPtr(), uint32(len(buf)))
		n = uint32(countLen)
	}
	out := make([]string, 0, countLen>>32)
	start := uint32(0)
	for i := uint32(0); i < n; i++ {
		if buf[i] == 0 {
			out = append(out, string(buf[start:i]))
			start = i + 1
		}
	}
	return out
}

func readBody(kind uint32) []byte {
	var out []byte
	for {
		eofLen := hostReadBody(kind, bufPtr(), uint32(len(buf)))
		out = append(out, buf[:uint32(eofLen)]...)
		if eofLen>>32 != 0 {
			return out
		}
	}
}

// ---- plugin-wide functions ----

var (
	config       []byte
	configLoaded bool
)

// Config returns the plugin's configuration: the JSON value given as
// "config" when the plugin was loaded (empty if none). It can be called from
// init, so a plugin can reject a bad configuration at load time by
// panicking there.
func Config() []byte {
	if !configLoaded {
		config = []byte(readString(hostGetConfig))
		configLoaded = true
	}
	return config
}

// EnableFeatures asks the host for http-wasm features and returns those it
// has enabled.
func EnableFeatures(features uint32) uint32 { return hostEnableFeatures(features) }

// Level is a log level of the http-wasm ABI.
type Level int32

const (
	LevelDebug Level = -1
	LevelInfo  Level = 0
	LevelWarn  Level = 1
	LevelError Level = 2
)

// LogEnabled reports whether the gateway would keep a message at level.
func LogEnabled(level Level) bool { return hostLogEnabled(int32(level)) == 1 }

// Log writes msg to the gateway's log, tagged with the plugin name.
func Log(level Level, msg string) {
	p, n := strPtr(msg)
	hostLog(int32(level), p, n)
}

// Counter adds delta to the shared counter key and returns its new value.
// Counters are shared by all gateway instances (Redis in production) and
// are private to the plugin (the gateway prefixes the key with its name).
// The first increment of a key starts its life: the key expires ttl later and
// then counts from zero again (a fixed window).
func Counter(key string, delta int64, ttl time.Duration) (int64, error) {
	var result int64
	p, n := strPtr(key)
	switch hostCounterIncr(p, n, delta, ttl.Milliseconds(), unsafe.Pointer(&result)) {
	case 0:
		return result, nil
	case 2:
		return 0, ErrInvalidArgument
	default:
		return 0, ErrCountersUnavailable
	}
}

// Now is the gateway's wall clock.
func Now() time.Time { return time.UnixMilli(hostNowUnixMillis()) }

// Fail reports that the plugin cannot decide on this request. Whatever the
// handler returns afterwards, the gateway applies the plugin's fail policy:
// "open" admits the request, "closed" answers 503. The instance is kept.
func Fail(reason string) {
	p, n := strPtr(reason)
	hostFail(p, n)
}

// ---- request ----

// Request is the incoming request. Its methods call the host; they are only
// valid inside the handler.
type Request struct{}

// Method is the HTTP method, e.g. "POST".
func (Request) Method() string { return readString(hostGetMethod) }

// SetMethod changes the method seen by the rest of the gateway.
func (Request) SetMethod(method string) {
	p, n := strPtr(method)
	hostSetMethod(p, n)
}

// URI is the request URI: path and query, e.g. "/api/v1/orders?x=1".
func (Request) URI() string { return readString(hostGetURI) }

// SetURI changes the request URI seen by the rest of the gateway.
func (Request) SetURI(uri string) {
	p, n := strPtr(uri)
	hostSetURI(p, n)
}

// ProtocolVersion is e.g. "HTTP/1.1".
func (Request) ProtocolVersion() string { return readString(hostGetProtocolVersion) }

// HeaderNames lists the request header names, lower-case.
func (Request) HeaderNames() []string { return headerNames(kindRequest) }

// Header is the first value of the request header name, or "".
func (Request) Header(name string) string { return firstValue(kindRequest, name) }

// HeaderBytes is the first value of the request header name, or nil, without
// copying it out of the SDK's buffer: it is valid only until the next call of
// a Request, Response or sdk function, which may overwrite it (as
// bufio.Scanner.Bytes is). Header's string costs the guest an allocation a
// call; a check such as users[string(b)] makes none.
func (Request) HeaderBytes(name string) []byte { return firstValueBytes(kindRequest, name) }

// HeaderValues lists all values of the request header name.
func (Request) HeaderValues(name string) []string { return headerValues(kindRequest, name) }

// SetHeader replaces the values of a request header.
func (Request) SetHeader(name, value string) { setHeader(kindRequest, name, value) }

// AddHeader adds a value to a request header.
func (Request) AddHeader(name, value string) { addHeader(kindRequest, name, value) }

// RemoveHeader removes a request header.
func (Request) RemoveHeader(name string) { removeHeader(kindRequest, name) }

// Body reads the whole request body. It asks the host to buffer the body
// first, so the backend still sees it.
func (Request) Body() []byte {
	hostEnableFeatures(FeatureBufferRequest)
	return readBody(kindRequest)
}

// SourceAddr is the peer address of the connection, "ip:port". Behind a
// proxy prefer ClientIP.
func (Request) SourceAddr() string { return readString(hostGetSourceAddr) }

// UserID is the authenticated user id the gateway put in X-Seckill-User, or
// "" for anonymous requests.
func (r Request) UserID() string { return r.Header(HeaderUser) }

// User is the authenticated user id as a number, read without allocating;
// false for anonymous requests.
func (r Request) User() (int64, bool) {
	return parseID(r.HeaderBytes(HeaderUser))
}

// ActivityID is the activity id the gateway put in X-Seckill-Activity, or "".
func (r Request) ActivityID() string { return r.Header(HeaderActivity) }

// ItemID is the item id the gateway put in X-Seckill-Item, or "".
func (r Request) ItemID() string { return r.Header(HeaderItem) }

// ClientIP is the client IP from X-Real-IP, falling back to the host part of
// the connection's peer address.
func (r Request) ClientIP() string {
	if ip := r.Header(HeaderRealIP); ip != "" {
		return ip
	}
	return hostOf(r.SourceAddr())
}

// ClientAddr is ClientIP parsed, without allocating when the gateway set
// X-Real-IP (it always does for the requests it forwards); the zero Addr
// (!IsValid) when there is no address.
func (r Request) ClientAddr() netip.Addr {
	if b := r.HeaderBytes(HeaderRealIP); len(b) > 0 {
		// The string is read by ParseAddr alone and not kept (a zone is copied).
		a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
		if err == nil {
			return a
		}
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(r.ClientIP())
	return a
}

// parseID reads a positive decimal int64, the form of the gateway's trusted ids
// (a token's sub may be any positive int64: 19 digits for an identity provider's
// snowflake ids).
func parseID(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0') // 19 digits fit in a uint64
	}
	if n == 0 || n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// hostOf strips the port of "ip:port" or "[ipv6]:port" (the net package
// would add a lot to the module size).
func hostOf(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if end := strings.IndexByte(addr, ']'); end > 0 {
			return addr[1:end]
		}
		return addr
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && strings.Count(addr, ":") == 1 {
		return addr[:i]
	}
	return addr
}

// ---- response ----

// Response is the response the plugin writes when it rejects a request.
type Response struct{}

// SetStatus sets the HTTP status code of the rejection (default 403).
func (Response) SetStatus(code int) { hostSetStatusCode(uint32(code)) }

// Status is the status code set so far.
func (Response) Status() int { return int(hostGetStatusCode()) }

// Header is the first value of the response header name, or "".
func (Response) Header(name string) string { return firstValue(kindResponse, name) }

// SetHeader sets a response header, e.g. Retry-After.
func (Response) SetHeader(name, value string) { setHeader(kindResponse, name, value) }

// AddHeader adds a value to a response header.
func (Response) AddHeader(name, value string) { addHeader(kindResponse, name, value) }

// RemoveHeader removes a response header.
func (Response) RemoveHeader(name string) { removeHeader(kindResponse, name) }

// Write appends to the response body. On a rejection the gateway uses the
// body as the reason in its error message.
func (Response) Write(b []byte) (int, error) {
	p, n := bytesPtr(b)
	hostWriteBody(kindResponse, p, n)
	return len(b), nil
}

// WriteString appends s to the response body.
func (Response) WriteString(s string) (int, error) {
	p, n := strPtr(s)
	hostWriteBody(kindResponse, p, n)
	return len(s), nil
}

// Reject sets the status and writes reason, and returns false so a handler
// can end with `return resp.Reject(429, "too many attempts")`.
func (r Response) Reject(status int, reason string) bool {
	if status > 0 {
		r.SetStatus(status)
	}
	if reason != "" {
		r.WriteString(reason)
	}
	return false
}

// ---- header helpers ----

func headerNames(kind uint32) []string {
	return readList(func(p unsafe.Pointer, limit uint32) uint64 {
		return hostGetHeaderNames(kind, p, limit)
	})
}

func headerValues(kind uint32, name string) []string {
	np, nn := strPtr(name)
	return readList(func(p unsafe.Pointer, limit uint32) uint64 {
		return hostGetHeaderValues(kind, np, nn, p, limit)
	})
}

// firstValue reads the values of a header into buf and copies out only the
// first: every plugin reads a few headers per request (the user, the client
// IP), and building the list of all values cost each read a slice and a
// string per value.
func firstValue(kind uint32, name string) string {
	return string(firstValueBytes(kind, name))
}

// firstValueBytes is firstValue in buf, not copied; nil when the header has no
// value.
func firstValueBytes(kind uint32, name string) []byte {
	np, nn := strPtr(name)
	countLen := hostGetHeaderValues(kind, np, nn, bufPtr(), uint32(len(buf)))
	if n := uint32(countLen); n > uint32(len(buf)) {
		buf = make([]byte, n)
		countLen = hostGetHeaderValues(kind, np, nn, bufPtr(), uint32(len(buf)))
	}
	for i, c := range buf[:uint32(countLen)] {
		if c == 0 {
			return buf[:i:i]
		}
	}
	return nil
}

func setHeader(kind uint32, name, value string) {
	np, nn := strPtr(name)
	vp, vn := strPtr(value)
	hostSetHeaderValue(kind, np, nn, vp, vn)
}

func addHeader(kind uint32, name, value string) {
	np, nn := strPtr(name)
	vp, vn := strPtr(value)
	hostAddHeaderValue(kind, np, nn, vp, vn)
}

func removeHeader(kind uint32, name string) {
	np, nn := strPtr(name)
	hostRemoveHeader(kind, np, nn)
}
