// Package control is the fleet's control state: the admission plugins (with their
// modules, versions and history) and the rate limits that every gateway applies. It
// lives in the order store's database for good (Store, implemented by backend/mysql
// and backend/inmem); every change is announced (Announcer, Redis pub/sub) so gateways
// apply it at once, and gateways also poll, so a missed announcement heals.
package control

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Kinds of control state, as announcements name them.
const (
	KindPlugins = "plugins"
	KindLimits  = "limits"
)

// Plugin is a plugin as the fleet wants it run.
type Plugin struct {
	Name        string
	Version     int64 // counts the plugin's changes
	SHA256      string
	Order       int
	Config      json.RawMessage // nil: none
	FailPolicy  string
	TimeoutMS   int64
	MemoryPages uint32
	PoolSize    int
	SizeBytes   int
	UpdatedBy   string
	UpdatedAt   time.Time
}

// Change is one entry of a plugin's history.
type Change struct {
	ID     int64
	Action string // put, delete, rollback
	Plugin Plugin // as it was after the change (for delete: as it was before)
}

// Limits are the fleet's rate limits: JSON the gateways understand, versioned.
type Limits struct {
	Version   int64
	Body      json.RawMessage // nil: never stored
	UpdatedBy string
	UpdatedAt time.Time
}

// Actions of the history.
const (
	ActionPut      = "put"
	ActionDelete   = "delete"
	ActionRollback = "rollback"
)

// Store keeps the control state for good. Every change bumps the chain's version
// (Chain) and, for plugins, the plugin's version and history, in one transaction.
type Store interface {
	// Chain returns the plugins in chain order (order, then name) and the chain's
	// version (0 before any change).
	Chain(ctx context.Context) (version int64, plugins []Plugin, err error)
	// Module returns a stored module by its SHA-256; not_found when none is.
	Module(ctx context.Context, sha256 string) ([]byte, error)
	// PutPlugin stores p (its version, time and size filled in) with module, or with
	// the module already stored for p.Name when module is nil (not_found when there
	// is none).
	PutPlugin(ctx context.Context, p Plugin, module []byte) (Plugin, error)
	// DeletePlugin removes a plugin; not_found when there is none.
	DeletePlugin(ctx context.Context, name, who string) error
	// RollbackPlugin puts back the plugin as it was before its last change, as a new
	// version; not_found when there is no earlier version.
	RollbackPlugin(ctx context.Context, name, who string) (Plugin, error)
	// History returns a plugin's last changes, newest first.
	History(ctx context.Context, name string, limit int) ([]Change, error)
	// Limits returns the stored limits.
	Limits(ctx context.Context) (Limits, error)
	// PutLimits stores new limits and bumps their version; with ifVersion at least
	// 0, only if the stored version is ifVersion (0: none stored), else EConflict.
	PutLimits(ctx context.Context, body json.RawMessage, who string, ifVersion int64) (Limits, error)
}

// AnyVersion is PutLimits' ifVersion that stores whatever the stored version.
const AnyVersion = -1

// ErrLimitsMoved is PutLimits' error when the stored version is not the one asked.
func ErrLimitsMoved(stored, asked int64) error {
	return domain.Errorf(domain.EConflict, "the limits changed meanwhile (version %d, not %d): read them again", stored, asked)
}

// Announcer tells every gateway that a kind of control state changed.
type Announcer interface {
	Announce(ctx context.Context, kind string, version int64) error
}

// Service stores changes and announces them.
type Service struct {
	store Store
	ann   Announcer // nil: gateways learn by polling
	log   *slog.Logger
}

// NewService returns a Service.
func NewService(store Store, ann Announcer, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: store, ann: ann, log: log}
}

// namePattern is what the plugin host accepts as a name.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// MaxModuleBytes bounds a stored module; MaxConfigBytes a plugin's config (the
// gateways' wasm.MaxConfigBytes), which travels with every read of the chain and its
// history.
const (
	MaxModuleBytes = 16 << 20
	MaxConfigBytes = 1 << 20
)

