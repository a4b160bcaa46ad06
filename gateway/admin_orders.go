// The operators' view of an activity's orders (GET /admin/v1/activities/{id}/orders):
// a page as JSON, or every order from a cursor on as CSV, streamed, for fulfilment.

package gateway

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/network"
	"github.com/cloudwego/hertz/pkg/protocol/http1/resp"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// adminOrderOut is an order as operators see it: with its shopper.
func adminOrderOut(o *rpc.Order) api.Order {
	out := orderOut(o)
	out.UserID = o.UserId
	return out
}

// wantsCSV reports whether the answer is CSV: format=csv, or no format and an
// Accept header that names text/csv.
func wantsCSV(c *app.RequestContext, q listQuery) bool {
	if q.format != "" {
		return q.format == "csv"
	}
	return bytes.Contains(bytes.ToLower(c.GetHeader("Accept")), []byte("text/csv"))
}

func (g *Gateway) activityOrders(ctx context.Context, c *app.RequestContext) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	q, ok := parseList(c, "after", "limit", "status", "item_id", "order", "format")
	if !ok {
		return
	}
	req := &rpc.ActivityOrdersReq{ActivityId: id, ItemId: q.itemID, Statuses: q.statuses, After: q.after, Limit: int32(q.limit), OldestFirst: q.oldest}
	if wantsCSV(c, q) {
		g.exportOrders(ctx, c, req, q.limit)
		return
	}
	page, err := g.backend.ListActivityOrders(ctx, req)
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, api.OrderList{Orders: each(page.Orders, adminOrderOut), Next: cursor(page.Next)})
}

// csvColumns are the export's columns, in order.
var csvColumns = []string{"id", "ticket", "user_id", "activity_id", "item_id", "item_name", "quantity", "amount_cents", "status", "created_at"}

// exportPage is the page size of the backend calls behind an export.
var exportPage = domain.ActivityOrdersPage.Max

// exportOrders streams every order req selects from its cursor on (at most limit
// when limit > 0) as CSV, a page of the backend's at a time. What can go wrong
// before the first row (a bad filter, an unknown activity, the backend down) is
// answered as any other error; a failure after the answer began cuts it short
// without the chunked body's end, so the client sees a broken transfer, never a
// file that looks whole. A client resumes with after = the last id it got.
func (g *Gateway) exportOrders(ctx context.Context, c *app.RequestContext, req *rpc.ActivityOrdersReq, limit int) {
	a, err := g.backend.AdminGetActivity(ctx, &rpc.IDReq{Id: req.ActivityId})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	names := map[int64]string{}
	for _, it := range a.Items {
		names[it.Id] = it.Name
	}
	left := limit // 0: no cap
	next := func() (*rpc.ListOrdersResp, error) {
		req.Limit = int32(exportPage)
		if left > 0 {
			req.Limit = int32(min(left, exportPage))
		}
		page, err := g.backend.ListActivityOrders(ctx, req)
		return page, rpcerr.FromRPC(err)
	}
	page, err := next()
	if err != nil {
		failErr(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="activity-%d-orders.csv"`, req.ActivityId))
	c.Status(http.StatusOK)
	w := &exportWriter{ExtWriter: resp.NewChunkedBodyWriter(&c.Response, c.GetWriter())}
	c.Response.HijackWriter(w)
	out := csv.NewWriter(w)
	err = out.Write(csvColumns)
	rows := 0
	for err == nil {
		for _, o := range page.Orders {
			if err = out.Write(csvRow(o, names[o.ItemId])); err != nil {
				break
			}
			rows++
		}
		out.Flush()
		if err = errors.Join(err, out.Error(), w.Flush()); err != nil {
			break
		}
		if left > 0 {
			if left -= len(page.Orders); left <= 0 {
				break
			}
		}
		if page.Next == 0 {
			break
		}
		req.After = page.Next
		page, err = next()
	}
	if err != nil {
		w.failed = fmt.Errorf("export of activity %d cut after %d rows: %w", req.ActivityId, rows, err)
		g.log.Warn("order export cut short", "activity", req.ActivityId, "rows", rows, "err", err)
	}
}

// csvRow is an order as a row of csvColumns.
func csvRow(o *rpc.Order, itemName string) []string {
	return []string{o.Id, o.Ticket, strconv.FormatInt(o.UserId, 10), strconv.FormatInt(o.ActivityId, 10), strconv.FormatInt(o.ItemId, 10),
		cell(itemName), strconv.Itoa(int(o.Quantity)), strconv.FormatInt(o.AmountCents, 10), o.Status, fmtMs(o.CreatedMs)}
}

// cell keeps a spreadsheet from reading text as a formula: a value that starts with
// =, +, -, @, a tab or a carriage return gets a leading quote.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// exportWriter is the chunked body of an export. When the export failed, Finalize
// refuses to write the chunked body's end: the server then closes the connection,
// and the client sees the transfer broken.
type exportWriter struct {
	network.ExtWriter
	failed error
}

func (w *exportWriter) Finalize() error {
	if w.failed != nil {
		return w.failed
	}
	return w.ExtWriter.Finalize()
}
