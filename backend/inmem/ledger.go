package inmem

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Ledger is an in-memory stock ledger that does what backend/redis.Stock and its Lua
// scripts (backend/redis/lua) do, step for step: per item a meta record (state,
// window, limit, buckets), bucket counters, buyers, idempotency records, in-flight
// tickets with their admission time, ticket results kept for a TTL, and the released
// orders. Each operation is atomic under one lock, and where a script stops with a
// Redis error half way, this stops at the same step with an error, keeping what the
// script had written before it. The sale window, admission times and result TTLs follow
// the clock given with WithClock. It is safe for concurrent use.
type Ledger struct {
	now       func() time.Time
	resultTTL time.Duration

	mu     sync.Mutex
	items  map[ledgerKey]*ledgerItem
	epochs int64 // loads so far: each load's epoch is its number
	holds  int64 // holds so far: each hold's name is its number
}

var _ domain.StockLedger = (*Ledger)(nil)

type ledgerKey struct{ activity, item int64 }

// ledgerItem holds what Redis keeps under one item's hash tag. A nil meta is a meta
// key that does not exist; a counter missing from stock is a counter key that does not
// exist (it reads as 0).
type ledgerItem struct {
	meta     map[string]string // state, start, end (unix ms), limit, buckets
	stock    map[int]int64
	buyers   map[int64]int64
	idem     map[string]string // "<user>:<key>" -> ticket
	marks    map[string]bool   // "<ticket>:<what>"
	inflight map[string]flight
	released map[string]bool           // tickets of orders whose stock was released
	pending  map[string]pendingRelease // releases that found the item not loaded
	takes    map[string]pendingTake    // settles of written orders that found it not loaded
	results  map[string]result
	holds    map[string]time.Time // changes in progress that hold resets, by deadline (HoldResets)
	held     int64                // holds ever taken or let go
	loadedMS int64                // when a load last wrote every counter (warm.lua's 'loaded')
	// The last such load's recent orders (SaleState.Recent) and since when (ms; -1:
	// none): warm.lua's recent set and 'recent_since'.
	recent      map[string]bool
	recentSince int64
	changes     int64 // changes of counters and tickets in flight (ItemState.Changes)
}

// flight is an in-flight record: "<user>|<qty>|<parts>|<admitted ms>|<idem field>".
type flight struct {
	user       int64
	qty        int64
	parts      []domain.Part
	admittedMS int64
	idem       string
}

type result struct {
	rec     domain.Ticket // ID unset
	expires time.Time
}

// NewLedger returns an empty Ledger that keeps ticket results for resultTTL (24h when
// not positive), counted in whole seconds as Redis's EX is.
func NewLedger(resultTTL time.Duration, opts ...Option) *Ledger {
	if resultTTL <= 0 {
		resultTTL = 24 * time.Hour
	}
	resultTTL = max(resultTTL.Round(time.Second), time.Second)
	return &Ledger{now: buildOptions(opts).now, resultTTL: resultTTL, items: map[ledgerKey]*ledgerItem{}}
}

// item returns an item's record, making an empty one (no keys) if there is none; the
// caller holds mu.
func (l *Ledger) item(activityID, itemID int64) *ledgerItem {
	k := ledgerKey{activityID, itemID}
	it := l.items[k]
	if it == nil {
		it = &ledgerItem{stock: map[int]int64{}, buyers: map[int64]int64{}, idem: map[string]string{},
			inflight: map[string]flight{}, released: map[string]bool{}, pending: map[string]pendingRelease{}, takes: map[string]pendingTake{}, holds: map[string]time.Time{}, results: map[string]result{}}
		l.items[k] = it
	}
	return it
}

// errScript is what a script that stops on a Redis error returns.
func errScript(format string, args ...any) error {
	return fmt.Errorf("script error: "+format, args...)
}

// metaInt reads a numeric meta field as Lua's tonumber does; a missing or non-numeric
// field is an error where the script compares it.
func (it *ledgerItem) metaInt(field string) (int64, error) {
	v, err := strconv.ParseInt(it.meta[field], 10, 64)
	if err != nil {
		return 0, errScript("meta field %s is %q: attempt to compare nil with number", field, it.meta[field])
	}
	return v, nil
}

