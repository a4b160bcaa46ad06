package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
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
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ping mysql at %s: %w", cfg.Addr, err)
	}
	return db, nil
}

func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// CreateActivity stores a new activity in state draft with its items and stock rows,
// and fills in the ids.
func (s *Store) CreateActivity(ctx context.Context, a *domain.Activity) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create activity: %w", err)
	}
	defer tx.Rollback()
	a.State, a.Version = domain.StateDraft, 1
	res, err := tx.ExecContext(ctx, `INSERT INTO activities (name, start_at, end_at, state, strategy, per_user_limit, bucket_count, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, 1)`, a.Name, a.Start.UTC(), a.End.UTC(), a.State, a.Strategy, a.PerUserLimit, a.BucketCount)
	if err != nil {
		return fmt.Errorf("insert activity: %w", err)
	}
	if a.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	for i := range a.Items {
		it := &a.Items[i]
		it.ActivityID = a.ID
		res, err := tx.ExecContext(ctx, `INSERT INTO items (activity_id, name, price_cents, total_stock) VALUES (?, ?, ?, ?)`,
			a.ID, it.Name, it.PriceCents, it.TotalStock)
		if err != nil {
			return fmt.Errorf("insert item %q: %w", it.Name, err)
		}
		if it.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		for b, n := range domain.SplitStock(it.TotalStock, a.BucketCount) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO item_stock (item_id, bucket, available) VALUES (?, ?, ?)`, it.ID, b, n); err != nil {
				return fmt.Errorf("insert stock of item %d: %w", it.ID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create activity: %w", err)
	}
	return nil
}

const activityCols = `id, name, start_at, end_at, state, strategy, per_user_limit, bucket_count, version`

func scanActivity(sc interface{ Scan(...any) error }) (*domain.Activity, error) {
	a := &domain.Activity{}
	var state, strategy string
	if err := sc.Scan(&a.ID, &a.Name, &a.Start, &a.End, &state, &strategy, &a.PerUserLimit, &a.BucketCount, &a.Version); err != nil {
		return nil, err
	}
	a.State, a.Strategy = domain.State(state), domain.Strategy(strategy)
	return a, nil
}

// Activity returns an activity with its items; not_found when there is none.
func (s *Store) Activity(ctx context.Context, id int64) (*domain.Activity, error) {
	a, err := scanActivity(s.db.QueryRowContext(ctx, `SELECT `+activityCols+` FROM activities WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Errorf(domain.ENotFound, "activity %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read activity %d: %w", id, err)
	}
	if a.Items, err = s.items(ctx, `activity_id = ?`, id); err != nil {
		return nil, err
	}
	return a, nil
}

