// Package ratelimit sheds traffic with token buckets (golang.org/x/time/rate): a
// global bucket of changes (orders, cancels, payments) and one of reads, and buckets
// per user (one for changes, one for reads), per item and per client IP. Per-key
// buckets live in size-bounded LRU maps, so a flood of distinct keys evicts the idle
// ones instead of growing memory. The maps are sharded (internal/shardlru): every
// request looks a bucket up, and one lock for all of them was the limiter's only
// point where requests for different keys waited on one another.
package ratelimit

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/seckill/flashsale/internal/shardlru"
)

// Kind names a limit.
type Kind string

const (
	Global   Kind = "global"    // every change a shopper asks for
	Read     Kind = "read"      // every read: the catalog, a shopper's orders and tickets
	User     Kind = "user"      // one shopper's changes: orders, cancels, payments
	UserRead Kind = "user_read" // one shopper's reads of orders and tickets
	Item     Kind = "item"      // orders of one item
	IP       Kind = "ip"        // anonymous reads from one address
)

// Kinds are every kind of limit.
var Kinds = []Kind{Global, Read, User, UserRead, Item, IP}

// Rule is one token bucket: RPS tokens a second, up to Burst at once. RPS <= 0 turns
// the limit off.
type Rule struct {
	RPS   float64 `json:"rps" yaml:"rps"`
	Burst int     `json:"burst" yaml:"burst"`
}

// Limits are the rules of every kind.
type Limits struct {
	Global   Rule `json:"global" yaml:"global"`
	Read     Rule `json:"read" yaml:"read"`
	User     Rule `json:"user" yaml:"user"`
	UserRead Rule `json:"user_read" yaml:"user_read"`
	Item     Rule `json:"item" yaml:"item"`
	IP       Rule `json:"ip" yaml:"ip"`
}

// Rule is the rule of kind k; nil for a kind there is none of.
func (l *Limits) Rule(k Kind) *Rule {
	switch k {
	case Global:
		return &l.Global
	case Read:
		return &l.Read
	case User:
		return &l.User
	case UserRead:
		return &l.UserRead
	case Item:
		return &l.Item
	case IP:
		return &l.IP
	}
	return nil
}

func (l Limits) rule(k Kind) Rule {
	if r := l.Rule(k); r != nil {
		return *r
	}
	return Rule{}
}

// shared reports whether kind k is one bucket for all (its rate is split over the
// fleet's gateways).
func shared(k Kind) bool { return k == Global || k == Read || k == Item }

// Limiter applies Limits. It is safe for concurrent use.
//
// In a fleet of n gateways the global, read and per-item limits hold for the fleet as
// a whole: each gateway's buckets fill at 1/n of the rule (SetShare). Spread evenly
// over the gateways (a load balancer's round robin) the fleet admits the rule's rate;
// spread unevenly, it admits less, never more. The per-user limits are checked here
// at the rule's full rate (a shopper flooding one gateway is refused at once) and, for
// the fleet, in a shared store (the gateway's SharedLimiter). Per-IP limits are each
// gateway's own.
type Limiter struct {
	mu      sync.Mutex // serialises Set and SetShare (the control path)
	limits  atomic.Pointer[Limits]
	share   atomic.Int64 // the fleet's gateways, at least 1
	global  atomic.Pointer[rate.Limiter]
	read    atomic.Pointer[rate.Limiter]
	perKey  map[Kind]*shardlru.Cache[string, *rate.Limiter] // written only by New
	maxKeys int
}

// New returns a Limiter that keeps at most maxKeys buckets per kind.
func New(l Limits, maxKeys int) *Limiter {
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	lim := &Limiter{perKey: map[Kind]*shardlru.Cache[string, *rate.Limiter]{}, maxKeys: maxKeys}
	lim.share.Store(1)
	for _, k := range []Kind{User, UserRead, Item, IP} {
		lim.perKey[k] = shardlru.New[string, *rate.Limiter](maxKeys)
	}
	lim.Set(l)
	return lim
}

func newBucket(r Rule) *rate.Limiter {
	if r.RPS <= 0 {
		return rate.NewLimiter(rate.Inf, 0)
	}
	return rate.NewLimiter(rate.Limit(r.RPS), max(r.Burst, 1))
}

// Set replaces the limits at run time. Buckets start afresh under the new rules (a
// raised limit takes effect at once, not after the old buckets refill).
func (l *Limiter) Set(n Limits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.set(n)
}

// set installs n; the caller holds mu. Every call stores a new pointer, which the
// per-key buckets made meanwhile are checked against (bucket).
func (l *Limiter) set(n Limits) {
	l.limits.Store(&n)
	l.global.Store(newBucket(l.local(Global, n.Global)))
	l.read.Store(newBucket(l.local(Read, n.Read)))
	for _, c := range l.perKey {
		c.Purge()
	}
}

// SetShare sizes this gateway's global, read and per-item buckets for a fleet of n
// gateways.
func (l *Limiter) SetShare(n int) {
	if n < 1 {
		n = 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Under mu: a Set between reading the limits and writing them back would be
	// undone, and the fleet agent, which applied it, would never apply it again.
	if l.share.Swap(int64(n)) != int64(n) {
		l.set(*l.limits.Load())
	}
}

// Share is the fleet's size the buckets are sized for.
func (l *Limiter) Share() int { return int(l.share.Load()) }

// local is this gateway's part of rule r of kind k.
func (l *Limiter) local(k Kind, r Rule) Rule {
	n := float64(l.share.Load())
	if r.RPS <= 0 || n <= 1 || !shared(k) {
		return r
	}
	return Rule{RPS: r.RPS / n, Burst: max(int(float64(r.Burst)/n), 1)}
}

// Limits returns the limits in force.
func (l *Limiter) Limits() Limits { return *l.limits.Load() }

// Allow takes a token of kind's bucket for key (key is ignored for Global and Read).
// When there is none it returns false and how long until one is due.
func (l *Limiter) Allow(k Kind, key string) (bool, time.Duration) {
	lim := l.limits.Load()
	r := lim.rule(k)
	if r.RPS <= 0 {
		return true, 0
	}
	var b *rate.Limiter
	switch k {
	case Global:
		b = l.global.Load()
	case Read:
		b = l.read.Load()
	default:
		b = l.bucket(k, key, lim, r)
	}
	now := time.Now()
	res := b.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// bucket is key's bucket of kind k, made under rule r of lim if there is none; two
// requests making the first bucket of a key at once share the one kept. A bucket made
// under limits that were replaced meanwhile (after Set purged the buckets) is not
// kept: the next request makes one under the new rule.
func (l *Limiter) bucket(k Kind, key string, lim *Limits, r Rule) *rate.Limiter {
	c := l.perKey[k]
	if b, ok := c.Get(key); ok {
		return b
	}
	b := c.ContainsOrAdd(key, newBucket(l.local(k, r)))
	if l.limits.Load() != lim {
		c.Remove(key)
	}
	return b
}

// Len is how many buckets of a kind are held.
func (l *Limiter) Len(k Kind) int {
	if c, ok := l.perKey[k]; ok {
		return c.Len()
	}
	return 1
}
