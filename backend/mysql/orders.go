package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// WriteOrder writes one admitted request in one transaction: the order row (unique by
// ticket, and by shopper, item and idempotency key), the user's purchase units
// (checked against limit) and the versioned update of each stock row it takes from.
// A ticket decided before comes back as Duplicate (its order), or refused when it was
// voided; a key whose order another ticket wrote comes back as Replay, unless a void
// claimed or marked the ticket first (voided). A refusal that retrying cannot change
// (sold_out in MySQL, limit_exceeded, not_found, voided) is a *domain.Error; a failure
// known to have left nothing is marked domain.NotCommitted; any other error has an
// unknown outcome.
func (s *Store) WriteOrder(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	if r.Quantity <= 0 || r.Quantity > domain.MaxQuantity {
		return domain.Written{}, domain.Errorf(domain.EBadRequest, "order %s: quantity %d", r.Ticket, r.Quantity)
	}
	var w domain.Written
	err := s.inTx(ctx, "write order "+r.Ticket, func(tx *sql.Tx) (err error) {
		w, err = s.writeOrder(ctx, tx, r, limit)
		return err
	})
	if errors.Is(err, errDecided) {
		return s.decided(ctx, r)
	}
	var de *domain.Error
	if err != nil && !errors.As(err, &de) && !errors.Is(err, errUnknownOutcome) {
		err = domain.NotCommitted(err)
	}
	return w, err
}

// errDecided: the order's insert met a unique key; decided reads what holds it.
var errDecided = errors.New("order decided before")

