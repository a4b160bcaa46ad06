package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/backend/testenv"
)

func newActivity(tb testing.TB, st *mysql.Store, stock int64, buckets, limit int) *domain.Activity {
	tb.Helper()
	strategy := domain.StrategyAsync
	if buckets > 1 {
		strategy = domain.StrategyBucket
	}
	a := &domain.Activity{Name: "test sale", Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour),
		Strategy: strategy, PerUserLimit: limit, BucketCount: buckets,
		Items: []domain.Item{{Name: "phone", PriceCents: 19900, TotalStock: stock}}}
	if err := st.CreateActivity(context.Background(), a); err != nil {
		tb.Fatal(err)
	}
	return a
}

func request(a *domain.Activity, user int64, ticket string, qty int) domain.OrderRequest {
	return domain.OrderRequest{Ticket: ticket, UserID: user, ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: qty, AmountCents: 19900 * int64(qty)}
}

func available(tb testing.TB, st *mysql.Store, itemID int64) int64 {
	tb.Helper()
	rows, err := st.Stock(context.Background(), itemID)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, r := range rows {
		n += r.Available
	}
	return n
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := testenv.MySQL(t)
	applied, err := mysql.Migrate(context.Background(), db.DB)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second migrate: got %v, %v; want nothing applied", applied, err)
	}
}

// TestItemCountsBackfill: 0002 counts the live orders each buyer of a database
// written before it already holds (the stats read them from there since).
func TestItemCountsBackfill(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	a := newActivity(t, db.Store, 10, 1, 3)
	for _, r := range []domain.OrderRequest{request(a, 1, "u1a", 1), request(a, 1, "u1b", 2), request(a, 2, "u2", 1)} {
		if _, err := db.Store.WriteOrder(ctx, r, 3); err != nil {
			t.Fatal(err)
		}
	}
	o, err := db.Store.OrderByTicket(ctx, "u1b")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Store.EndOrder(ctx, 1, o.ID, domain.OrderCancelled); err != nil {
		t.Fatal(err)
	}
	want := domain.ItemCounts{Orders: 2, Units: 2}
	if c, err := db.Store.Counts(ctx, a.Items[0].ID); err != nil || c != want {
		t.Fatalf("counts as written: got %+v, %v; want %+v", c, err, want)
	}
	// As a database from before 0002 would have them, then the backfill.
	if _, err := db.ExecContext(ctx, `UPDATE purchases SET orders = 0`); err != nil {
		t.Fatal(err)
	}
	ms, err := mysql.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var backfill string
	for _, m := range ms {
		if m.Version == "0002_item_counts" {
			for _, stmt := range strings.Split(m.SQL, ";\n") {
				if strings.Contains(stmt, "UPDATE purchases") {
					backfill = stmt
				}
			}
		}
	}
	if backfill == "" {
		t.Fatal("0002_item_counts has no backfill")
	}
	if _, err := db.ExecContext(ctx, backfill); err != nil {
		t.Fatal(err)
	}
	if c, err := db.Store.Counts(ctx, a.Items[0].ID); err != nil || c != want {
		t.Fatalf("counts after the backfill: got %+v, %v; want %+v", c, err, want)
	}
}

