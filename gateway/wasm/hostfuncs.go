package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/http-wasm/http-wasm-host-go/api"
	"github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
)

// callKey is the context key of the *callState of the guest call in
// progress, for contexts that wrap one.
type callKey struct{}

// callState is what the host functions know of the guest call in progress:
// one handle_request (then maybe one handle_response) of one plugin, or the
// instantiation of an instance (host == nil). It is the context of the
// call (and of the Host's methods it leads to): each instance keeps one and
// reuses it, so a call allocates no context. It is valid only during the
// call.
type callState struct {
	parent   context.Context // Handle's, or the instantiation's
	p        *plugin
	inst     *instance // during instantiation: the instance being created
	host     Host      // nil during instantiation
	features handler.Features
	// afterNext is true in handle_response.
	afterNext bool

	// The call's clocks (yield.go): its start, its deadline on the clock
	// (start + timeout: host I/O is bounded by it), and from watchAfter on
	// the watch of its running time and its thread.
	start, deadline     time.Time
	timeout, watchAfter time.Duration
	demoteAfter         time.Duration // Options.DemoteAfter; 0: never demote
	watch               callWatch

	reqBodyR  io.ReadCloser
	reqBodyW  io.Writer
	respBodyR io.ReadCloser
	respBodyW io.Writer

	// What the guest did to the response before next: the rejection.
	status uint32
	body   []byte

	failed     bool
	failReason string
}

// maxCapturedBody bounds the part of a guest's response body kept for the
// rejection message (the whole body still goes to the host).
const maxCapturedBody = 4 << 10

// begin readies cs for a call of p on in, started at start, for host (nil:
// the instantiation). demoteAfter: when a busy call's thread is lowered (0:
// never).
func (cs *callState) begin(parent context.Context, p *plugin, in *instance, host Host, start time.Time, timeout, demoteAfter time.Duration) {
	*cs = callState{parent: parent, p: p, inst: in, host: host, features: in.features,
		body: cs.body[:0], demoteAfter: demoteAfter}
	cs.restart(start, timeout)
}

// restart starts the call's clocks at start, for timeout.
func (cs *callState) restart(start time.Time, timeout time.Duration) {
	cs.start, cs.deadline, cs.timeout, cs.watch = start, start.Add(timeout), timeout, callWatch{}
	cs.watchAfter = timeout / 2
	if cs.demoteAfter > 0 {
		cs.watchAfter = min(cs.watchAfter, cs.demoteAfter)
	}
}

// Deadline implements context.Context: the call's deadline, which bounds
// host I/O (the Redis counters set their socket deadlines from it). The
// call itself is ended at its deadline by yield, not by cancellation, so
// Done and Err are the parent's.
func (cs *callState) Deadline() (time.Time, bool) {
	if d, ok := cs.parent.Deadline(); ok && d.Before(cs.deadline) {
		return d, true
	}
	return cs.deadline, true
}

// Done implements context.Context.
func (cs *callState) Done() <-chan struct{} { return cs.parent.Done() }

// Err implements context.Context.
func (cs *callState) Err() error { return cs.parent.Err() }

// Value implements context.Context.
func (cs *callState) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return cs
	}
	return cs.parent.Value(key)
}

func stateOf(ctx context.Context) *callState {
	if cs, ok := ctx.(*callState); ok {
		return cs
	}
	cs, _ := ctx.Value(callKey{}).(*callState)
	if cs == nil {
		panic(errors.New("host function called outside a guest call"))
	}
	return cs
}

// requestOf returns the state of a request call; guests may only touch the
// request and response inside handle_request and handle_response.
func requestOf(ctx context.Context, fn string) *callState {
	cs := stateOf(ctx)
	if cs.host == nil {
		panic(fmt.Errorf("%s: no request during initialization", fn))
	}
	return cs
}

func (cs *callState) mustBeforeNext(what string) {
	if cs.afterNext {
		panic(fmt.Errorf("can't %s after next handler", what))
	}
}

// mustBeforeNextOr allows what after next only with the given feature.
func (cs *callState) mustBeforeNextOr(f handler.Features, what string) {
	if cs.afterNext && !cs.features.IsEnabled(f) {
		panic(fmt.Errorf("can't %s after next handler unless %s is enabled", what, f))
	}
}