// Deduct admits one request as deduct.lua does.
func (l *Ledger) Deduct(_ context.Context, d domain.Deduction) (domain.Deducted, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deduct(d)
}

// DeductBatch admits requests of one item in one step, in order, as deduct.lua does
// for a batch. A script error stops the batch there (what the requests before it took
// stays taken, as in Redis) and is the call's error.
func (l *Ledger) DeductBatch(_ context.Context, ds []domain.Deduction) ([]domain.Deducted, []error, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]domain.Deducted, len(ds))
	errs := make([]error, len(ds))
	for i, d := range ds {
		if d.ActivityID != ds[0].ActivityID || d.ItemID != ds[0].ItemID || d.Buckets != ds[0].Buckets {
			panic("inmem: DeductBatch needs requests of one item") // a caller's bug
		}
		out[i], errs[i] = l.deduct(d)
		var de *domain.Error
		if errs[i] != nil && !errors.As(errs[i], &de) && !errors.Is(errs[i], domain.ErrNotLoaded) {
			return nil, nil, errs[i]
		}
	}
	return out, errs, nil
}

// deduct is Deduct; the caller holds mu.
func (l *Ledger) deduct(d domain.Deduction) (domain.Deducted, error) {
	it := l.item(d.ActivityID, d.ItemID)
	state, ok := it.meta["state"]
	if !ok {
		return domain.Deducted{}, domain.ErrNotLoaded
	}
	if _, decided := l.getResult(it, d.Ticket); decided {
		return domain.Deducted{}, domain.Errorf(domain.EConflict, "ticket %s was ended before its deduction ran", d.Ticket)
	}
	idem := ""
	if d.IdempotencyKey != "" {
		idem = strconv.FormatInt(d.UserID, 10) + ":" + d.IdempotencyKey
		if prev, ok := it.idem[idem]; ok {
			return domain.Deducted{Ticket: prev, Replayed: true}, nil
		}
	}
	if state != string(domain.StatePublished) {
		return domain.Deducted{}, domain.Errorf(domain.ENotFound, "item %d of activity %d is not on sale", d.ItemID, d.ActivityID)
	}
	now := l.now().UnixMilli()
	start, err := it.metaInt("start")
	if err != nil {
		return domain.Deducted{}, fmt.Errorf("deduct item %d: %w", d.ItemID, err)
	}
	if now < start {
		return domain.Deducted{}, domain.Errorf(domain.ENotStarted, "item %d of activity %d has not started", d.ItemID, d.ActivityID)
	}
	end, err := it.metaInt("end")
	if err != nil {
		return domain.Deducted{}, fmt.Errorf("deduct item %d: %w", d.ItemID, err)
	}
	if now >= end {
		return domain.Deducted{}, domain.Errorf(domain.EEnded, "item %d of activity %d has ended", d.ItemID, d.ActivityID)
	}
	qty := int64(d.Quantity)
	if qty <= 0 {
		return domain.Deducted{}, domain.Errorf(domain.EBadRequest, "quantity must be a positive integer")
	}
	limit, err := it.metaInt("limit")
	if err != nil {
		return domain.Deducted{}, fmt.Errorf("deduct item %d: %w", d.ItemID, err)
	}
	if it.buyers[d.UserID]+qty > limit {
		return domain.Deducted{}, domain.Errorf(domain.ELimitExceeded, "you already hold the per-user limit of item %d", d.ItemID)
	}
	parts, err := take(it.stock, d.Buckets, d.HomeBucket, qty)
	if err != nil {
		return domain.Deducted{}, domain.Errorf(domain.ErrorCode(err), "item %d: %s", d.ItemID, domain.ErrorMessage(err))
	}
	it.buyers[d.UserID] += qty
	if idem != "" {
		it.idem[idem] = d.Ticket
	}
	it.inflight[d.Ticket] = flight{user: d.UserID, qty: qty, parts: parts, admittedMS: now, idem: idem}
	it.changes++
	out := domain.Deducted{Ticket: d.Ticket, Bucket: parts[0].Bucket}
	if len(parts) > 1 {
		out.Parts = parts
	}
	return out, nil
}

