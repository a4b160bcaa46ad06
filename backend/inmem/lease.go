package inmem

import (
	"context"
	"sync"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Leases are domain.Leases in memory, as backend/redis keeps them: one fencing counter
// for every lease, a holder and expiry per lease.
type Leases struct {
	now func() time.Time

	mu     sync.Mutex
	fence  int64
	leases map[string]lease
}

type lease struct {
	holder  string
	token   int64
	expires time.Time
}

var _ domain.Leases = (*Leases)(nil)

// NewLeases returns empty Leases.
func NewLeases(opts ...Option) *Leases {
	return &Leases{now: buildOptions(opts).now, leases: map[string]lease{}}
}

// Hold takes or renews the lease name for holder.
func (l *Leases) Hold(_ context.Context, name, holder string, ttl time.Duration) (int64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	cur, ok := l.leases[name]
	if ok && now.Before(cur.expires) {
		if cur.holder != holder {
			return 0, false, nil
		}
		cur.expires = now.Add(ttl)
		l.leases[name] = cur
		return cur.token, true, nil
	}
	l.fence++
	l.leases[name] = lease{holder: holder, token: l.fence, expires: now.Add(ttl)}
	return l.fence, true, nil
}

// Release gives the lease up if holder has it.
func (l *Leases) Release(_ context.Context, name, holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.leases[name]; ok && cur.holder == holder {
		delete(l.leases, name)
	}
	return nil
}

// Holder returns who holds the lease name and under which token ("" when nobody does).
func (l *Leases) Holder(name string) (string, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.leases[name]; ok && l.now().Before(cur.expires) {
		return cur.holder, cur.token
	}
	return "", 0
}
