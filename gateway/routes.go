package gateway

import (
	"strings"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/gateway/wasm/hertzhost"
)

// Register mounts the API of API.md on h: every route, with the middleware
// its group runs first.
func (g *Gateway) Register(h *server.Hertz) {
	h.Use(g.requestID, g.observe, g.recoverPanic, g.framing, g.knownMethod, g.boundBody, g.stripTrusted)
	// Every GET route takes HEAD too (RFC 9110 9.3.2): the same handlers, the
	// answer's body left out.
	get := func(r route.IRoutes, path string, hs ...app.HandlerFunc) {
		r.GET(path, hs...)
		r.HEAD(path, hs...)
	}
	get(h, "/healthz", healthz)
	get(h, "/readyz", g.ready)

	pub := h.Group("/api/v1", g.limitIP)
	get(pub, "/activities", g.listActivities)
	get(pub, "/activities/:id", g.getActivity)
	get(pub, "/items/:id", g.getItem)

	shop := h.Group("/api/v1/orders", g.shopper)
	shop.POST("", g.parseOrder, g.edgeOrder, g.limitOrder, g.admit(hertzhost.Middleware(g.plugins)), g.waitRoom(g.placeOrder))
	get(shop, "", g.limitReads, g.listOrders)
	get(shop, "/tickets/:ticket", g.limitReads, g.getTicket)
	get(shop, "/:id", g.limitReads, g.getOrder)
	shop.POST("/:id/cancel", g.limitChanges, g.cancelOrder)
	shop.POST("/:id/pay", g.limitChanges, g.payOrder)
	shop.DELETE("/:id", g.limitChanges, g.deleteOrder)

	adm := h.Group("/admin/v1", g.operator, g.readBody)
	adm.POST("/activities", g.createActivity)
	get(adm, "/activities", g.adminListActivities)
	get(adm, "/activities/:id", g.adminGetActivity)
	adm.PUT("/activities/:id", g.updateActivity)
	adm.POST("/activities/:id/publish", g.publish)
	adm.POST("/activities/:id/offline", g.offline)
	get(adm, "/activities/:id/stats", g.stats)
	get(adm, "/activities/:id/orders", g.activityOrders)
	adm.POST("/activities/:id/items", g.addItem)
	adm.PUT("/activities/:id/items/:item", g.updateItem)
	adm.POST("/activities/:id/items/:item/offline", g.itemState(domain.ItemOffline))
	adm.POST("/activities/:id/items/:item/online", g.itemState(domain.ItemOnline))
	get(adm, "/limits", g.getLimits)
	adm.PUT("/limits", g.putLimits)
	get(adm, "/plugins", g.listPlugins)
	adm.PUT("/plugins/:name", g.putPlugin)
	adm.DELETE("/plugins/:name", g.deletePlugin)
	adm.POST("/plugins/:name/rollback", g.rollbackPlugin)
	get(adm, "/plugins/:name/history", g.pluginHistory)
	h.NoRoute(g.noRoute)
	h.NoMethod(g.noMethod)
	for _, r := range h.Routes() {
		g.routes = append(g.routes, routeOf{method: r.Method, segs: strings.Split(r.Path, "/")})
	}
}
