package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// edgeCache answers what it can without the backend: the catalog (activities, items
// and the list of activities on sale, each for a TTL), null objects for ids the
// backend does not know, and sold-out flags.
//
// Ids come from clients, so the caches are bounded by LRU and made-up ids cannot
// push real entries out: what the backend knows and what it does not are kept in
// LRUs apart (lookups), so a flood of random ids evicts only other random ids, and
// each id reaches the backend at most once per TTL at a gateway while it stays in
// its LRU.
//
// Sold-out flags are pushed: the ledger announces an item sold out, and units coming
// back, on Redis pub/sub, and every gateway applies the announcement within
// milliseconds (onStock). A backend's sold_out answer flags the item too. Polling
// stays as the fallback for a lost announcement: while an item is flagged, one request
// per poll interval per gateway asks the backend for its remaining stock.
type edgeCache struct {
	client  seckill.Client
	ttl     time.Duration
	nullTTL time.Duration
	poll    time.Duration
	log     *slog.Logger

	acts  *lookups[*rpc.Activity]
	items *lookups[*rpc.Item]
	list  listCache

	changedMu   sync.Mutex
	changed     map[int64]time.Time // activities announced changed in the last seconds
	lastChanged time.Time           // the last announcement of any

	soldMu  sync.Mutex
	soldOut map[[2]int64]time.Time // (activity, item) -> when flagged
	soldSig signals                // fired when the item is flagged (soldOutSignal)
	freeSig signals                // fired when a slot of the item's line frees (freedSignal)

	// forwarded remembers the idempotency keys (user, key) this gateway sent on, so a
	// client's retry of an order that went through is answered by the backend (with
	// the first answer), not refused here as sold out.
	forwarded *lru.Cache[retryKey, struct{}]
}

// retryKey is a shopper's idempotency key: a struct, so a lookup builds no string.
type retryKey struct {
	user int64
	key  string
}

// Sizes of the edge cache's LRUs: entries the backend knows (activities and items an
// operator made), and null objects (any id a client asks for).
const (
	edgeKnown   = 10_000
	edgeUnknown = 100_000
)

func newEdgeCache(client seckill.Client, ttl, nullTTL, poll time.Duration, log *slog.Logger) *edgeCache {
	fw, err := lru.New[retryKey, struct{}](200_000)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	e := &edgeCache{client: client, ttl: ttl, nullTTL: nullTTL, poll: poll, log: log,
		soldOut: map[[2]int64]time.Time{}, forwarded: fw}
	e.acts = newLookups("activity", ttl, e.activityNullTTL, edgeKnown, edgeUnknown, func(ctx context.Context, id int64) (*rpc.Activity, error) {
		return e.client.GetActivity(ctx, &rpc.IDReq{Id: id})
	})
	e.items = newLookups("item", ttl, e.itemNullTTL, edgeKnown, edgeUnknown, func(ctx context.Context, id int64) (*rpc.Item, error) {
		return e.client.GetItem(ctx, &rpc.IDReq{Id: id})
	})
	pages, err := lru.New[[2]int64, fresh[listPage]](listPages)
	if err != nil {
		panic(err)
	}
	e.list.pages = pages
	return e
}

// retryOf reports whether a request with this user and key is a retry of one this
// gateway forwarded.
func (e *edgeCache) retryOf(user int64, key string) bool {
	return key != "" && e.forwarded.Contains(retryKey{user, key})
}

func (e *edgeCache) remember(user int64, key string) {
	if key != "" {
		e.forwarded.Add(retryKey{user, key}, struct{}{})
	}
}

// activity returns a published activity, from the cache when fresh. Unknown ids give
// not_found, remembered for nullTTL; cached reports an answer without the backend.
func (e *edgeCache) activity(ctx context.Context, id int64) (*rpc.Activity, bool, error) {
	return e.acts.get(ctx, id)
}

// item returns an item of a published activity, as activity does.
func (e *edgeCache) item(ctx context.Context, id int64) (*rpc.Item, bool, error) {
	return e.items.get(ctx, id)
}