// take takes qty units from n bucket counters as deduct.lua does: from the home bucket
// when it holds them all, else from the first bucket after it that does, else from
// several in turn; sold_out when no unit is left, insufficient_stock when fewer.
func take(stock map[int]int64, n, home int, qty int64) ([]domain.Part, error) {
	n = max(n, 1)
	home = ((home % n) + n) % n // Lua's % takes the divisor's sign
	var total int64
	for i := 0; i < n; i++ {
		b := (home + i) % n
		if stock[b] >= qty {
			stock[b] -= qty
			return []domain.Part{{Bucket: b, Quantity: int(qty)}}, nil
		}
		total += stock[b]
	}
	switch {
	case total == 0:
		return nil, domain.Errorf(domain.ESoldOut, "sold out")
	case total < qty:
		return nil, domain.Errorf(domain.EInsufficientStock, "fewer than %d units left", qty)
	}
	var parts []domain.Part
	need := qty
	for i := 0; i < n && need > 0; i++ {
		b := (home + i) % n
		if t := min(need, stock[b]); t > 0 {
			stock[b] -= t
			need -= t
			parts = append(parts, domain.Part{Bucket: b, Quantity: int(t)})
		}
	}
	return parts, nil
}

// resultTTLSeconds is the TTL as the EX argument of settle.lua; Redis refuses 0.
func (l *Ledger) resultExpiry() (time.Time, error) {
	secs := int64(l.resultTTL / time.Second)
	if secs <= 0 {
		return time.Time{}, errScript("invalid expire time in 'set' command")
	}
	return l.now().Add(time.Duration(secs) * time.Second), nil
}

// getResult returns a ticket's result unless it expired; the caller holds mu.
func (l *Ledger) getResult(it *ledgerItem, ticket string) (result, bool) {
	r, ok := it.results[ticket]
	if ok && !l.now().Before(r.expires) {
		delete(it.results, ticket)
		return result{}, false
	}
	return r, ok
}

// counted reports whether the last load counted the units of t's written order (its
// view held it), as settle.lua decides: not known (no recent orders, or no time the
// order was created) counts as counted.
func (it *ledgerItem) counted(t domain.Ticket) bool {
	return it.recent == nil || t.WrittenAt.IsZero() || t.WrittenAt.UnixMilli() < it.recentSince || it.recent[t.ID]
}

// takeLost takes the units of an order the load that lost its ticket did not count
// (settle.lua's mode 4): from its buckets, then any, as many as there are; and the
// buyer's units and key.
func (it *ledgerItem) takeLost(w *domain.OrderRequest, buckets int) {
	it.changes++
	left := int64(w.Quantity)
	take := func(b int, most int64) {
		t := min(it.stock[b], most, left)
		if t > 0 {
			it.stock[b] -= t
			left -= t
		}
	}
	width := max(buckets, 1) // as settle.lua: the counters passed, more when a part is past them
	for _, p := range w.Units() {
		take(p.Bucket, int64(p.Quantity))
		width = max(width, p.Bucket+1)
	}
	for b := range width {
		take(b, left)
	}
	it.buyers[w.UserID] += int64(w.Quantity)
	if w.IdemKey != "" {
		f := strconv.FormatInt(w.UserID, 10) + ":" + w.IdemKey
		if _, ok := it.idem[f]; !ok {
			it.idem[f] = w.Ticket
		}
	}
}

func (it *ledgerItem) giveBack(user, qty int64) {
	it.buyers[user] -= qty
	if it.buyers[user] <= 0 {
		delete(it.buyers, user)
	}
}

// Settle ends an in-flight ticket with its result as settle.lua does.
func (l *Ledger) Settle(_ context.Context, t domain.Ticket, buckets int) (bool, error) {
	a, i, err := domain.ParseTicket(t.ID)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.settle(l.item(a, i), t, buckets)
}

