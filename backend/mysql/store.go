// Package mysql stores the catalog, stock rows and orders in MySQL (MariaDB here):
// versioned schema migrations, the optimistic stock writes, and order queries. It is
// the last word on stock: every order is written with its buyer's units and the
// versioned update of its stock rows in one transaction.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/seckill/flashsale/backend/domain"
)

// Store is the MySQL side of the platform: the catalog and the order store. It is
// safe for concurrent use.
type Store struct {
	db *sql.DB
	// MaxAttempts bounds the optimistic retries of one stock update.
	MaxAttempts int

	retries   atomic.Int64
	conflicts atomic.Int64
	// idStep is what autoIncStep found: 0 not asked yet, -1 read ids back.
	idStep atomic.Int64
}

var (
	_ domain.Catalog    = (*Store)(nil)
	_ domain.OrderStore = (*Store)(nil)
)

// NewStore returns a Store on db.
func NewStore(db *sql.DB) *Store { return &Store{db: db, MaxAttempts: 20} }

// DB returns the underlying pool.
func (s *Store) DB() *sql.DB { return s.db }

// Retries is how many optimistic stock updates lost a race and were tried again.
func (s *Store) Retries() int64 { return s.retries.Load() }

// refusedForGood reports whether MySQL refused the connection for a reason no wait
// changes: access denied (1044, 1045, 1698) or an unknown database (1049). Others
// (shutting down, too many connections, refused dials) pass with a restart.
func refusedForGood(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1044 || me.Number == 1045 || me.Number == 1049 || me.Number == 1698)
}

// OpenWait is how long Open waits for MySQL to answer.
var OpenWait = 30 * time.Second

// Open opens a pool on dsn (go-sql-driver/mysql syntax) and checks it answers.
func Open(ctx context.Context, dsn string, maxConns int) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse mysql dsn: %w", err)
	}
	cfg.ParseTime = true
	// Arguments are escaped into the statement by the driver: one round trip a
	// statement instead of three (prepare, execute, close) for every query with
	// arguments. Safe with the utf8mb4 connection charset the driver uses.
	cfg.InterpolateParams = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql connector: %w", err)
	}
	db := sql.OpenDB(conn)
	if maxConns <= 0 {
		maxConns = 32
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxLifetime(30 * time.Minute)
	// A MySQL restarting (refused, reset) is waited for, as Redis is: a process that
	// exits then needs someone to start it again. MySQL's own refusal (a wrong
	// password, an unknown database) is not.
	deadline := time.Now().Add(OpenWait)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return db, nil
		}
		if refusedForGood(err) || time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			db.Close()
			return nil, fmt.Errorf("ping mysql at %s (for %v): %w", cfg.Addr, OpenWait, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// duplicateOf reports whether err is a duplicate entry on the unique key named key.
func duplicateOf(err error, key string) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062 && strings.Contains(me.Message, key)
}

// mayHaveRun reports whether a statement that failed with err may still have run: the
// server refused it (a MySQL error: read-only, a lock wait, a deadlock) or the
// driver never sent it (driver.ErrBadConn) say no; anything else (the connection
// broke while the answer was awaited, the context ended meanwhile) may hide a change
// the server made.
func mayHaveRun(err error) bool {
	var me *mysql.MySQLError
	var oe *net.OpError
	dial := errors.As(err, &oe) && oe.Op == "dial"
	return err != nil && !errors.As(err, &me) && !errors.Is(err, driver.ErrBadConn) && !dial
}

// execOnce runs one statement of its own (committed as it runs) and marks a failure
// after which it may have run with errUnknownOutcome. A failure to get a connection
// (MySQL unreachable, the pool's wait ended) sent nothing and is not so marked, nor is
// a connection found dead before the statement was written (tried again, twice).
func (s *Store) execOnce(ctx context.Context, query string, args ...any) (sql.Result, error) {
	for try := 0; ; try++ {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		res, err := conn.ExecContext(ctx, query, args...)
		conn.Close()
		switch {
		case errors.Is(err, driver.ErrBadConn) && try < 2:
			continue
		case mayHaveRun(err):
			return nil, fmt.Errorf("%w: %w", errUnknownOutcome, err)
		}
		return res, err
	}
}

