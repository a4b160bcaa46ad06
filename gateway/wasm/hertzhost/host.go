// Package hertzhost runs the wasm admission chain inside a hertz server: it
// implements the http-wasm Host (handler.Host of http-wasm-host-go) over
// hertz's *app.RequestContext and provides the middleware that runs the
// chain. Loading and removing plugins is the gateway's admin API
// (gateway/admin_plugins.go).
package hertzhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/http-wasm/http-wasm-host-go/api/handler"

	"github.com/seckill/flashsale/gateway/wasm"
)

// Host implements the http-wasm handler.Host over a request's
// *app.RequestContext: the one it holds (HostFor, what Middleware uses), or
// for the zero Host the one found in the context (see NewContext), so that
// one zero value serves every request. It also lends request header values
// to the guests without copying them (wasm.HeaderPeeker).
//
// Hertz buffers request and response bodies, so FeatureBufferRequest and
// FeatureBufferResponse are always on; trailers are not supported (their
// getters return nothing, their setters panic, which traps the guest, as the
// ABI asks of hosts without FeatureTrailers).
type Host struct {
	c *app.RequestContext // nil: the context's
}

var (
	_ handler.Host      = Host{}
	_ wasm.HeaderPeeker = Host{}
)

// HostFor returns the Host of c. It is a pointer in an interface: passing
// it as a wasm.Host allocates nothing.
func HostFor(c *app.RequestContext) Host { return Host{c: c} }

// rc is the request of the call.
func (host Host) rc(ctx context.Context) *app.RequestContext {
	if host.c != nil {
		return host.c
	}
	return rc(ctx)
}

// Features are the http-wasm features Host supports; pass them as
// wasm.Options.Features (they are also its default).
const Features = handler.FeatureBufferRequest | handler.FeatureBufferResponse

type ctxKey struct{}

// NewContext returns ctx carrying c for Host.
func NewContext(ctx context.Context, c *app.RequestContext) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// RequestContext returns the *app.RequestContext carried by ctx, or nil.
func RequestContext(ctx context.Context) *app.RequestContext {
	c, _ := ctx.Value(ctxKey{}).(*app.RequestContext)
	return c
}

func rc(ctx context.Context) *app.RequestContext {
	c := RequestContext(ctx)
	if c == nil {
		panic("hertzhost: no *app.RequestContext in the context (use NewContext)")
	}
	return c
}

// EnableFeatures implements handler.Host.
func (Host) EnableFeatures(_ context.Context, f handler.Features) handler.Features {
	return f & Features
}

// GetMethod implements handler.Host.
func (host Host) GetMethod(ctx context.Context) string {
	return string(host.rc(ctx).Request.Header.Method())
}

// SetMethod implements handler.Host.
func (host Host) SetMethod(ctx context.Context, method string) {
	host.rc(ctx).Request.Header.SetMethod(method)
}

// GetURI implements handler.Host: the request URI as received (path and
// query, escaping kept), or as a guest set it.
func (host Host) GetURI(ctx context.Context) string {
	uri := string(host.rc(ctx).Request.Header.RequestURI())
	if uri == "" {
		return "/"
	}
	return uri
}

// SetURI implements handler.Host. The path is escaped as needed ("/a b"
// becomes "/a%20b"). Routing has already happened: the next handlers see the
// new URI, the route does not change.
func (host Host) SetURI(ctx context.Context, uri string) {
	host.rc(ctx).Request.SetRequestURI(escapeURI(uri))
}

