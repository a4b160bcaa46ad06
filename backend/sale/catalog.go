package sale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/seckill/flashsale/backend/domain"
)

// activityReader is what the read path needs of the catalog.
type activityReader interface {
	Activity(ctx context.Context, id int64) (*domain.Activity, error)
}

// CatalogConfig tunes the read path.
type CatalogConfig struct {
	LocalTTL  time.Duration // in-process copies; short, since other replicas change things
	SharedTTL time.Duration // Redis copies; jittered by up to a fifth
	NullTTL   time.Duration // how long an unknown id is remembered as unknown
	LockTTL   time.Duration // how long a rebuild may hold its lock
}

func (c *CatalogConfig) defaults() {
	if c.LocalTTL <= 0 {
		c.LocalTTL = 2 * time.Second
	}
	if c.SharedTTL <= 0 {
		c.SharedTTL = 10 * time.Minute
	}
	if c.NullTTL <= 0 {
		c.NullTTL = 30 * time.Second
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 3 * time.Second
	}
}

// Catalog is the read path of activities: a local cache, then Redis, then MySQL.
//   - avalanche: shared TTLs carry jitter so keys written together expire apart;
//   - penetration: unknown ids are cached as null objects, briefly;
//   - breakdown: one rebuild per key at a time, in-process (singleflight) and across
//     replicas (a Redis lock whose holder writes only while it still holds it).
//
// Each cached copy carries the activity's version; a copy older than one seen before
// is not taken, and the shared cache never replaces a newer version with an older
// one (a slow rebuild cannot undo an operator's change). The local cache is bounded
// by LRU, so ids a client makes up cannot flush it.
type Catalog struct {
	store activityReader
	cache domain.Cache
	cfg   CatalogConfig
	log   *slog.Logger

	sf    singleflight.Group
	local *lru.Cache[int64, localEntry]

	loads atomic.Int64 // reads that reached the store
}

type localEntry struct {
	a       *domain.Activity // nil: the id is unknown
	marker  bool             // no copy: another process announced version; read the shared one
	version int64
	loaded  time.Time
	expires time.Time
}

// recheckAfter is how old a local copy must be before a refusal it would cause is
// checked against the shared copy.
const recheckAfter = 50 * time.Millisecond

// cached is the shared cache's record: an activity, or null for an unknown id.
type cached struct {
	Version  int64            `json:"v"`
	Activity *domain.Activity `json:"a"`
}

// NewCatalog returns a Catalog.
func NewCatalog(store activityReader, cache domain.Cache, cfg CatalogConfig, log *slog.Logger) *Catalog {
	cfg.defaults()
	local, err := lru.New[int64, localEntry](100_000)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &Catalog{store: store, cache: cache, cfg: cfg, log: log, local: local}
}

// StoreLoads is how many reads reached the store.
func (c *Catalog) StoreLoads() int64 { return c.loads.Load() }

func catalogKey(id int64) string { return "sk:{cat:a:" + strconv.FormatInt(id, 10) + "}" }

// Activity returns a published or unpublished activity; not_found for unknown ids.
// The returned value is shared: callers must not change it.
func (c *Catalog) Activity(ctx context.Context, id int64) (*domain.Activity, error) {
	e, ok := c.local.Get(id)
	if ok && !e.marker && time.Now().Before(e.expires) {
		return found(id, e.a)
	}
	return c.fromShared(ctx, id)
}

// Recheck returns the shared copy of an activity. A caller about to refuse a request
// on the local copy's word (an unknown id, a sale not yet published) asks this first:
// another backend may have created or published it within the local copy's life, its
// announcement still on the way. An activity that exists is always read again (only
// operators make them, so there are few); an unknown id at most once per
// recheckAfter, so made-up ids cannot turn into a flood of shared reads.
func (c *Catalog) Recheck(ctx context.Context, id int64) (*domain.Activity, error) {
	if e, ok := c.local.Peek(id); ok && !e.marker && e.a == nil && time.Since(e.loaded) < recheckAfter {
		return found(id, e.a)
	}
	return c.fromShared(ctx, id)
}

func (c *Catalog) fromShared(ctx context.Context, id int64) (*domain.Activity, error) {
	v, err, _ := c.sf.Do(strconv.FormatInt(id, 10), func() (any, error) {
		rec, err := c.shared(ctx, id)
		if err != nil {
			return nil, err
		}
		return c.keepLocal(id, rec), nil
	})
	if err != nil {
		return nil, err
	}
	return found(id, v.(*domain.Activity))
}