// retriable reports whether err is a deadlock or a lock wait timeout: InnoDB rolled
// the transaction back (or the statement), and running it again may well succeed.
func retriable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// inTx runs f in a READ COMMITTED transaction and commits it, running it again (up to
// three times in all) when InnoDB chose it as a deadlock's victim. A failed COMMIT is
// returned wrapped in errUnknownOutcome: the transaction may have committed.
func (s *Store) inTx(ctx context.Context, what string, f func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, what, f)
		if err == nil || errors.Is(err, errUnknownOutcome) || !retriable(err) || attempt == 3 || ctx.Err() != nil {
			return err
		}
		s.retries.Add(1)
	}
}

// maxTx bounds a write transaction: when it runs out the transaction is rolled back
// once the statement under way returns (a lock wait ends within MariaDB's
// innodb_lock_wait_timeout, 50 s by default), so an order's created_at, set in its
// transaction, is at most about two minutes before its commit, well under
// domain.RecentWindow (a restore of the item into the ledger relies on it).
const maxTx = time.Minute

func (s *Store) tryTx(ctx context.Context, what string, f func(tx *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, maxTx)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w: %w", what, errUnknownOutcome, err)
	}
	return nil
}

// errUnknownOutcome marks failures after which a write may have taken (a failed
// COMMIT, or a failed look-up of an order a unique key says exists).
var errUnknownOutcome = domain.ErrOutcomeUnknown

// ErrContention means an optimistic update lost its race MaxAttempts times. It is
// transient: try again later.
var ErrContention = errors.New("stock row contention: optimistic update kept losing")

// moveStock adds delta (negative to take) to one stock row with the optimistic,
// versioned update, retried with bounded, jittered backoff when another writer won the
// race. Taking more than is available is the permanent error sold_out.
func (s *Store) moveStock(ctx context.Context, tx *sql.Tx, itemID int64, bucket int, delta int64) error {
	if delta == 0 {
		return nil
	}
	backoff := 500 * time.Microsecond
	for attempt := 1; ; attempt++ {
		var avail, version int64
		err := tx.QueryRowContext(ctx, `SELECT available, version FROM item_stock WHERE item_id = ? AND bucket = ?`, itemID, bucket).Scan(&avail, &version)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.ENotFound, "item %d has no stock bucket %d", itemID, bucket)
		}
		if err != nil {
			return fmt.Errorf("read stock of item %d: %w", itemID, err)
		}
		if avail+delta < 0 {
			return domain.Errorf(domain.ESoldOut, "item %d bucket %d has %d units, not %d", itemID, bucket, avail, -delta)
		}
		res, err := tx.ExecContext(ctx, `UPDATE item_stock SET available = available + ?, version = version + 1
			WHERE item_id = ? AND bucket = ? AND version = ?`, delta, itemID, bucket, version)
		if err != nil {
			return fmt.Errorf("update stock of item %d: %w", itemID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		if attempt >= s.MaxAttempts {
			s.conflicts.Add(1)
			return fmt.Errorf("item %d bucket %d: %w", itemID, bucket, ErrContention)
		}
		s.retries.Add(1)
		d := backoff/2 + rand.N(backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		if backoff < 20*time.Millisecond {
			backoff *= 2
		}
	}
}

// moveParts applies moveStock to each part (sign -1 takes, +1 gives back), lowest
// bucket first, so two writers lock rows in the same order.
func (s *Store) moveParts(ctx context.Context, tx *sql.Tx, itemID int64, parts []domain.Part, sign int64) error {
	sorted := slices.SortedFunc(slices.Values(parts), func(a, b domain.Part) int { return a.Bucket - b.Bucket })
	for _, p := range sorted {
		if err := s.moveStock(ctx, tx, itemID, p.Bucket, sign*int64(p.Quantity)); err != nil {
			return err
		}
	}
	return nil
}