// closeBodies releases the body readers and writers of one guest call.
func (cs *callState) closeBodies() {
	if cs.reqBodyR != nil {
		_ = cs.reqBodyR.Close() // readers over buffered bodies; nothing to report
		cs.reqBodyR = nil
	}
	if cs.respBodyR != nil {
		_ = cs.respBodyR.Close()
		cs.respBodyR = nil
	}
	cs.reqBodyW, cs.respBodyW = nil, nil
}

// ---- memory access; a guest passing a bad region traps ----

func memRead(mod wapi.Module, what string, off, n uint32) []byte {
	if n == 0 {
		return nil
	}
	b, ok := mod.Memory().Read(off, n)
	if !ok {
		panic(fmt.Errorf("%s: out of memory range [%d, %d)", what, off, uint64(off)+uint64(n)))
	}
	return b
}

func memString(mod wapi.Module, what string, off, n uint32) string {
	return string(memRead(mod, what, off, n))
}

// memWriteIfFits writes v at buf when it fits in limit and returns len(v)
// either way (the guest retries with a larger buffer).
func memWriteIfFits[S ~string | ~[]byte](mod wapi.Module, buf, limit uint32, v S) uint32 {
	n := uint32(len(v))
	if n == 0 || n > limit {
		return n
	}
	dst, ok := mod.Memory().Read(buf, n)
	if !ok {
		panic(fmt.Errorf("write of %d bytes at %d: out of memory range", n, buf))
	}
	copy(dst, v)
	return n
}

// memWriteList writes vs NUL-terminated when they fit and returns
// count<<32 | length.
func memWriteList[S ~string | ~[]byte](mod wapi.Module, buf, limit uint32, vs []S) uint64 {
	if len(vs) == 0 {
		return 0
	}
	n := uint32(len(vs))
	for _, v := range vs {
		n += uint32(len(v))
	}
	countLen := uint64(len(vs))<<32 | uint64(n)
	if n > limit {
		return countLen
	}
	dst, ok := mod.Memory().Read(buf, n)
	if !ok {
		panic(fmt.Errorf("write of %d bytes at %d: out of memory range", n, buf))
	}
	i := 0
	for _, v := range vs {
		i += copy(dst[i:], v)
		dst[i] = 0
		i++
	}
	return countLen
}

// ---- http_handler ----