func found(id int64, a *domain.Activity) (*domain.Activity, error) {
	if a == nil {
		return nil, domain.Errorf(domain.ENotFound, "activity %d not found", id)
	}
	return a, nil
}

// keepLocal keeps rec as the local copy unless a newer one is held, and returns the
// copy kept.
func (c *Catalog) keepLocal(id int64, rec cached) *domain.Activity {
	now := time.Now()
	if old, ok := c.local.Peek(id); ok && old.version > rec.Version && now.Before(old.expires) {
		if old.marker {
			return rec.Activity // older than announced: served once, not kept
		}
		return old.a // never step back to an older copy
	}
	c.local.Add(id, localEntry{a: rec.Activity, version: rec.Version, loaded: now, expires: now.Add(c.cfg.LocalTTL)})
	return rec.Activity
}

// shared reads Redis, and on a miss rebuilds the entry once across all replicas.
func (c *Catalog) shared(ctx context.Context, id int64) (cached, error) {
	key := catalogKey(id)
	if rec, ok := c.readShared(ctx, key); ok {
		return rec, nil
	}
	token, locked, err := c.cache.Lock(ctx, key, c.cfg.LockTTL)
	if err != nil {
		c.log.Warn("catalog lock failed; reading the store", "activity", id, "err", err)
		return c.load(ctx, id)
	}
	if !locked {
		// Another replica is rebuilding: wait for its copy, up to the lock's life.
		deadline := time.Now().Add(c.cfg.LockTTL)
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return cached{}, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if rec, ok := c.readShared(ctx, key); ok {
				return rec, nil
			}
		}
		return c.load(ctx, id)
	}
	rec, err := c.load(ctx, id)
	if err != nil {
		if uerr := c.cache.Unlock(ctx, key, token); uerr != nil {
			c.log.Warn("catalog unlock failed", "activity", id, "err", uerr)
		}
		return cached{}, err
	}
	if _, err := c.cache.PutLocked(ctx, key, token, rec.Version, mustJSON(rec), c.ttl(rec)); err != nil {
		c.log.Warn("catalog cache write failed", "activity", id, "err", err)
	}
	return rec, nil
}

func (c *Catalog) readShared(ctx context.Context, key string) (cached, bool) {
	b, ok, err := c.cache.Get(ctx, key)
	if err != nil {
		c.log.Warn("catalog cache read failed", "key", key, "err", err)
		return cached{}, false
	}
	if !ok {
		return cached{}, false
	}
	var rec cached
	if err := json.Unmarshal(b, &rec); err != nil {
		c.log.Warn("catalog cache entry unreadable", "key", key, "err", err)
		return cached{}, false
	}
	return rec, true
}

func (c *Catalog) load(ctx context.Context, id int64) (cached, error) {
	c.loads.Add(1)
	a, err := c.store.Activity(ctx, id)
	if domain.IsCode(err, domain.ENotFound) {
		return cached{}, nil
	}
	if err != nil {
		return cached{}, err
	}
	return cached{Version: a.Version, Activity: a}, nil
}

func (c *Catalog) ttl(rec cached) time.Duration {
	if rec.Activity == nil {
		return c.cfg.NullTTL
	}
	return c.cfg.SharedTTL + rand.N(c.cfg.SharedTTL/5+1)
}

// Forget drops the local copy of an activity older than version (another process
// changed it); the next read takes the shared copy.
func (c *Catalog) Forget(id, version int64) {
	if e, ok := c.local.Peek(id); ok && !e.marker && e.a != nil && e.version >= version {
		return
	}
	// A marker, not a copy: a read in flight that brings an older version back is
	// served but not kept, so the next read takes the shared copy again.
	now := time.Now()
	c.local.Add(id, localEntry{version: version, marker: true, loaded: now, expires: now.Add(c.cfg.LocalTTL)})
}

// Refresh reloads an activity from the store into both caches (publish pre-warms
// this way; a change or offline refreshes it so readers see the new version).
func (c *Catalog) Refresh(ctx context.Context, id int64) (*domain.Activity, error) {
	rec, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	c.local.Remove(id)
	if _, err := c.cache.Put(ctx, catalogKey(id), rec.Version, mustJSON(rec), c.ttl(rec)); err != nil {
		// A stale shared copy would outlive the change: drop it, or fail loudly.
		if derr := c.cache.Del(ctx, catalogKey(id)); derr != nil {
			return nil, fmt.Errorf("refresh activity %d: %w", id, errors.Join(err, derr))
		}
	}
	c.keepLocal(id, rec)
	return found(id, rec.Activity)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are encoded here
	}
	return b
}