// activities returns a page of the activities on sale (after a cursor, of limit
// entries; 0 for the first page and the default size), from the cache when fresh.
func (e *edgeCache) activities(ctx context.Context, after int64, limit int) (listPage, error) {
	return e.list.get(ctx, after, limit, e.ttl, func(ctx context.Context) (listPage, error) {
		resp, err := e.client.ListActivities(ctx, &rpc.ListActivitiesReq{Before: after, Limit: int32(limit)})
		if err != nil {
			return listPage{}, err
		}
		return listPage{Activities: resp.Activities, Next: resp.Next}, nil
	})
}

// knownActivity reports whether id is an activity the backend answered (one whose
// counts are worth keeping), fresh or not.
func (e *edgeCache) knownActivity(id int64) bool { return e.acts.known(id) }

// lookups caches one kind of catalog entry by id: the backend's answers for ttl in
// one LRU, the ids it does not know for nullTTL(id) in another (see edgeCache). One
// call per id is in flight at a time.
type lookups[V any] struct {
	what    string
	ttl     time.Duration
	nullTTL func(id int64) time.Duration
	load    func(context.Context, int64) (V, error)
	found   *lru.Cache[int64, fresh[V]]
	missing *lru.Cache[int64, time.Time] // id -> until when it is unknown
	sf      singleflight.Group
	// gen counts the drops: a load that began before one may carry what the drop
	// was for, so its answer is not cached (nor shared with loads begun after).
	gen atomic.Uint64
}

// fresh is a cached value and until when it is.
type fresh[V any] struct {
	v       V
	expires time.Time
}

// newLookups keeps up to known entries the backend answered and unknown null objects.
func newLookups[V any](what string, ttl time.Duration, nullTTL func(int64) time.Duration, known, unknown int,
	load func(context.Context, int64) (V, error)) *lookups[V] {
	found, err := lru.New[int64, fresh[V]](known)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	missing, err := lru.New[int64, time.Time](unknown)
	if err != nil {
		panic(err)
	}
	return &lookups[V]{what: what, ttl: ttl, nullTTL: nullTTL, load: load, found: found, missing: missing}
}

func (l *lookups[V]) notFound(id int64) error {
	return domain.Errorf(domain.ENotFound, "%s %d not found", l.what, id)
}

// get returns id's value, from the cache when fresh; cached reports that.
func (l *lookups[V]) get(ctx context.Context, id int64) (V, bool, error) {
	var zero V
	now := time.Now()
	if f, ok := l.found.Get(id); ok && now.Before(f.expires) {
		return f.v, true, nil
	}
	if until, ok := l.missing.Get(id); ok && now.Before(until) {
		return zero, true, l.notFound(id)
	}
	gen := l.gen.Load()
	v, err, _ := l.sf.Do(strconv.FormatInt(id, 10)+"/"+strconv.FormatUint(gen, 10), func() (any, error) {
		v, err := l.load(ctx, id)
		err = rpcerr.FromRPC(err)
		if err != nil && !domain.IsCode(err, domain.ENotFound) {
			return nil, err
		}
		if l.gen.Load() != gen { // dropped meanwhile: answer, keep nothing
			return v, err
		}
		if err != nil {
			l.found.Remove(id)
			l.missing.Add(id, time.Now().Add(l.nullTTL(id)))
			return nil, err
		}
		l.missing.Remove(id)
		l.found.Add(id, fresh[V]{v: v, expires: time.Now().Add(l.ttl)})
		return v, nil
	})
	if err != nil {
		return zero, false, err
	}
	return v.(V), false, nil
}

// known reports whether the backend answered id (fresh or not).
func (l *lookups[V]) known(id int64) bool { return l.found.Contains(id) }

// forget drops id, known or not.
func (l *lookups[V]) forget(id int64) {
	l.gen.Add(1)
	l.found.Remove(id)
	l.missing.Remove(id)
}

// forgetIf drops the known entries drop says to.
func (l *lookups[V]) forgetIf(drop func(V) bool) {
	l.gen.Add(1)
	for _, id := range l.found.Keys() {
		if f, ok := l.found.Peek(id); ok && drop(f.v) {
			l.found.Remove(id)
		}
	}
}

// forgetUnknown drops every null object: ids the backend did not know may be
// known now (an operator made or published an activity).
func (l *lookups[V]) forgetUnknown() {
	l.gen.Add(1)
	l.missing.Purge()
}

