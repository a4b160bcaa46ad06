package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/domain"
)

// The fleet's control state (package control) in MySQL; see migration 0004.

var _ control.Store = (*Store)(nil)

// moduleChunk is the piece of a module one row holds: well under the server's
// max_allowed_packet (16 MiB by default) once escaped into a statement.
const moduleChunk = 512 << 10

// specRow is a plugin as plugin_history keeps it.
type specRow struct {
	Name        string `json:"name"`
	Version     int64  `json:"version"`
	SHA256      string `json:"sha256"`
	Order       int    `json:"order"`
	Config      string `json:"config,omitempty"` // as sent: the guest gets these bytes
	FailPolicy  string `json:"fail_policy"`
	TimeoutMS   int64  `json:"timeout_ms"`
	MemoryPages uint32 `json:"memory_pages"`
	PoolSize    int    `json:"pool_size"`
	SizeBytes   int    `json:"size_bytes"`
}

func (r specRow) plugin(by string, at time.Time) control.Plugin {
	var cfg json.RawMessage
	if r.Config != "" {
		cfg = json.RawMessage(r.Config)
	}
	return control.Plugin{Name: r.Name, Version: r.Version, SHA256: r.SHA256, Order: r.Order, Config: cfg, FailPolicy: r.FailPolicy,
		TimeoutMS: r.TimeoutMS, MemoryPages: r.MemoryPages, PoolSize: r.PoolSize, SizeBytes: r.SizeBytes, UpdatedBy: by, UpdatedAt: at}
}

func rowOf(p control.Plugin) specRow {
	return specRow{Name: p.Name, Version: p.Version, SHA256: p.SHA256, Order: p.Order, Config: string(p.Config), FailPolicy: p.FailPolicy,
		TimeoutMS: p.TimeoutMS, MemoryPages: p.MemoryPages, PoolSize: p.PoolSize, SizeBytes: p.SizeBytes}
}

const pluginCols = `name, version, sha256, position, config, fail_policy, timeout_ms, memory_pages, pool_size, size_bytes, updated_by, updated_at`

func scanPlugin(sc interface{ Scan(...any) error }) (control.Plugin, error) {
	var p control.Plugin
	var cfg sql.NullString
	err := sc.Scan(&p.Name, &p.Version, &p.SHA256, &p.Order, &cfg, &p.FailPolicy, &p.TimeoutMS, &p.MemoryPages, &p.PoolSize, &p.SizeBytes, &p.UpdatedBy, &p.UpdatedAt)
	if cfg.Valid && cfg.String != "" {
		p.Config = json.RawMessage(cfg.String)
	}
	return p, err
}

// Chain returns the plugins in chain order and the chain's version.
func (s *Store) Chain(ctx context.Context) (int64, []control.Plugin, error) {
	version, err := controlVersion(ctx, s.db, control.KindPlugins)
	if err != nil {
		return 0, nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+pluginCols+` FROM plugins ORDER BY position, name`)
	if err != nil {
		return 0, nil, fmt.Errorf("read plugins: %w", err)
	}
	defer rows.Close()
	var out []control.Plugin
	for rows.Next() {
		p, err := scanPlugin(rows)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, p)
	}
	return version, out, rows.Err()
}

// controlVersion is a kind's change count (0 before any change).
func controlVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, kind string) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, `SELECT version FROM control_versions WHERE kind = ?`, kind).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s version: %w", kind, err)
	}
	return v, nil
}

// bumpControl counts a change of kind within tx (the row's lock serializes changes of
// the kind) and returns the new count.
func bumpControl(ctx context.Context, tx *sql.Tx, kind string, body []byte, who string) (int64, error) {
	var b any
	if body != nil {
		b = string(body)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO control_versions (kind, version, body, updated_by, updated_at) VALUES (?, 1, ?, ?, CURRENT_TIMESTAMP(3))
		ON DUPLICATE KEY UPDATE version = version + 1, body = COALESCE(VALUES(body), body), updated_by = VALUES(updated_by), updated_at = VALUES(updated_at)`, kind, b, who)
	if err != nil {
		return 0, fmt.Errorf("count a %s change: %w", kind, err)
	}
	return controlVersion(ctx, tx, kind)
}

// Module returns a stored module by its SHA-256.
func (s *Store) Module(ctx context.Context, sum string) ([]byte, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM plugin_module_chunks WHERE sha256 = ? ORDER BY seq`, sum)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", sum, err)
	}
	defer rows.Close()
	var out []byte
	n := 0
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b...)
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, domain.Errorf(domain.ENotFound, "no module %s", sum)
	}
	return out, nil
}