// announce tells the fleet, logging a failure: the gateways' polling heals it.
func (s *Service) announce(ctx context.Context, kind string, version int64) {
	if s.ann == nil {
		return
	}
	if err := s.ann.Announce(ctx, kind, version); err != nil {
		s.log.Warn("announce a control change; gateways will see it when they poll", "kind", kind, "version", version, "err", err)
	}
}

func (s *Service) announceChain(ctx context.Context) {
	if v, _, err := s.store.Chain(ctx); err == nil {
		s.announce(ctx, KindPlugins, v)
	}
}

// Chain returns the desired chain and its version.
func (s *Service) Chain(ctx context.Context) (int64, []Plugin, error) { return s.store.Chain(ctx) }

// Module returns a stored module.
func (s *Service) Module(ctx context.Context, sha256 string) ([]byte, error) {
	return s.store.Module(ctx, sha256)
}

// PutPlugin stores a plugin (the gateway checked the module compiles) and announces it.
func (s *Service) PutPlugin(ctx context.Context, p Plugin, module []byte) (Plugin, error) {
	if !namePattern.MatchString(p.Name) {
		return Plugin{}, domain.Errorf(domain.EBadRequest, "plugin name %q: want 1-63 of [a-z0-9_-], starting with a letter or digit", p.Name)
	}
	if len(module) > MaxModuleBytes {
		return Plugin{}, domain.Errorf(domain.EBadRequest, "module of %d bytes over the limit of %d", len(module), MaxModuleBytes)
	}
	if len(p.Config) > MaxConfigBytes {
		return Plugin{}, domain.Errorf(domain.EBadRequest, "plugin %s: config of %d bytes over the limit of %d", p.Name, len(p.Config), MaxConfigBytes)
	}
	if len(p.Config) > 0 && !json.Valid(p.Config) {
		return Plugin{}, domain.Errorf(domain.EBadRequest, "plugin %s: config is not valid JSON", p.Name)
	}
	out, err := s.store.PutPlugin(ctx, p, module)
	if err != nil {
		return Plugin{}, err
	}
	s.announceChain(ctx)
	return out, nil
}

// DeletePlugin removes a plugin and announces it.
func (s *Service) DeletePlugin(ctx context.Context, name, who string) error {
	if err := s.store.DeletePlugin(ctx, name, who); err != nil {
		return err
	}
	s.announceChain(ctx)
	return nil
}

// RollbackPlugin puts back a plugin's previous version and announces it.
func (s *Service) RollbackPlugin(ctx context.Context, name, who string) (Plugin, error) {
	p, err := s.store.RollbackPlugin(ctx, name, who)
	if err != nil {
		return Plugin{}, err
	}
	s.announceChain(ctx)
	return p, nil
}

// History returns a plugin's last changes, newest first.
func (s *Service) History(ctx context.Context, name string) ([]Change, error) {
	return s.store.History(ctx, name, 100)
}

// Limits returns the stored limits.
func (s *Service) Limits(ctx context.Context) (Limits, error) { return s.store.Limits(ctx) }

// PutLimits stores the limits (the gateway checked them) and announces them.
func (s *Service) PutLimits(ctx context.Context, body json.RawMessage, who string, ifVersion int64) (Limits, error) {
	if !json.Valid(body) {
		return Limits{}, domain.Errorf(domain.EBadRequest, "limits are not valid JSON")
	}
	l, err := s.store.PutLimits(ctx, body, who, ifVersion)
	if err != nil {
		return Limits{}, err
	}
	s.announce(ctx, KindLimits, l.Version)
	return l, nil
}

// Previous is the plugin a rollback puts back, from a history newest first: the latest
// version before the current one that was loaded (a delete is not a version to go back
// to; after a delete, the version deleted).
func Previous(changes []Change) (Plugin, bool) {
	if len(changes) == 0 {
		return Plugin{}, false
	}
	if changes[0].Action == ActionDelete {
		return changes[0].Plugin, true
	}
	for _, c := range changes[1:] {
		if c.Action != ActionDelete {
			return c.Plugin, true
		}
	}
	return Plugin{}, false
}
