package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"

	"github.com/seckill/flashsale/bench/load"
	"github.com/seckill/flashsale/gateway/api"
)

// Check is one invariant checked after a run.
type Check struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`
	Skipped bool   `json:"skipped,omitempty"` // could not be checked (said why in Detail)
}

// attemptRec is what the bench keeps of one attempt, for the checks.
type attemptRec struct {
	sent    bool
	user    int32
	item    int32
	status  int16 // HTTP status of the last answer; 0: none
	tries   int8  // tries it took (a retry keeps the Idempotency-Key)
	ticket  string
	orderID string
}

// definite: the answer says what happened (not a transport error, a 5xx or a 429).
func (r *attemptRec) definite() bool {
	return r.status != 0 && r.status < 500 && r.status != http.StatusTooManyRequests
}

type checkInput struct {
	sc       *scenario
	act      *api.Activity
	stats    *api.Stats
	recs     []attemptRec
	finals   []load.Final // async and bucket
	async    bool         // tickets were followed
	db       *sql.DB      // nil: no direct SQL checks
	settled  bool
	settleIn string // how long the settle wait was allowed
	userBase int64  // user i is userBase+i+1
}

// checkInvariants checks DESIGN.md's invariants on one settled run, through the
// stats endpoint and, with a database, directly in MySQL.
func checkInvariants(ctx context.Context, in checkInput) []Check {
	var checks []Check
	add := func(name string, ok bool, format string, args ...any) {
		checks = append(checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	byID := map[int64]api.ItemStats{}
	for _, it := range in.stats.Items {
		byID[it.ItemID] = it
	}
	itemIDs := make([]int64, len(in.act.Items))
	for k, it := range in.act.Items {
		itemIDs[k] = it.ID
	}

	// 1. No oversell, and every unit accounted for (sold or still on sale).
	var over, unaccounted []string
	for k, id := range itemIDs {
		st := byID[id]
		stock := in.sc.items[k].Stock
		if st.UnitsSold > stock {
			over = append(over, fmt.Sprintf("item %d: %d units sold of %d", id, st.UnitsSold, stock))
		}
		if st.UnitsSold+st.MySQLStock != stock {
			unaccounted = append(unaccounted, fmt.Sprintf("item %d: %d sold + %d left != %d", id, st.UnitsSold, st.MySQLStock, stock))
		}
	}
	add("no oversell", len(over) == 0, "%s", orAll(over, "units sold <= stock on every item (stats)"))
	add("stock accounted", len(unaccounted) == 0, "%s", orAll(unaccounted, "units sold + MySQL stock = stock on every item (stats)"))

	// 2. No undersell: where demand exceeded stock, nothing is left.
	held := map[[2]int32]int{} // (item, user) -> definite attempts
	for i := range in.recs {
		r := &in.recs[i]
		if r.sent && r.definite() {
			held[[2]int32{r.item, r.user}]++
		}
	}
	demand := make([]int64, len(itemIDs))
	for k, n := range held {
		demand[k[0]] += int64(min(n, in.sc.perUser))
	}
	var under []string
	undersold := 0
	for k, id := range itemIDs {
		st := byID[id]
		if demand[k] > in.sc.items[k].Stock {
			undersold++
			if st.MySQLStock != 0 || st.RedisStock != 0 {
				under = append(under, fmt.Sprintf("item %d: demand %d > stock %d but %d left in MySQL, %d in Redis", id, demand[k], in.sc.items[k].Stock, st.MySQLStock, st.RedisStock))
			}
		}
	}
	add("no undersell", len(under) == 0, "%s", orAll(under, fmt.Sprintf("%d of %d items had demand over stock; all of them sold out", undersold, len(itemIDs))))

	// 3 and 4, from the answers: one order per ticket, at most the limit per user.
	tickets := map[string]int{}
	orders := map[string]int{}
	perUser := map[[2]int32]int{}
	var dupT, dupO []string
	known := 0 // orders the bench knows were created
	for i := range in.recs {
		r := &in.recs[i]
		if r.ticket != "" {
			if tickets[r.ticket]++; tickets[r.ticket] == 2 {
				dupT = append(dupT, r.ticket)
			}
		}
		if r.status == http.StatusCreated && r.orderID != "" {
			known++
			perUser[[2]int32{r.item, r.user}]++
			if orders[r.orderID]++; orders[r.orderID] == 2 {
				dupO = append(dupO, r.orderID)
			}
		}
	}
	var stuck []string
	created, failed := 0, 0
	for _, f := range in.finals {
		switch f.Status {
		case "created":
			created++
			known++
			r := &in.recs[f.Attempt] // the ticket's attempt names the user and item
			perUser[[2]int32{r.item, r.user}]++
			if orders[f.OrderID]++; orders[f.OrderID] == 2 {
				dupO = append(dupO, f.OrderID)
			}
		case "failed":
			failed++
		default:
			if len(stuck) < 5 {
				stuck = append(stuck, fmt.Sprintf("%s %s after %d polls", f.ID, f.Status, f.Polls))
			} else {
				stuck = append(stuck, "...")
			}
		}
	}
	var overLimit []string
	for k, n := range perUser {
		if n > in.sc.perUser && len(overLimit) < 5 {
			overLimit = append(overLimit, fmt.Sprintf("user %d holds %d of item %d", in.userBase+int64(k[1])+1, n, itemIDs[k[0]]))
		}
	}
	add("one ticket per attempt, one order per ticket", len(dupT) == 0 && len(dupO) == 0,
		"%s", orAll(append(prefix("ticket answered twice: ", dupT), prefix("order seen twice: ", dupO)...), fmt.Sprintf("%d distinct tickets, %d distinct orders (answers)", len(tickets), len(orders))))
	add("per-user limit", len(overLimit) == 0, "%s", orAll(overLimit, fmt.Sprintf("no user holds more than %d of an item (answers)", in.sc.perUser)))

	// 5. No stuck ticket.
	pendingStats := in.stats.PendingTickets
	var inflight int64
	for _, it := range in.stats.Items {
		inflight += it.InFlight
	}
	stuckOK := pendingStats == 0 && inflight == 0 && len(stuck) == 0 && in.settled
	detail := fmt.Sprintf("pending tickets 0, in flight 0; %d tickets created, %d failed", created, failed)
	if !in.async {
		detail = "pending tickets 0, in flight 0 (every admitted answer carried its order)"
	}
	if !stuckOK {
		detail = fmt.Sprintf("not settled within %s: pending tickets %d, in flight %d; unresolved by polling: %s", in.settleIn, pendingStats, inflight, strings.Join(stuck, ", "))
	}
	add("no stuck ticket", stuckOK, "%s", detail)

	// 6. Redis stock equals MySQL stock.
	var drift []string
	for _, id := range itemIDs {
		if st := byID[id]; st.RedisStock != st.MySQLStock {
			drift = append(drift, fmt.Sprintf("item %d: redis %d, mysql %d", id, st.RedisStock, st.MySQLStock))
		}
	}
	add("redis stock = mysql stock", len(drift) == 0, "%s", orAll(drift, "on every item (stats)"))

	// 7. None lost, none unexplained: every order the answers name is in MySQL, and
	// MySQL holds no order that no answer admitted, unless some answers were lost. A
	// retry carries the first try's Idempotency-Key, so it must get the first answer.
	var statOrders int64
	for _, it := range in.stats.Items {
		statOrders += it.Orders
	}
	lost, retriedRefused := 0, 0
	for i := range in.recs {
		r := &in.recs[i]
		if r.sent && !r.definite() && r.status != http.StatusTooManyRequests {
			lost++
		}
		if r.sent && r.tries > 1 && r.status == http.StatusConflict {
			retriedRefused++
		}
	}
	switch {
	case statOrders < int64(known):
		add("orders match answers", false, "%d orders in MySQL but %d were answered created: orders lost", statOrders, known)
	case statOrders > int64(known) && lost == 0:
		add("orders match answers", false, "%d orders in MySQL that no answer admitted (%d in MySQL, %d answered created), and no answer was lost; "+
			"%d attempts were retried with the same Idempotency-Key after a timeout or 5xx and then refused with 409: a retry must return the first answer",
			statOrders-int64(known), statOrders, known, retriedRefused)
	case statOrders > int64(known):
		add("orders match answers", true, "%d orders in MySQL, %d answered created; the other %d belong to some of the %d attempts answered with a timeout or a 5xx",
			statOrders, known, statOrders-int64(known), lost)
	default:
		add("orders match answers", true, "%d orders in MySQL, each answered created", statOrders)
	}

	if in.db != nil {
		checks = append(checks, sqlChecks(ctx, in, itemIDs, statOrders)...)
	} else {
		checks = append(checks, Check{Name: "direct SQL", OK: true, Skipped: true, Detail: "no database DSN: checked through the stats endpoint only"})
	}
	return checks
}

// sqlChecks look in MySQL itself.
func sqlChecks(ctx context.Context, in checkInput, itemIDs []int64, statOrders int64) []Check {
	var checks []Check
	fail := func(err error) []Check {
		return append(checks, Check{Name: "direct SQL", OK: false, Detail: err.Error()})
	}
	var n int
	if err := in.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM activities WHERE id = ?`, in.act.ID).Scan(&n); err != nil {
		return fail(fmt.Errorf("read activity: %w", err))
	}
	if n == 0 {
		return []Check{{Name: "direct SQL", OK: true, Skipped: true, Detail: fmt.Sprintf("activity %d is not in the given database", in.act.ID)}}
	}
	var over, drift []string
	var sqlOrders int64
	for k, id := range itemIDs {
		var units, cnt, avail sql.NullInt64
		if err := in.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(quantity),0), COUNT(*) FROM orders WHERE item_id = ? AND status NOT IN ('cancelled','expired','void')`, id).Scan(&units, &cnt); err != nil {
			return fail(fmt.Errorf("count orders of item %d: %w", id, err))
		}
		if err := in.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(available),0) FROM item_stock WHERE item_id = ?`, id).Scan(&avail); err != nil {
			return fail(fmt.Errorf("read stock of item %d: %w", id, err))
		}
		sqlOrders += cnt.Int64
		stock := in.sc.items[k].Stock
		if units.Int64 > stock || units.Int64+avail.Int64 != stock {
			over = append(over, fmt.Sprintf("item %d: %d units in orders + %d available, stock %d", id, units.Int64, avail.Int64, stock))
		}
		for _, st := range in.stats.Items {
			if st.ItemID == id && st.RedisStock != avail.Int64 {
				drift = append(drift, fmt.Sprintf("item %d: redis %d, item_stock %d", id, st.RedisStock, avail.Int64))
			}
		}
	}
	checks = append(checks, Check{Name: "no oversell (SQL)", OK: len(over) == 0, Detail: orAll(over, "orders' units + item_stock.available = stock on every item")})
	checks = append(checks, Check{Name: "redis stock = mysql stock (SQL)", OK: len(drift) == 0, Detail: orAll(drift, "Redis counters equal SUM(item_stock.available)")})

	var limitRows int
	if err := in.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT item_id, user_id FROM orders WHERE activity_id = ? AND status NOT IN ('cancelled','expired','void')
		GROUP BY item_id, user_id HAVING SUM(quantity) > ?) t`, in.act.ID, in.sc.perUser).Scan(&limitRows); err != nil {
		return fail(fmt.Errorf("per-user limit: %w", err))
	}
	checks = append(checks, Check{Name: "per-user limit (SQL)", OK: limitRows == 0, Detail: fmt.Sprintf("%d (item, user) pairs over the limit of %d", limitRows, in.sc.perUser)})

	var dupRows int
	if err := in.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT ticket FROM orders WHERE activity_id = ? GROUP BY ticket HAVING COUNT(*) > 1) t`, in.act.ID).Scan(&dupRows); err != nil {
		return fail(fmt.Errorf("duplicate tickets: %w", err))
	}
	checks = append(checks, Check{Name: "one order per ticket (SQL)", OK: dupRows == 0 && sqlOrders == statOrders,
		Detail: fmt.Sprintf("%d tickets with more than one order; %d orders in SQL, %d in stats", dupRows, sqlOrders, statOrders)})
	return checks
}

func orAll(problems []string, ok string) string {
	if len(problems) == 0 {
		return ok
	}
	if len(problems) > 5 {
		problems = append(problems[:5:5], fmt.Sprintf("and %d more", len(problems)-5))
	}
	return strings.Join(problems, "; ")
}

func prefix(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}
