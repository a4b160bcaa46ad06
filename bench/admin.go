package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/seckill/flashsale/gateway/ratelimit"
)

// admin talks to the gateway's operator API (API.md, /admin/v1).
type admin struct {
	http  *http.Client
	base  string
	token string
}

func (a *admin) call(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// ItemSpec is one item of a sale.
type ItemSpec struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

type newActivity struct {
	Name         string     `json:"name"`
	Start        string     `json:"start"`
	End          string     `json:"end"`
	Strategy     string     `json:"strategy"`
	PerUserLimit int        `json:"per_user_limit"`
	BucketCount  int        `json:"bucket_count,omitempty"`
	Items        []ItemSpec `json:"items"`
}

type activity struct {
	ID    int64 `json:"id"`
	Items []struct {
		ID         int64 `json:"id"`
		TotalStock int64 `json:"total_stock"`
	} `json:"items"`
}

// createSale creates and publishes an activity that is on sale now.
func (a *admin) createSale(ctx context.Context, name, strategy string, buckets, perUser int, items []ItemSpec) (*activity, error) {
	now := time.Now()
	in := newActivity{Name: name, Start: now.Add(-time.Minute).UTC().Format(time.RFC3339), End: now.Add(6 * time.Hour).UTC().Format(time.RFC3339),
		Strategy: strategy, PerUserLimit: perUser, Items: items}
	if strategy == "bucket" {
		in.BucketCount = buckets
	}
	var out activity
	if err := a.call(ctx, http.MethodPost, "/admin/v1/activities", in, &out); err != nil {
		return nil, fmt.Errorf("create the sale: %w", err)
	}
	if len(out.Items) != len(items) {
		return nil, fmt.Errorf("create the sale: got %d items back, want %d", len(out.Items), len(items))
	}
	if err := a.call(ctx, http.MethodPost, fmt.Sprintf("/admin/v1/activities/%d/publish", out.ID), nil, nil); err != nil {
		return nil, fmt.Errorf("publish activity %d: %w", out.ID, err)
	}
	return &out, nil
}

// Stats is GET /admin/v1/activities/{id}/stats.
type Stats struct {
	ActivityID     int64            `json:"activity_id"`
	Items          []ItemStats      `json:"items"`
	PendingTickets int64            `json:"pending_tickets"`
	BackendShed    map[string]int64 `json:"backend_shed"`
	GatewayShed    map[string]int64 `json:"gateway_shed"`
}

// ItemStats is one item of Stats.
type ItemStats struct {
	ItemID         int64 `json:"item_id"`
	TotalStock     int64 `json:"total_stock"`
	RedisStock     int64 `json:"redis_stock"`
	MySQLStock     int64 `json:"mysql_stock"`
	InFlight       int64 `json:"in_flight"`
	Orders         int64 `json:"orders"`
	UnitsSold      int64 `json:"units_sold"`
	PendingTickets int64 `json:"pending_tickets"`
	RedisLoaded    bool  `json:"redis_loaded"`
}

func (a *admin) stats(ctx context.Context, id int64) (*Stats, error) {
	var st Stats
	if err := a.call(ctx, http.MethodGet, fmt.Sprintf("/admin/v1/activities/%d/stats", id), nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// settled: nothing pending or in flight, and Redis agrees with MySQL on every item.
func (s *Stats) settled() bool {
	if s.PendingTickets != 0 {
		return false
	}
	for _, it := range s.Items {
		if it.InFlight != 0 || it.PendingTickets != 0 || it.RedisStock != it.MySQLStock {
			return false
		}
	}
	return true
}

func (s *Stats) totals() (orders, units, redisStock, mysqlStock, inFlight int64) {
	for _, it := range s.Items {
		orders += it.Orders
		units += it.UnitsSold
		redisStock += it.RedisStock
		mysqlStock += it.MySQLStock
		inFlight += it.InFlight
	}
	return
}

func (a *admin) limits(ctx context.Context) (ratelimit.Limits, error) {
	var l ratelimit.Limits
	err := a.call(ctx, http.MethodGet, "/admin/v1/limits", nil, &l)
	return l, err
}

func (a *admin) setLimits(ctx context.Context, l ratelimit.Limits) error {
	return a.call(ctx, http.MethodPut, "/admin/v1/limits", l, nil)
}
