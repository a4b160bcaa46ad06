package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// CheckTarget parses a target URL. Only http is spoken, and only to a loopback
// address unless explicit is set (the user named this URL on the command line).
func CheckTarget(raw string, explicit bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("target %q: only http:// targets are supported", raw)
	}
	if u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("target %q: want http://host:port", raw)
	}
	if !explicit && !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("target %q is not a loopback address; the bench only sends to one when it is given explicitly", raw)
	}
	return u, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// NewHTTPClient is an HTTP/1.1 client for many concurrent requests to one host:
// keep-alive with up to conns idle connections, no compression, no redirects. It
// dials only loopback addresses and, when allowHost is not empty, that host:port.
func NewHTTPClient(conns int, allowHost string) *http.Client {
	dialer := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if !isLoopbackHost(host) && addr != allowHost {
				return nil, fmt.Errorf("load: refusing to dial %s: not loopback and not the given target", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:          0, // no global cap
		MaxIdleConnsPerHost:   max(conns, 64),
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Shop is a shopper's client of the gateway: it places orders as a real client does,
// retrying a try that timed out or met 502/503/504 with the same Idempotency-Key,
// a bounded number of times, and reads tickets.
type Shop struct {
	HTTP    *http.Client
	Base    string        // the gateway, http://host:port
	Tries   int           // tries per order, the first included (default 3)
	Timeout time.Duration // per try (default 5 s)
	Backoff time.Duration // before the first retry (default 50 ms), doubled each time, jittered
}

// OrderRequest is one order attempt.
type OrderRequest struct {
	Token      string
	ActivityID int64
	ItemID     int64
	Quantity   int
	Key        string // Idempotency-Key; the same on every try
	QueueToken string // a waiting room's token from an earlier answer (Queue-Token header)
	// Wait, when queued, is held at the gateway until admitted, sold out or it ends
	// (?wait=); 0: answered at once.
	Wait time.Duration
}

// OrderAnswer is the last answer to an order attempt.
type OrderAnswer struct {
	Status  int    // HTTP status; 0 when no answer came
	Code    string // the body's "error" or "status"; for transport errors "timeout" or "conn"
	Ticket  string
	OrderID string
	Tries   int
	Err     error // transport error of the last try
	// A waiting room's 202 queued answer: the place, when to ask again, the token.
	Position   int64
	RetryAfter time.Duration
	QueueToken string
}

// Label names the answer for counting: "202 pending", "409 sold_out", "error timeout".
func (a OrderAnswer) Label() string {
	if a.Status == 0 {
		return "error " + a.Code
	}
	return strconv.Itoa(a.Status) + " " + a.Code
}

// Admitted reports whether the order was taken (sync: created; async, bucket: a ticket).
func (a OrderAnswer) Admitted() bool {
	return a.Status == http.StatusCreated || a.Status == http.StatusAccepted
}

func retryable(status int) bool {
	return status == http.StatusServiceUnavailable || status == http.StatusBadGateway || status == http.StatusGatewayTimeout
}

func (s *Shop) defaults() (tries int, timeout, backoff time.Duration) {
	tries, timeout, backoff = s.Tries, s.Timeout, s.Backoff
	if tries <= 0 {
		tries = 3
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if backoff <= 0 {
		backoff = 50 * time.Millisecond
	}
	return
}

type answerBody struct {
	Error   string `json:"error"`
	Status  string `json:"status"`
	Ticket  string `json:"ticket"`
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
	// A waiting room's queued answer.
	Position     int64  `json:"position"`
	RetryAfterMs int64  `json:"retry_after_ms"`
	QueueToken   string `json:"queue_token"`
}

// do sends one request and decodes a JSON answer (bodies are read to the end so the
// connection is reused).
func (s *Shop) do(ctx context.Context, method, path, token string, body []byte, hdr map[string]string, timeout time.Duration) (int, answerBody, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.Base+path, rd)
	if err != nil {
		return 0, answerBody{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return 0, answerBody{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, answerBody{}, err
	}
	io.Copy(io.Discard, resp.Body)
	var out answerBody
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			out.Error = "unreadable"
		}
	}
	return resp.StatusCode, out, nil
}

func errCode(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "conn"
}

// PlaceOrder posts an order, retrying as described on Shop.
func (s *Shop) PlaceOrder(ctx context.Context, o OrderRequest) OrderAnswer {
	tries, timeout, backoff := s.defaults()
	body := fmt.Appendf(nil, `{"activity_id":%d,"item_id":%d,"quantity":%d}`, o.ActivityID, o.ItemID, o.Quantity)
	hdr := map[string]string{}
	if o.Key != "" {
		hdr["Idempotency-Key"] = o.Key
	}
	if o.QueueToken != "" {
		hdr["Queue-Token"] = o.QueueToken
	}
	path := "/api/v1/orders"
	if o.Wait > 0 {
		path += "?wait=" + o.Wait.String()
		timeout += o.Wait
	}
	var a OrderAnswer
	for try := 1; ; try++ {
		status, out, err := s.do(ctx, http.MethodPost, path, o.Token, body, hdr, timeout)
		a = OrderAnswer{Status: status, Tries: try, Err: err, Ticket: out.Ticket, OrderID: out.OrderID,
			Position: out.Position, RetryAfter: time.Duration(out.RetryAfterMs) * time.Millisecond, QueueToken: out.QueueToken}
		switch {
		case err != nil:
			a.Code = errCode(ctx, err)
		case out.Error != "":
			a.Code = out.Error
		case out.Status != "":
			a.Code = out.Status
		default:
			a.Code = "-"
		}
		if (err == nil && !retryable(status)) || try >= tries || ctx.Err() != nil {
			return a
		}
		wait := backoff << (try - 1)
		wait = wait/2 + rand.N(wait/2+1) // jitter: clients that failed together do not retry together
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return a
		case <-t.C:
		}
	}
}

// TicketState is what a ticket said.
type TicketState struct {
	Status  string // pending, created, failed
	OrderID string
	Reason  string
}

// Ticket reads a ticket once.
func (s *Shop) Ticket(ctx context.Context, token, ticket string) (TicketState, int, error) {
	_, timeout, _ := s.defaults()
	status, out, err := s.do(ctx, http.MethodGet, "/api/v1/orders/tickets/"+url.PathEscape(ticket), token, nil, nil, timeout)
	if err != nil {
		return TicketState{}, 0, err
	}
	if status != http.StatusOK {
		return TicketState{}, status, fmt.Errorf("ticket %s: status %d %s", ticket, status, out.Error)
	}
	return TicketState{Status: out.Status, OrderID: out.OrderID, Reason: out.Reason}, status, nil
}