// SettleBatch settles tickets of one item in one step, as settle.lua does for a batch.
func (l *Ledger) SettleBatch(_ context.Context, tickets []domain.Ticket, buckets int) ([]bool, error) {
	if len(tickets) == 0 {
		return nil, nil
	}
	a, i, err := domain.ParseTicket(tickets[0].ID)
	if err != nil {
		return nil, err
	}
	for _, t := range tickets {
		ta, ti, err := domain.ParseTicket(t.ID)
		if err != nil {
			return nil, err
		}
		if ta != a || ti != i {
			panic("inmem: SettleBatch needs tickets of one item") // a caller's bug
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(a, i)
	done := make([]bool, len(tickets))
	for j, t := range tickets {
		if done[j], err = l.settle(it, t, buckets); err != nil {
			return nil, err
		}
	}
	return done, nil
}

// settle is Settle on the ticket's item; the caller holds mu.
func (l *Ledger) settle(it *ledgerItem, t domain.Ticket, buckets int) (bool, error) {
	var err error
	rec := result{rec: domain.Ticket{UserID: t.UserID, Status: t.Status, OrderID: t.OrderID, Reason: t.Reason}}
	if rec.expires, err = l.resultExpiry(); err != nil {
		return false, fmt.Errorf("settle ticket %s: %w", t.ID, err)
	}
	f, ok := it.inflight[t.ID]
	if !ok {
		if _, had := l.getResult(it, t.ID); !had {
			it.results[t.ID] = rec
			if w := t.Wrote; w != nil && t.Status == domain.TicketCreated && t.Reason != domain.ReasonReplayed && it.meta == nil {
				it.takes[t.ID] = pendingTake{w, l.now()} // the next load decides (settle.lua)
			}
			if w := t.Wrote; w != nil && t.Status == domain.TicketCreated && t.Reason != domain.ReasonReplayed && it.meta != nil &&
				it.loadedMS > 0 && w.AdmittedAt < it.loadedMS && !it.counted(t) {
				it.takeLost(w, buckets)
			}
		}
		return false, nil
	}
	delete(it.inflight, t.ID)
	it.results[t.ID] = rec
	if it.meta != nil {
		it.changes++
	}
	replayed := t.Status == domain.TicketCreated && t.Reason == domain.ReasonReplayed
	if t.Status != domain.TicketFailed && !replayed {
		return true, nil
	}
	if (replayed || t.Reason != domain.ESoldOut) && it.meta != nil {
		for _, p := range f.parts {
			it.stock[p.Bucket] += int64(p.Quantity)
		}
	}
	it.giveBack(f.user, f.qty)
	if f.idem != "" && !replayed {
		delete(it.idem, f.idem)
	}
	return true, nil
}

// Release gives back the stock of a committed order that was cancelled or expired,
// once per order, on a loaded item; on one not loaded it waits for the next load
// (release.lua).
func (l *Ledger) Release(_ context.Context, o domain.Order) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(o.ActivityID, o.ItemID)
	if it.meta == nil {
		it.pending[o.Ticket] = pendingRelease{o, l.now()}
		return false, nil
	}
	return it.release(o), nil
}

// pendingTake is the settle of a written order that found its item not loaded, and
// when (settle.lua's "take:" records).
type pendingTake struct {
	w  *domain.OrderRequest
	at time.Time
}

// PendingTakes lists the tickets of the item's pending takes.
func (l *Ledger) PendingTakes(_ context.Context, activityID, itemID int64) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(maps.Keys(l.item(activityID, itemID).takes)), nil
}

// pendingRelease is a release that found its item not loaded, and when.
type pendingRelease struct {
	domain.Order
	at time.Time
}

// release gives an order's units back unless it was released before.
func (it *ledgerItem) release(o domain.Order) bool {
	if it.released[o.Ticket] {
		return false
	}
	it.released[o.Ticket] = true
	for _, p := range o.Units() {
		it.stock[p.Bucket] += int64(p.Quantity)
	}
	it.giveBack(o.UserID, int64(o.Quantity))
	it.changes++
	return true
}

