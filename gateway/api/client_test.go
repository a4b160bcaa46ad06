package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/seckill/flashsale/gateway/api"
)

// The client against the real gateway is tested in package gateway
// (client_test.go); these tests cover what a gateway never answers: other
// error bodies, dates in Retry-After, slow servers.

func TestErrorAnswers(t *testing.T) {
	later := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   api.Error // RetryAfter: up to a minute less (a date has whole seconds)
	}{
		{"api error", 409, nil, `{"error":"sold_out","message":"item 70 is sold out"}`,
			api.Error{Status: 409, Code: "sold_out", Message: "item 70 is sold out"}},
		{"retry after seconds", 429, http.Header{"Retry-After": {"3"}}, `{"error":"rate_limited","message":"slow down"}`,
			api.Error{Status: 429, Code: "rate_limited", Message: "slow down", RetryAfter: 3 * time.Second}},
		{"retry after a date", 503, http.Header{"Retry-After": {later}}, `{"error":"unavailable","message":"down"}`,
			api.Error{Status: 503, Code: "unavailable", Message: "down", RetryAfter: time.Hour}},
		{"not the error shape", 502, nil, "<html>bad gateway</html>\n",
			api.Error{Status: 502, Message: "<html>bad gateway</html>"}},
		{"no body", 503, nil, "", api.Error{Status: 503, Message: "Service Unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for k, vs := range tt.header {
					w.Header()[k] = vs
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := &api.Client{BaseURL: srv.URL}
			err := c.Do(context.Background(), http.MethodGet, "/api/v1/activities", nil, nil)
			var got *api.Error
			if !errors.As(err, &got) {
				t.Fatalf("got %v, want an *api.Error", err)
			}
			retry := got.RetryAfter
			got.RetryAfter = tt.want.RetryAfter
			if *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
			if retry > tt.want.RetryAfter || retry < tt.want.RetryAfter-time.Minute {
				t.Errorf("got RetryAfter %v, want about %v", retry, tt.want.RetryAfter)
			}
		})
	}
}

// TestRequests checks what each kind of call sends: the token for its route,
// the idempotency key, the body as given.
func TestRequests(t *testing.T) {
	type seen struct {
		method, path, auth, key, contentType, body string
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key"),
			r.Header.Get("Content-Type"), string(b)}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c := &api.Client{BaseURL: srv.URL + "/", AdminToken: "adm", ShopperToken: "shop"}
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want seen
	}{
		{"admin route", func() error { _, err := c.Stats(ctx, 7); return err },
			seen{"GET", "/admin/v1/activities/7/stats", "Bearer adm", "", "", ""}},
		{"admin body", func() error { _, err := c.SetLimits(ctx, api.Limits{User: api.Rule{RPS: 2, Burst: 3}}); return err },
			seen{"PUT", "/admin/v1/limits", "Bearer adm", "", "application/json",
				`{"global":{"rps":0,"burst":0},"read":{"rps":0,"burst":0},"user":{"rps":2,"burst":3},"user_read":{"rps":0,"burst":0},"item":{"rps":0,"burst":0},"ip":{"rps":0,"burst":0}}`}},
		{"plugin name escaped", func() error { return c.DeletePlugin(ctx, "a b") },
			seen{"DELETE", "/admin/v1/plugins/a%20b", "Bearer adm", "", "", ""}},
		{"order with a key", func() error {
			_, err := c.PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: 7, ItemID: 70, Quantity: 1}, "k-1")
			return err
		}, seen{"POST", "/api/v1/orders", "Bearer shop", "k-1", "application/json", `{"activity_id":7,"item_id":70,"quantity":1}`}},
		{"order without a key", func() error {
			_, err := c.PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: 7, ItemID: 70, Quantity: 2}, "")
			return err
		}, seen{"POST", "/api/v1/orders", "Bearer shop", "", "application/json", `{"activity_id":7,"item_id":70,"quantity":2}`}},
		{"another shopper", func() error { _, err := c.AsShopper("other").Orders(ctx); return err },
			seen{"GET", "/api/v1/orders", "Bearer other", "", "", ""}},
		{"raw body as given", func() error { return c.Do(ctx, "POST", "/admin/v1/activities", []byte(`{"name": "x",}`), nil) },
			seen{"POST", "/admin/v1/activities", "Bearer adm", "", "application/json", `{"name": "x",}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = seen{}
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if c.ShopperToken != "shop" {
		t.Errorf("got shopper token %q after AsShopper, want the original's unchanged", c.ShopperToken)
	}
}

func TestDoRawAnswer(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       json.RawMessage
	}{
		{"as sent", `{"b": 1, "a": [2]}`, 200, json.RawMessage(`{"b": 1, "a": [2]}`)},
		{"no content", "", 204, json.RawMessage{}},
		{"not JSON", "pong", 200, json.RawMessage("pong")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			var got json.RawMessage
			if err := (&api.Client{BaseURL: srv.URL}).Do(context.Background(), "GET", "/x", nil, &got); err != nil {
				t.Fatal(err)
			}
			if string(got) != string(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c := &api.Client{BaseURL: srv.URL, Timeout: 50 * time.Millisecond}
	start := time.Now()
	_, err := c.PublicActivities(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("got an answer after %v, want about 50ms", d)
	}
}