// escapeURI normalizes a request URI the way net/http prints one: escaped
// path, query as given.
func escapeURI(uri string) string {
	if uri == "" {
		return "/"
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		panic(fmt.Errorf("set_uri %q: %w", uri, err))
	}
	out := u.EscapedPath()
	if out == "" {
		out = "/"
	}
	if u.ForceQuery || u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

// GetProtocolVersion implements handler.Host.
func (host Host) GetProtocolVersion(ctx context.Context) string {
	if p := host.rc(ctx).Request.Header.GetProtocol(); p != "" {
		return p
	}
	return "HTTP/1.1"
}

// headerNames lists the distinct names visit reports, in order.
func headerNames(visit func(func(k, v []byte))) []string {
	var names []string
	visit(func(k, _ []byte) {
		for _, n := range names {
			if strings.EqualFold(n, string(k)) {
				return
			}
		}
		names = append(names, string(k))
	})
	return names
}

func copyValues(vs [][]byte) []string {
	if len(vs) == 0 {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// GetRequestHeaderNames implements handler.Host.
func (host Host) GetRequestHeaderNames(ctx context.Context) []string {
	return headerNames(host.rc(ctx).Request.Header.VisitAll)
}

// PeekRequestHeaderValues implements wasm.HeaderPeeker: hertz's own
// buffers, valid until the headers change.
func (host Host) PeekRequestHeaderValues(ctx context.Context, name string) [][]byte {
	return host.rc(ctx).Request.Header.PeekAll(name)
}

// GetRequestHeaderValues implements handler.Host.
func (host Host) GetRequestHeaderValues(ctx context.Context, name string) []string {
	return copyValues(host.rc(ctx).Request.Header.PeekAll(name))
}

// SetRequestHeaderValue implements handler.Host: the value replaces all
// values of the header.
func (host Host) SetRequestHeaderValue(ctx context.Context, name, value string) {
	h := &host.rc(ctx).Request.Header
	if isSingleton(name) {
		h.Set(name, value)
		return
	}
	h.Del(name)
	h.Add(name, value)
}

// isSingleton reports headers hertz keeps in a field of their own.
func isSingleton(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-type", "content-length", "user-agent", "cookie", "connection",
		"transfer-encoding", "trailer", "content-encoding", "server":
		return true
	}
	return false
}

const setCookie = "set-cookie"

// AddRequestHeaderValue implements handler.Host.
func (host Host) AddRequestHeaderValue(ctx context.Context, name, value string) {
	host.rc(ctx).Request.Header.Add(name, value)
}

// RemoveRequestHeader implements handler.Host.
func (host Host) RemoveRequestHeader(ctx context.Context, name string) {
	host.rc(ctx).Request.Header.Del(name)
}

// RequestBodyReader implements handler.Host. The body stays in place for
// the next handlers.
func (host Host) RequestBodyReader(ctx context.Context) io.ReadCloser {
	return io.NopCloser(bytes.NewReader(host.rc(ctx).Request.Body()))
}

// RequestBodyWriter implements handler.Host: the first write replaces the
// body.
func (host Host) RequestBodyWriter(ctx context.Context) io.Writer {
	c := host.rc(ctx)
	c.Request.ResetBody()
	return appender(c.Request.AppendBody)
}

// GetStatusCode implements handler.Host.
func (host Host) GetStatusCode(ctx context.Context) uint32 {
	return uint32(host.rc(ctx).Response.StatusCode())
}

// SetStatusCode implements handler.Host.
func (host Host) SetStatusCode(ctx context.Context, code uint32) {
	host.rc(ctx).Response.SetStatusCode(int(code))
}

// GetResponseHeaderNames implements handler.Host.
func (host Host) GetResponseHeaderNames(ctx context.Context) []string {
	return headerNames(host.rc(ctx).Response.Header.VisitAll)
}

// GetResponseHeaderValues implements handler.Host. Hertz keeps Set-Cookie
// as cookies (one per cookie name); each is one value.
func (host Host) GetResponseHeaderValues(ctx context.Context, name string) []string {
	h := &host.rc(ctx).Response.Header
	if strings.EqualFold(name, setCookie) {
		var out []string
		h.VisitAllCookie(func(_, v []byte) { out = append(out, string(v)) })
		return out
	}
	return copyValues(h.PeekAll(name))
}

// SetResponseHeaderValue implements handler.Host: the value replaces all
// values of the header.
func (host Host) SetResponseHeaderValue(ctx context.Context, name, value string) {
	h := &host.rc(ctx).Response.Header
	switch {
	case strings.EqualFold(name, setCookie):
		h.DelAllCookies()
		h.Add(name, value)
	case isSingleton(name):
		h.Set(name, value)
	default:
		h.Del(name)
		h.Add(name, value)
	}
}

// AddResponseHeaderValue implements handler.Host.
func (host Host) AddResponseHeaderValue(ctx context.Context, name, value string) {
	host.rc(ctx).Response.Header.Add(name, value)
}

// RemoveResponseHeader implements handler.Host.
func (host Host) RemoveResponseHeader(ctx context.Context, name string) {
	h := &host.rc(ctx).Response.Header
	if strings.EqualFold(name, setCookie) {
		h.DelAllCookies()
		return
	}
	h.Del(name)
}

// ResponseBodyReader implements handler.Host.
func (host Host) ResponseBodyReader(ctx context.Context) io.ReadCloser {
	return io.NopCloser(bytes.NewReader(host.rc(ctx).Response.Body()))
}

// ResponseBodyWriter implements handler.Host: the first write replaces the
// body.
func (host Host) ResponseBodyWriter(ctx context.Context) io.Writer {
	c := host.rc(ctx)
	c.Response.ResetBody()
	return appender(c.Response.AppendBody)
}

// GetSourceAddr implements handler.Host: the peer address, "ip:port".
func (host Host) GetSourceAddr(ctx context.Context) string {
	if a := host.rc(ctx).RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Trailers are not supported.

// GetRequestTrailerNames implements handler.Host.
func (Host) GetRequestTrailerNames(context.Context) []string { return nil }

// GetRequestTrailerValues implements handler.Host.
func (Host) GetRequestTrailerValues(context.Context, string) []string { return nil }

// SetRequestTrailerValue implements handler.Host.
func (Host) SetRequestTrailerValue(context.Context, string, string) { panic(errNoTrailers) }

// AddRequestTrailerValue implements handler.Host.
func (Host) AddRequestTrailerValue(context.Context, string, string) { panic(errNoTrailers) }

// RemoveRequestTrailer implements handler.Host.
func (Host) RemoveRequestTrailer(context.Context, string) { panic(errNoTrailers) }

// GetResponseTrailerNames implements handler.Host.
func (Host) GetResponseTrailerNames(context.Context) []string { return nil }

// GetResponseTrailerValues implements handler.Host.
func (Host) GetResponseTrailerValues(context.Context, string) []string { return nil }

// SetResponseTrailerValue implements handler.Host.
func (Host) SetResponseTrailerValue(context.Context, string, string) { panic(errNoTrailers) }

// AddResponseTrailerValue implements handler.Host.
func (Host) AddResponseTrailerValue(context.Context, string, string) { panic(errNoTrailers) }

// RemoveResponseTrailer implements handler.Host.
func (Host) RemoveResponseTrailer(context.Context, string) { panic(errNoTrailers) }

type hostError string

func (e hostError) Error() string { return string(e) }

const errNoTrailers = hostError("hertzhost: trailers are not supported")

type appender func([]byte)

func (a appender) Write(p []byte) (int, error) {
	a(p)
	return len(p), nil
}

var _ wasm.Host = Host{}