// listPage is a page of the list of activities on sale, and the next page's cursor.
type listPage struct {
	Activities []*rpc.Activity
	Next       int64
}

// listCache keeps pages of the list of activities on sale for a TTL, by cursor and
// size, in an LRU: a client that makes up cursors reaches the backend once per cursor
// per TTL and pushes out only pages, which the next reader fetches again.
type listCache struct {
	pages *lru.Cache[[2]int64, fresh[listPage]]
	sf    singleflight.Group
}

// listPages is how many pages of the list are kept.
const listPages = 1024

func (c *listCache) get(ctx context.Context, after int64, limit int, ttl time.Duration, load func(context.Context) (listPage, error)) (listPage, error) {
	key := [2]int64{after, int64(limit)}
	if f, ok := c.pages.Get(key); ok && time.Now().Before(f.expires) {
		return f.v, nil
	}
	got, err, _ := c.sf.Do(fmt.Sprint(after, ":", limit), func() (any, error) {
		v, err := load(ctx)
		if err = rpcerr.FromRPC(err); err != nil {
			return nil, err
		}
		c.pages.Add(key, fresh[listPage]{v: v, expires: time.Now().Add(ttl)})
		return v, nil
	})
	if err != nil {
		return listPage{}, err
	}
	return got.(listPage), nil
}

// forget drops every page.
func (c *listCache) forget() { c.pages.Purge() }

// changedWindow is how long after an activity's change announcement a backend may
// still answer from its older copy (its local cache's life, and some).
const changedWindow = 3 * time.Second

// changedNullTTL is how long a null object is kept within changedWindow of a change:
// a backend may still answer from its copy of before the change.
const changedNullTTL = 100 * time.Millisecond

// activityNullTTL is how long the activity id's unknown answer is kept: nullTTL, or briefly
// just after the activity was announced changed (created or published).
func (e *edgeCache) activityNullTTL(id int64) time.Duration {
	e.changedMu.Lock()
	at, ok := e.changed[id]
	e.changedMu.Unlock()
	if ok && time.Since(at) < changedWindow {
		return changedNullTTL
	}
	return e.nullTTL
}

// itemNullTTL is the same for items, whose activity an unknown id does not tell: just
// after any activity changed, briefly.
func (e *edgeCache) itemNullTTL(int64) time.Duration {
	e.changedMu.Lock()
	at := e.lastChanged
	e.changedMu.Unlock()
	if time.Since(at) < changedWindow {
		return changedNullTTL
	}
	return e.nullTTL
}

// dropCatalog drops an activity, its items and the list, and every null object (the
// activity changed, or was made or published, so ids unknown so far may be known now),
// and keeps the null objects of the next moments short.
func (e *edgeCache) dropCatalog(id int64) {
	now := time.Now()
	e.changedMu.Lock()
	if e.changed == nil {
		e.changed = map[int64]time.Time{}
	}
	for k, at := range e.changed { // announcements come from operators: a few entries
		if now.Sub(at) > changedWindow {
			delete(e.changed, k)
		}
	}
	e.changed[id], e.lastChanged = now, now
	e.changedMu.Unlock()
	e.acts.forget(id)
	e.acts.forgetUnknown()
	e.items.forgetIf(func(it *rpc.Item) bool { return it.ActivityId == id })
	e.items.forgetUnknown()
	e.list.forget()
}

// dropActivity drops what the cache holds of an activity another process changed.
func (e *edgeCache) dropActivity(id int64) { e.dropCatalog(id) }

// forget drops what the cache holds of an activity, and its sold-out flags (an
// operator changed it through this gateway).
func (e *edgeCache) forget(id int64) {
	e.dropCatalog(id)
	e.soldMu.Lock()
	for k := range e.soldOut {
		if k[0] == id {
			delete(e.soldOut, k)
		}
	}
	e.soldMu.Unlock()
}

func (e *edgeCache) markSoldOut(activityID, itemID int64) {
	k := [2]int64{activityID, itemID}
	e.soldMu.Lock()
	if _, ok := e.soldOut[k]; !ok {
		e.soldOut[k] = time.Now()
	}
	e.soldSig.fire(k)
	e.soldMu.Unlock()
}

