package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAnswer bounds the answer a Client reads: a list of plugins with their
// configurations is the largest the API gives.
const maxAnswer = 16 << 20

// Client calls a gateway's HTTP API. Routes under /admin/ carry AdminToken,
// every other route ShopperToken (when set). A non-2xx answer is an *Error
// (errors.As finds it under the method and path the error names).
//
// A Client is safe for concurrent use; AsShopper makes one per shopper cheaply.
type Client struct {
	BaseURL      string        // the gateway, like http://127.0.0.1:8080
	AdminToken   string        // the operators' bearer token
	ShopperToken string        // a shopper's JWT
	HTTP         *http.Client  // nil: http.DefaultClient
	Timeout      time.Duration // per call, reading the answer included; 0: none of its own
}

// AsShopper returns a copy of c that calls as the shopper of token.
func (c *Client) AsShopper(token string) *Client {
	cp := *c
	cp.ShopperToken = token
	return &cp
}

// Do calls method on path (like /admin/v1/plugins) and decodes the answer
// into out. in is nil (no body), raw JSON ([]byte or json.RawMessage, sent as
// it is) or a value to encode. out is nil (the answer is dropped), a
// *json.RawMessage (the answer's bytes as they came, unchecked) or a value
// to decode into, which an empty answer (204) leaves alone. The typed methods are built on it; it
// serves routes they do not cover and callers that print the answer as sent.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.call(ctx, method, path, nil, in, out)
}

func (c *Client) call(ctx context.Context, method, path string, header http.Header, in, out any) error {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	var body io.Reader
	switch b := in.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case json.RawMessage:
		body = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode the body: %w", method, path, err)
		}
		body = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token := c.tokenFor(path); token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %w", method, path, errorOf(resp, raw))
	}
	if rm, ok := out.(*json.RawMessage); ok {
		*rm = raw
		return nil
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
		}
	}
	return nil
}

// tokenFor is the token of path's routes: the operators' under /admin/.
func (c *Client) tokenFor(path string) string {
	if strings.HasPrefix(path, "/admin/") {
		return c.AdminToken
	}
	return c.ShopperToken
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP == nil {
		return http.DefaultClient
	}
	return c.HTTP
}

// errorOf is the *Error of a non-2xx answer. A body not in the API's error
// shape (a proxy's page, say) becomes the Message, shortened.
func errorOf(resp *http.Response, body []byte) *Error {
	e := &Error{}
	if json.Unmarshal(body, e) != nil || e.Code == "" {
		e.Code, e.Message = "", strings.TrimSpace(string(body))
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "..."
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	e.Status = resp.StatusCode
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// answer calls c and decodes the answer into a new T.
func answer[T any](ctx context.Context, c *Client, method, path string, header http.Header, in any) (*T, error) {
	var out T
	if err := c.call(ctx, method, path, header, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func activityPath(id int64) string { return "/admin/v1/activities/" + strconv.FormatInt(id, 10) }

// CreateActivity creates an activity with its items and stock, as a draft.
func (c *Client) CreateActivity(ctx context.Context, in CreateActivityRequest) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodPost, "/admin/v1/activities", nil, in)
}

// Activity reads an activity in any state.
func (c *Client) Activity(ctx context.Context, id int64) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodGet, activityPath(id), nil, nil)
}

// Activities lists every activity, drafts and offline ones included, newest
// first, reading every page.
func (c *Client) Activities(ctx context.Context) ([]Activity, error) {
	return allPages(func(after string) ([]Activity, string, error) {
		l, err := c.ActivitiesPage(ctx, PageQuery{After: after}, "")
		if err != nil {
			return nil, "", err
		}
		return l.Activities, l.Next, nil
	})
}

// UpdateActivity changes the fields of an activity that in sets.
func (c *Client) UpdateActivity(ctx context.Context, id int64, in UpdateActivityRequest) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodPut, activityPath(id), nil, in)
}

// Publish puts an activity on sale (and pre-warms the caches).
func (c *Client) Publish(ctx context.Context, id int64) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodPost, activityPath(id)+"/publish", nil, nil)
}

// Offline takes an activity off sale.
func (c *Client) Offline(ctx context.Context, id int64) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodPost, activityPath(id)+"/offline", nil, nil)
}

// Stats reads an activity's stock, orders, pending tickets and shed requests.
func (c *Client) Stats(ctx context.Context, id int64) (*Stats, error) {
	return answer[Stats](ctx, c, http.MethodGet, activityPath(id)+"/stats", nil, nil)
}

// Limits reads the gateway's rate limits.
func (c *Client) Limits(ctx context.Context) (*Limits, error) {
	return answer[Limits](ctx, c, http.MethodGet, "/admin/v1/limits", nil, nil)
}

// SetLimits replaces the gateway's rate limits at run time: all six rules, whatever
// l's read-only fields (version, updated_by, gateways) say, so limits read with
// Limits can be put back as they were.
func (c *Client) SetLimits(ctx context.Context, l Limits) (*Limits, error) {
	rules := Limits{Global: l.Global, Read: l.Read, User: l.User, UserRead: l.UserRead, Item: l.Item, IP: l.IP}
	return answer[Limits](ctx, c, http.MethodPut, "/admin/v1/limits", nil, rules)
}

