package inmem

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/domain"
)

// ControlStore is the fleet's control state in memory, with the semantics of the
// MySQL store (backend/mysql/control.go). It is safe for concurrent use.
type ControlStore struct {
	now func() time.Time

	mu           sync.Mutex
	chainVersion int64
	plugins      map[string]control.Plugin
	modules      map[string][]byte
	history      []control.Change // oldest first
	lastVersion  map[string]int64
	limits       control.Limits
}

var _ control.Store = (*ControlStore)(nil)

// NewControlStore returns an empty ControlStore.
func NewControlStore(opts ...Option) *ControlStore {
	return &ControlStore{now: buildOptions(opts).now, plugins: map[string]control.Plugin{}, modules: map[string][]byte{},
		lastVersion: map[string]int64{}}
}

func clonePlugin(p control.Plugin) control.Plugin {
	p.Config = bytes.Clone(p.Config)
	return p
}

// Chain returns the plugins in chain order and the chain's version.
func (s *ControlStore) Chain(context.Context) (int64, []control.Plugin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []control.Plugin
	for _, p := range s.plugins {
		out = append(out, clonePlugin(p))
	}
	slices.SortFunc(out, func(a, b control.Plugin) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Name, b.Name))
	})
	return s.chainVersion, out, nil
}

// Module returns a stored module.
func (s *ControlStore) Module(_ context.Context, sum string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.modules[sum]
	if !ok {
		return nil, domain.Errorf(domain.ENotFound, "no module %s", sum)
	}
	return bytes.Clone(m), nil
}

// put writes p as the name's next version with its history entry; the caller holds mu.
func (s *ControlStore) put(p control.Plugin, action string) control.Plugin {
	s.lastVersion[p.Name]++
	p.Version = s.lastVersion[p.Name]
	p.UpdatedAt = dbTime(s.now())
	s.plugins[p.Name] = clonePlugin(p)
	s.history = append(s.history, control.Change{ID: int64(len(s.history) + 1), Action: action, Plugin: clonePlugin(p)})
	s.chainVersion++
	return clonePlugin(p)
}

// PutPlugin stores a plugin and, when new, its module.
func (s *ControlStore) PutPlugin(_ context.Context, p control.Plugin, module []byte) (control.Plugin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if module == nil {
		cur, ok := s.plugins[p.Name]
		if !ok {
			return control.Plugin{}, domain.Errorf(domain.ENotFound, "plugin %s is not loaded: send its module", p.Name)
		}
		if p.SHA256 != "" && p.SHA256 != cur.SHA256 {
			return control.Plugin{}, domain.Errorf(domain.EConflict, "plugin %s's module changed while this change was checked: send it again", p.Name)
		}
		p.SHA256, p.SizeBytes = cur.SHA256, cur.SizeBytes
	} else {
		sum := sha256.Sum256(module)
		p.SHA256, p.SizeBytes = hex.EncodeToString(sum[:]), len(module)
		if _, ok := s.modules[p.SHA256]; !ok {
			s.modules[p.SHA256] = bytes.Clone(module)
		}
	}
	return s.put(p, control.ActionPut), nil
}

// DeletePlugin removes a plugin.
func (s *ControlStore) DeletePlugin(_ context.Context, name, who string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.plugins[name]
	if !ok {
		return domain.Errorf(domain.ENotFound, "plugin %s is not loaded", name)
	}
	delete(s.plugins, name)
	s.lastVersion[name]++
	cur.Version, cur.UpdatedBy, cur.UpdatedAt = s.lastVersion[name], who, dbTime(s.now())
	s.history = append(s.history, control.Change{ID: int64(len(s.history) + 1), Action: control.ActionDelete, Plugin: cur})
	s.chainVersion++
	return nil
}

// RollbackPlugin puts back the version before the plugin's current one.
func (s *ControlStore) RollbackPlugin(_ context.Context, name, who string) (control.Plugin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	target, ok := control.Previous(s.historyOf(name, len(s.history)))
	if !ok {
		return control.Plugin{}, domain.Errorf(domain.ENotFound, "plugin %s has no earlier version", name)
	}
	target.UpdatedBy = who
	return s.put(target, control.ActionRollback), nil
}

// historyOf is a plugin's last changes, newest first; the caller holds mu.
func (s *ControlStore) historyOf(name string, limit int) []control.Change {
	var out []control.Change
	for i := len(s.history) - 1; i >= 0 && len(out) < limit; i-- {
		if c := s.history[i]; c.Plugin.Name == name {
			c.Plugin = clonePlugin(c.Plugin)
			out = append(out, c)
		}
	}
	return out
}

// History returns a plugin's last changes, newest first.
func (s *ControlStore) History(_ context.Context, name string, limit int) ([]control.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.historyOf(name, max(limit, 1)), nil
}

// Limits returns the stored limits.
func (s *ControlStore) Limits(context.Context) (control.Limits, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limits
	l.Body = bytes.Clone(l.Body)
	return l, nil
}

// PutLimits stores new limits and bumps their version.
func (s *ControlStore) PutLimits(_ context.Context, body json.RawMessage, who string, ifVersion int64) (control.Limits, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ifVersion >= 0 && s.limits.Version != ifVersion {
		return control.Limits{}, control.ErrLimitsMoved(s.limits.Version, ifVersion)
	}
	s.limits = control.Limits{Version: s.limits.Version + 1, Body: bytes.Clone(body), UpdatedBy: who, UpdatedAt: dbTime(s.now())}
	l := s.limits
	l.Body = bytes.Clone(l.Body)
	return l, nil
}
