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

// WriteBatch writes several admitted requests for the same item and bucket in one
// transaction: one multi-row INSERT of the orders, one multi-row upsert of the
// buyers' units, and one versioned UPDATE of the stock row by the batch's total. It
// is idempotent per order: requests whose ticket already has an order come back as
// duplicates and are not written again.
//
// When the batch as a whole cannot commit for a reason that concerns only some of its
// orders (a buyer over the limit, fewer units left than the batch needs, a duplicate
// racing in from another writer), it falls back to writing each order on its own, so
// one bad order never holds back the rest. The result is in the order of reqs; errs[i]
// is nil, a *domain.Error (permanent) or another error (transient).
func (s *Store) WriteBatch(ctx context.Context, reqs []domain.OrderRequest, limit int) ([]Written, []error) {
	out := make([]Written, len(reqs))
	errs := make([]error, len(reqs))
	if len(reqs) == 0 {
		return out, errs
	}
	item, bucket := reqs[0].ItemID, reqs[0].Bucket
	for _, r := range reqs {
		if r.ItemID != item || r.Bucket != bucket {
			panic("mysql: WriteBatch needs one item and bucket") // a caller's bug
		}
	}
	if len(reqs) == 1 {
		out[0], errs[0] = s.WriteOrder(ctx, reqs[0], limit)
		return out, errs
	}
	fresh, err := s.markDuplicates(ctx, reqs, out)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return out, errs
	}
	if len(fresh) == 0 {
		return out, errs
	}
	err = s.writeTogether(ctx, reqs, fresh, out, limit)
	if err == nil {
		return out, errs
	}
	var de *domain.Error
	if !errors.As(err, &de) && !isDuplicate(err) {
		for _, i := range fresh {
			errs[i] = err
		}
		return out, errs
	}
	// Some order of the batch is refused or raced: write them one by one.
	for _, i := range fresh {
		out[i], errs[i] = s.WriteOrder(ctx, reqs[i], limit)
	}
	return out, errs
}

// markDuplicates fills in the orders that exist already and returns the indexes of
// the rest.
func (s *Store) markDuplicates(ctx context.Context, reqs []domain.OrderRequest, out []Written) ([]int, error) {
	args := make([]any, len(reqs))
	for i, r := range reqs {
		args[i] = r.Ticket
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+orderCols+` FROM orders WHERE ticket IN (`+placeholders(len(reqs))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("look up batch: %w", err)
	}
	defer rows.Close()
	seen := map[string]domain.Order{}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		seen[o.Ticket] = o
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var fresh []int
	inBatch := map[string]bool{}
	for i, r := range reqs {
		if o, ok := seen[r.Ticket]; ok {
			out[i] = Written{Order: o, Duplicate: true}
			continue
		}
		if inBatch[r.Ticket] { // the same message twice in one batch
			out[i] = Written{Duplicate: true}
			continue
		}
		inBatch[r.Ticket] = true
		fresh = append(fresh, i)
	}
	return fresh, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func (s *Store) writeTogether(ctx context.Context, reqs []domain.OrderRequest, fresh []int, out []Written, limit int) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("write batch: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var ins strings.Builder
	ins.WriteString(`INSERT INTO orders (ticket, user_id, activity_id, item_id, bucket, quantity, amount_cents, status, created_at, updated_at) VALUES `)
	args := make([]any, 0, len(fresh)*9)
	units := map[int64]int{}
	var users []int64
	total := 0
	for n, i := range fresh {
		r := reqs[i]
		if n > 0 {
			ins.WriteString(",")
		}
		ins.WriteString("(?, ?, ?, ?, ?, ?, ?, 'created', ?, ?)")
		args = append(args, r.Ticket, r.UserID, r.ActivityID, r.ItemID, r.Bucket, r.Quantity, r.AmountCents, now, now)
		if _, ok := units[r.UserID]; !ok {
			users = append(users, r.UserID)
		}
		units[r.UserID] += r.Quantity
		total += r.Quantity
	}
	if _, err := tx.ExecContext(ctx, ins.String(), args...); err != nil {
		return fmt.Errorf("insert batch: %w", err)
	}
	var up strings.Builder
	up.WriteString(`INSERT INTO purchases (item_id, user_id, units) VALUES `)
	args = args[:0]
	item := reqs[0].ItemID
	for n, u := range users {
		if n > 0 {
			up.WriteString(",")
		}
		up.WriteString("(?, ?, ?)")
		args = append(args, item, u, units[u])
	}
	// A plain INSERT: new buyers (the common case in a flash sale) take no gap locks,
	// so batches of other buckets do not wait on each other here. A buyer who already
	// holds units makes it fail as a duplicate, and the batch is written order by order.
	if _, err := tx.ExecContext(ctx, up.String(), args...); err != nil {
		return fmt.Errorf("record batch purchases: %w", err)
	}
	if limit > 0 {
		args = args[:0]
		args = append(args, item, limit)
		for _, u := range users {
			args = append(args, u)
		}
		var over int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM purchases WHERE item_id = ? AND units > ? AND user_id IN (`+placeholders(len(users))+`)`, args...).Scan(&over); err != nil {
			return fmt.Errorf("check batch limits: %w", err)
		}
		if over > 0 {
			return domain.Errorf(domain.ELimitExceeded, "%d buyers of the batch are over the limit", over)
		}
	}
	// The ids: one query for the batch, by ticket.
	args = args[:0]
	for _, i := range fresh {
		args = append(args, reqs[i].Ticket)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, ticket FROM orders WHERE ticket IN (`+placeholders(len(fresh))+`)`, args...)
	if err != nil {
		return fmt.Errorf("read batch ids: %w", err)
	}
	ids := map[string]int64{}
	for rows.Next() {
		var id int64
		var t string
		if err := rows.Scan(&id, &t); err != nil {
			rows.Close()
			return err
		}
		ids[t] = id
	}
	rows.Close()
	// The stock row is the hot one: it is locked last, so held the shortest.
	if err := s.moveStock(ctx, tx, item, reqs[0].Bucket, -int64(total)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	for _, i := range fresh {
		r := reqs[i]
		out[i] = Written{Order: domain.Order{ID: ids[r.Ticket], Ticket: r.Ticket, UserID: r.UserID, ActivityID: r.ActivityID, ItemID: r.ItemID,
			Bucket: r.Bucket, Quantity: r.Quantity, AmountCents: r.AmountCents, Status: domain.OrderCreated, CreatedAt: now}}
	}
	return nil
}