// signals are one-shot wake-ups per item: wait's channel is closed by the next fire.
// The caller holds the lock that guards them.
type signals map[[2]int64]chan struct{}

func (s *signals) wait(k [2]int64) <-chan struct{} {
	ch, ok := (*s)[k]
	if !ok {
		if *s == nil {
			*s = signals{}
		}
		ch = make(chan struct{})
		(*s)[k] = ch
	}
	return ch
}

func (s signals) fire(k [2]int64) {
	if ch, ok := s[k]; ok {
		close(ch)
		delete(s, k)
	}
}

// freedSignal is closed when the next slot of the item's waiting-room line frees
// anywhere in the fleet (the "freed" announcement): the heads of the line held here
// ask again at once.
func (e *edgeCache) freedSignal(activityID, itemID int64) <-chan struct{} {
	e.soldMu.Lock()
	defer e.soldMu.Unlock()
	return e.freeSig.wait([2]int64{activityID, itemID})
}

func (e *edgeCache) markFreed(activityID, itemID int64) {
	e.soldMu.Lock()
	e.freeSig.fire([2]int64{activityID, itemID})
	e.soldMu.Unlock()
}

// closedSignal is the signal of an item flagged already.
var closedSignal = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// soldOutSignal is closed when the item is flagged sold out (at once if it is):
// requests held for the item (a queued shopper's long-poll) wake on it.
func (e *edgeCache) soldOutSignal(activityID, itemID int64) <-chan struct{} {
	k := [2]int64{activityID, itemID}
	e.soldMu.Lock()
	defer e.soldMu.Unlock()
	if _, ok := e.soldOut[k]; ok {
		return closedSignal
	}
	return e.soldSig.wait(k)
}

// clearSoldOut drops an item's flag (units came back).
func (e *edgeCache) clearSoldOut(activityID, itemID int64) {
	e.soldMu.Lock()
	delete(e.soldOut, [2]int64{activityID, itemID})
	e.soldMu.Unlock()
}

// onStock applies the sale's announcements (backend/redis.StockChannel): an item
// sold out is flagged on every gateway at once, and its flag clears when units come
// back; the poll of flagged items stays as the fallback for a lost announcement. An
// activity an operator changed is dropped from the cache, with its items, the list
// and the null objects.
func (e *edgeCache) onStock(_ string, f []string) {
	if len(f) != 3 {
		return
	}
	a, err1 := strconv.ParseInt(f[1], 10, 64)
	i, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	switch f[0] {
	case "soldout":
		e.markSoldOut(a, i)
	case "stock":
		e.clearSoldOut(a, i)
	case "freed":
		e.markFreed(a, i)
	case "activity":
		// An operator changed activity a (i is its version) through some gateway.
		// The copy is dropped now, and again shortly: a read racing the
		// announcement may have fetched the old copy from a backend that had not
		// yet heard of it.
		// Its sold-out flags stay: they follow the stock's own announcements.
		e.dropActivity(a)
		time.AfterFunc(150*time.Millisecond, func() { e.dropActivity(a) })
	}
}

func (e *edgeCache) isSoldOut(activityID, itemID int64) bool {
	e.soldMu.Lock()
	_, ok := e.soldOut[[2]int64{activityID, itemID}]
	e.soldMu.Unlock()
	return ok
}

// run polls the flagged items until ctx ends and clears the flags of those with stock.
func (e *edgeCache) run(ctx context.Context) {
	t := time.NewTicker(e.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.soldMu.Lock()
		flagged := make([][2]int64, 0, len(e.soldOut))
		for k := range e.soldOut {
			flagged = append(flagged, k)
		}
		e.soldMu.Unlock()
		for _, k := range flagged {
			cctx, cancel := context.WithTimeout(ctx, e.poll)
			it, err := e.client.GetItem(cctx, &rpc.IDReq{Id: k[1]})
			cancel()
			err = rpcerr.FromRPC(err)
			if err != nil && !domain.IsCode(err, domain.ENotFound) {
				continue // keep the flag while the backend cannot tell
			}
			if err != nil || it.Remaining != 0 {
				e.soldMu.Lock()
				delete(e.soldOut, k)
				e.soldMu.Unlock()
			}
		}
	}
}
