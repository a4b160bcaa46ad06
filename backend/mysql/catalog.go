package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// CreateActivity stores a new activity in state draft with its items and stock rows,
// and fills in the ids.
func (s *Store) CreateActivity(ctx context.Context, a *domain.Activity) error {
	return s.inTx(ctx, "create activity", func(tx *sql.Tx) error {
		a.State, a.Version = domain.StateDraft, 1
		if a.Room.Factor == 0 {
			a.Room.Factor = domain.DefaultRoomFactor
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO activities (name, start_at, end_at, state, strategy, per_user_limit, bucket_count, version, waiting_room, admission_factor)
			VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`, a.Name, dbTime(a.Start), dbTime(a.End), a.State, a.Strategy, a.PerUserLimit, a.BucketCount, a.Room.On, a.Room.Factor)
		if err != nil {
			return fmt.Errorf("insert activity: %w", err)
		}
		if a.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		for i := range a.Items {
			if err := insertItem(ctx, tx, a.ID, a.BucketCount, &a.Items[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// insertItem stores an item of an activity with its stock split over buckets rows and
// fills in its ids, state and window as stored.
func insertItem(ctx context.Context, tx *sql.Tx, activityID int64, buckets int, it *domain.Item) error {
	it.ActivityID = activityID
	if it.State == "" {
		it.State = domain.ItemOnline
	}
	it.Start, it.End = dbTime(it.Start), dbTime(it.End)
	res, err := tx.ExecContext(ctx, `INSERT INTO items (activity_id, name, price_cents, total_stock, state, start_at, end_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		activityID, it.Name, it.PriceCents, it.TotalStock, it.State, timeCol(it.Start), timeCol(it.End))
	if err != nil {
		return fmt.Errorf("insert item %q: %w", it.Name, err)
	}
	if it.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	for b, n := range domain.SplitStock(it.TotalStock, buckets) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO item_stock (item_id, bucket, available) VALUES (?, ?, ?)`, it.ID, b, n); err != nil {
			return fmt.Errorf("insert stock of item %d: %w", it.ID, err)
		}
	}
	return nil
}

// dbTime is t as a DATETIME(3) column keeps it: UTC, to the millisecond; zero stays
// zero. Times are sent truncated, since servers differ in what they do with finer
// digits (MariaDB truncates, MySQL 8 and go-mysql-server round).
func dbTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Millisecond)
}

// timeCol is a NULLable time column's value: NULL for the zero time.
func timeCol(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return dbTime(t)
}

// AddItem adds an item with its stock to an activity and bumps the activity's version,
// in one transaction that holds the activity's row, so a concurrent change of the
// bucket count or another item added waits for it.
func (s *Store) AddItem(ctx context.Context, activityID int64, it *domain.Item) error {
	return s.inTx(ctx, fmt.Sprintf("add an item to activity %d", activityID), func(tx *sql.Tx) error {
		var buckets int
		err := tx.QueryRowContext(ctx, `SELECT bucket_count FROM activities WHERE id = ? FOR UPDATE`, activityID).Scan(&buckets)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.ENotFound, "activity %d not found", activityID)
		}
		if err != nil {
			return fmt.Errorf("read activity %d: %w", activityID, err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM items WHERE activity_id = ?`, activityID).Scan(&n); err != nil {
			return fmt.Errorf("count items of activity %d: %w", activityID, err)
		}
		if n >= domain.MaxItems {
			return domain.Errorf(domain.EBadRequest, "activity %d has %d items already, the most it may have", activityID, n)
		}
		if err := insertItem(ctx, tx, activityID, buckets, it); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE activities SET version = version + 1, updated_at = CURRENT_TIMESTAMP(3) WHERE id = ?`, activityID); err != nil {
			return fmt.Errorf("bump activity %d: %w", activityID, err)
		}
		return nil
	})
}

const activityCols = `id, name, start_at, end_at, state, strategy, per_user_limit, bucket_count, version, waiting_room, admission_factor`

func scanActivity(sc interface{ Scan(...any) error }) (*domain.Activity, error) {
	a := &domain.Activity{}
	var state, strategy string
	if err := sc.Scan(&a.ID, &a.Name, &a.Start, &a.End, &state, &strategy, &a.PerUserLimit, &a.BucketCount, &a.Version, &a.Room.On, &a.Room.Factor); err != nil {
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

func (s *Store) items(ctx context.Context, where string, args ...any) ([]domain.Item, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, activity_id, name, price_cents, total_stock, state, start_at, end_at FROM items WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read items: %w", err)
	}
	defer rows.Close()
	var out []domain.Item
	for rows.Next() {
		var it domain.Item
		var state string
		var start, end sql.NullTime
		if err := rows.Scan(&it.ID, &it.ActivityID, &it.Name, &it.PriceCents, &it.TotalStock, &state, &start, &end); err != nil {
			return nil, err
		}
		it.State = domain.ItemStatus(state)
		if start.Valid {
			it.Start = dbTime(start.Time)
		}
		if end.Valid {
			it.End = dbTime(end.Time)
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

// Activities lists the activities q selects, newest first, with their items (one query
// for all of their items).
func (s *Store) Activities(ctx context.Context, q domain.ActivityQuery) ([]*domain.Activity, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var where []string
	var args []any
	switch {
	case q.State != "":
		where, args = append(where, `state = ?`), append(args, q.State)
	case !q.All:
		where = append(where, `state = 'published'`)
	}
	if q.Before > 0 {
		where, args = append(where, `id < ?`), append(args, q.Before)
	}
	query := `SELECT ` + activityCols + ` FROM activities`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY id DESC LIMIT ?`, append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list activities: %w", err)
	}
	var out []*domain.Activity
	byID := map[int64]*domain.Activity{}
	ids := []any{}
	for rows.Next() {
		a, err := scanActivity(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, a)
		byID[a.ID] = a
		ids = append(ids, a.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	items, err := s.items(ctx, `activity_id IN (`+placeholders(len(ids))+`)`, ids...)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		a := byID[it.ActivityID]
		a.Items = append(a.Items, it)
	}
	return out, nil
}

// SetState moves an activity to a new state and bumps its version.
func (s *Store) SetState(ctx context.Context, id int64, st domain.State) error {
	res, err := s.execOnce(ctx, `UPDATE activities SET state = ?, version = version + 1, updated_at = CURRENT_TIMESTAMP(3) WHERE id = ?`, st, id)
	if err != nil {
		return fmt.Errorf("set state of activity %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domain.Errorf(domain.ENotFound, "activity %d not found", id)
	}
	return nil
}

// UpdateActivity applies an operator's change in one transaction: the activity's own
// fields, its bucket count (new rows hold nothing), its items' names and prices, and
// each item's stock, by the buckets' deltas with the versioned update and the total;
// it bumps the activity's version. When any part is refused (an unknown item, a bucket
// with fewer units than a delta takes) nothing changes.
func (s *Store) UpdateActivity(ctx context.Context, id int64, c domain.ActivityChange) error {
	return s.inTx(ctx, fmt.Sprintf("update activity %d", id), func(tx *sql.Tx) error {
		sets := []string{"version = version + 1", "updated_at = CURRENT_TIMESTAMP(3)"}
		var args []any
		if c.Name != nil {
			sets, args = append(sets, "name = ?"), append(args, *c.Name)
		}
		if c.Start != nil {
			sets, args = append(sets, "start_at = ?"), append(args, dbTime(*c.Start))
		}
		if c.End != nil {
			sets, args = append(sets, "end_at = ?"), append(args, dbTime(*c.End))
		}
		if c.PerUserLimit != nil {
			sets, args = append(sets, "per_user_limit = ?"), append(args, *c.PerUserLimit)
		}
		if c.BucketCount != nil {
			sets, args = append(sets, "bucket_count = ?"), append(args, *c.BucketCount)
		}
		if c.RoomOn != nil {
			sets, args = append(sets, "waiting_room = ?"), append(args, *c.RoomOn)
		}
		if c.RoomFactor != nil {
			sets, args = append(sets, "admission_factor = ?"), append(args, *c.RoomFactor)
		}
		res, err := tx.ExecContext(ctx, `UPDATE activities SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, id)...)
		if err != nil {
			return fmt.Errorf("update activity %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return domain.Errorf(domain.ENotFound, "activity %d not found", id)
		}
		if c.BucketCount != nil {
			// Rows for every bucket; rows past the count stay for the orders in flight
			// that name them, and the rebalancer empties them.
			for b := 0; b < *c.BucketCount; b++ {
				if _, err := tx.ExecContext(ctx, `INSERT IGNORE INTO item_stock (item_id, bucket, available) SELECT id, ?, 0 FROM items WHERE activity_id = ?`, b, id); err != nil {
					return fmt.Errorf("add bucket rows: %w", err)
				}
			}
		}
		for _, ic := range c.Items {
			if err := updateItem(ctx, tx, s, id, ic); err != nil {
				return err
			}
		}
		return nil
	})
}

func updateItem(ctx context.Context, tx *sql.Tx, s *Store, activityID int64, ic domain.ItemChange) error {
	if ic.FromTotal != nil {
		var total int64
		err := tx.QueryRowContext(ctx, `SELECT total_stock FROM items WHERE id = ? AND activity_id = ? FOR UPDATE`, ic.ItemID, activityID).Scan(&total)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return domain.Errorf(domain.ENotFound, "item %d is not in activity %d", ic.ItemID, activityID)
		case err != nil:
			return fmt.Errorf("read item %d's total stock: %w", ic.ItemID, err)
		case total != *ic.FromTotal:
			return domain.NotCommitted(fmt.Errorf("item %d holds %d units, not %d: %w", ic.ItemID, total, *ic.FromTotal, domain.ErrStockChanged))
		}
	}
	sets := []string{}
	var args []any
	if ic.Name != nil {
		sets, args = append(sets, "name = ?"), append(args, *ic.Name)
	}
	if ic.PriceCents != nil {
		sets, args = append(sets, "price_cents = ?"), append(args, *ic.PriceCents)
	}
	if ic.State != nil {
		st := *ic.State
		if st == "" {
			st = domain.ItemOnline
		}
		sets, args = append(sets, "state = ?"), append(args, st)
	}
	if ic.Start != nil {
		sets, args = append(sets, "start_at = ?"), append(args, timeCol(*ic.Start))
	}
	if ic.End != nil {
		sets, args = append(sets, "end_at = ?"), append(args, timeCol(*ic.End))
	}
	var total int64
	for _, d := range ic.Stock {
		total += d.Delta
	}
	if total != 0 {
		sets, args = append(sets, "total_stock = total_stock + ?"), append(args, total)
	}
	if len(sets) > 0 {
		res, err := tx.ExecContext(ctx, `UPDATE items SET `+strings.Join(sets, ", ")+` WHERE id = ? AND activity_id = ?`, append(args, ic.ItemID, activityID)...)
		if err != nil {
			return fmt.Errorf("update item %d: %w", ic.ItemID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM items WHERE id = ? AND activity_id = ?`, ic.ItemID, activityID).Scan(&one); err != nil {
				return domain.Errorf(domain.ENotFound, "item %d is not in activity %d", ic.ItemID, activityID)
			}
		}
	}
	for _, d := range ic.Stock {
		if err := s.moveStock(ctx, tx, ic.ItemID, d.Bucket, d.Delta); err != nil {
			if domain.IsCode(err, domain.ESoldOut) {
				return domain.Errorf(domain.EConflict, "item %d: cannot take %d units from bucket %d, fewer are unsold", ic.ItemID, -d.Delta, d.Bucket)
			}
			return err
		}
	}
	return nil
}