// Plugins lists the loaded admission plugins in chain order.
func (c *Client) Plugins(ctx context.Context) ([]Plugin, error) {
	l, err := answer[PluginList](ctx, c, http.MethodGet, "/admin/v1/plugins", nil, nil)
	if err != nil {
		return nil, err
	}
	return l.Plugins, nil
}

// PutPlugin loads the plugin name, or replaces it, without a restart.
func (c *Client) PutPlugin(ctx context.Context, name string, in PutPluginRequest) (*Plugin, error) {
	return answer[Plugin](ctx, c, http.MethodPut, "/admin/v1/plugins/"+url.PathEscape(name), nil, in)
}

// DeletePlugin unloads the plugin name.
func (c *Client) DeletePlugin(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/admin/v1/plugins/"+url.PathEscape(name), nil, nil, nil)
}

// RollbackPlugin puts back a plugin's previous version (POST
// /admin/v1/plugins/{name}/rollback).
func (c *Client) RollbackPlugin(ctx context.Context, name string) (*Plugin, error) {
	var out Plugin
	return &out, c.call(ctx, http.MethodPost, "/admin/v1/plugins/"+url.PathEscape(name)+"/rollback", nil, nil, &out)
}

// PluginHistory returns a plugin's last changes, newest first.
func (c *Client) PluginHistory(ctx context.Context, name string) ([]PluginChange, error) {
	var out PluginHistory
	return out.Changes, c.call(ctx, http.MethodGet, "/admin/v1/plugins/"+url.PathEscape(name)+"/history", nil, nil, &out)
}

// PluginChain returns the fleet's chain with what each gateway runs of it.
func (c *Client) PluginChain(ctx context.Context) (*PluginList, error) {
	var out PluginList
	return &out, c.call(ctx, http.MethodGet, "/admin/v1/plugins", nil, nil, &out)
}

// PlaceOrder places an order as the shopper. A retry with the same
// idempotencyKey gets the first attempt's answer and never a second order;
// an empty key sends none.
func (c *Client) PlaceOrder(ctx context.Context, in PlaceOrderRequest, idempotencyKey string) (*PlaceOrderResponse, error) {
	var h http.Header
	if idempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	return answer[PlaceOrderResponse](ctx, c, http.MethodPost, "/api/v1/orders", h, in)
}

// Ticket reads what became of an order answered with a ticket.
func (c *Client) Ticket(ctx context.Context, ticket string) (*Ticket, error) {
	return answer[Ticket](ctx, c, http.MethodGet, "/api/v1/orders/tickets/"+url.PathEscape(ticket), nil, nil)
}

// WaitTicket is Ticket with ?wait=: the answer comes once the ticket ends or wait
// (at most 10 s, whole milliseconds) has passed.
func (c *Client) WaitTicket(ctx context.Context, ticket string, wait time.Duration) (*Ticket, error) {
	q := "?wait=" + strconv.FormatInt(wait.Milliseconds(), 10) + "ms"
	return answer[Ticket](ctx, c, http.MethodGet, "/api/v1/orders/tickets/"+url.PathEscape(ticket)+q, nil, nil)
}

// Orders lists the shopper's orders, newest first, reading every page.
func (c *Client) Orders(ctx context.Context) ([]Order, error) {
	return allPages(func(after string) ([]Order, string, error) {
		l, err := c.OrdersPage(ctx, OrderQuery{PageQuery: PageQuery{After: after}})
		if err != nil {
			return nil, "", err
		}
		return l.Orders, l.Next, nil
	})
}

func orderPath(id string) string { return "/api/v1/orders/" + url.PathEscape(id) }

// Order reads one of the shopper's orders.
func (c *Client) Order(ctx context.Context, id string) (*Order, error) {
	return answer[Order](ctx, c, http.MethodGet, orderPath(id), nil, nil)
}

// Cancel cancels one of the shopper's orders; its stock goes back to the
// sale. Cancelling twice is not an error.
func (c *Client) Cancel(ctx context.Context, id string) (*Order, error) {
	return answer[Order](ctx, c, http.MethodPost, orderPath(id)+"/cancel", nil, nil)
}

// Pay pays one of the shopper's orders.
func (c *Client) Pay(ctx context.Context, id string) (*Order, error) {
	return answer[Order](ctx, c, http.MethodPost, orderPath(id)+"/pay", nil, nil)
}

// PublicActivities lists the activities on sale, as shoppers see them, reading
// every page.
func (c *Client) PublicActivities(ctx context.Context) ([]Activity, error) {
	return allPages(func(after string) ([]Activity, string, error) {
		l, err := c.PublicActivitiesPage(ctx, PageQuery{After: after})
		if err != nil {
			return nil, "", err
		}
		return l.Activities, l.Next, nil
	})
}

// PublicActivity reads an activity on sale with its items' approximate
// remaining stock.
func (c *Client) PublicActivity(ctx context.Context, id int64) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodGet, "/api/v1/activities/"+strconv.FormatInt(id, 10), nil, nil)
}

// Item reads an item.
func (c *Client) Item(ctx context.Context, id int64) (*Item, error) {
	return answer[Item](ctx, c, http.MethodGet, "/api/v1/items/"+strconv.FormatInt(id, 10), nil, nil)
}