func (m *Manager) instantiateHTTPHandler(ctx context.Context, r wazero.Runtime) error {
	const i32, i64 = wapi.ValueTypeI32, wapi.ValueTypeI64
	type fn struct {
		name    string
		f       wapi.GoModuleFunc
		params  []wapi.ValueType
		results []wapi.ValueType
	}
	fns := []fn{
		{handler.FuncEnableFeatures, m.hEnableFeatures, []wapi.ValueType{i32}, []wapi.ValueType{i32}},
		{handler.FuncGetConfig, m.hGetConfig, []wapi.ValueType{i32, i32}, []wapi.ValueType{i32}},
		{handler.FuncLogEnabled, m.hLogEnabled, []wapi.ValueType{i32}, []wapi.ValueType{i32}},
		{handler.FuncLog, m.hLog, []wapi.ValueType{i32, i32, i32}, nil},
		{handler.FuncGetMethod, m.hGetMethod, []wapi.ValueType{i32, i32}, []wapi.ValueType{i32}},
		{handler.FuncSetMethod, m.hSetMethod, []wapi.ValueType{i32, i32}, nil},
		{handler.FuncGetURI, m.hGetURI, []wapi.ValueType{i32, i32}, []wapi.ValueType{i32}},
		{handler.FuncSetURI, m.hSetURI, []wapi.ValueType{i32, i32}, nil},
		{handler.FuncGetProtocolVersion, m.hGetProtocolVersion, []wapi.ValueType{i32, i32}, []wapi.ValueType{i32}},
		{handler.FuncGetHeaderNames, m.hGetHeaderNames, []wapi.ValueType{i32, i32, i32}, []wapi.ValueType{i64}},
		{handler.FuncGetHeaderValues, m.hGetHeaderValues, []wapi.ValueType{i32, i32, i32, i32, i32}, []wapi.ValueType{i64}},
		{handler.FuncSetHeaderValue, m.hSetHeaderValue, []wapi.ValueType{i32, i32, i32, i32, i32}, nil},
		{handler.FuncAddHeaderValue, m.hAddHeaderValue, []wapi.ValueType{i32, i32, i32, i32, i32}, nil},
		{handler.FuncRemoveHeader, m.hRemoveHeader, []wapi.ValueType{i32, i32, i32}, nil},
		{handler.FuncReadBody, m.hReadBody, []wapi.ValueType{i32, i32, i32}, []wapi.ValueType{i64}},
		{handler.FuncWriteBody, m.hWriteBody, []wapi.ValueType{i32, i32, i32}, nil},
		{handler.FuncGetStatusCode, m.hGetStatusCode, nil, []wapi.ValueType{i32}},
		{handler.FuncSetStatusCode, m.hSetStatusCode, []wapi.ValueType{i32}, nil},
		{handler.FuncGetSourceAddr, m.hGetSourceAddr, []wapi.ValueType{i32, i32}, []wapi.ValueType{i32}},
	}
	b := r.NewHostModuleBuilder(HTTPHandlerModule)
	for _, f := range fns {
		b.NewFunctionBuilder().WithGoModuleFunction(f.f, f.params, f.results).Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func (m *Manager) hEnableFeatures(ctx context.Context, _ wapi.Module, stack []uint64) {
	want := handler.Features(stack[0])
	cs := stateOf(ctx)
	if cs.host == nil { // during instantiation: features for every request of this instance
		cs.inst.features = (cs.inst.features | want) & m.opts.Features
		stack[0] = uint64(cs.inst.features)
		return
	}
	cs.features = cs.host.EnableFeatures(ctx, cs.features|want)
	stack[0] = uint64(cs.features)
}

func (m *Manager) hGetConfig(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := stateOf(ctx)
	stack[0] = uint64(memWriteIfFits(mod, uint32(stack[0]), uint32(stack[1]), cs.p.config))
}

func (m *Manager) hLogEnabled(ctx context.Context, _ wapi.Module, stack []uint64) {
	if l := api.LogLevel(int32(stack[0])); l < api.LogLevelNone && m.log.Enabled(ctx, slogLevel(l)) {
		stack[0] = 1
	} else {
		stack[0] = 0
	}
}

func (m *Manager) hLog(ctx context.Context, mod wapi.Module, stack []uint64) {
	l := api.LogLevel(int32(stack[0]))
	level := slogLevel(l)
	if l >= api.LogLevelNone || !m.log.Enabled(ctx, level) {
		return
	}
	msg := memRead(mod, "log message", uint32(stack[1]), uint32(stack[2]))
	if len(msg) > maxLogMessage {
		msg = msg[:maxLogMessage]
	}
	cs := stateOf(ctx)
	m.log.Log(ctx, level, strings.ToValidUTF8(string(msg), "?"), "plugin", cs.p.name)
}

const maxLogMessage = 4 << 10

func (m *Manager) hGetMethod(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncGetMethod)
	stack[0] = uint64(memWriteIfFits(mod, uint32(stack[0]), uint32(stack[1]), cs.host.GetMethod(ctx)))
}

func (m *Manager) hSetMethod(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncSetMethod)
	cs.mustBeforeNext("set method")
	if uint32(stack[1]) == 0 {
		panic(errors.New("HTTP method cannot be empty"))
	}
	cs.host.SetMethod(ctx, memString(mod, "method", uint32(stack[0]), uint32(stack[1])))
}

func (m *Manager) hGetURI(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncGetURI)
	stack[0] = uint64(memWriteIfFits(mod, uint32(stack[0]), uint32(stack[1]), cs.host.GetURI(ctx)))
}

func (m *Manager) hSetURI(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncSetURI)
	cs.mustBeforeNext("set uri")
	cs.host.SetURI(ctx, memString(mod, "uri", uint32(stack[0]), uint32(stack[1])))
}

func (m *Manager) hGetProtocolVersion(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncGetProtocolVersion)
	v := cs.host.GetProtocolVersion(ctx)
	if v == "" {
		panic(errors.New("HTTP protocol version cannot be empty"))
	}
	stack[0] = uint64(memWriteIfFits(mod, uint32(stack[0]), uint32(stack[1]), v))
}

func headerName(mod wapi.Module, ptr, n uint64) string {
	if uint32(n) == 0 {
		panic(errors.New("HTTP header name cannot be empty"))
	}
	return memString(mod, "header name", uint32(ptr), uint32(n))
}

