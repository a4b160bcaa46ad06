package wasm

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/http-wasm/http-wasm-host-go/api/handler"
)

// testHost is a Host over plain fields: the core's tests need no HTTP
// framework. It ignores ctx (the state is the value itself).
type testHost struct {
	method, uri, proto string
	reqHeader          http.Header
	reqBody            []byte
	status             uint32
	respHeader         http.Header
	respBody           []byte
	sourceAddr         string
}

var _ Host = (*testHost)(nil)

func newTestHost(header ...string) *testHost {
	h := &testHost{method: "POST", uri: "/api/v1/orders", proto: "HTTP/1.1",
		reqHeader: http.Header{}, respHeader: http.Header{}, sourceAddr: "192.0.2.10:40000", status: 200}
	for i := 0; i+1 < len(header); i += 2 {
		h.reqHeader.Add(header[i], header[i+1])
	}
	return h
}

func (h *testHost) EnableFeatures(_ context.Context, f handler.Features) handler.Features {
	return f & FeaturesDefault
}
func (h *testHost) GetMethod(context.Context) string          { return h.method }
func (h *testHost) SetMethod(_ context.Context, m string)     { h.method = m }
func (h *testHost) GetURI(context.Context) string             { return h.uri }
func (h *testHost) SetURI(_ context.Context, u string)        { h.uri = u }
func (h *testHost) GetProtocolVersion(context.Context) string { return h.proto }
func (h *testHost) GetRequestHeaderNames(context.Context) []string {
	return names(h.reqHeader)
}
func (h *testHost) GetRequestHeaderValues(_ context.Context, n string) []string {
	return h.reqHeader.Values(n)
}
func (h *testHost) SetRequestHeaderValue(_ context.Context, n, v string) { h.reqHeader.Set(n, v) }
func (h *testHost) AddRequestHeaderValue(_ context.Context, n, v string) { h.reqHeader.Add(n, v) }
func (h *testHost) RemoveRequestHeader(_ context.Context, n string)      { h.reqHeader.Del(n) }
func (h *testHost) RequestBodyReader(context.Context) io.ReadCloser {
	return io.NopCloser(bytes.NewReader(h.reqBody))
}
func (h *testHost) RequestBodyWriter(context.Context) io.Writer {
	h.reqBody = nil
	return writerFunc(func(p []byte) (int, error) { h.reqBody = append(h.reqBody, p...); return len(p), nil })
}
func (h *testHost) GetRequestTrailerNames(context.Context) []string          { return nil }
func (h *testHost) GetRequestTrailerValues(context.Context, string) []string { return nil }
func (h *testHost) SetRequestTrailerValue(context.Context, string, string)   { panic("no trailers") }
func (h *testHost) AddRequestTrailerValue(context.Context, string, string)   { panic("no trailers") }
func (h *testHost) RemoveRequestTrailer(context.Context, string)             { panic("no trailers") }
func (h *testHost) GetStatusCode(context.Context) uint32                     { return h.status }
func (h *testHost) SetStatusCode(_ context.Context, c uint32)                { h.status = c }
func (h *testHost) GetResponseHeaderNames(context.Context) []string          { return names(h.respHeader) }
func (h *testHost) GetResponseHeaderValues(_ context.Context, n string) []string {
	return h.respHeader.Values(n)
}
func (h *testHost) SetResponseHeaderValue(_ context.Context, n, v string)     { h.respHeader.Set(n, v) }
func (h *testHost) AddResponseHeaderValue(_ context.Context, n, v string)     { h.respHeader.Add(n, v) }
func (h *testHost) RemoveResponseHeader(_ context.Context, n string)          { h.respHeader.Del(n) }
func (h *testHost) GetResponseTrailerNames(context.Context) []string          { return nil }
func (h *testHost) GetResponseTrailerValues(context.Context, string) []string { return nil }
func (h *testHost) SetResponseTrailerValue(context.Context, string, string)   { panic("no trailers") }
func (h *testHost) AddResponseTrailerValue(context.Context, string, string)   { panic("no trailers") }
func (h *testHost) RemoveResponseTrailer(context.Context, string)             { panic("no trailers") }
func (h *testHost) GetSourceAddr(context.Context) string                      { return h.sourceAddr }
func (h *testHost) ResponseBodyReader(context.Context) io.ReadCloser {
	return io.NopCloser(bytes.NewReader(h.respBody))
}
func (h *testHost) ResponseBodyWriter(context.Context) io.Writer {
	h.respBody = nil
	return writerFunc(func(p []byte) (int, error) { h.respBody = append(h.respBody, p...); return len(p), nil })
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func names(h http.Header) []string {
	var out []string
	for k := range h {
		out = append(out, strings.ToLower(k))
	}
	sort.Strings(out)
	return out
}
