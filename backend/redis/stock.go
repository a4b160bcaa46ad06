package redis

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
)

var (
	//go:embed lua/deduct.lua
	deductLua string
	//go:embed lua/settle.lua
	settleLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/warm.lua
	warmLua string
	//go:embed lua/adjust.lua
	adjustLua string
	//go:embed lua/reset.lua
	resetLua string
	//go:embed lua/take.lua
	takeLua string
	//go:embed lua/ticket.lua
	ticketLua string

	// Scripts are called by SHA; go-redis falls back to EVAL on NOSCRIPT.
	deductScript  = goredis.NewScript(deductLua)
	settleScript  = goredis.NewScript(settleLua)
	releaseScript = goredis.NewScript(releaseLua)
	warmScript    = goredis.NewScript(warmLua)
	adjustScript  = goredis.NewScript(adjustLua)
	resetScript   = goredis.NewScript(resetLua)
	takeScript    = goredis.NewScript(takeLua)
	ticketScript  = goredis.NewScript(ticketLua)
)

// Stock is the Redis side of a sale: the stock ledger. It is safe for concurrent use.
type Stock struct {
	rdb       goredis.UniversalClient
	resultTTL time.Duration
}

var _ domain.StockLedger = (*Stock)(nil)

// NewStock returns a Stock on rdb (a single node, a cluster or a ring) that keeps
// ticket results for resultTTL.
func NewStock(rdb goredis.UniversalClient, resultTTL time.Duration) *Stock {
	if resultTTL <= 0 {
		resultTTL = 24 * time.Hour
	}
	return &Stock{rdb: rdb, resultTTL: resultTTL}
}

// Load puts the scripts into the script cache of every node so the first calls of a
// sale go by SHA.
func (s *Stock) Load(ctx context.Context) error {
	load := func(ctx context.Context, c goredis.Scripter) error {
		for _, sc := range []*goredis.Script{deductScript, settleScript, releaseScript, warmScript, adjustScript, resetScript, takeScript, ticketScript} {
			if err := sc.Load(ctx, c).Err(); err != nil {
				return fmt.Errorf("load script: %w", err)
			}
		}
		return nil
	}
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return load(ctx, c) })
	}
	return load(ctx, s.rdb)
}

// Deduct runs the pre-deduction script. A refusal comes back as a *domain.Error
// (sold_out, limit_exceeded, not_started, ended, not_found, bad_request); ErrNotLoaded
// when Redis has no state for the item.
func (s *Stock) Deduct(ctx context.Context, d domain.Deduction) (domain.Deducted, error) {
	k := keysFor(d.ActivityID, d.ItemID)
	keys := append([]string{k.meta(), k.buyers(), k.idem(), k.inflight()}, k.buckets(d.Buckets)...)
	idem := ""
	if d.IdempotencyKey != "" {
		idem = strconv.FormatInt(d.UserID, 10) + ":" + d.IdempotencyKey
	}
	res, err := deductScript.Run(ctx, s.rdb, keys, d.UserID, d.Quantity, idem, d.Ticket, d.HomeBucket).Slice()
	if err != nil {
		return domain.Deducted{}, fmt.Errorf("deduct item %d: %w", d.ItemID, err)
	}
	code, _ := res[0].(int64)
	switch code {
	case 0:
		b, _ := res[1].(int64)
		return domain.Deducted{Ticket: d.Ticket, Bucket: int(b)}, nil
	case 1:
		t, _ := res[1].(string)
		return domain.Deducted{Ticket: t, Replayed: true}, nil
	case 2:
		return domain.Deducted{}, domain.Errorf(domain.ESoldOut, "item %d is sold out", d.ItemID)
	case 3:
		return domain.Deducted{}, domain.Errorf(domain.ELimitExceeded, "you already hold the per-user limit of item %d", d.ItemID)
	case 4:
		return domain.Deducted{}, domain.Errorf(domain.ENotStarted, "activity %d has not started", d.ActivityID)
	case 5:
		return domain.Deducted{}, domain.Errorf(domain.EEnded, "activity %d has ended", d.ActivityID)
	case 6:
		return domain.Deducted{}, domain.ErrNotLoaded
	case 7:
		return domain.Deducted{}, domain.Errorf(domain.ENotFound, "activity %d is not on sale", d.ActivityID)
	case 8:
		return domain.Deducted{}, domain.Errorf(domain.EBadRequest, "quantity must be a positive integer")
	}
	return domain.Deducted{}, fmt.Errorf("deduct item %d: unexpected script result %v", d.ItemID, res)
}

