package redis

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/internal/coalesce"
)

var (
	//go:embed lua/deduct.lua
	deductLua string
	//go:embed lua/parts.lua
	partsLua string
	//go:embed lua/settle.lua
	settleLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/warm.lua
	warmLua string
	//go:embed lua/adjust.lua
	adjustLua string
	//go:embed lua/fence.lua
	fenceLua string
	//go:embed lua/reset.lua
	resetLua string
	//go:embed lua/take.lua
	takeLua string
	//go:embed lua/ticket.lua
	ticketLua string
	//go:embed lua/setmeta.lua
	setMetaLua string
	//go:embed lua/sale.lua
	saleLua string

	// Scripts are called by SHA; go-redis falls back to EVAL on NOSCRIPT. Those that
	// read parts get parts.lua's functions prepended.
	deductScript  = goredis.NewScript(deductLua)
	settleScript  = goredis.NewScript(partsLua + settleLua)
	releaseScript = goredis.NewScript(partsLua + releaseLua)
	warmScript    = goredis.NewScript(partsLua + warmLua)
	adjustScript  = goredis.NewScript(partsLua + adjustLua)
	resetScript   = goredis.NewScript(fenceLua + resetLua)
	takeScript    = goredis.NewScript(fenceLua + takeLua)
	ticketScript  = goredis.NewScript(ticketLua)
	setMetaScript = goredis.NewScript(setMetaLua)
	saleScript    = goredis.NewScript(saleLua)
	// Adds hold ARGV[1] to the holds of KEYS[1] (a sorted set by deadline, Redis's
	// clock), lapsing in ARGV[2] ms, and counts it in KEYS[2]; the set lives as long
	// as its last hold.
	// Lets hold ARGV[1] of KEYS[1] go, and counts that in KEYS[2] too.
	letScript = goredis.NewScript(`redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
return 1`)
	holdScript = goredis.NewScript(`redis.call('INCR', KEYS[2])
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`)

	scripts = []*goredis.Script{deductScript, settleScript, releaseScript, warmScript, adjustScript, resetScript,
		takeScript, ticketScript, setMetaScript, saleScript, holdScript, letScript}
)

// Stock is the Redis side of a sale: the stock ledger. It is safe for concurrent use.
type Stock struct {
	rdb       goredis.UniversalClient
	resultTTL time.Duration
	// pendingTTL is how long a release that found its item not loaded waits for the
	// next load (domain.PendingReleaseTTL; tests shorten it).
	pendingTTL time.Duration
	// sendsOnce: the client never resends a command (a single node with retries
	// off), so a failure to dial means the script never ran. A cluster client
	// resends on its own (to the same node, then another) whatever MaxRetries says.
	sendsOnce bool
	seen      *coalesce.Batcher[itemKey, string, seenResult]
}

var _ domain.StockLedger = (*Stock)(nil)

// NewStock returns a Stock on rdb (a single node, a cluster or a ring) that keeps
// ticket results for resultTTL, in whole seconds (at least one).
func NewStock(rdb goredis.UniversalClient, resultTTL time.Duration) *Stock {
	if resultTTL <= 0 {
		resultTTL = 24 * time.Hour
	}
	resultTTL = max(resultTTL.Round(time.Second), time.Second)
	c, single := rdb.(*goredis.Client)
	s := &Stock{rdb: rdb, resultTTL: resultTTL, pendingTTL: domain.PendingReleaseTTL, sendsOnce: single && c.Options().MaxRetries == 0}
	s.seen = coalesce.New(coalesce.Config{Size: 256, Overlap: true, Wait: time.Millisecond}, s.keysSeen)
	return s
}

// Load puts the scripts into the script cache of every node so the first calls of a
// sale go by SHA.
func (s *Stock) Load(ctx context.Context) error { return loadScripts(ctx, s.rdb, scripts...) }

// loadScripts puts scripts into the script cache of rdb's node, or of every master of
// a cluster.
func loadScripts(ctx context.Context, rdb goredis.UniversalClient, scripts ...*goredis.Script) error {
	load := func(ctx context.Context, c goredis.Scripter) error {
		for _, sc := range scripts {
			if err := sc.Load(ctx, c).Err(); err != nil {
				return fmt.Errorf("load script: %w", err)
			}
		}
		return nil
	}
	if cc, ok := rdb.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return load(ctx, c) })
	}
	return load(ctx, rdb)
}