// headerNameView is headerName without the copy: a string over the guest's
// memory, valid only until the guest runs again.
func headerNameView(mod wapi.Module, ptr, n uint64) string {
	if uint32(n) == 0 {
		panic(errors.New("HTTP header name cannot be empty"))
	}
	b := memRead(mod, "header name", uint32(ptr), uint32(n))
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// HeaderPeeker is an optional interface of a Host: the values of a request
// header lent rather than copied into strings. When the Host has it,
// get_header_values on request headers (every SDK plugin reads the user and
// the client IP) copies the values once, from the host's buffers into the
// guest's memory.
type HeaderPeeker interface {
	// PeekRequestHeaderValues returns the values of the request header
	// name. They may be the host's own buffers: the caller reads them
	// before the request changes. name may be the guest's memory: the
	// host does not keep it.
	PeekRequestHeaderValues(ctx context.Context, name string) [][]byte
}

func badKind(kind uint64) error {
	return fmt.Errorf("unsupported header or body kind: %d", uint32(kind))
}

func (m *Manager) hGetHeaderNames(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncGetHeaderNames)
	var names []string
	switch handler.HeaderKind(stack[0]) {
	case handler.HeaderKindRequest:
		names = cs.host.GetRequestHeaderNames(ctx)
	case handler.HeaderKindResponse:
		names = cs.host.GetResponseHeaderNames(ctx)
	case handler.HeaderKindRequestTrailers:
		names = cs.host.GetRequestTrailerNames(ctx)
	case handler.HeaderKindResponseTrailers:
		names = cs.host.GetResponseTrailerNames(ctx)
	default:
		panic(badKind(stack[0]))
	}
	lower := make([]string, len(names)) // the ABI's names are lower-case
	for i, n := range names {
		lower[i] = strings.ToLower(n)
	}
	stack[0] = memWriteList(mod, uint32(stack[1]), uint32(stack[2]), lower)
}

func (m *Manager) hGetHeaderValues(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncGetHeaderValues)
	if p, ok := cs.host.(HeaderPeeker); ok && handler.HeaderKind(stack[0]) == handler.HeaderKindRequest {
		values := p.PeekRequestHeaderValues(ctx, headerNameView(mod, stack[1], stack[2]))
		stack[0] = memWriteList(mod, uint32(stack[3]), uint32(stack[4]), values)
		return
	}
	name := headerName(mod, stack[1], stack[2])
	var values []string
	switch handler.HeaderKind(stack[0]) {
	case handler.HeaderKindRequest:
		values = cs.host.GetRequestHeaderValues(ctx, name)
	case handler.HeaderKindResponse:
		values = cs.host.GetResponseHeaderValues(ctx, name)
	case handler.HeaderKindRequestTrailers:
		values = cs.host.GetRequestTrailerValues(ctx, name)
	case handler.HeaderKindResponseTrailers:
		values = cs.host.GetResponseTrailerValues(ctx, name)
	default:
		panic(badKind(stack[0]))
	}
	stack[0] = memWriteList(mod, uint32(stack[3]), uint32(stack[4]), values)
}

// mustMutateHeaders enforces when the guest may change headers of a kind.
func (cs *callState) mustMutateHeaders(kind handler.HeaderKind, op string) {
	switch kind {
	case handler.HeaderKindRequest:
		cs.mustBeforeNext(op + " request header")
	case handler.HeaderKindRequestTrailers:
		cs.mustBeforeNext(op + " request trailer")
	case handler.HeaderKindResponse:
		cs.mustBeforeNextOr(handler.FeatureBufferResponse, op+" response header")
	case handler.HeaderKindResponseTrailers:
		cs.mustBeforeNextOr(handler.FeatureBufferResponse, op+" response trailer")
	default:
		panic(badKind(uint64(kind)))
	}
}

// mustNotBeReadOnly refuses a change of a read-only request header
// (Options.ReadOnlyHeaders).
func (m *Manager) mustNotBeReadOnly(kind handler.HeaderKind, name, op string) {
	if kind != handler.HeaderKindRequest {
		return
	}
	for _, ro := range m.opts.ReadOnlyHeaders {
		if strings.EqualFold(name, ro) {
			panic(fmt.Errorf("can't %s request header %s: it is read-only to plugins", op, ro))
		}
	}
}