func (s *Store) items(ctx context.Context, where string, arg any) ([]domain.Item, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, activity_id, name, price_cents, total_stock FROM items WHERE `+where+` ORDER BY id`, arg)
	if err != nil {
		return nil, fmt.Errorf("read items: %w", err)
	}
	defer rows.Close()
	var out []domain.Item
	for rows.Next() {
		var it domain.Item
		if err := rows.Scan(&it.ID, &it.ActivityID, &it.Name, &it.PriceCents, &it.TotalStock); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// Item returns one item; not_found when there is none.
func (s *Store) Item(ctx context.Context, id int64) (domain.Item, error) {
	its, err := s.items(ctx, `id = ?`, id)
	if err != nil {
		return domain.Item{}, err
	}
	if len(its) == 0 {
		return domain.Item{}, domain.Errorf(domain.ENotFound, "item %d not found", id)
	}
	return its[0], nil
}

// Activities lists activities, newest first; only published ones unless all is set.
func (s *Store) Activities(ctx context.Context, all bool) ([]*domain.Activity, error) {
	q := `SELECT ` + activityCols + ` FROM activities`
	if !all {
		q += ` WHERE state = 'published'`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id DESC LIMIT 500`)
	if err != nil {
		return nil, fmt.Errorf("list activities: %w", err)
	}
	var out []*domain.Activity
	for rows.Next() {
		a, err := scanActivity(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, a := range out {
		if a.Items, err = s.items(ctx, `activity_id = ?`, a.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SetState moves an activity to a new state and bumps its version.
func (s *Store) SetState(ctx context.Context, id int64, st domain.State) error {
	res, err := s.db.ExecContext(ctx, `UPDATE activities SET state = ?, version = version + 1, updated_at = CURRENT_TIMESTAMP(3) WHERE id = ?`, st, id)
	if err != nil {
		return fmt.Errorf("set state of activity %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domain.Errorf(domain.ENotFound, "activity %d not found", id)
	}
	return nil
}

// UpdateActivity applies a change of the activity's own fields and bumps its version.
func (s *Store) UpdateActivity(ctx context.Context, id int64, c domain.ActivityChange) error {
	var sets []string
	var args []any
	if c.Name != nil {
		sets, args = append(sets, "name = ?"), append(args, *c.Name)
	}
	if c.Start != nil {
		sets, args = append(sets, "start_at = ?"), append(args, c.Start.UTC())
	}
	if c.End != nil {
		sets, args = append(sets, "end_at = ?"), append(args, c.End.UTC())
	}
	if c.PerUserLimit != nil {
		sets, args = append(sets, "per_user_limit = ?"), append(args, *c.PerUserLimit)
	}
	sets = append(sets, "version = version + 1", "updated_at = CURRENT_TIMESTAMP(3)")
	res, err := s.db.ExecContext(ctx, `UPDATE activities SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, id)...)
	if err != nil {
		return fmt.Errorf("update activity %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domain.Errorf(domain.ENotFound, "activity %d not found", id)
	}
	return nil
}

// UpdateItem changes an item's name or price.
func (s *Store) UpdateItem(ctx context.Context, id int64, name *string, price *int64) error {
	if name != nil {
		if _, err := s.db.ExecContext(ctx, `UPDATE items SET name = ? WHERE id = ?`, *name, id); err != nil {
			return fmt.Errorf("update item %d: %w", id, err)
		}
	}
	if price != nil {
		if _, err := s.db.ExecContext(ctx, `UPDATE items SET price_cents = ? WHERE id = ?`, *price, id); err != nil {
			return fmt.Errorf("update item %d: %w", id, err)
		}
	}
	return nil
}

// Stock returns the stock rows of an item, by bucket.
func (s *Store) Stock(ctx context.Context, itemID int64) ([]domain.StockRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT bucket, available, version FROM item_stock WHERE item_id = ? ORDER BY bucket`, itemID)
	if err != nil {
		return nil, fmt.Errorf("read stock of item %d: %w", itemID, err)
	}
	defer rows.Close()
	var out []domain.StockRow
	for rows.Next() {
		var r domain.StockRow
		if err := rows.Scan(&r.Bucket, &r.Available, &r.Version); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Buyers returns the units each user holds of an item.
func (s *Store) Buyers(ctx context.Context, itemID int64) (map[int64]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, units FROM purchases WHERE item_id = ? AND units > 0`, itemID)
	if err != nil {
		return nil, fmt.Errorf("read buyers of item %d: %w", itemID, err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var u, n int64
		if err := rows.Scan(&u, &n); err != nil {
			return nil, err
		}
		out[u] = n
	}
	return out, rows.Err()
}

// AddStock changes an item's total stock by delta, applied to one bucket's available
// units with the same versioned update as orders; it refuses to take more than is
// available.
func (s *Store) AddStock(ctx context.Context, itemID int64, bucket int, delta int64) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("add stock: %w", err)
	}
	defer tx.Rollback()
	if err := s.moveStock(ctx, tx, itemID, bucket, delta); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE items SET total_stock = total_stock + ? WHERE id = ?`, delta, itemID); err != nil {
		return fmt.Errorf("update total stock of item %d: %w", itemID, err)
	}
	return tx.Commit()
}

// ErrContention means an optimistic update lost its race MaxAttempts times. It is
// transient: try again later.
var ErrContention = errors.New("stock row contention: optimistic update kept losing")

// moveStock adds delta (negative to take) to one stock row with the optimistic,
// versioned update, retried with bounded, jittered backoff when another writer won the
// race. Taking more than is available is the permanent error sold_out.
func (s *Store) moveStock(ctx context.Context, tx *sql.Tx, itemID int64, bucket int, delta int64) error {
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

// WriteOrder writes one admitted request in one transaction: the order row (unique by
// ticket), the user's purchase units (checked against limit), and the versioned update
// of the stock row. A redelivered request finds its order and writes nothing. A
// refusal that retrying cannot change (sold_out in MySQL, limit_exceeded, not_found)
// is a *domain.Error; any other error is transient.
func (s *Store) WriteOrder(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	w, err := s.writeOrder(ctx, r, limit)
	var de *domain.Error
	if err != nil && !errors.As(err, &de) && !errors.Is(err, errUnknownOutcome) {
		err = domain.NotCommitted(err)
	}
	return w, err
}

// errUnknownOutcome marks failures after which the order may exist (a failed COMMIT, or
// a failed look-up of an order a unique key says exists).
var errUnknownOutcome = errors.New("outcome unknown")

func (s *Store) writeOrder(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return domain.Written{}, fmt.Errorf("write order %s: %w", r.Ticket, err)
	}
	defer tx.Rollback()
	o := domain.Order{Ticket: r.Ticket, UserID: r.UserID, ActivityID: r.ActivityID, ItemID: r.ItemID, Bucket: r.Bucket,
		Quantity: r.Quantity, AmountCents: r.AmountCents, Status: domain.OrderCreated, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	res, err := tx.ExecContext(ctx, `INSERT INTO orders (ticket, user_id, activity_id, item_id, bucket, quantity, amount_cents, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'created', ?, ?)`, o.Ticket, o.UserID, o.ActivityID, o.ItemID, o.Bucket, o.Quantity, o.AmountCents, o.CreatedAt, o.CreatedAt)
	if isDuplicate(err) {
		tx.Rollback()
		prev, err := s.OrderByTicket(ctx, r.Ticket)
		if err != nil {
			return domain.Written{}, fmt.Errorf("order %s exists: %w: %w", r.Ticket, errUnknownOutcome, err)
		}
		return domain.Written{Order: prev, Duplicate: true}, nil
	}
	if err != nil {
		return domain.Written{}, fmt.Errorf("insert order %s: %w", r.Ticket, err)
	}
	if o.ID, err = res.LastInsertId(); err != nil {
		return domain.Written{}, err
	}
	if err := addPurchase(ctx, tx, r.ItemID, r.UserID, r.Quantity, limit); err != nil {
		return domain.Written{}, err
	}
	if err := s.moveStock(ctx, tx, r.ItemID, r.Bucket, -int64(r.Quantity)); err != nil {
		return domain.Written{}, err
	}
	if err := tx.Commit(); err != nil {
		return domain.Written{}, fmt.Errorf("order %s: %w: %w", r.Ticket, errUnknownOutcome, err)
	}
	return domain.Written{Order: o}, nil
}

// addPurchase adds an order of units to what a user holds of an item and refuses past
// limit.
func addPurchase(ctx context.Context, tx *sql.Tx, itemID, userID int64, units, limit int) error {
	// INSERT first, UPDATE only for a buyer who holds units already: an INSERT ... ON
	// DUPLICATE KEY UPDATE would take next-key locks that make buyers wait on each other.
	_, err := tx.ExecContext(ctx, `INSERT INTO purchases (item_id, user_id, units, orders) VALUES (?, ?, ?, 1)`, itemID, userID, units)
	if isDuplicate(err) {
		_, err = tx.ExecContext(ctx, `UPDATE purchases SET units = units + ?, orders = orders + 1 WHERE item_id = ? AND user_id = ?`, units, itemID, userID)
	}
	if err != nil {
		return fmt.Errorf("record purchase of user %d: %w", userID, err)
	}
	if limit <= 0 {
		return nil
	}
	var held int
	if err := tx.QueryRowContext(ctx, `SELECT units FROM purchases WHERE item_id = ? AND user_id = ?`, itemID, userID).Scan(&held); err != nil {
		return fmt.Errorf("read purchases of user %d: %w", userID, err)
	}
	if held > limit {
		return domain.Errorf(domain.ELimitExceeded, "user %d would hold %d units of item %d, limit %d", userID, held, itemID, limit)
	}
	return nil
}

const orderCols = `id, ticket, user_id, activity_id, item_id, bucket, quantity, amount_cents, status, created_at`

func scanOrder(sc interface{ Scan(...any) error }) (domain.Order, error) {
	var o domain.Order
	var st string
	err := sc.Scan(&o.ID, &o.Ticket, &o.UserID, &o.ActivityID, &o.ItemID, &o.Bucket, &o.Quantity, &o.AmountCents, &st, &o.CreatedAt)
	o.Status = domain.OrderStatus(st)
	return o, err
}

// OrderByTicket returns the order written for a ticket.
func (s *Store) OrderByTicket(ctx context.Context, ticket string) (domain.Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE ticket = ?`, ticket))
	if errors.Is(err, sql.ErrNoRows) {
		return o, domain.Errorf(domain.ENotFound, "no order for ticket %s", ticket)
	}
	if err != nil {
		return o, fmt.Errorf("read order of ticket %s: %w", ticket, err)
	}
	return o, nil
}

// Order returns one order of a user; not_found when it is not theirs.
func (s *Store) Order(ctx context.Context, userID, id int64) (domain.Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE id = ? AND user_id = ?`, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return o, domain.Errorf(domain.ENotFound, "order %d not found", id)
	}
	if err != nil {
		return o, fmt.Errorf("read order %d: %w", id, err)
	}
	return o, nil
}

// Orders lists a user's orders, newest first.
func (s *Store) Orders(ctx context.Context, userID int64) ([]domain.Order, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+orderCols+` FROM orders WHERE user_id = ? ORDER BY id DESC LIMIT 200`, userID)
	if err != nil {
		return nil, fmt.Errorf("list orders of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []domain.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// EndOrder moves a created order to cancelled or expired and gives its units back to
// the stock row and the user's purchases, in one transaction. It reports whether this
// call changed the order; an order already ended is returned as it is, so ending twice
// is not an error.
func (s *Store) EndOrder(ctx context.Context, userID, id int64, to domain.OrderStatus) (domain.Order, bool, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return domain.Order{}, false, fmt.Errorf("end order %d: %w", id, err)
	}
	defer tx.Rollback()
	q := `SELECT ` + orderCols + ` FROM orders WHERE id = ? FOR UPDATE`
	args := []any{id}
	if userID > 0 {
		q = `SELECT ` + orderCols + ` FROM orders WHERE id = ? AND user_id = ? FOR UPDATE`
		args = append(args, userID)
	}
	o, err := scanOrder(tx.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return o, false, domain.Errorf(domain.ENotFound, "order %d not found", id)
	}
	if err != nil {
		return o, false, fmt.Errorf("read order %d: %w", id, err)
	}
	if o.Status != domain.OrderCreated {
		return o, false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders SET status = ?, updated_at = CURRENT_TIMESTAMP(3) WHERE id = ?`, to, id); err != nil {
		return o, false, fmt.Errorf("end order %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE purchases SET units = units - ?, orders = orders - 1 WHERE item_id = ? AND user_id = ?`, o.Quantity, o.ItemID, o.UserID); err != nil {
		return o, false, fmt.Errorf("end order %d: %w", id, err)
	}
	if err := s.moveStock(ctx, tx, o.ItemID, o.Bucket, int64(o.Quantity)); err != nil {
		return o, false, err
	}
	if err := tx.Commit(); err != nil {
		return o, false, fmt.Errorf("end order %d: %w", id, err)
	}
	o.Status = to
	return o, true, nil
}

// StaleOrders returns orders still created (unpaid) that were created before t.
func (s *Store) StaleOrders(ctx context.Context, before time.Time, limit int) ([]domain.Order, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+orderCols+` FROM orders WHERE status = 'created' AND created_at < ? ORDER BY created_at LIMIT ?`, before.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("list stale orders: %w", err)
	}
	defer rows.Close()
	var out []domain.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Counts returns the live (created or paid) orders and units of an item, from its
// buyers' rows (every order and every end of one writes its buyer's row in the same
// transaction).
func (s *Store) Counts(ctx context.Context, itemID int64) (domain.ItemCounts, error) {
	var c domain.ItemCounts
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(orders), 0), COALESCE(SUM(units), 0) FROM purchases WHERE item_id = ?`, itemID).Scan(&c.Orders, &c.Units)
	if err != nil {
		return c, fmt.Errorf("count orders of item %d: %w", itemID, err)
	}
	return c, nil
}

// PayOrder marks a created order paid, so the unpaid-order timeout leaves it alone.
func (s *Store) PayOrder(ctx context.Context, userID, id int64) (domain.Order, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE orders SET status = 'paid', updated_at = CURRENT_TIMESTAMP(3) WHERE id = ? AND user_id = ? AND status = 'created'`, id, userID)
	if err != nil {
		return domain.Order{}, fmt.Errorf("pay order %d: %w", id, err)
	}
	o, err := s.Order(ctx, userID, id)
	if err != nil {
		return o, err
	}
	if n, _ := res.RowsAffected(); n == 0 && o.Status != domain.OrderPaid {
		return o, domain.Errorf(domain.EConflict, "order %d is %s", id, o.Status)
	}
	return o, nil
}

// MoveStock moves n units from one bucket row of an item to another in one
// transaction, both rows updated with the versioned update.
func (s *Store) MoveStock(ctx context.Context, itemID int64, from, to int, n int64) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("move stock: %w", err)
	}
	defer tx.Rollback()
	// Lower bucket first: two movers lock rows in the same order.
	first, second := from, to
	d1, d2 := -n, n
	if to < from {
		first, second, d1, d2 = to, from, n, -n
	}
	if err := s.moveStock(ctx, tx, itemID, first, d1); err != nil {
		return err
	}
	if err := s.moveStock(ctx, tx, itemID, second, d2); err != nil {
		return err
	}
	return tx.Commit()
}

// SetBucketCount changes an activity's bucket count and makes sure every item has a
// stock row for each bucket (new rows hold nothing; rows past the count are kept for
// the orders in flight that name them, and emptied by the rebalancer).
func (s *Store) SetBucketCount(ctx context.Context, activityID int64, n int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set bucket count: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE activities SET bucket_count = ?, version = version + 1, updated_at = CURRENT_TIMESTAMP(3) WHERE id = ?`, n, activityID); err != nil {
		return fmt.Errorf("set bucket count of activity %d: %w", activityID, err)
	}
	for b := 0; b < n; b++ {
		if _, err := tx.ExecContext(ctx, `INSERT IGNORE INTO item_stock (item_id, bucket, available) SELECT id, ?, 0 FROM items WHERE activity_id = ?`, b, activityID); err != nil {
			return fmt.Errorf("add bucket rows: %w", err)
		}
	}
	return tx.Commit()
}