// Ticket returns where a user's ticket stands (ticket.lua).
func (l *Ledger) Ticket(_ context.Context, userID int64, ticket string) (domain.Ticket, error) {
	a, i, err := domain.ParseTicket(ticket)
	if err != nil {
		return domain.Ticket{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ticket(l.item(a, i), userID, ticket)
}

// KeyTicket returns the ticket the user's idempotency key took for the item, if any.
func (l *Ledger) KeyTicket(_ context.Context, activityID, itemID, userID int64, key string) (string, bool, error) {
	if key == "" {
		return "", false, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.items[ledgerKey{activityID, itemID}]
	if it == nil {
		return "", false, nil
	}
	tk, ok := it.idem[strconv.FormatInt(userID, 10)+":"+key]
	return tk, ok, nil
}

// Tickets reads tickets of one item in one step (ticket.lua); an unknown one comes back
// with an empty Status.
func (l *Ledger) Tickets(_ context.Context, q []domain.Ticket) ([]domain.Ticket, error) {
	if len(q) == 0 {
		return nil, nil
	}
	a, i, err := domain.ParseTicket(q[0].ID)
	if err != nil {
		return nil, err
	}
	for _, t := range q {
		ta, ti, err := domain.ParseTicket(t.ID)
		if err != nil {
			return nil, err
		}
		if ta != a || ti != i {
			panic("inmem: Tickets needs tickets of one item") // a caller's bug
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(a, i)
	out := make([]domain.Ticket, len(q))
	for j, t := range q {
		got, err := l.ticket(it, t.UserID, t.ID)
		if err != nil {
			got = domain.Ticket{ID: t.ID, UserID: t.UserID}
		}
		out[j] = got
	}
	return out, nil
}

// ticket is Ticket on the ticket's item; the caller holds mu.
func (l *Ledger) ticket(it *ledgerItem, userID int64, ticket string) (domain.Ticket, error) {
	if r, ok := l.getResult(it, ticket); ok {
		if r.rec.UserID != userID {
			return domain.Ticket{}, domain.Errorf(domain.ENotFound, "unknown ticket")
		}
		t := r.rec
		t.ID = ticket
		return t, nil
	}
	f, ok := it.inflight[ticket]
	if !ok || f.user != userID {
		return domain.Ticket{}, domain.Errorf(domain.ENotFound, "unknown ticket")
	}
	return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketPending}, nil
}

// Warm loads an item's sale state (warm.lua).
func (l *Ledger) Warm(_ context.Context, s domain.SaleState, overwrite bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(s.ActivityID, s.ItemID)
	if it.meta == nil {
		it.meta = map[string]string{}
	}
	it.changes++
	if held, _ := strconv.ParseInt(it.meta["version"], 10, 64); s.Version == 0 || s.Version > held {
		writeSale(it.meta, s, s.LiveBuckets())
	}
	wroteAll := true
	for b, n := range s.BucketStock {
		if _, ok := it.stock[b]; overwrite || !ok {
			it.stock[b] = n
		} else {
			wroteAll = false
		}
	}
	for u, n := range s.Buyers {
		if _, ok := it.buyers[u]; !ok {
			it.buyers[u] = n
		}
	}
	for _, k := range s.Keys {
		f := strconv.FormatInt(k.UserID, 10) + ":" + k.Key
		if _, ok := it.idem[f]; !ok {
			it.idem[f] = k.Ticket
		}
	}
	// After the buyers: a pending release lowers its buyer's count as loaded.
	if wroteAll {
		l.epochs++
		it.meta["epoch"] = strconv.FormatInt(l.epochs, 10)
		it.loadedMS = l.now().UnixMilli()
		it.recent = nil // not known: every lost ticket's order counted
		if !s.RecentSince.IsZero() {
			it.recentSince, it.recent = s.RecentSince.UnixMilli(), map[string]bool{}
			for _, t := range s.Recent {
				it.recent[t] = true
			}
		}
		for _, t := range s.Released {
			it.released[t] = true
		}
		// Takes first, as warm.lua: a release of the same order then lowers the count
		// the take raised.
		for t, p := range it.takes {
			if l.now().Sub(p.at) <= domain.PendingReleaseTTL && !slices.Contains(s.Counted, t) && !slices.Contains(s.Recent, t) {
				it.takeLost(p.w, len(s.BucketStock))
			}
		}
		clear(it.takes)
		for _, p := range it.pending {
			fits := !slices.ContainsFunc(p.Units(), func(u domain.Part) bool { return u.Bucket >= len(s.BucketStock) })
			if fits && l.now().Sub(p.at) <= domain.PendingReleaseTTL {
				it.release(p.Order)
			}
		}
		clear(it.pending)
	}
	return nil
}

// writeSale writes a sale state's meta fields, and its version unless it has none.
func writeSale(meta map[string]string, s domain.SaleState, buckets int) {
	if s.Version > 0 {
		meta["version"] = strconv.FormatInt(s.Version, 10)
	}
	meta["state"] = string(s.State)
	meta["start"] = strconv.FormatInt(s.Start.UnixMilli(), 10)
	meta["end"] = strconv.FormatInt(s.End.UnixMilli(), 10)
	meta["limit"] = strconv.Itoa(s.PerUserLimit)
	meta["buckets"] = strconv.Itoa(buckets)
}

// SetSale writes a loaded item's sale state unless it holds this version or a newer
// one (sale.lua).
func (l *Ledger) SetSale(_ context.Context, s domain.SaleState) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(s.ActivityID, s.ItemID)
	if it.meta == nil {
		return false, nil
	}
	if held, _ := strconv.ParseInt(it.meta["version"], 10, 64); s.Version > held {
		writeSale(it.meta, s, max(len(s.BucketStock), 1))
	}
	return true, nil
}

// setMeta sets one field of a loaded item's meta record (setmeta.lua).
func (l *Ledger) setMeta(activityID, itemID int64, field, value string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if it := l.item(activityID, itemID); it.meta != nil {
		it.meta[field] = value
	}
}

// SetState changes the sale state of a loaded item.
func (l *Ledger) SetState(_ context.Context, activityID, itemID int64, st domain.State) error {
	l.setMeta(activityID, itemID, "state", string(st))
	return nil
}

// SetBuckets records a new bucket count in a loaded item's sale state.
func (l *Ledger) SetBuckets(_ context.Context, activityID, itemID int64, n int) error {
	l.setMeta(activityID, itemID, "buckets", strconv.Itoa(n))
	return nil
}

// Adjust adds delta units to a bucket, refusing to go below zero (adjust.lua).
func (l *Ledger) Adjust(_ context.Context, activityID, itemID int64, bucket int, delta int64, epoch string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(activityID, itemID)
	if it.meta == nil || it.meta["epoch"] != epoch {
		return 0, domain.ErrNotLoaded
	}
	if it.stock[bucket]+delta < 0 {
		return 0, domain.Errorf(domain.EConflict, "item %d bucket %d has fewer than %d units left", itemID, bucket, -delta)
	}
	it.stock[bucket] += delta
	it.changes++
	return it.stock[bucket], nil
}

// Epoch names the item's load (warm.lua).
func (l *Ledger) Epoch(_ context.Context, activityID, itemID int64) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if it := l.item(activityID, itemID); it.meta != nil {
		return it.meta["epoch"], nil
	}
	return "", nil
}

// Take removes up to n units from a bucket and returns how many it removed (take.lua).
func (l *Ledger) Take(_ context.Context, activityID, itemID int64, bucket int, n int64, fence int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(activityID, itemID)
	if it.meta == nil {
		return 0, nil
	}
	if !it.fencedOK(fence) {
		return 0, fmt.Errorf("take from item %d bucket %d under fence %d: %w", itemID, bucket, fence, domain.ErrFenced)
	}
	got := min(it.stock[bucket], n)
	if got <= 0 {
		return 0, nil
	}
	it.stock[bucket] -= got
	it.changes++
	return got, nil
}

// Reset sets a bucket counter to want if it still holds was (reset.lua).
func (l *Ledger) Reset(_ context.Context, activityID, itemID int64, bucket int, was, want int64, fence int64, holds int64, changes int64, ended []domain.Order) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(activityID, itemID)
	if it.meta == nil {
		return false, nil
	}
	if !it.fencedOK(fence) {
		return false, fmt.Errorf("reset item %d bucket %d under fence %d: %w", itemID, bucket, fence, domain.ErrFenced)
	}
	maps.DeleteFunc(it.holds, func(_ string, till time.Time) bool { return !l.now().Before(till) })
	if it.stock[bucket] != was || len(it.holds) > 0 || it.held != holds || changes >= 0 && it.changes != changes {
		return false, nil
	}
	it.stock[bucket] = want
	it.changes++
	for _, o := range ended {
		if !it.released[o.Ticket] {
			it.released[o.Ticket] = true
			it.giveBack(o.UserID, int64(o.Quantity))
		}
	}
	return true, nil
}

// HoldResets adds a hold of the item's resets, lapsing after ttl (reset.lua's holds).
func (l *Ledger) HoldResets(_ context.Context, activityID, itemID int64, ttl time.Duration) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(activityID, itemID)
	l.holds++
	hold := strconv.FormatInt(l.holds, 10)
	it.holds[hold] = l.now().Add(ttl)
	it.held++
	return hold, nil
}