func (m *Manager) hSetHeaderValue(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncSetHeaderValue)
	kind := handler.HeaderKind(stack[0])
	cs.mustMutateHeaders(kind, "set")
	name := headerName(mod, stack[1], stack[2])
	m.mustNotBeReadOnly(kind, name, "set")
	value := memString(mod, "header value", uint32(stack[3]), uint32(stack[4]))
	switch kind {
	case handler.HeaderKindRequest:
		cs.host.SetRequestHeaderValue(ctx, name, value)
	case handler.HeaderKindResponse:
		cs.host.SetResponseHeaderValue(ctx, name, value)
	case handler.HeaderKindRequestTrailers:
		cs.host.SetRequestTrailerValue(ctx, name, value)
	case handler.HeaderKindResponseTrailers:
		cs.host.SetResponseTrailerValue(ctx, name, value)
	}
}

func (m *Manager) hAddHeaderValue(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncAddHeaderValue)
	kind := handler.HeaderKind(stack[0])
	cs.mustMutateHeaders(kind, "add")
	name := headerName(mod, stack[1], stack[2])
	m.mustNotBeReadOnly(kind, name, "add to")
	value := memString(mod, "header value", uint32(stack[3]), uint32(stack[4]))
	switch kind {
	case handler.HeaderKindRequest:
		cs.host.AddRequestHeaderValue(ctx, name, value)
	case handler.HeaderKindResponse:
		cs.host.AddResponseHeaderValue(ctx, name, value)
	case handler.HeaderKindRequestTrailers:
		cs.host.AddRequestTrailerValue(ctx, name, value)
	case handler.HeaderKindResponseTrailers:
		cs.host.AddResponseTrailerValue(ctx, name, value)
	}
}

func (m *Manager) hRemoveHeader(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncRemoveHeader)
	kind := handler.HeaderKind(stack[0])
	cs.mustMutateHeaders(kind, "remove")
	name := headerName(mod, stack[1], stack[2])
	m.mustNotBeReadOnly(kind, name, "remove")
	switch kind {
	case handler.HeaderKindRequest:
		cs.host.RemoveRequestHeader(ctx, name)
	case handler.HeaderKindResponse:
		cs.host.RemoveResponseHeader(ctx, name)
	case handler.HeaderKindRequestTrailers:
		cs.host.RemoveRequestTrailer(ctx, name)
	case handler.HeaderKindResponseTrailers:
		cs.host.RemoveResponseTrailer(ctx, name)
	}
}

func (m *Manager) hReadBody(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncReadBody)
	buf, limit := uint32(stack[1]), uint32(stack[2])
	if limit == 0 {
		panic(errors.New("read_body: buf_limit must be positive"))
	}
	var r io.Reader
	switch handler.BodyKind(stack[0]) {
	case handler.BodyKindRequest:
		cs.mustBeforeNextOr(handler.FeatureBufferRequest, "read request body")
		if cs.reqBodyR == nil {
			cs.reqBodyR = cs.host.RequestBodyReader(ctx)
		}
		r = cs.reqBodyR
	case handler.BodyKindResponse:
		cs.mustBeforeNextOr(handler.FeatureBufferResponse, "read response body")
		if cs.respBodyR == nil {
			cs.respBodyR = cs.host.ResponseBodyReader(ctx)
		}
		r = cs.respBodyR
	default:
		panic(badKind(stack[0]))
	}
	dst := memRead(mod, "body buffer", buf, limit)
	n := 0
	var err error
	for n < len(dst) && err == nil {
		var k int
		k, err = r.Read(dst[n:])
		n += k
	}
	switch {
	case err == nil:
		stack[0] = uint64(n)
	case errors.Is(err, io.EOF):
		stack[0] = 1<<32 | uint64(n)
	default:
		panic(fmt.Errorf("read body: %w", err))
	}
}

func (m *Manager) hWriteBody(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncWriteBody)
	b := memRead(mod, "body", uint32(stack[1]), uint32(stack[2]))
	var w io.Writer
	switch handler.BodyKind(stack[0]) {
	case handler.BodyKindRequest:
		cs.mustBeforeNext("write request body")
		if cs.reqBodyW == nil {
			cs.reqBodyW = cs.host.RequestBodyWriter(ctx)
		}
		w = cs.reqBodyW
	case handler.BodyKindResponse:
		cs.mustBeforeNextOr(handler.FeatureBufferResponse, "write response body")
		if cs.respBodyW == nil {
			cs.respBodyW = cs.host.ResponseBodyWriter(ctx)
			if !cs.afterNext {
				cs.body = cs.body[:0]
			}
		}
		w = cs.respBodyW
		if !cs.afterNext && len(cs.body) < maxCapturedBody {
			keep := min(len(b), maxCapturedBody-len(cs.body))
			cs.body = append(cs.body, b[:keep]...)
		}
	default:
		panic(badKind(stack[0]))
	}
	if _, err := w.Write(b); err != nil {
		panic(fmt.Errorf("write body: %w", err))
	}
}