// PutPlugin stores a plugin and, when new, its module, as one change.
func (s *Store) PutPlugin(ctx context.Context, p control.Plugin, module []byte) (control.Plugin, error) {
	var out control.Plugin
	err := s.inTx(ctx, "put plugin "+p.Name, func(tx *sql.Tx) error {
		if _, err := bumpControl(ctx, tx, control.KindPlugins, nil, p.UpdatedBy); err != nil {
			return err
		}
		if module == nil {
			cur, err := scanPlugin(tx.QueryRowContext(ctx, `SELECT `+pluginCols+` FROM plugins WHERE name = ?`, p.Name))
			if errors.Is(err, sql.ErrNoRows) {
				return domain.Errorf(domain.ENotFound, "plugin %s is not loaded: send its module", p.Name)
			}
			if err != nil {
				return fmt.Errorf("read plugin %s: %w", p.Name, err)
			}
			if p.SHA256 != "" && p.SHA256 != cur.SHA256 {
				return domain.Errorf(domain.EConflict, "plugin %s's module changed while this change was checked: send it again", p.Name)
			}
			p.SHA256, p.SizeBytes = cur.SHA256, cur.SizeBytes
		} else {
			sum := sha256.Sum256(module)
			p.SHA256, p.SizeBytes = hex.EncodeToString(sum[:]), len(module)
			if err := storeModule(ctx, tx, p.SHA256, module); err != nil {
				return err
			}
		}
		var err error
		out, err = putPlugin(ctx, tx, p, control.ActionPut)
		return err
	})
	return out, err
}

// storeModule keeps a module's pieces unless they are kept already.
func storeModule(ctx context.Context, tx *sql.Tx, sum string, module []byte) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM plugin_module_chunks WHERE sha256 = ?`, sum).Scan(&n); err != nil {
		return fmt.Errorf("look for module %s: %w", sum, err)
	}
	if n > 0 {
		return nil
	}
	for seq, off := 0, 0; off < len(module); seq, off = seq+1, off+moduleChunk {
		piece := module[off:min(off+moduleChunk, len(module))]
		if _, err := tx.ExecContext(ctx, `INSERT INTO plugin_module_chunks (sha256, seq, data) VALUES (?, ?, ?)`, sum, seq, piece); err != nil {
			return fmt.Errorf("store module %s: %w", sum, err)
		}
	}
	return nil
}

// putPlugin writes p as the name's next version, with its history entry.
func putPlugin(ctx context.Context, tx *sql.Tx, p control.Plugin, action string) (control.Plugin, error) {
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM plugin_history WHERE name = ?`, p.Name).Scan(&last); err != nil {
		return p, fmt.Errorf("read plugin %s's versions: %w", p.Name, err)
	}
	p.Version = last + 1
	p.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	var cfg any
	if len(p.Config) > 0 {
		cfg = string(p.Config)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO plugins (`+pluginCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE version = VALUES(version), sha256 = VALUES(sha256), position = VALUES(position), config = VALUES(config),
		fail_policy = VALUES(fail_policy), timeout_ms = VALUES(timeout_ms), memory_pages = VALUES(memory_pages), pool_size = VALUES(pool_size),
		size_bytes = VALUES(size_bytes), updated_by = VALUES(updated_by), updated_at = VALUES(updated_at)`,
		p.Name, p.Version, p.SHA256, p.Order, cfg, p.FailPolicy, p.TimeoutMS, p.MemoryPages, p.PoolSize, p.SizeBytes, p.UpdatedBy, p.UpdatedAt); err != nil {
		return p, fmt.Errorf("store plugin %s: %w", p.Name, err)
	}
	return p, addHistory(ctx, tx, p, action)
}

func addHistory(ctx context.Context, tx *sql.Tx, p control.Plugin, action string) error {
	spec, err := json.Marshal(rowOf(p))
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO plugin_history (name, version, action, spec, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		p.Name, p.Version, action, string(spec), p.UpdatedBy, p.UpdatedAt); err != nil {
		return fmt.Errorf("record plugin %s's change: %w", p.Name, err)
	}
	return nil
}

