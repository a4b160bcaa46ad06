package gateway

import (
	"context"
	"net/http"
	"net/http/pprof"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/adaptor"
)

// pprofIndex serves net/http/pprof's index of profiles (operators only).
func pprofIndex(ctx context.Context, c *app.RequestContext) {
	adaptor.HertzHandler(http.HandlerFunc(pprof.Index))(ctx, c)
}

// pprofProfile serves one profile by name: a CPU profile, an execution trace,
// or one of the runtime's named profiles (heap, goroutine, ...).
func pprofProfile(ctx context.Context, c *app.RequestContext) {
	switch c.Param("name") {
	case "profile":
		adaptor.HertzHandler(http.HandlerFunc(pprof.Profile))(ctx, c)
	case "trace":
		adaptor.HertzHandler(http.HandlerFunc(pprof.Trace))(ctx, c)
	default:
		adaptor.HertzHandler(pprof.Handler(c.Param("name")))(ctx, c)
	}
}