type ticketRecord struct {
	UserID  int64  `json:"user_id"`
	Status  string `json:"status"`
	OrderID int64  `json:"order_id,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Settle ends an in-flight ticket with its result. When the result is failed the
// ticket's stock, buyer units and idempotency record are given back; the stock is not
// when the reason is sold_out (MySQL, the last word, had fewer units than Redis
// counted: the reconciler corrects the count). It reports whether this call settled
// the ticket (false: it was settled before, or Redis lost it; then the result is
// recorded unless one is).
func (s *Stock) Settle(ctx context.Context, t domain.Ticket, buckets int) (bool, error) {
	a, i, err := domain.ParseTicket(t.ID)
	if err != nil {
		return false, err
	}
	k := keysFor(a, i)
	rec, err := json.Marshal(ticketRecord{UserID: t.UserID, Status: string(t.Status), OrderID: t.OrderID, Reason: t.Reason})
	if err != nil {
		return false, fmt.Errorf("settle ticket %s: %w", t.ID, err)
	}
	giveBack := "0"
	if t.Status == domain.TicketFailed {
		giveBack = "1"
		if t.Reason == domain.ESoldOut {
			giveBack = "2" // MySQL had fewer units than Redis: there is nothing to give back
		}
	}
	keys := append([]string{k.buyers(), k.idem(), k.inflight(), k.result(t.ID)}, k.buckets(buckets)...)
	n, err := settleScript.Run(ctx, s.rdb, keys, t.ID, rec, int(s.resultTTL/time.Second), giveBack).Int()
	if err != nil {
		return false, fmt.Errorf("settle ticket %s: %w", t.ID, err)
	}
	return n == 1, nil
}

// Release gives back the stock of a committed order that was cancelled or expired. It
// reports whether this call gave it back (false: an earlier call did).
func (s *Stock) Release(ctx context.Context, o domain.Order) (bool, error) {
	k := keysFor(o.ActivityID, o.ItemID)
	n, err := releaseScript.Run(ctx, s.rdb, []string{k.buyers(), k.released(), k.bucket(o.Bucket)}, o.Ticket, o.UserID, o.Quantity).Int()
	if err != nil {
		return false, fmt.Errorf("release order %d: %w", o.ID, err)
	}
	return n == 1, nil
}

// Ticket returns where a ticket stands: its result when settled, pending while in
// flight, not_found otherwise (unknown, expired, or another user's).
func (s *Stock) Ticket(ctx context.Context, userID int64, ticket string) (domain.Ticket, error) {
	a, i, err := domain.ParseTicket(ticket)
	if err != nil {
		return domain.Ticket{}, err
	}
	k := keysFor(a, i)
	res, err := ticketScript.Run(ctx, s.rdb, []string{k.result(ticket), k.inflight()}, ticket).Slice()
	if err != nil {
		return domain.Ticket{}, fmt.Errorf("read ticket %s: %w", ticket, err)
	}
	if raw, ok := res[0].(string); ok {
		var rec ticketRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return domain.Ticket{}, fmt.Errorf("decode ticket %s: %w", ticket, err)
		}
		if rec.UserID != userID {
			return domain.Ticket{}, domain.Errorf(domain.ENotFound, "unknown ticket")
		}
		return domain.Ticket{ID: ticket, UserID: rec.UserID, Status: domain.TicketStatus(rec.Status), OrderID: rec.OrderID, Reason: rec.Reason}, nil
	}
	v, ok := res[1].(string)
	if !ok {
		return domain.Ticket{}, domain.Errorf(domain.ENotFound, "unknown ticket")
	}
	f, err := parseInflight(v)
	if err != nil || f.user != userID {
		return domain.Ticket{}, domain.Errorf(domain.ENotFound, "unknown ticket")
	}
	return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketPending}, nil
}

type inflight struct {
	user     int64
	qty      int
	bucket   int
	admitted time.Time
}

func parseInflight(v string) (inflight, error) {
	p := strings.SplitN(v, "|", 5)
	if len(p) != 5 {
		return inflight{}, fmt.Errorf("malformed in-flight record %q", v)
	}
	u, e1 := strconv.ParseInt(p[0], 10, 64)
	q, e2 := strconv.Atoi(p[1])
	b, e3 := strconv.Atoi(p[2])
	ms, e4 := strconv.ParseInt(p[3], 10, 64)
	if err := errors.Join(e1, e2, e3, e4); err != nil {
		return inflight{}, fmt.Errorf("malformed in-flight record %q: %w", v, err)
	}
	return inflight{user: u, qty: q, bucket: b, admitted: time.UnixMilli(ms)}, nil
}

// Warm loads an item's sale state. Live stock counters are kept unless overwrite is
// set; buyer records are added only where missing.
func (s *Stock) Warm(ctx context.Context, sale domain.SaleState, overwrite bool) error {
	k := keysFor(sale.ActivityID, sale.ItemID)
	keys := append([]string{k.meta(), k.buyers()}, k.buckets(len(sale.BucketStock))...)
	ow := "0"
	if overwrite {
		ow = "1"
	}
	args := []any{string(sale.State), sale.Start.UnixMilli(), sale.End.UnixMilli(), sale.PerUserLimit, len(sale.BucketStock), ow}
	for _, n := range sale.BucketStock {
		args = append(args, n)
	}
	for u, n := range sale.Buyers {
		args = append(args, u, n)
	}
	if err := warmScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("warm item %d: %w", sale.ItemID, err)
	}
	return nil
}

// SetState changes the sale state Redis checks (published, offline) of an item that
// was warmed before.
func (s *Stock) SetState(ctx context.Context, activityID, itemID int64, st domain.State) error {
	if err := s.rdb.HSet(ctx, keysFor(activityID, itemID).meta(), "state", string(st)).Err(); err != nil {
		return fmt.Errorf("set state of item %d: %w", itemID, err)
	}
	return nil
}

// Adjust adds delta units to one bucket, refusing to go below zero; it returns the new
// count, or a conflict error when refused.
func (s *Stock) Adjust(ctx context.Context, activityID, itemID int64, bucket int, delta int64) (int64, error) {
	n, err := adjustScript.Run(ctx, s.rdb, []string{keysFor(activityID, itemID).bucket(bucket)}, delta).Int64()
	if err != nil {
		return 0, fmt.Errorf("adjust item %d bucket %d: %w", itemID, bucket, err)
	}
	if n < 0 {
		return 0, domain.Errorf(domain.EConflict, "item %d bucket %d has fewer than %d units left", itemID, bucket, -delta)
	}
	return n, nil
}

// State reads an item's counters and in-flight tickets.
func (s *Stock) State(ctx context.Context, activityID, itemID int64, buckets int) (domain.ItemState, error) {
	k := keysFor(activityID, itemID)
	pipe := s.rdb.Pipeline()
	exists := pipe.Exists(ctx, k.meta())
	stock := pipe.MGet(ctx, k.buckets(buckets)...)
	fl := pipe.HVals(ctx, k.inflight())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return domain.ItemState{}, fmt.Errorf("read state of item %d: %w", itemID, err)
	}
	st := domain.ItemState{Loaded: exists.Val() == 1, BucketStock: make([]int64, buckets), InFlightBy: make([]int64, buckets)}
	for i, v := range stock.Val() {
		if sv, ok := v.(string); ok {
			st.BucketStock[i], _ = strconv.ParseInt(sv, 10, 64)
		}
	}
	for _, v := range fl.Val() {
		f, err := parseInflight(v)
		if err != nil {
			return domain.ItemState{}, err
		}
		st.InFlight += int64(f.qty)
		if f.bucket < buckets {
			st.InFlightBy[f.bucket] += int64(f.qty)
		}
		st.Tickets++
	}
	return st, nil
}

// InFlight lists the tickets of an item that are pre-deducted but not settled, with
// when they were admitted.
func (s *Stock) InFlight(ctx context.Context, activityID, itemID int64) (map[string]time.Time, error) {
	all, err := s.rdb.HGetAll(ctx, keysFor(activityID, itemID).inflight()).Result()
	if err != nil {
		return nil, fmt.Errorf("list in-flight tickets of item %d: %w", itemID, err)
	}
	out := make(map[string]time.Time, len(all))
	for t, v := range all {
		f, err := parseInflight(v)
		if err != nil {
			return nil, err
		}
		out[t] = f.admitted
	}
	return out, nil
}

// Reset sets a bucket counter to want if it still holds was; it reports whether it did.
func (s *Stock) Reset(ctx context.Context, activityID, itemID int64, bucket int, was, want int64) (bool, error) {
	n, err := resetScript.Run(ctx, s.rdb, []string{keysFor(activityID, itemID).bucket(bucket)}, was, want).Int()
	if err != nil {
		return false, fmt.Errorf("reset item %d bucket %d: %w", itemID, bucket, err)
	}
	return n == 1, nil
}

// Open returns a client for one Redis node, or for a Redis Cluster when cluster is set
// or more than one address is given, and checks that it answers.
func Open(ctx context.Context, addrs []string, password string, cluster bool) (goredis.UniversalClient, error) {
	opts := &goredis.UniversalOptions{Addrs: addrs, Password: password, IsClusterMode: cluster || len(addrs) > 1,
		PoolSize: 64, MinIdleConns: 4, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	rdb := goredis.NewUniversalClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("ping redis at %v: %w", addrs, err)
	}
	return rdb, nil
}

// TicketUser returns the user of an in-flight ticket.
func (s *Stock) TicketUser(ctx context.Context, ticket string) (int64, error) {
	a, i, err := domain.ParseTicket(ticket)
	if err != nil {
		return 0, err
	}
	v, err := s.rdb.HGet(ctx, keysFor(a, i).inflight(), ticket).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, domain.Errorf(domain.ENotFound, "ticket %s is not in flight", ticket)
	}
	if err != nil {
		return 0, fmt.Errorf("read ticket %s: %w", ticket, err)
	}
	f, err := parseInflight(v)
	return f.user, err
}

// Take removes up to n units from a bucket and returns how many it removed.
func (s *Stock) Take(ctx context.Context, activityID, itemID int64, bucket int, n int64) (int64, error) {
	got, err := takeScript.Run(ctx, s.rdb, []string{keysFor(activityID, itemID).bucket(bucket)}, n).Int64()
	if err != nil {
		return 0, fmt.Errorf("take from item %d bucket %d: %w", itemID, bucket, err)
	}
	return got, nil
}

// SetBuckets records a new bucket count in an item's sale state.
func (s *Stock) SetBuckets(ctx context.Context, activityID, itemID int64, n int) error {
	if err := s.rdb.HSet(ctx, keysFor(activityID, itemID).meta(), "buckets", n).Err(); err != nil {
		return fmt.Errorf("set buckets of item %d: %w", itemID, err)
	}
	return nil
}

// Available sums an item's bucket counters (cheaper than State: in-flight records are
// not read); loaded is false when Redis holds no sale state for the item.
func (s *Stock) Available(ctx context.Context, activityID, itemID int64, buckets int) (n int64, loaded bool, err error) {
	k := keysFor(activityID, itemID)
	pipe := s.rdb.Pipeline()
	exists := pipe.Exists(ctx, k.meta())
	counts := pipe.MGet(ctx, k.buckets(buckets)...)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, false, fmt.Errorf("read stock of item %d: %w", itemID, err)
	}
	for _, v := range counts.Val() {
		if sv, ok := v.(string); ok {
			c, _ := strconv.ParseInt(sv, 10, 64)
			n += c
		}
	}
	return n, exists.Val() == 1, nil
}
