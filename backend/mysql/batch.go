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
// transaction: one multi-row INSERT of the orders, one multi-row INSERT of the new
// buyers' units, and one versioned UPDATE of the stock row by the batch's total. It
// is idempotent per order: the same message twice in a batch is written once, and an
// order written before (a redelivery) meets the unique index.
//
// The fast path is the flash-sale common case: every order new, every buyer new.
// Whenever the batch as a whole cannot commit for a reason that concerns only some of
// its orders (an order written before, a buyer who already holds units or would pass
// the limit, fewer units left than the batch needs), the batch is written order by
// order, so one odd order never holds back the rest. The result is in the order of
// reqs; errs[i] is nil, a *domain.Error (permanent) or another error (transient).
func (s *Store) WriteBatch(ctx context.Context, reqs []domain.OrderRequest, limit int) ([]domain.Written, []error) {
	out := make([]domain.Written, len(reqs))
	errs := make([]error, len(reqs))
	if len(reqs) == 0 {
		return out, errs
	}
	item, bucket := reqs[0].ItemID, reqs[0].Bucket
	whole := true // every request takes from the one bucket
	for _, r := range reqs {
		if r.ItemID != item || r.Bucket != bucket {
			panic("mysql: WriteBatch needs one item and bucket") // a caller's bug
		}
		whole = whole && len(r.Parts) < 2
	}
	// first[i] is the index of the first request with reqs[i]'s ticket.
	first := make([]int, len(reqs))
	seen := map[string]int{}
	var fresh []int
	buyers := map[int64]buyer{}
	for i, r := range reqs {
		if j, ok := seen[r.Ticket]; ok {
			first[i] = j
			continue
		}
		seen[r.Ticket], first[i] = i, i
		fresh = append(fresh, i)
		u := buyers[r.UserID]
		buyers[r.UserID] = buyer{units: u.units + r.Quantity, orders: u.orders + 1}
	}
	together := len(fresh) > 1 && whole
	for _, u := range buyers {
		if limit > 0 && u.units > limit {
			together = false // let the order-by-order path refuse the extra ones
		}
	}
	var err error
	if together {
		err = s.inTx(ctx, "write batch", func(tx *sql.Tx) error { return s.writeTogether(ctx, tx, reqs, fresh, buyers, out) })
		var de *domain.Error
		if err != nil && !errors.As(err, &de) && !isDuplicate(err) {
			if !errors.Is(err, errUnknownOutcome) {
				err = domain.NotCommitted(err)
			}
			for _, i := range fresh {
				errs[i] = err
			}
			return out, errs
		}
	}
	if !together || err != nil {
		for _, i := range fresh {
			out[i], errs[i] = s.WriteOrder(ctx, reqs[i], limit)
		}
	}
	for i := range reqs {
		if first[i] != i {
			// The first's outcome, as a redelivery of it: its order (a duplicate), or
			// the key's order it replayed (a replay again, whose units go back).
			w := out[first[i]]
			w.Duplicate = !w.Replay
			out[i], errs[i] = w, errs[first[i]]
		}
	}
	return out, errs
}