// TestWriteBatchIDs: batches written at the same time by several writers, on two
// buckets, each return the ids MySQL gave their orders (they are taken from the
// INSERT's first id, not read back, so a wrong step or an interleaving would show).
func TestWriteBatchIDs(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	const writers, batches, size = 8, 10, 12
	a := newActivity(t, db.Store, writers*batches*size, 2, 1)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				reqs := make([]domain.OrderRequest, size)
				for k := range reqs {
					user := int64((w*batches+b)*size + k + 1)
					reqs[k] = request(a, user, fmt.Sprintf("id-%d", user), 1)
					reqs[k].Bucket = w % 2
				}
				written, errs := db.Store.WriteBatch(ctx, reqs, 1)
				for k, r := range reqs {
					if errs[k] != nil {
						t.Errorf("%s: %v", r.Ticket, errs[k])
						continue
					}
					got, err := db.Store.OrderByTicket(ctx, r.Ticket)
					if err != nil || got.ID != written[k].Order.ID || got.UserID != r.UserID {
						t.Errorf("%s: batch said id %d; MySQL has %+v, %v", r.Ticket, written[k].Order.ID, got, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if left := available(t, db.Store, a.Items[0].ID); left != 0 {
		t.Fatalf("%d units left, want 0", left)
	}
}

// Rows a void or a replay left half way (a void mark of a release that kept no claim;
// a void's claim whose mark never landed) decide a later replay and void alike: the
// ticket reads void, and a void of it never answers a replay.
func TestClaimsLeftHalfWay(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	a := newActivity(t, db.Store, 10, 1, 5)
	first := request(a, 1, "1-1-first", 1)
	first.IdemKey = "k"
	o, err := db.Store.WriteOrder(ctx, first, 5)
	if err != nil {
		t.Fatal(err)
	}
	wantVoid := func(what string, r domain.OrderRequest, replayKept bool) {
		t.Helper()
		if w, err := db.Store.WriteOrder(ctx, r, 5); !domain.IsCode(err, domain.EVoided) {
			t.Fatalf("%s: the replaying write: got %+v, %v; want voided", what, w, err)
		}
		if own, err := db.Store.OrderByTicket(ctx, r.Ticket); err != nil || own.Status != domain.OrderVoid {
			t.Fatalf("%s: the ticket's row: got %+v, %v; want its void mark", what, own, err)
		}
		if got, voided, err := db.Store.VoidTicket(ctx, r); err != nil || voided || got.Status != domain.OrderVoid || got.Ticket != r.Ticket {
			t.Fatalf("%s: a void after: got %+v, voided %v, %v; want the void mark", what, got, voided, err)
		}
		if got, err := db.Store.ReplayOf(ctx, r.Ticket); !replayKept && !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("%s: ReplayOf: got %+v, %v; want not_found", what, got, err)
		}
	}
	// A void mark of an older release (no claim) that landed beside a replay's claim.
	old := request(a, 1, "1-1-old", 1)
	old.IdemKey = "k"
	if _, err := db.ExecContext(ctx, `INSERT INTO orders (ticket, user_id, activity_id, item_id, bucket, quantity, amount_cents, status, created_at, updated_at)
		VALUES (?, 1, ?, ?, 0, 1, 0, 'void', NOW(3), NOW(3))`, old.Ticket, a.ID, a.Items[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO ticket_replays (ticket, order_id) VALUES (?, ?)`, old.Ticket, o.Order.ID); err != nil {
		t.Fatal(err)
	}
	wantVoid("a void mark beside a replay's claim", old, true)
	// A void's claim whose mark never landed.
	half := request(a, 1, "1-1-half", 1)
	half.IdemKey = "k"
	if _, err := db.ExecContext(ctx, `INSERT INTO ticket_replays (ticket, order_id) VALUES (?, 0)`, half.Ticket); err != nil {
		t.Fatal(err)
	}
	wantVoid("a claim without its mark", half, false)
	if got := available(t, db.Store, a.Items[0].ID); got != 9 {
		t.Fatalf("available: got %d, want 9 (the key's one order, %d)", got, o.Order.ID)
	}
}

// A pay whose connection breaks while MariaDB holds its statement (here: waiting on the
// order's row lock) answers outcome unknown, not a plain failure the service turns into
// 503 "nothing was taken": the server may run it once the lock is free, and did in a
// probe that killed MariaDB under pays. Asking again learns the order's state.
func TestPayCutMidStatementIsUnknown(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	a := newActivity(t, db.Store, 10, 1, 5)
	o, err := db.Store.WriteOrder(ctx, request(a, 7, "1-1-paycut", 1), 5)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, mustAddr(t, db.DSN))
	cut, err := mysql.Open(ctx, strings.Replace(db.DSN, mustAddr(t, db.DSN), proxy.Addr(), 1), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cut.Close() })
	// MySQL unreachable: nothing was sent, and the answer says so (not unknown).
	proxy.Cut()
	if _, err := mysql.NewStore(cut).PayOrder(ctx, 7, o.Order.ID); err == nil || errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("a pay with MySQL unreachable: got %v, want a failure that says nothing ran", err)
	}
	proxy.Restore()
	lock, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `SELECT id FROM orders WHERE id = ? FOR UPDATE`, o.Order.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := mysql.NewStore(cut).PayOrder(ctx, 7, o.Order.ID)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the UPDATE waits on the lock
	proxy.Cut()
	err = <-done
	if !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("a pay cut mid-statement: got %v, want outcome unknown", err)
	}
}

// mustAddr is the host:port of a DSN.
func mustAddr(tb testing.TB, dsn string) string {
	tb.Helper()
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg.Addr
}

// Open waits for a MySQL that is not answering yet (restarting): a backend or worker
// started during an outage exited, and nobody started it again (a probe). A wrong
// password is not waited for.
func TestOpenWaitsForMySQL(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	addr := mustAddr(t, db.DSN)
	proxy := testenv.NewProxy(t, addr)
	proxy.Cut()
	go func() {
		time.Sleep(700 * time.Millisecond)
		proxy.Restore()
	}()
	pool, err := mysql.Open(ctx, strings.Replace(db.DSN, addr, proxy.Addr(), 1), 2)
	if err != nil {
		t.Fatalf("open while MySQL is away for 0.7 s: %v", err)
	}
	pool.Close()

	cfg, err := gomysql.ParseDSN(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Passwd = "not-the-password"
	start := time.Now()
	if _, err := mysql.Open(ctx, cfg.FormatDSN(), 1); err == nil {
		t.Fatal("open with a wrong password: got no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a wrong password took %v to refuse, want at once", d)
	}
	was := mysql.OpenWait
	mysql.OpenWait = 300 * time.Millisecond
	defer func() { mysql.OpenWait = was }()
	proxy.Cut()
	if _, err := mysql.Open(ctx, strings.Replace(db.DSN, addr, proxy.Addr(), 1), 1); err == nil {
		t.Fatal("open of a MySQL that never answers: got no error")
	}
}