func (s *Store) writeOrder(ctx context.Context, tx *sql.Tx, r domain.OrderRequest, limit int) (domain.Written, error) {
	o := orderOf(r, domain.OrderCreated, time.Now())
	res, err := tx.ExecContext(ctx, `INSERT INTO orders (ticket, user_id, activity_id, item_id, bucket, parts, quantity, amount_cents, status, idem_key, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'created', ?, ?, ?)`, o.Ticket, o.UserID, o.ActivityID, o.ItemID, o.Bucket, partsCol(o.Parts),
		o.Quantity, o.AmountCents, keyCol(o.IdemKey), o.CreatedAt, o.CreatedAt)
	if isDuplicate(err) {
		return domain.Written{}, errDecided
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
	if err := s.moveParts(ctx, tx, r.ItemID, r.Units(), -1); err != nil {
		return domain.Written{}, err
	}
	return domain.Written{Order: o}, nil
}

// decided answers a write whose order insert met a unique key: the ticket's own row (a
// redelivery: Duplicate, or refused when the ticket was voided), else the order another
// ticket of the same key wrote (Replay), unless a void claimed or marked the ticket
// first (voided: claimTicket).
func (s *Store) decided(ctx context.Context, r domain.OrderRequest) (domain.Written, error) {
	prev, err := s.OrderByTicket(ctx, r.Ticket)
	switch {
	case err == nil && prev.Status == domain.OrderVoid:
		return domain.Written{}, domain.Errorf(domain.EVoided, "ticket %s was decided as not written", r.Ticket)
	case err == nil:
		return domain.Written{Order: prev, Duplicate: true}, nil
	case !domain.IsCode(err, domain.ENotFound):
		return domain.Written{}, fmt.Errorf("order %s exists: %w: %w", r.Ticket, errUnknownOutcome, err)
	}
	if r.IdemKey != "" {
		prev, err = scanOrder(s.db.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE user_id = ? AND item_id = ? AND idem_key = ?`,
			r.UserID, r.ItemID, r.IdemKey))
		if err == nil {
			// The ticket ends created with the other's order: kept here, as its result
			// in Redis may be lost (ReplayOf), unless a void of it claimed it first.
			held, claimed, err := s.claimTicket(ctx, r.Ticket, prev.ID)
			if err != nil {
				// The row may have landed (a connection lost after the insert): the
				// caller decides the ticket (a void mark, which reads win over it).
				return domain.Written{}, fmt.Errorf("record ticket %s replaying order %d: %w: %w", r.Ticket, prev.ID, errUnknownOutcome, err)
			}
			voided := domain.Errorf(domain.EVoided, "ticket %s was decided as not written", r.Ticket)
			if held != prev.ID {
				// A void claimed it first. Its mark may not have landed (the void
				// failed after its claim): the ticket is void, so mark it, or reads
				// would find nothing.
				if _, _, err := s.VoidTicket(ctx, r); err != nil {
					return domain.Written{}, fmt.Errorf("mark ticket %s void: %w: %w", r.Ticket, errUnknownOutcome, err)
				}
				return domain.Written{}, voided
			}
			// A void mark of a version that kept no claim decided the ticket first
			// (reads go by the ticket's own row): the claim this call made goes, so a
			// later void finds the mark, not a replay.
			if own, err := s.OrderByTicket(ctx, r.Ticket); err == nil && own.Status == domain.OrderVoid {
				if claimed {
					if _, err := s.db.ExecContext(ctx, `DELETE FROM ticket_replays WHERE ticket = ? AND order_id = ?`, r.Ticket, prev.ID); err != nil {
						return domain.Written{}, fmt.Errorf("drop the claim of void ticket %s: %w: %w", r.Ticket, errUnknownOutcome, err)
					}
				}
				return domain.Written{}, voided
			}
			return domain.Written{Order: prev, Replay: true}, nil
		}
	}
	return domain.Written{}, fmt.Errorf("order %s met a unique key it cannot find: %w: %v", r.Ticket, errUnknownOutcome, err)
}

// VoidTicket decides a ticket as not written, unless it was written before: it keeps
// a row of status void for the ticket, so a late write of it (a send that looked
// failed, a redelivered or replayed message) writes nothing. It returns the ticket's
// row, or the order it replayed (Order.Replayed), and whether this call voided it
// (false: the ticket was decided before, void, written or replayed).
func (s *Store) VoidTicket(ctx context.Context, r domain.OrderRequest) (domain.Order, bool, error) {
	// A ticket that replayed another's order has no row of its own: it is decided.
	// The claim decides a void racing the replay's record.
	held, _, err := s.claimTicket(ctx, r.Ticket, 0)
	if err != nil {
		return domain.Order{}, false, fmt.Errorf("void ticket %s: %w", r.Ticket, err)
	}
	if held != 0 {
		// Reads go by the ticket's own row first (a void mark of a version that
		// kept no claim may stand beside a replay's claim).
		if own, err := s.OrderByTicket(ctx, r.Ticket); err == nil {
			return own, false, nil
		} else if !domain.IsCode(err, domain.ENotFound) {
			return domain.Order{}, false, fmt.Errorf("void ticket %s: %w", r.Ticket, err)
		}
		prev, err := s.ReplayOf(ctx, r.Ticket)
		if err != nil {
			return domain.Order{}, false, fmt.Errorf("void ticket %s: %w", r.Ticket, err)
		}
		return prev, false, nil
	}
	o := orderOf(r, domain.OrderVoid, time.Now())
	o.IdemKey, o.AmountCents = "", 0
	var res sql.Result
	for attempt := 1; ; attempt++ {
		res, err = s.db.ExecContext(ctx, `INSERT INTO orders (ticket, user_id, activity_id, item_id, bucket, parts, quantity, amount_cents, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'void', ?, ?)`, o.Ticket, o.UserID, o.ActivityID, o.ItemID, o.Bucket, partsCol(o.Parts), o.Quantity, o.CreatedAt, o.CreatedAt)
		if !retriable(err) || attempt == 3 {
			break
		}
	}
	if isDuplicate(err) {
		prev, err := s.OrderByTicket(ctx, r.Ticket)
		return prev, false, err
	}
	if err != nil {
		return domain.Order{}, false, fmt.Errorf("void ticket %s: %w", r.Ticket, err)
	}
	o.ID, _ = res.LastInsertId()
	return o, true, nil
}

// claimTicket decides between a replay of ticket (a write that met another ticket's
// order of its key, orderID that order) and a void of it (orderID 0), which may race: a
// writer meeting the key's order while the reconciler, a read or another writer ends the
// ticket. Both take the ticket's one row of ticket_replays, and the first holds it. It
// returns the order id the row holds (0: a void's claim), and whether this call wrote it.
// A void's claim stays when the ticket turns out written (its own order): reads go by
// the ticket's own row first, and a ticket with its own order never replays.
func (s *Store) claimTicket(ctx context.Context, ticket string, orderID int64) (held int64, claimed bool, err error) {
	for attempt := 1; ; attempt++ {
		res, err := s.db.ExecContext(ctx, `INSERT IGNORE INTO ticket_replays (ticket, order_id) VALUES (?, ?)`, ticket, orderID)
		if err == nil {
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				return orderID, true, nil
			}
			break
		}
		if !retriable(err) || attempt == 3 {
			return 0, false, err
		}
	}
	if err := s.db.QueryRowContext(ctx, `SELECT order_id FROM ticket_replays WHERE ticket = ?`, ticket).Scan(&held); err != nil {
		return 0, false, fmt.Errorf("read the claim of ticket %s: %w", ticket, err)
	}
	return held, false, nil
}

// orderOf is the row of r in status st, created at now.
func orderOf(r domain.OrderRequest, st domain.OrderStatus, now time.Time) domain.Order {
	return domain.Order{Ticket: r.Ticket, UserID: r.UserID, ActivityID: r.ActivityID, ItemID: r.ItemID, Bucket: r.Bucket, Parts: r.Parts,
		Quantity: r.Quantity, AmountCents: r.AmountCents, Status: st, IdemKey: r.IdemKey, CreatedAt: now.UTC().Truncate(time.Millisecond)}
}

// partsCol and keyCol are the NULLable columns' values.
func partsCol(parts []domain.Part) any {
	if len(parts) < 2 {
		return nil
	}
	return domain.FormatParts(parts)
}

func keyCol(k string) any {
	if k == "" {
		return nil
	}
	return k
}

// addPurchase adds an order of units to what a user holds of an item and refuses past
// limit. An UPDATE first: a buyer who holds units already takes the row's lock and
// nothing else; a new buyer's INSERT follows, and a concurrent first order of the same
// buyer meets the key and updates instead (a deadlock between such racers is run again
// by inTx).
func addPurchase(ctx context.Context, tx *sql.Tx, itemID, userID int64, units, limit int) error {
	res, err := tx.ExecContext(ctx, `UPDATE purchases SET units = units + ?, orders = orders + 1 WHERE item_id = ? AND user_id = ?`, units, itemID, userID)
	if err != nil {
		return fmt.Errorf("record purchase of user %d: %w", userID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		_, err = tx.ExecContext(ctx, `INSERT INTO purchases (item_id, user_id, units, orders) VALUES (?, ?, ?, 1)`, itemID, userID, units)
		if isDuplicate(err) {
			_, err = tx.ExecContext(ctx, `UPDATE purchases SET units = units + ?, orders = orders + 1 WHERE item_id = ? AND user_id = ?`, units, itemID, userID)
		}
		if err != nil {
			return fmt.Errorf("record purchase of user %d: %w", userID, err)
		}
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

const orderCols = `id, ticket, user_id, activity_id, item_id, bucket, parts, quantity, amount_cents, status, idem_key, created_at`

// orderColsOf is orderCols, each qualified by the table alias.
func orderColsOf(alias string) string {
	return alias + "." + strings.ReplaceAll(orderCols, ", ", ", "+alias+".")
}

func scanOrder(sc interface{ Scan(...any) error }) (domain.Order, error) {
	var o domain.Order
	var st string
	var parts, key sql.NullString
	err := sc.Scan(&o.ID, &o.Ticket, &o.UserID, &o.ActivityID, &o.ItemID, &o.Bucket, &parts, &o.Quantity, &o.AmountCents, &st, &key, &o.CreatedAt)
	if err != nil {
		return o, err
	}
	o.Status, o.IdemKey = domain.OrderStatus(st), key.String
	if parts.Valid {
		if o.Parts, err = domain.ParseParts(parts.String); err != nil {
			return o, fmt.Errorf("order %d: %w", o.ID, err)
		}
	}
	return o, nil
}

// OrderByTicket returns the row of a ticket: its order, or its void mark.
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

// ReplayOf returns the order a ticket replayed (see decided).
func (s *Store) ReplayOf(ctx context.Context, ticket string) (domain.Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, `SELECT `+orderColsOf("o")+` FROM ticket_replays r JOIN orders o ON o.id = r.order_id WHERE r.ticket = ?`, ticket))
	if errors.Is(err, sql.ErrNoRows) {
		return o, domain.Errorf(domain.ENotFound, "ticket %s replayed no order", ticket)
	}
	if err != nil {
		return o, fmt.Errorf("read the order ticket %s replayed: %w", ticket, err)
	}
	return o, nil
}

// OrdersByTickets returns the rows of the tickets that have one (orders and void
// marks), by ticket.
func (s *Store) OrdersByTickets(ctx context.Context, tickets []string) (map[string]domain.Order, error) {
	out := map[string]domain.Order{}
	err := byTickets(ctx, s.db, tickets, "", func(o domain.Order) { out[o.Ticket] = o })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// byTickets calls each with every row of tickets (AND where, when not empty), reading
// them at most 500 tickets a query.
func byTickets(ctx context.Context, db querier, tickets []string, where string, each func(domain.Order)) error {
	for len(tickets) > 0 {
		chunk := tickets[:min(len(tickets), 500)]
		tickets = tickets[len(chunk):]
		args := make([]any, len(chunk))
		for i, t := range chunk {
			args[i] = t
		}
		q := `SELECT ` + orderCols + ` FROM orders WHERE ticket IN (` + placeholders(len(chunk)) + `)`
		if where != "" {
			q += ` AND ` + where
		}
		if err := queryOrdersOn(ctx, db, each, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// queryOrders calls each with every order q selects.
func (s *Store) queryOrders(ctx context.Context, each func(domain.Order), q string, args ...any) error {
	return queryOrdersOn(ctx, s.db, each, q, args...)
}

func queryOrdersOn(ctx context.Context, db querier, each func(domain.Order), q string, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return err
		}
		each(o)
	}
	return rows.Err()
}

// Order returns one order of a user; not_found when it is not theirs (or a void mark).
func (s *Store) Order(ctx context.Context, userID, id int64) (domain.Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE id = ? AND user_id = ? AND status <> 'void'`, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return o, domain.Errorf(domain.ENotFound, "order %d not found", id)
	}
	if err != nil {
		return o, fmt.Errorf("read order %d: %w", id, err)
	}
	return o, nil
}

// Orders lists a page of the orders q selects, keyed on the id: a shopper's through
// the (user_id, id) index, an activity's through (activity_id, id).
func (s *Store) Orders(ctx context.Context, q domain.OrderQuery) ([]domain.Order, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	where := []string{`status <> 'void'`}
	var args []any
	for _, f := range []struct {
		col string
		v   int64
	}{{"user_id", q.UserID}, {"activity_id", q.ActivityID}, {"item_id", q.ItemID}} {
		if f.v != 0 {
			where, args = append(where, f.col+` = ?`), append(args, f.v)
		}
	}
	if len(q.Statuses) > 0 {
		where = append(where, `status IN (`+placeholders(len(q.Statuses))+`)`)
		for _, st := range q.Statuses {
			args = append(args, st)
		}
	}
	if !q.WrittenBefore.IsZero() {
		where, args = append(where, `created_at < ?`), append(args, q.WrittenBefore.UTC())
	}
	order := ` ORDER BY id DESC`
	if q.After > 0 {
		where, args = append(where, `id < ?`), append(args, q.After)
	}
	if q.Oldest {
		order = ` ORDER BY id`
		if q.After > 0 {
			where[len(where)-1] = `id > ?`
		}
	}
	var out []domain.Order
	err := s.queryOrders(ctx, func(o domain.Order) { out = append(out, o) },
		`SELECT `+orderCols+` FROM orders WHERE `+strings.Join(where, ` AND `)+order+` LIMIT ?`, append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return out, nil
}

// EndOrder moves a created order to cancelled or expired and gives its units back to
// the stock rows and the user's purchases, in one transaction. It reports whether this
// call changed the order; an order already ended (or paid) is returned as it is, so
// ending twice is not an error. Only the owner's order is ended: another user's, or
// user 0's, is not found.
func (s *Store) EndOrder(ctx context.Context, userID, id int64, to domain.OrderStatus) (domain.Order, bool, error) {
	if to != domain.OrderCancelled && to != domain.OrderExpired {
		return domain.Order{}, false, domain.Errorf(domain.EBadRequest, "an order ends cancelled or expired, not %s", to)
	}
	var o domain.Order
	var changed bool
	err := s.inTx(ctx, fmt.Sprintf("end order %d", id), func(tx *sql.Tx) error {
		q := `SELECT ` + orderCols + ` FROM orders WHERE id = ? AND user_id = ? AND status <> 'void' FOR UPDATE`
		var err error
		o, err = scanOrder(tx.QueryRowContext(ctx, q, id, userID))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.ENotFound, "order %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("read order %d: %w", id, err)
		}
		if changed = o.Status == domain.OrderCreated; !changed {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET status = ?, updated_at = CURRENT_TIMESTAMP(3) WHERE id = ?`, to, id); err != nil {
			return fmt.Errorf("end order %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE purchases SET units = units - ?, orders = orders - 1 WHERE item_id = ? AND user_id = ?`, o.Quantity, o.ItemID, o.UserID); err != nil {
			return fmt.Errorf("end order %d: %w", id, err)
		}
		return s.moveParts(ctx, tx, o.ItemID, o.Units(), +1)
	})
	if err != nil {
		return o, false, err
	}
	if changed {
		o.Status = to
	}
	return o, changed, nil
}

// StaleOrders returns orders still created (unpaid) that were created before t.
func (s *Store) StaleOrders(ctx context.Context, before time.Time, limit int) ([]domain.Order, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []domain.Order
	err := s.queryOrders(ctx, func(o domain.Order) { out = append(out, o) },
		`SELECT `+orderCols+` FROM orders WHERE status = 'created' AND created_at < ? ORDER BY created_at LIMIT ?`, before.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("list stale orders: %w", err)
	}
	return out, nil
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

// PayOrder marks a created order paid, so the unpaid-order timeout leaves it alone;
// conflict when it was cancelled, expired or deleted.
func (s *Store) PayOrder(ctx context.Context, userID, id int64) (domain.Order, error) {
	return s.moveOrder(ctx, userID, id, domain.ActPay, domain.OrderCreated)
}

// DeleteOrder moves a cancelled or expired order to deleted; conflict when it is
// unpaid or paid.
func (s *Store) DeleteOrder(ctx context.Context, userID, id int64) (domain.Order, error) {
	return s.moveOrder(ctx, userID, id, domain.ActDelete, domain.OrderCancelled, domain.OrderExpired)
}

// moveOrder applies act (domain.Transition) to a user's order in one conditional
// update, from any of the states from: an order that another call moved first is read
// back and answered as Transition says. An order that was in none of them when the
// update ran but is in one when read back (a cancel landed in between, and act is a
// delete) is tried again: answering it as it was read would say the act was done.
func (s *Store) moveOrder(ctx context.Context, userID, id int64, act string, from ...domain.OrderStatus) (domain.Order, error) {
	to, _, err := domain.Transition(id, from[0], act)
	if err != nil {
		return domain.Order{}, err
	}
	args := []any{to, id, userID}
	for _, st := range from {
		args = append(args, st)
	}
	for try := 0; ; try++ {
		// A statement of its own commits as it runs: the server may have moved the
		// order before a connection broke (execOnce says so). Asking again learns which.
		res, err := s.execOnce(ctx, `UPDATE orders SET status = ?, updated_at = CURRENT_TIMESTAMP(3) WHERE id = ? AND user_id = ? AND status IN (`+placeholders(len(from))+`)`, args...)
		if err != nil {
			return domain.Order{}, fmt.Errorf("%s order %d: %w", act, id, err)
		}
		o, err := s.Order(ctx, userID, id)
		if n, _ := res.RowsAffected(); err != nil && n > 0 && !domain.IsCode(err, domain.ENotFound) {
			return o, fmt.Errorf("%s order %d: moved; reading it back: %w: %w", act, id, errUnknownOutcome, err)
		}
		if err != nil {
			return o, err
		}
		if n, _ := res.RowsAffected(); n > 0 || o.Status == to {
			return o, nil
		}
		if slices.Contains(from, o.Status) { // moved into a state act applies to since the update
			if try < 3 {
				continue
			}
			return o, domain.Errorf(domain.EConflict, "order %d is changing; ask again", id)
		}
		if _, _, err := domain.Transition(id, o.Status, act); err != nil {
			return o, err
		}
		return o, nil
	}
}

// keyTickets reads the idempotency keys an item's orders hold, with their tickets.
// Every order has its buyer's purchases row, so the orders are found through the
// buyers (the purchases key, then the orders' key on user, item and idempotency key)
// rather than by scanning the item's orders, most of which hold no key.
func keyTickets(ctx context.Context, q querier, itemID int64) ([]domain.KeyTicket, error) {
	rows, err := q.QueryContext(ctx, `SELECT o.user_id, o.idem_key, o.ticket FROM purchases p
		JOIN orders o ON o.user_id = p.user_id AND o.item_id = p.item_id
		WHERE p.item_id = ? AND o.idem_key IS NOT NULL`, itemID)
	if err != nil {
		return nil, fmt.Errorf("read idempotency keys of item %d: %w", itemID, err)
	}
	defer rows.Close()
	var out []domain.KeyTicket
	for rows.Next() {
		var k domain.KeyTicket
		if err := rows.Scan(&k.UserID, &k.Key, &k.Ticket); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// View reads an item's stock rows, its orders ended since endedSince and, with full,
// its buyers and keys, in one read-only REPEATABLE READ transaction: every read sees
// the snapshot of the first.
func (s *Store) View(ctx context.Context, itemID int64, endedSince time.Time, full bool, tickets ...string) (domain.ItemView, error) {
	var v domain.ItemView
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return v, fmt.Errorf("view item %d: %w", itemID, err)
	}
	defer tx.Rollback()
	if v.Stock, err = stockRows(ctx, tx, itemID); err != nil {
		return v, err
	}
	if full {
		if v.Buyers, err = buyers(ctx, tx, itemID); err != nil {
			return v, err
		}
		if v.Keys, err = keyTickets(ctx, tx, itemID); err != nil {
			return v, err
		}
		v.RecentSince = time.Now().Add(-domain.RecentWindow).UTC().Truncate(time.Millisecond)
		if v.Recent, err = recentTickets(ctx, tx, itemID, v.RecentSince); err != nil {
			return v, err
		}
	}
	// The ended orders are found through the buyers, as the keys are.
	err = queryOrdersOn(ctx, tx, func(o domain.Order) { v.Ended = append(v.Ended, o) },
		`SELECT `+orderColsOf("o")+` FROM purchases p
		JOIN orders o ON o.user_id = p.user_id AND o.item_id = p.item_id
		WHERE p.item_id = ? AND o.status IN ('cancelled', 'expired', 'deleted') AND o.updated_at >= ?`, itemID, endedSince.UTC())
	if err != nil {
		return v, fmt.Errorf("read ended orders of item %d: %w", itemID, err)
	}
	if v.Written, err = written(ctx, tx, tickets); err != nil {
		return v, fmt.Errorf("read the orders of item %d's tickets: %w", itemID, err)
	}
	return v, tx.Commit()
}

// recentTickets are the tickets of an item's orders (not void marks) created at or
// after since.
func recentTickets(ctx context.Context, q querier, itemID int64, since time.Time) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT ticket FROM orders WHERE item_id = ? AND created_at >= ? AND status <> 'void'`, itemID, since)
	if err != nil {
		return nil, fmt.Errorf("read recent orders of item %d: %w", itemID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// written is which of tickets have an order that is not a void mark.
func written(ctx context.Context, q querier, tickets []string) (map[string]bool, error) {
	out := map[string]bool{}
	if err := byTickets(ctx, q, tickets, `status <> 'void'`, func(o domain.Order) { out[o.Ticket] = true }); err != nil {
		return nil, err
	}
	return out, nil
}

// buyers reads the units each user holds of an item.
func buyers(ctx context.Context, q querier, itemID int64) (map[int64]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id, units FROM purchases WHERE item_id = ? AND units > 0`, itemID)
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