// Deduct runs the pre-deduction script for one request. A refusal comes back as a
// *domain.Error (sold_out, insufficient_stock, limit_exceeded, not_started, ended,
// not_found, bad_request, conflict for a ticket ended before); domain.ErrNotLoaded
// when Redis has no state for the item.
func (s *Stock) Deduct(ctx context.Context, d domain.Deduction) (domain.Deducted, error) {
	out, errs, err := s.DeductBatch(ctx, []domain.Deduction{d})
	if err != nil {
		return domain.Deducted{}, err
	}
	return out[0], errs[0]
}

// DeductBatch runs the pre-deduction script once for requests of one item (the same
// activity, item and bucket count), in their order. err is the call's failure, after
// which each request may or may not have been taken; errs[i] is request i's refusal.
func (s *Stock) DeductBatch(ctx context.Context, ds []domain.Deduction) (out []domain.Deducted, errs []error, err error) {
	if len(ds) == 0 {
		return nil, nil, nil
	}
	d0 := ds[0]
	k := keysFor(d0.ActivityID, d0.ItemID)
	keys := make([]string, 0, 4+len(ds)+max(d0.Buckets, 1))
	keys = append(keys, k.meta(), k.buyers(), k.idem(), k.inflight())
	for _, d := range ds {
		keys = append(keys, k.result(d.Ticket))
	}
	keys = append(keys, k.buckets(max(d0.Buckets, 1))...)
	args := make([]any, 0, 1+5*len(ds))
	args = append(args, len(ds))
	for _, d := range ds {
		if d.ActivityID != d0.ActivityID || d.ItemID != d0.ItemID || d.Buckets != d0.Buckets {
			panic("redis: DeductBatch needs requests of one item") // a caller's bug
		}
		args = append(args, d.UserID, d.Quantity, idemField(d.UserID, d.IdempotencyKey), d.Ticket, d.HomeBucket)
	}
	res, err := deductScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		if s.sendsOnce {
			err = notSent(err)
		}
		return nil, nil, fmt.Errorf("deduct item %d: %w", d0.ItemID, err)
	}
	if len(res) != 2*len(ds) {
		return nil, nil, fmt.Errorf("deduct item %d: unexpected script result %v", d0.ItemID, res)
	}
	out = make([]domain.Deducted, len(ds))
	errs = make([]error, len(ds))
	for i, d := range ds {
		code, _ := res[2*i].(int64)
		val, _ := res[2*i+1].(string)
		out[i], errs[i] = deducted(d, code, val)
	}
	return out, errs, nil
}

func idemField(user int64, key string) string {
	if key == "" {
		return ""
	}
	return strconv.FormatInt(user, 10) + ":" + key
}

// deducted reads one request's {code, value} of deduct.lua.
func deducted(d domain.Deduction, code int64, val string) (domain.Deducted, error) {
	switch code {
	case 0:
		parts, err := domain.ParseParts(val)
		if err != nil {
			return domain.Deducted{}, fmt.Errorf("deduct item %d: %w", d.ItemID, err)
		}
		out := domain.Deducted{Ticket: d.Ticket, Bucket: parts[0].Bucket}
		if len(parts) > 1 {
			out.Parts = parts
		}
		return out, nil
	case 1:
		return domain.Deducted{Ticket: val, Replayed: true}, nil
	case 2:
		return domain.Deducted{}, domain.Errorf(domain.ESoldOut, "item %d is sold out", d.ItemID)
	case 3:
		return domain.Deducted{}, domain.Errorf(domain.ELimitExceeded, "you already hold the per-user limit of item %d", d.ItemID)
	case 4:
		return domain.Deducted{}, domain.Errorf(domain.ENotStarted, "item %d of activity %d has not started", d.ItemID, d.ActivityID)
	case 5:
		return domain.Deducted{}, domain.Errorf(domain.EEnded, "item %d of activity %d has ended", d.ItemID, d.ActivityID)
	case 6:
		return domain.Deducted{}, domain.ErrNotLoaded
	case 7:
		return domain.Deducted{}, domain.Errorf(domain.ENotFound, "item %d of activity %d is not on sale", d.ItemID, d.ActivityID)
	case 8:
		return domain.Deducted{}, domain.Errorf(domain.EBadRequest, "quantity must be a positive integer")
	case 9:
		return domain.Deducted{}, domain.Errorf(domain.EInsufficientStock, "item %d has fewer than %d units left", d.ItemID, d.Quantity)
	case 10:
		return domain.Deducted{}, domain.Errorf(domain.EConflict, "ticket %s was ended before its deduction ran", d.Ticket)
	}
	return domain.Deducted{}, fmt.Errorf("deduct item %d: unexpected script result %d %q", d.ItemID, code, val)
}