func (m *Manager) hGetStatusCode(ctx context.Context, _ wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncGetStatusCode)
	stack[0] = uint64(cs.host.GetStatusCode(ctx))
}

func (m *Manager) hSetStatusCode(ctx context.Context, _ wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncSetStatusCode)
	cs.mustBeforeNextOr(handler.FeatureBufferResponse, "set status code")
	code := uint32(stack[0])
	if !cs.afterNext {
		cs.status = code
	}
	cs.host.SetStatusCode(ctx, code)
}

func (m *Manager) hGetSourceAddr(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := requestOf(ctx, handler.FuncGetSourceAddr)
	stack[0] = uint64(memWriteIfFits(mod, uint32(stack[0]), uint32(stack[1]), cs.host.GetSourceAddr(ctx)))
}

// ---- seckill ----

func (m *Manager) instantiateSeckill(ctx context.Context, r wazero.Runtime) error {
	const i32, i64 = wapi.ValueTypeI32, wapi.ValueTypeI64
	_, err := r.NewHostModuleBuilder(SeckillModule).
		NewFunctionBuilder().
		WithGoModuleFunction(wapi.GoModuleFunc(m.sCounterIncr), []wapi.ValueType{i32, i32, i64, i64, i32}, []wapi.ValueType{i32}).
		WithParameterNames("key", "key_len", "delta", "ttl_ms", "result").Export(FuncCounterIncr).
		NewFunctionBuilder().
		WithGoModuleFunction(wapi.GoModuleFunc(m.sNowUnixMS), nil, []wapi.ValueType{i64}).
		Export(FuncNowUnixMS).
		NewFunctionBuilder().
		WithGoModuleFunction(wapi.GoModuleFunc(m.sFail), []wapi.ValueType{i32, i32}, nil).
		WithParameterNames("msg", "msg_len").Export(FuncFail).
		Instantiate(ctx)
	return err
}

func (m *Manager) sCounterIncr(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := stateOf(ctx)
	keyPtr, keyLen := uint32(stack[0]), uint32(stack[1])
	delta, ttlMS, result := int64(stack[2]), int64(stack[3]), uint32(stack[4])
	if keyLen == 0 || keyLen > MaxCounterKeyLen || ttlMS <= 0 {
		stack[0] = CounterErrnoInvalid
		return
	}
	key := cs.p.name + ":" + memString(mod, "counter key", keyPtr, keyLen)
	v, err := m.counters.Incr(ctx, key, delta, msDuration(ttlMS))
	cs.watch.blocked() // a round trip to Redis parks the goroutine
	if err != nil {
		m.log.WarnContext(ctx, "wasm counter", "plugin", cs.p.name, "err", err)
		stack[0] = CounterErrnoUnavailable
		return
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	if !mod.Memory().Write(result, b[:]) {
		panic(fmt.Errorf("counter result at %d: out of memory range", result))
	}
	stack[0] = CounterErrnoOK
}

func (m *Manager) sNowUnixMS(_ context.Context, _ wapi.Module, stack []uint64) {
	stack[0] = uint64(m.opts.Now().UnixMilli())
}

func (m *Manager) sFail(ctx context.Context, mod wapi.Module, stack []uint64) {
	cs := stateOf(ctx)
	msg := memRead(mod, "fail message", uint32(stack[0]), uint32(stack[1]))
	if len(msg) > 512 {
		msg = msg[:512]
	}
	cs.failed = true
	cs.failReason = sanitize(msg)
}

// sanitize turns guest bytes into a short, printable, valid UTF-8 string: control
// characters (C0, DEL, C1) and invisible format characters (a right-to-left
// override could make an operator's message read otherwise) become spaces.
func sanitize(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f && r <= 0x9f || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > 512 {
		s = s[:512]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
