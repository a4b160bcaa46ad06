package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// PageQuery asks for one page of a list. After is the Next of the previous page
// ("" from the first); Limit the most wanted (0: the route's default).
type PageQuery struct {
	After string
	Limit int
}

func (p PageQuery) values() url.Values {
	v := url.Values{}
	if p.After != "" {
		v.Set("after", p.After)
	}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	return v
}

// OrderQuery asks for a page of orders: of the given states (any when empty), of
// one activity (a shopper's list) or one item (an activity's), oldest first (an
// activity's only; newest first otherwise).
type OrderQuery struct {
	PageQuery
	Status     []string
	ActivityID int64
	ItemID     int64
	Oldest     bool
}

func (q OrderQuery) values() url.Values {
	v := q.PageQuery.values()
	if len(q.Status) > 0 {
		v.Set("status", strings.Join(q.Status, ","))
	}
	if q.ActivityID > 0 {
		v.Set("activity_id", strconv.FormatInt(q.ActivityID, 10))
	}
	if q.ItemID > 0 {
		v.Set("item_id", strconv.FormatInt(q.ItemID, 10))
	}
	if q.Oldest {
		v.Set("order", "oldest")
	}
	return v
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// ActivitiesPage reads a page of every activity, newest first, of one state when
// state is set (draft, published, offline).
func (c *Client) ActivitiesPage(ctx context.Context, p PageQuery, state string) (*ActivityList, error) {
	v := p.values()
	if state != "" {
		v.Set("state", state)
	}
	return answer[ActivityList](ctx, c, http.MethodGet, withQuery("/admin/v1/activities", v), nil, nil)
}

// PublicActivitiesPage reads a page of the activities on sale, newest first.
func (c *Client) PublicActivitiesPage(ctx context.Context, p PageQuery) (*ActivityList, error) {
	return answer[ActivityList](ctx, c, http.MethodGet, withQuery("/api/v1/activities", p.values()), nil, nil)
}

// OrdersPage reads a page of the shopper's orders, newest first (deleted ones
// are never listed).
func (c *Client) OrdersPage(ctx context.Context, q OrderQuery) (*OrderList, error) {
	return answer[OrderList](ctx, c, http.MethodGet, withQuery("/api/v1/orders", q.values()), nil, nil)
}

// ActivityOrders reads a page of an activity's orders, as operators see them
// (with their shoppers, deleted ones included).
func (c *Client) ActivityOrders(ctx context.Context, id int64, q OrderQuery) (*OrderList, error) {
	return answer[OrderList](ctx, c, http.MethodGet, withQuery(activityPath(id)+"/orders", q.values()), nil, nil)
}

// ExportOrders copies an activity's orders as CSV to w, streamed: every order q
// selects from q.After on (at most q.Limit when set). An export cut short by the
// gateway is an error (a truncated transfer), never a short file that looks whole.
func (c *Client) ExportOrders(ctx context.Context, id int64, q OrderQuery, w io.Writer) error {
	v := q.values()
	v.Set("format", "csv")
	path := withQuery(activityPath(id)+"/orders", v)
	return c.stream(ctx, http.MethodGet, path, func(r io.Reader) error {
		_, err := io.Copy(w, r)
		return err
	})
}

// stream calls method on path and hands a 2xx answer's body to read, unbounded.
func (c *Client) stream(ctx context.Context, method, path string, read func(io.Reader) error) error {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if token := c.tokenFor(path); token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		return fmt.Errorf("%s %s: %w", method, path, errorOf(resp, raw))
	}
	if err := read(resp.Body); err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return nil
}

// AddItem adds an item with its stock to an activity in any state; the answer is
// the activity with it.
func (c *Client) AddItem(ctx context.Context, activityID int64, in ItemSpec) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodPost, activityPath(activityID)+"/items", nil, in)
}

func itemPath(activityID, itemID int64) string {
	return activityPath(activityID) + "/items/" + strconv.FormatInt(itemID, 10)
}

// UpdateItem changes the fields of an item that in sets.
func (c *Client) UpdateItem(ctx context.Context, activityID, itemID int64, in ItemChange) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodPut, itemPath(activityID, itemID), nil, in)
}

// ItemOffline takes an item off sale on its own; its activity stays as it is.
func (c *Client) ItemOffline(ctx context.Context, activityID, itemID int64) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodPost, itemPath(activityID, itemID)+"/offline", nil, nil)
}

// ItemOnline puts an item taken offline back on sale.
func (c *Client) ItemOnline(ctx context.Context, activityID, itemID int64) (*Activity, error) {
	return answer[Activity](ctx, c, http.MethodPost, itemPath(activityID, itemID)+"/online", nil, nil)
}

// DeleteOrder deletes one of the shopper's cancelled or expired orders from their
// list (operators keep it); deleting it again is not an error.
func (c *Client) DeleteOrder(ctx context.Context, id string) (*Order, error) {
	return answer[Order](ctx, c, http.MethodDelete, orderPath(id), nil, nil)
}

// allPages calls page with each cursor in turn, from the first, and gathers what
// the pages hold.
func allPages[T any](page func(after string) ([]T, string, error)) ([]T, error) {
	var out []T
	after := ""
	for {
		items, next, err := page(after)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		after = next
	}
}
