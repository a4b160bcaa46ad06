// What the gateway answers outside its routes: unknown paths, methods a path does
// not take, methods HTTP does not have. Every such answer comes from the handler
// chain (metrics, request id), with labels from a fixed set.

package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
)

// methods are the request methods the metrics name; any other is "other".
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions}

// methodLabel is the metrics' label of a request method: one of methods' strings,
// never m itself, so m may be a request's bytes seen as a string.
func methodLabel(m string) string {
	for _, k := range methods {
		if k == m {
			return k
		}
	}
	return "other"
}

// routeLabel is the metrics' label of a request's route: the pattern it matched, or
// "unmatched".
func routeLabel(c *app.RequestContext) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "unmatched"
}

// routeOf is a route's method and its path pattern split at "/".
type routeOf struct {
	method string
	segs   []string
}

// allowed lists the methods the routes take at path (for Allow).
func (g *Gateway) allowed(path string) []string {
	segs := strings.Split(path, "/")
	var out []string
	for _, r := range g.routes {
		if len(r.segs) != len(segs) || slices.Contains(out, r.method) {
			continue
		}
		match := true
		for i, s := range r.segs {
			if s != segs[i] && !(strings.HasPrefix(s, ":") && segs[i] != "") {
				match = false
				break
			}
		}
		if match {
			out = append(out, r.method)
		}
	}
	slices.Sort(out)
	return out
}

// isAdminPath reports whether path is the operators' (where strangers learn nothing,
// not even which paths exist).
func isAdminPath(path string) bool { return path == "/admin" || strings.HasPrefix(path, "/admin/") }

// knownMethod answers 405 to a method HTTP does not have (or the gateway never
// takes), before anything else reads the request; on the operators' paths the admin
// token is asked for first.
func (g *Gateway) knownMethod(ctx context.Context, c *app.RequestContext) {
	if methodLabel(string(c.Method())) != "other" {
		c.Next(ctx)
		return
	}
	if isAdminPath(string(c.Path())) && !g.isOperator(c) {
		return
	}
	g.methodNotAllowed(c)
}

// noMethod answers a known path asked with a method it does not take: 405 with
// Allow, or 401 on the operators' paths without the admin token.
func (g *Gateway) noMethod(_ context.Context, c *app.RequestContext) {
	if isAdminPath(string(c.Path())) && !g.isOperator(c) {
		return
	}
	g.methodNotAllowed(c)
}

func (g *Gateway) methodNotAllowed(c *app.RequestContext) {
	if allow := g.allowed(string(c.Path())); len(allow) > 0 {
		c.Header("Allow", strings.Join(allow, ", "))
	}
	fail(c, eMethodNotAllowed, "this path does not take that method")
}

// noRoute answers a path the gateway does not serve: 404, or 401 on the operators'
// paths without the admin token.
func (g *Gateway) noRoute(_ context.Context, c *app.RequestContext) {
	if isAdminPath(string(c.Path())) && !g.isOperator(c) {
		return
	}
	fail(c, domain.ENotFound, "no such path")
}