// buyer is what a batch adds to one user's purchases row.
type buyer struct{ units, orders int }

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func (s *Store) writeTogether(ctx context.Context, tx *sql.Tx, reqs []domain.OrderRequest, fresh []int, buyers map[int64]buyer, out []domain.Written) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	var ins strings.Builder
	ins.WriteString(`INSERT INTO orders (ticket, user_id, activity_id, item_id, bucket, quantity, amount_cents, status, idem_key, created_at, updated_at) VALUES `)
	args := make([]any, 0, len(fresh)*10)
	total := 0
	for n, i := range fresh {
		r := reqs[i]
		if n > 0 {
			ins.WriteString(",")
		}
		ins.WriteString("(?, ?, ?, ?, ?, ?, ?, 'created', ?, ?, ?)")
		args = append(args, r.Ticket, r.UserID, r.ActivityID, r.ItemID, r.Bucket, r.Quantity, r.AmountCents, keyCol(r.IdemKey), now, now)
		total += r.Quantity
	}
	// A ticket written before fails this with a duplicate key: the caller goes order
	// by order then.
	res, err := tx.ExecContext(ctx, ins.String(), args...)
	if err != nil {
		return fmt.Errorf("insert batch: %w", err)
	}
	ids, err := s.batchIDs(ctx, tx, res, reqs, fresh)
	if err != nil {
		return err
	}
	// New buyers only (a plain INSERT takes no gap locks, so batches of other buckets
	// do not wait on each other); a buyer who holds units already makes it fail as a
	// duplicate, and the caller goes order by order, which checks the limit.
	item := reqs[0].ItemID
	var up strings.Builder
	up.WriteString(`INSERT INTO purchases (item_id, user_id, units, orders) VALUES `)
	args = args[:0]
	n := 0
	for u, b := range buyers {
		if n > 0 {
			up.WriteString(",")
		}
		up.WriteString("(?, ?, ?, ?)")
		args = append(args, item, u, b.units, b.orders)
		n++
	}
	if _, err := tx.ExecContext(ctx, up.String(), args...); err != nil {
		return fmt.Errorf("record batch purchases: %w", err)
	}
	// The stock row is the hot one: it is locked last, so held the shortest.
	if err := s.moveStock(ctx, tx, item, reqs[0].Bucket, -int64(total)); err != nil {
		return err
	}
	for k, i := range fresh {
		out[i] = domain.Written{Order: orderOf(reqs[i], domain.OrderCreated, now)}
		out[i].Order.ID = ids[k]
	}
	return nil
}

// batchIDs returns the ids the multi-row INSERT res gave the orders fresh, in their
// order. InnoDB gives the rows of one INSERT with a known row count consecutive
// auto-increment values, auto_increment_increment apart, when innodb_autoinc_lock_mode
// is 0 or 1 (MariaDB's default is 1); LAST_INSERT_ID is the first. That saves a read of
// every row back. With the interleaved mode (2), or a server that does not say, the
// ids are read back by ticket.
func (s *Store) batchIDs(ctx context.Context, tx *sql.Tx, res sql.Result, reqs []domain.OrderRequest, fresh []int) ([]int64, error) {
	ids := make([]int64, len(fresh))
	if step := s.autoIncStep(ctx, tx); step > 0 {
		first, err := res.LastInsertId()
		n, err2 := res.RowsAffected()
		if err == nil && err2 == nil && n == int64(len(fresh)) && first > 0 {
			for k := range ids {
				ids[k] = first + int64(k)*step
			}
			return ids, nil
		}
	}
	args := make([]any, 0, len(fresh))
	for _, i := range fresh {
		args = append(args, reqs[i].Ticket)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, ticket FROM orders WHERE ticket IN (`+placeholders(len(fresh))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read batch ids: %w", err)
	}
	defer rows.Close()
	byTicket := make(map[string]int64, len(fresh))
	for rows.Next() {
		var id int64
		var t string
		if err := rows.Scan(&id, &t); err != nil {
			return nil, fmt.Errorf("read batch ids: %w", err)
		}
		byTicket[t] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read batch ids: %w", err)
	}
	for k, i := range fresh {
		ids[k] = byTicket[reqs[i].Ticket]
	}
	return ids, nil
}

// autoIncStep is auto_increment_increment when the server gives a multi-row INSERT
// consecutive ids, else 0. It asks once, inside the batch's transaction (a server that
// runs one transaction at a time, like the embedded one, would not answer another
// connection meanwhile); a failed question is asked again next time.
func (s *Store) autoIncStep(ctx context.Context, tx *sql.Tx) int64 {
	if v := s.idStep.Load(); v != 0 {
		return max(v, 0)
	}
	var mode, step int64
	err := tx.QueryRowContext(ctx, `SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment`).Scan(&mode, &step)
	if err != nil {
		return 0
	}
	if mode > 1 || step < 1 {
		step = -1 // interleaved: read the ids back
	}
	s.idStep.Store(step)
	return max(step, 0)
}