// DeletePlugin removes a plugin, as one change.
func (s *Store) DeletePlugin(ctx context.Context, name, who string) error {
	return s.inTx(ctx, "delete plugin "+name, func(tx *sql.Tx) error {
		if _, err := bumpControl(ctx, tx, control.KindPlugins, nil, who); err != nil {
			return err
		}
		cur, err := scanPlugin(tx.QueryRowContext(ctx, `SELECT `+pluginCols+` FROM plugins WHERE name = ? FOR UPDATE`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.ENotFound, "plugin %s is not loaded", name)
		}
		if err != nil {
			return fmt.Errorf("read plugin %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM plugins WHERE name = ?`, name); err != nil {
			return fmt.Errorf("delete plugin %s: %w", name, err)
		}
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM plugin_history WHERE name = ?`, name).Scan(&last); err != nil {
			return err
		}
		cur.Version, cur.UpdatedBy, cur.UpdatedAt = last+1, who, time.Now().UTC().Truncate(time.Millisecond)
		return addHistory(ctx, tx, cur, control.ActionDelete)
	})
}

// RollbackPlugin puts back the version before the plugin's current one.
func (s *Store) RollbackPlugin(ctx context.Context, name, who string) (control.Plugin, error) {
	var out control.Plugin
	err := s.inTx(ctx, "roll back plugin "+name, func(tx *sql.Tx) error {
		if _, err := bumpControl(ctx, tx, control.KindPlugins, nil, who); err != nil {
			return err
		}
		changes, err := history(ctx, tx, name, 1000)
		if err != nil {
			return err
		}
		target, ok := control.Previous(changes)
		if !ok {
			return domain.Errorf(domain.ENotFound, "plugin %s has no earlier version", name)
		}
		target.UpdatedBy = who
		out, err = putPlugin(ctx, tx, target, control.ActionRollback)
		return err
	})
	return out, err
}

// History returns a plugin's last changes, newest first.
func (s *Store) History(ctx context.Context, name string, limit int) ([]control.Change, error) {
	return history(ctx, s.db, name, limit)
}

func history(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, name string, limit int) ([]control.Change, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, action, spec, updated_by, updated_at FROM plugin_history WHERE name = ? ORDER BY id DESC LIMIT ?`, name, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("read plugin %s's history: %w", name, err)
	}
	defer rows.Close()
	var out []control.Change
	for rows.Next() {
		var c control.Change
		var spec, by string
		var at time.Time
		if err := rows.Scan(&c.ID, &c.Action, &spec, &by, &at); err != nil {
			return nil, err
		}
		var r specRow
		if err := json.Unmarshal([]byte(spec), &r); err != nil {
			return nil, fmt.Errorf("plugin %s's history entry %d: %w", name, c.ID, err)
		}
		c.Plugin = r.plugin(by, at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Limits returns the stored limits.
func (s *Store) Limits(ctx context.Context) (control.Limits, error) {
	var l control.Limits
	var body sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT version, body, updated_by, updated_at FROM control_versions WHERE kind = ?`, control.KindLimits).
		Scan(&l.Version, &body, &l.UpdatedBy, &l.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return control.Limits{}, nil
	}
	if err != nil {
		return l, fmt.Errorf("read limits: %w", err)
	}
	if body.Valid {
		l.Body = json.RawMessage(body.String)
	}
	return l, nil
}

// PutLimits stores new limits and bumps their version (with ifVersion at least 0,
// only from that version).
func (s *Store) PutLimits(ctx context.Context, body json.RawMessage, who string, ifVersion int64) (control.Limits, error) {
	err := s.inTx(ctx, "put limits", func(tx *sql.Tx) error {
		if ifVersion >= 0 {
			var v int64
			err := tx.QueryRowContext(ctx, `SELECT version FROM control_versions WHERE kind = ? FOR UPDATE`, control.KindLimits).Scan(&v)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read limits version: %w", err)
			}
			if v != ifVersion {
				return control.ErrLimitsMoved(v, ifVersion)
			}
			if v == 0 {
				// No row to lock (READ COMMITTED takes no gap lock): the first store
				// inserts it, and one made meanwhile meets the key.
				_, err := tx.ExecContext(ctx, `INSERT INTO control_versions (kind, version, body, updated_by, updated_at)
					VALUES (?, 1, ?, ?, CURRENT_TIMESTAMP(3))`, control.KindLimits, string(body), who)
				if isDuplicate(err) {
					return control.ErrLimitsMoved(1, 0)
				}
				if err != nil {
					return fmt.Errorf("store limits: %w", err)
				}
				return nil
			}
		}
		_, err := bumpControl(ctx, tx, control.KindLimits, body, who)
		return err
	})
	if err != nil {
		return control.Limits{}, err
	}
	return s.Limits(ctx)
}
