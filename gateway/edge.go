package gateway

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// edgeCache answers what it can without the backend: activity metadata (with TTLs),
// null objects for ids the backend does not know, and sold-out flags.
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

	sf      singleflight.Group
	mu      sync.RWMutex
	acts    map[int64]edgeEntry
	changed map[int64]time.Time // activities announced changed in the last seconds

	soldMu  sync.Mutex
	soldOut map[[2]int64]time.Time // (activity, item) -> when flagged

	// forwarded remembers the idempotency keys (user:key) this gateway sent on, so a
	// client's retry of an order that went through is answered by the backend (with
	// the first answer), not refused here as sold out.
	forwarded *lru.Cache[string, struct{}]
}

type edgeEntry struct {
	a       *rpc.Activity // nil: unknown id (a null object)
	expires time.Time
}

func newEdgeCache(client seckill.Client, ttl, nullTTL, poll time.Duration, log *slog.Logger) *edgeCache {
	fw, err := lru.New[string, struct{}](200_000)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &edgeCache{client: client, ttl: ttl, nullTTL: nullTTL, poll: poll, log: log,
		acts: map[int64]edgeEntry{}, soldOut: map[[2]int64]time.Time{}, forwarded: fw}
}

// retryOf reports whether a request with this user and key is a retry of one this
// gateway forwarded.
func (e *edgeCache) retryOf(user int64, key string) bool {
	return key != "" && e.forwarded.Contains(strconv.FormatInt(user, 10)+":"+key)
}

func (e *edgeCache) remember(user int64, key string) {
	if key != "" {
		e.forwarded.Add(strconv.FormatInt(user, 10)+":"+key, struct{}{})
	}
}

// activity returns a published activity, from the cache when fresh. Unknown ids give
// not_found, remembered for nullTTL.
func (e *edgeCache) activity(ctx context.Context, id int64) (*rpc.Activity, bool, error) {
	e.mu.RLock()
	en, ok := e.acts[id]
	e.mu.RUnlock()
	if ok && time.Now().Before(en.expires) {
		if en.a == nil {
			return nil, true, domain.Errorf(domain.ENotFound, "activity %d not found", id)
		}
		return en.a, true, nil
	}
	v, err, _ := e.sf.Do(strconv.FormatInt(id, 10), func() (any, error) {
		a, err := e.client.GetActivity(ctx, &rpc.IDReq{Id: id})
		err = rpcerr.FromRPC(err)
		ttl := e.ttl
		switch {
		case domain.IsCode(err, domain.ENotFound):
			a, ttl = nil, e.nullTTL
			e.mu.RLock()
			at, recent := e.changed[id]
			e.mu.RUnlock()
			if recent && time.Since(at) < changedWindow {
				// Just created or published: a backend may still answer from its copy
				// of before the change. Not remembered for long.
				ttl = 100 * time.Millisecond
			}
		case err != nil:
			return nil, err
		}
		e.mu.Lock()
		if len(e.acts) > 100_000 { // ids come from clients: bound the map
			clear(e.acts)
		}
		e.acts[id] = edgeEntry{a: a, expires: time.Now().Add(ttl)}
		e.mu.Unlock()
		return a, nil
	})
	if err != nil {
		return nil, false, err
	}
	if a := v.(*rpc.Activity); a != nil {
		return a, false, nil
	}
	return nil, false, domain.Errorf(domain.ENotFound, "activity %d not found", id)
}

// changedWindow is how long after an activity's change announcement a backend may
// still answer from its older copy (its local cache's life, and some).
const changedWindow = 3 * time.Second

// dropActivity drops the cached copy of an activity another process changed.
func (e *edgeCache) dropActivity(id int64) {
	now := time.Now()
	e.mu.Lock()
	delete(e.acts, id)
	if e.changed == nil {
		e.changed = map[int64]time.Time{}
	}
	for k, at := range e.changed { // announcements come from operators: a few entries
		if now.Sub(at) > changedWindow {
			delete(e.changed, k)
		}
	}
	e.changed[id] = now
	e.mu.Unlock()
}

// forget drops an activity and its sold-out flags (an operator changed it through
// this gateway).
func (e *edgeCache) forget(id int64) {
	e.mu.Lock()
	delete(e.acts, id)
	e.mu.Unlock()
	e.soldMu.Lock()
	for k := range e.soldOut {
		if k[0] == id {
			delete(e.soldOut, k)
		}
	}
	e.soldMu.Unlock()
}

func (e *edgeCache) markSoldOut(activityID, itemID int64) {
	e.soldMu.Lock()
	if _, ok := e.soldOut[[2]int64{activityID, itemID}]; !ok {
		e.soldOut[[2]int64{activityID, itemID}] = time.Now()
	}
	e.soldMu.Unlock()
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
// activity an operator changed is dropped from the cache.
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