type ticketRecord struct {
	UserID  int64  `json:"user_id"`
	Status  string `json:"status"`
	OrderID int64  `json:"order_id,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// settleMode is what settle.lua gives back for a ticket's result (see the script).
func settleMode(t domain.Ticket) string {
	switch {
	case t.Status == domain.TicketCreated && t.Reason == domain.ReasonReplayed:
		return "3"
	case t.Status == domain.TicketCreated && t.Wrote != nil:
		w := t.Wrote
		var b strings.Builder
		fmt.Fprintf(&b, "4|%d|%d|", w.UserID, w.Quantity)
		for i, p := range w.Units() {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d:%d", p.Bucket, p.Quantity)
		}
		var at int64
		if !t.WrittenAt.IsZero() {
			at = max(t.WrittenAt.UnixMilli(), 1)
		}
		fmt.Fprintf(&b, "|%d|%d|", w.AdmittedAt, at)
		b.WriteString(idemField(w.UserID, w.IdemKey))
		return b.String()
	case t.Status != domain.TicketFailed:
		return "0"
	case t.Reason == domain.ESoldOut:
		return "2" // MySQL had fewer units than Redis: there is nothing to give back
	}
	return "1"
}

// Settle ends an in-flight ticket with its result. A failed ticket gives back its
// stock (unless the reason is sold_out: MySQL, the last word, had fewer units than
// Redis counted), buyer units and idempotency record; a created one replayed from
// another ticket of its key gives back its stock and buyer units. It reports whether
// this call settled the ticket (false: it was settled before, or Redis lost it; then
// the result is recorded unless one is). buckets is the item's bucket count; a ticket
// that took from a bucket past it (the count was lowered) is settled all the same.
func (s *Stock) Settle(ctx context.Context, t domain.Ticket, buckets int) (bool, error) {
	done, err := s.SettleBatch(ctx, []domain.Ticket{t}, buckets)
	if err != nil {
		return false, err
	}
	return done[0], nil
}

// SettleBatch settles tickets of one item in one script call; done[i] is Settle's
// answer for tickets[i].
func (s *Stock) SettleBatch(ctx context.Context, tickets []domain.Ticket, buckets int) ([]bool, error) {
	if len(tickets) == 0 {
		return nil, nil
	}
	a, i, err := domain.ParseTicket(tickets[0].ID)
	if err != nil {
		return nil, err
	}
	k := keysFor(a, i)
	keys := make([]string, 0, 4+len(tickets)+buckets)
	keys = append(keys, k.meta(), k.buyers(), k.idem(), k.inflight())
	args := make([]any, 0, 2+3*len(tickets))
	args = append(args, int(s.resultTTL/time.Second), len(tickets))
	for _, t := range tickets {
		ta, ti, err := domain.ParseTicket(t.ID)
		if err != nil {
			return nil, err
		}
		if ta != a || ti != i {
			panic("redis: SettleBatch needs tickets of one item") // a caller's bug
		}
		rec, err := json.Marshal(ticketRecord{UserID: t.UserID, Status: string(t.Status), OrderID: t.OrderID, Reason: t.Reason})
		if err != nil {
			return nil, fmt.Errorf("settle ticket %s: %w", t.ID, err)
		}
		keys = append(keys, k.result(t.ID))
		args = append(args, t.ID, rec, settleMode(t))
	}
	width := max(buckets, 1)
	for {
		res, err := settleScript.Run(ctx, s.rdb, append(keys, k.buckets(width)...), args...).Slice()
		if err != nil {
			return nil, fmt.Errorf("settle tickets of item %d: %w", i, err)
		}
		if need, ok := widthNeeded(res); ok {
			if need <= width || need > domain.MaxBuckets {
				return nil, fmt.Errorf("settle tickets of item %d: a ticket names bucket %d", i, need-1)
			}
			width = need // a ticket took from a bucket past the count: pass its counter too
			continue
		}
		done := make([]bool, len(tickets))
		for j := range done {
			n, _ := res[j].(int64)
			done[j] = n == 1
		}
		return done, nil
	}
}

// widthNeeded reads a script's {negative code, highest bucket} answer: the counters it
// needs to be called with.
func widthNeeded(res []any) (int, bool) {
	if len(res) != 2 {
		return 0, false
	}
	code, _ := res[0].(int64)
	b, _ := res[1].(int64)
	if code >= 0 {
		return 0, false
	}
	return int(b) + 1, true
}

// Release gives back the stock of a committed order that was cancelled or expired. It
// reports whether this call gave it back: false when an earlier call did, or when
// Redis holds no sale state for the item (the next warm reads MySQL, which has the
// units back already).
func (s *Stock) Release(ctx context.Context, o domain.Order) (bool, error) {
	k := keysFor(o.ActivityID, o.ItemID)
	units := o.Units()
	width := 1
	for _, p := range units {
		width = max(width, p.Bucket+1)
	}
	keys := append([]string{k.meta(), k.buyers(), k.released(), k.pending()}, k.buckets(width)...)
	res, err := releaseScript.Run(ctx, s.rdb, keys, o.Ticket, o.UserID, o.Quantity, domain.FormatParts(units), int(s.resultTTL/time.Second),
		int(s.pendingTTL/time.Second)).Result()
	if err != nil {
		return false, fmt.Errorf("release order %d: %w", o.ID, err)
	}
	n, ok := res.(int64)
	if !ok {
		return false, fmt.Errorf("release order %d: unexpected script result %v", o.ID, res)
	}
	return n == 1, nil
}

// KeyTicket returns the ticket the user's idempotency key took for the item, if the
// ledger holds one.
func (s *Stock) KeyTicket(ctx context.Context, activityID, itemID, userID int64, key string) (string, bool, error) {
	if key == "" {
		return "", false, nil
	}
	tk, err := s.rdb.HGet(ctx, keysFor(activityID, itemID).idem(), idemField(userID, key)).Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("look up key of item %d: %w", itemID, err)
	}
	return tk, true, nil
}

// Ticket returns where a ticket stands: its result when settled, pending while in
// flight, not_found otherwise (unknown, expired, or another user's).
func (s *Stock) Ticket(ctx context.Context, userID int64, ticket string) (domain.Ticket, error) {
	out, err := s.Tickets(ctx, []domain.Ticket{{ID: ticket, UserID: userID}})
	if err != nil {
		return domain.Ticket{}, err
	}
	if out[0].Status == "" {
		return domain.Ticket{}, domain.Errorf(domain.ENotFound, "unknown ticket")
	}
	return out[0], nil
}

// Tickets reads tickets of one item (q[i].ID, owned by q[i].UserID) in one script
// call: out[i] is what Ticket says of q[i], with an empty Status where Ticket says
// not_found.
func (s *Stock) Tickets(ctx context.Context, q []domain.Ticket) ([]domain.Ticket, error) {
	if len(q) == 0 {
		return nil, nil
	}
	a, i, err := domain.ParseTicket(q[0].ID)
	if err != nil {
		return nil, err
	}
	k := keysFor(a, i)
	keys := make([]string, 0, 1+len(q))
	keys = append(keys, k.inflight())
	args := make([]any, 0, len(q))
	for _, t := range q {
		ta, ti, err := domain.ParseTicket(t.ID)
		if err != nil {
			return nil, err
		}
		if ta != a || ti != i {
			panic("redis: Tickets needs tickets of one item") // a caller's bug
		}
		keys = append(keys, k.result(t.ID))
		args = append(args, t.ID)
	}
	res, err := ticketScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("read tickets of item %d: %w", i, err)
	}
	if len(res) != 2*len(q) {
		return nil, fmt.Errorf("read tickets of item %d: unexpected script result %v", i, res)
	}
	out := make([]domain.Ticket, len(q))
	for j, t := range q {
		out[j] = domain.Ticket{ID: t.ID, UserID: t.UserID}
		if raw, ok := res[2*j].(string); ok {
			var rec ticketRecord
			if err := json.Unmarshal([]byte(raw), &rec); err != nil {
				return nil, fmt.Errorf("decode ticket %s: %w", t.ID, err)
			}
			if rec.UserID == t.UserID {
				out[j] = domain.Ticket{ID: t.ID, UserID: rec.UserID, Status: domain.TicketStatus(rec.Status), OrderID: rec.OrderID, Reason: rec.Reason}
			}
			continue
		}
		if v, ok := res[2*j+1].(string); ok {
			if f, err := parseInflight(v); err == nil && f.user == t.UserID {
				out[j].Status = domain.TicketPending
			}
		}
	}
	return out, nil
}

// inflight is an in-flight record: "<user>|<qty>|<parts>|<admitted ms>|<idem field>",
// parts "<bucket>:<units>,..." (or a bare bucket holding all of qty).
type inflight struct {
	user     int64
	qty      int
	parts    []domain.Part
	admitted time.Time
	idemKey  string // the shopper's key, without "<user>:"
}

func parseInflight(v string) (inflight, error) {
	p := strings.SplitN(v, "|", 5)
	if len(p) != 5 {
		return inflight{}, fmt.Errorf("malformed in-flight record %q", v)
	}
	u, e1 := strconv.ParseInt(p[0], 10, 64)
	q, e2 := strconv.Atoi(p[1])
	ms, e3 := strconv.ParseInt(p[3], 10, 64)
	var parts []domain.Part
	var e4 error
	if b, err := strconv.Atoi(p[2]); err == nil {
		parts = []domain.Part{{Bucket: b, Quantity: q}}
	} else {
		parts, e4 = domain.ParseParts(p[2])
	}
	if err := errors.Join(e1, e2, e3, e4); err != nil {
		return inflight{}, fmt.Errorf("malformed in-flight record %q: %w", v, err)
	}
	_, key, _ := strings.Cut(p[4], ":")
	return inflight{user: u, qty: q, parts: parts, admitted: time.UnixMilli(ms), idemKey: key}, nil
}

// newEpoch is a name no other load of an item has.
func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Warm loads an item's sale state. Live stock counters are kept unless overwrite is
// set; buyer and idempotency records are added only where missing; the released
// tickets are marked released when every stock counter is written (warm.lua).
func (s *Stock) Warm(ctx context.Context, sale domain.SaleState, overwrite bool) error {
	k := keysFor(sale.ActivityID, sale.ItemID)
	keys := append([]string{k.meta(), k.buyers(), k.idem(), k.released(), k.pending()}, k.buckets(len(sale.BucketStock))...)
	ow := "0"
	if overwrite {
		ow = "1"
	}
	args := make([]any, 0, 15+len(sale.BucketStock)+2*len(sale.Buyers)+len(sale.Released)+2*len(sale.Keys)+len(sale.Counted)+len(sale.Recent))
	args = append(args, string(sale.State), sale.Start.UnixMilli(), sale.End.UnixMilli(), sale.PerUserLimit, sale.LiveBuckets(), ow, len(sale.Buyers),
		sale.Version, len(sale.Released), int(s.resultTTL/time.Second), newEpoch(), int(s.pendingTTL/time.Second), len(sale.Counted),
		len(sale.Recent), recentSince(sale))
	for _, n := range sale.BucketStock {
		args = append(args, n)
	}
	for u, n := range sale.Buyers {
		args = append(args, u, n)
	}
	for _, t := range sale.Released {
		args = append(args, t)
	}
	for _, kt := range sale.Keys {
		args = append(args, idemField(kt.UserID, kt.Key), kt.Ticket)
	}
	for _, t := range sale.Counted {
		args = append(args, t)
	}
	for _, t := range sale.Recent {
		args = append(args, t)
	}
	if err := warmScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("warm item %d: %w", sale.ItemID, err)
	}
	return nil
}

// recentSince is warm.lua's ARGV for sale.RecentSince: -1 when not known (a load
// that lists no recent orders counts every lost ticket's order).
func recentSince(sale domain.SaleState) int64 {
	if sale.RecentSince.IsZero() {
		return -1
	}
	return sale.RecentSince.UnixMilli()
}

// SetSale writes a loaded item's state, window, limit and bucket count (len of
// sale.BucketStock) at sale.Version, unless Redis holds that version or a newer one;
// loaded is false when Redis holds nothing of the item (nothing written).
func (s *Stock) SetSale(ctx context.Context, sale domain.SaleState) (bool, error) {
	n, err := saleScript.Run(ctx, s.rdb, []string{keysFor(sale.ActivityID, sale.ItemID).meta()}, sale.Version, string(sale.State),
		sale.Start.UnixMilli(), sale.End.UnixMilli(), sale.PerUserLimit, max(len(sale.BucketStock), 1)).Int64()
	if err != nil {
		return false, fmt.Errorf("set the sale state of item %d: %w", sale.ItemID, err)
	}
	return n != 0, nil
}

// SetState changes the sale state Redis checks (published, offline) of a loaded item;
// an item not loaded stays so (the next warm writes its state whole).
func (s *Stock) SetState(ctx context.Context, activityID, itemID int64, st domain.State) error {
	if err := setMetaScript.Run(ctx, s.rdb, []string{keysFor(activityID, itemID).meta()}, "state", string(st)).Err(); err != nil {
		return fmt.Errorf("set state of item %d: %w", itemID, err)
	}
	return nil
}

// Adjust adds delta units to one bucket, refusing to go below zero; it returns the new
// count, a conflict error when refused, domain.ErrNotLoaded when Redis holds no sale
// state for the item (nothing changed: the next warm reads MySQL).
func (s *Stock) Adjust(ctx context.Context, activityID, itemID int64, bucket int, delta int64, epoch string) (int64, error) {
	k := keysFor(activityID, itemID)
	n, err := adjustScript.Run(ctx, once{s.rdb}, []string{k.meta(), k.bucket(bucket)}, delta, epoch).Int64()
	switch {
	case err != nil:
		return 0, fmt.Errorf("adjust item %d bucket %d: %w", itemID, bucket, err)
	case n == -2:
		return 0, domain.ErrNotLoaded
	case n < 0:
		return 0, domain.Errorf(domain.EConflict, "item %d bucket %d has fewer than %d units left", itemID, bucket, -delta)
	}
	return n, nil
}

// Epoch names the item's load: warm.lua starts a new one when it writes every counter.
func (s *Stock) Epoch(ctx context.Context, activityID, itemID int64) (string, error) {
	e, err := s.rdb.HGet(ctx, keysFor(activityID, itemID).meta(), "epoch").Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return "", fmt.Errorf("read the epoch of item %d: %w", itemID, err)
	}
	return e, nil
}

// State reads an item's counters and in-flight tickets.
func (s *Stock) State(ctx context.Context, activityID, itemID int64, buckets int) (domain.ItemState, error) {
	k := keysFor(activityID, itemID)
	pipe := s.rdb.TxPipeline() // one step: the count of changes goes with the counters read
	meta := pipe.HMGet(ctx, k.meta(), "state", "start", "end", "limit", "changes")
	stock := pipe.MGet(ctx, k.buckets(buckets)...)
	fl := pipe.HVals(ctx, k.inflight())
	holds := pipe.Get(ctx, k.holdsSeen())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return domain.ItemState{}, fmt.Errorf("read state of item %d: %w", itemID, err)
	}
	st := domain.ItemState{BucketStock: make([]int64, buckets), InFlightBy: make([]int64, buckets)}
	st.Holds, _ = strconv.ParseInt(holds.Val(), 10, 64)
	if m := meta.Val(); len(m) == 5 && m[0] != nil {
		st.Loaded = true
		st.State = domain.State(fmt.Sprint(m[0]))
		st.Start, st.End = time.UnixMilli(metaInt(m[1])), time.UnixMilli(metaInt(m[2]))
		st.PerUserLimit = int(metaInt(m[3]))
		st.Changes = metaInt(m[4])
	}
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
		for _, p := range f.parts {
			if p.Bucket < buckets {
				st.InFlightBy[p.Bucket] += int64(p.Quantity)
			}
		}
		st.Tickets++
	}
	return st, nil
}

// metaInt reads a numeric field of an HMGET answer (0 when missing).
func metaInt(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// PendingTakes lists the tickets of the item's pending takes (settle.lua).
func (s *Stock) PendingTakes(ctx context.Context, activityID, itemID int64) ([]string, error) {
	fields, err := s.rdb.HKeys(ctx, keysFor(activityID, itemID).pending()).Result()
	if err != nil {
		return nil, fmt.Errorf("list pending takes of item %d: %w", itemID, err)
	}
	var out []string
	for _, f := range fields {
		if t, ok := strings.CutPrefix(f, "take:"); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// InFlight lists the tickets of an item that are pre-deducted but not settled.
func (s *Stock) InFlight(ctx context.Context, activityID, itemID int64) ([]domain.Flight, error) {
	all, err := s.rdb.HGetAll(ctx, keysFor(activityID, itemID).inflight()).Result()
	if err != nil {
		return nil, fmt.Errorf("list in-flight tickets of item %d: %w", itemID, err)
	}
	out := make([]domain.Flight, 0, len(all))
	for t, v := range all {
		f, err := parseInflight(v)
		if err != nil {
			return nil, err
		}
		out = append(out, domain.Flight{Ticket: t, UserID: f.user, Quantity: f.qty, Parts: f.parts, AdmittedAt: f.admitted, IdemKey: f.idemKey})
	}
	return out, nil
}

// Mark records what was done to an in-flight ticket, once (a hash per item, in its
// slot, kept a day after its last mark).
func (s *Stock) Mark(ctx context.Context, activityID, itemID int64, ticket, what string) (bool, error) {
	k := keysFor(activityID, itemID).marks()
	pipe := s.rdb.TxPipeline()
	set := pipe.HSetNX(ctx, k, ticket+":"+what, time.Now().UnixMilli())
	pipe.Expire(ctx, k, 24*time.Hour)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("mark ticket %s %s: %w", ticket, what, err)
	}
	return set.Val(), nil
}

// Reset sets a bucket counter to want if it still holds was and the item is loaded; it
// reports whether it did.
func (s *Stock) Reset(ctx context.Context, activityID, itemID int64, bucket int, was, want int64, fence int64, holds int64, changes int64, ended []domain.Order) (bool, error) {
	k := keysFor(activityID, itemID)
	args := make([]any, 0, 6+3*len(ended))
	args = append(args, was, want, fence, int(s.resultTTL/time.Second), holds, changes)
	for _, o := range ended {
		args = append(args, o.Ticket, o.UserID, o.Quantity)
	}
	n, err := resetScript.Run(ctx, s.rdb, []string{k.meta(), k.bucket(bucket), k.released(), k.buyers(), k.holds(), k.holdsSeen()}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("reset item %d bucket %d: %w", itemID, bucket, err)
	}
	if n < 0 {
		return false, fmt.Errorf("reset item %d bucket %d under fence %d: %w", itemID, bucket, fence, domain.ErrFenced)
	}
	return n == 1, nil
}

// HoldResets adds a hold of the item's resets, lapsing after ttl by Redis's clock.
func (s *Stock) HoldResets(ctx context.Context, activityID, itemID int64, ttl time.Duration) (string, error) {
	k := keysFor(activityID, itemID)
	hold := newEpoch()
	if err := holdScript.Run(ctx, s.rdb, []string{k.holds(), k.holdsSeen()}, hold, ttl.Milliseconds()).Err(); err != nil {
		// The hold may have been taken (an answer lost): its name lets it go.
		return hold, fmt.Errorf("hold resets of item %d: %w", itemID, err)
	}
	return hold, nil
}

// LetResets ends a hold of HoldResets.
func (s *Stock) LetResets(ctx context.Context, activityID, itemID int64, hold string) error {
	k := keysFor(activityID, itemID)
	if err := letScript.Run(ctx, s.rdb, []string{k.holds(), k.holdsSeen()}, hold).Err(); err != nil {
		return fmt.Errorf("let resets of item %d: %w", itemID, err)
	}
	return nil
}

// Open returns a client for one Redis node, or for a Redis Cluster when cluster is set
// or more than one address is given, and checks that it answers.
func Open(ctx context.Context, addrs []string, password string, cluster bool) (goredis.UniversalClient, error) {
	// MaxRetries -1: go-redis must not resend a command whose connection broke after
	// it was written. The ledger's scripts take stock by deltas, and tallies count by
	// increments; a resend would run them twice, and would leave the last attempt's
	// error (a refused dial, say) to stand for a first attempt that did run. Callers
	// decide what a failure means instead (sale.Service ends an unanswered ticket).
	opts := &goredis.UniversalOptions{Addrs: addrs, Password: password, IsClusterMode: cluster || len(addrs) > 1,
		PoolSize: 64, MinIdleConns: 4, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: -1}
	rdb := goredis.NewUniversalClient(opts)
	// A Redis restarting (refused, EOF, loading) is waited for: a process that exits
	// then needs someone to start it again.
	deadline := time.Now().Add(OpenWait)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return rdb, nil
		}
		if refused := err.Error(); strings.Contains(refused, "NOAUTH") || strings.Contains(refused, "WRONGPASS") {
			deadline = time.Time{} // Redis answered: no wait changes a refused password
		}
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			rdb.Close()
			return nil, fmt.Errorf("ping redis at %v (for %v): %w", addrs, OpenWait, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// OpenWait is how long Open waits for Redis to answer.
var OpenWait = 30 * time.Second

// Take removes up to n units from a bucket and returns how many it removed (none when
// the item is not loaded).
func (s *Stock) Take(ctx context.Context, activityID, itemID int64, bucket int, n int64, fence int64) (int64, error) {
	k := keysFor(activityID, itemID)
	got, err := takeScript.Run(ctx, once{s.rdb}, []string{k.meta(), k.bucket(bucket)}, n, fence).Int64()
	if err != nil {
		return 0, fmt.Errorf("take from item %d bucket %d: %w", itemID, bucket, err)
	}
	if got < 0 {
		return 0, fmt.Errorf("take from item %d bucket %d under fence %d: %w", itemID, bucket, fence, domain.ErrFenced)
	}
	return got, nil
}

// SetBuckets records a new bucket count in a loaded item's sale state.
func (s *Stock) SetBuckets(ctx context.Context, activityID, itemID int64, n int) error {
	if err := setMetaScript.Run(ctx, s.rdb, []string{keysFor(activityID, itemID).meta()}, "buckets", n).Err(); err != nil {
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

// KeySeen reports whether the ledger holds an admission of user's idempotency key for
// an item: a retry with it is answered with the first attempt's outcome, not refused
// at the edge as sold out. A gateway asks it for every keyed attempt at a sold-out
// item, so the lookups of one item that arrive together share one HMGET.
func (s *Stock) KeySeen(ctx context.Context, activityID, itemID, userID int64, key string) (bool, error) {
	r := s.seen.Do(ctx, itemKey{activityID, itemID}, idemField(userID, key))
	if r.err != nil {
		return false, fmt.Errorf("look up key of item %d: %w", itemID, r.err)
	}
	return r.seen, nil
}

type itemKey struct{ activity, item int64 }

type seenResult struct {
	seen bool
	err  error
}

// keysSeen looks up idempotency fields of one item in one call.
func (s *Stock) keysSeen(ctx context.Context, k itemKey, fields []string) []seenResult {
	out := make([]seenResult, len(fields))
	vals, err := s.rdb.HMGet(ctx, keysFor(k.activity, k.item).idem(), fields...).Result()
	for i := range out {
		if err != nil {
			out[i].err = err
		} else {
			out[i].seen = i < len(vals) && vals[i] != nil
		}
	}
	return out
}