// LetResets ends a hold.
func (l *Ledger) LetResets(_ context.Context, activityID, itemID int64, hold string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(activityID, itemID)
	delete(it.holds, hold)
	it.held++
	return nil
}

// fencedOK is fence.lua's check: a token above 0 lower than the highest the item has
// seen is refused; a higher one is remembered.
func (it *ledgerItem) fencedOK(token int64) bool {
	if token <= 0 {
		return true
	}
	seen, _ := strconv.ParseInt(it.meta["fence"], 10, 64)
	if token < seen {
		return false
	}
	it.meta["fence"] = strconv.FormatInt(token, 10)
	return true
}

// errNoBuckets is what Redis answers an MGET of no keys.
var errNoBuckets = errors.New("ERR wrong number of arguments for 'mget' command")

// State reads an item's counters and in-flight tickets.
func (l *Ledger) State(_ context.Context, activityID, itemID int64, buckets int) (domain.ItemState, error) {
	if buckets <= 0 {
		return domain.ItemState{}, fmt.Errorf("read state of item %d: %w", itemID, errNoBuckets)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(activityID, itemID)
	st := domain.ItemState{Loaded: it.meta != nil, BucketStock: make([]int64, buckets), InFlightBy: make([]int64, buckets), Holds: it.held, Changes: it.changes}
	if st.Loaded {
		start, _ := strconv.ParseInt(it.meta["start"], 10, 64)
		end, _ := strconv.ParseInt(it.meta["end"], 10, 64)
		limit, _ := strconv.Atoi(it.meta["limit"])
		st.State, st.Start, st.End, st.PerUserLimit = domain.State(it.meta["state"]), time.UnixMilli(start), time.UnixMilli(end), limit
	}
	for b := range st.BucketStock {
		st.BucketStock[b] = it.stock[b]
	}
	for _, f := range it.inflight {
		st.InFlight += f.qty
		for _, p := range f.parts {
			if p.Bucket < buckets {
				st.InFlightBy[p.Bucket] += int64(p.Quantity)
			}
		}
		st.Tickets++
	}
	return st, nil
}

// InFlight lists an item's in-flight tickets.
func (l *Ledger) InFlight(_ context.Context, activityID, itemID int64) ([]domain.Flight, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fl := l.item(activityID, itemID).inflight
	out := make([]domain.Flight, 0, len(fl))
	for t, f := range fl {
		_, key, _ := strings.Cut(f.idem, ":")
		out = append(out, domain.Flight{Ticket: t, UserID: f.user, Quantity: int(f.qty), Parts: slices.Clone(f.parts), AdmittedAt: time.UnixMilli(f.admittedMS), IdemKey: key})
	}
	return out, nil
}

// Mark records what was done to an in-flight ticket, once.
func (l *Ledger) Mark(_ context.Context, activityID, itemID int64, ticket, what string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(activityID, itemID)
	if it.marks == nil {
		it.marks = map[string]bool{}
	}
	k := ticket + ":" + what
	if it.marks[k] {
		return false, nil
	}
	it.marks[k] = true
	return true, nil
}

// Available sums an item's bucket counters; loaded is false when the item has no meta
// record.
func (l *Ledger) Available(_ context.Context, activityID, itemID int64, buckets int) (n int64, loaded bool, err error) {
	if buckets <= 0 {
		return 0, false, fmt.Errorf("read stock of item %d: %w", itemID, errNoBuckets)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.item(activityID, itemID)
	for b := 0; b < buckets; b++ {
		n += it.stock[b]
	}
	return n, it.meta != nil, nil
}
