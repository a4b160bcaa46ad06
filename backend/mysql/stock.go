package mysql

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/seckill/flashsale/backend/domain"
)

// querier is a connection pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Stock returns the stock rows of an item, by bucket.
func (s *Store) Stock(ctx context.Context, itemID int64) ([]domain.StockRow, error) {
	return stockRows(ctx, s.db, itemID)
}

func stockRows(ctx context.Context, q querier, itemID int64) ([]domain.StockRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT bucket, available, version FROM item_stock WHERE item_id = ? ORDER BY bucket`, itemID)
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

// AddStock changes an item's total stock by delta, applied to one bucket's available
// units with the same versioned update as orders; it refuses to take more than is
// available.
func (s *Store) AddStock(ctx context.Context, itemID int64, bucket int, delta int64) error {
	if delta == 0 {
		return nil
	}
	return s.inTx(ctx, "add stock", func(tx *sql.Tx) error {
		if err := s.moveStock(ctx, tx, itemID, bucket, delta); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE items SET total_stock = total_stock + ? WHERE id = ?`, delta, itemID); err != nil {
			return fmt.Errorf("update total stock of item %d: %w", itemID, err)
		}
		return nil
	})
}

// MoveStock moves n units from one bucket row of an item to another in one
// transaction, both rows updated with the versioned update.
func (s *Store) MoveStock(ctx context.Context, itemID int64, from, to int, n int64) error {
	return s.inTx(ctx, "move stock", func(tx *sql.Tx) error {
		// Lower bucket first: two movers lock rows in the same order.
		first, second := from, to
		d1, d2 := -n, n
		if to < from {
			first, second, d1, d2 = to, from, n, -n
		}
		if err := s.moveStock(ctx, tx, itemID, first, d1); err != nil {
			return err
		}
		return s.moveStock(ctx, tx, itemID, second, d2)
	})
}
