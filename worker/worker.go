// Package worker writes admitted order requests from the queue into MySQL and records
// each ticket's result in Redis.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/telemetry"
)

// Activities gives a worker the activity an order belongs to (its per-user limit and
// bucket count). Activity may answer from a copy a few seconds old; Recheck, when the
// implementation has it, reads the shared copy (sale.Catalog): before refusing an
// order over the per-user limit the worker asks it, since an operator may have raised
// the limit within the copy's life, and the ledger admitted the order under the new one.
type Activities interface {
	Activity(ctx context.Context, id int64) (*domain.Activity, error)
}

type rechecker interface {
	Recheck(ctx context.Context, id int64) (*domain.Activity, error)
}

// Config tunes a worker.
type Config struct {
	// A transient write failure (the database unreachable, say) is retried in process,
	// the wait doubling from RetryBackoff up to 1 s, for RetryFor (default 30 s) or
	// WriteAttempts tries (0: no bound but the time), before the batch goes back to the
	// queue for a later delivery. Riding an outage out in process writes the orders the
	// moment the database is back; a redelivery comes a second or more later, and the
	// first one of a new consumer group can take the client's 30 s route refresh.
	WriteAttempts int
	RetryBackoff  time.Duration
	RetryFor      time.Duration
	// BatchSize is the most orders of one item and bucket written in one transaction;
	// 1 writes each order on its own.
	BatchSize int
	// BatchWindow is how long the first order of a batch waits for others to join.
	BatchWindow time.Duration
}

// Worker is a domain.Handler. The queue bounds how many batches run at once.
type Worker struct {
	orders     domain.OrderStore
	ledger     domain.StockLedger
	activities Activities
	cfg        Config
	log        *slog.Logger
	m          *Metrics
	batches    *batcher
}

var _ domain.Handler = (*Worker)(nil)

// New returns a Worker.
func New(orders domain.OrderStore, ledger domain.StockLedger, activities Activities, cfg Config, m *Metrics, log *slog.Logger) *Worker {
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 30 * time.Second
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1
	}
	if cfg.BatchWindow <= 0 {
		cfg.BatchWindow = 2 * time.Millisecond
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	w := &Worker{orders: orders, ledger: ledger, activities: activities, cfg: cfg, log: log, m: m}
	w.batches = newBatcher(w.writeBatch, cfg.BatchSize, cfg.BatchWindow)
	return w
}

// Handle writes a batch. It returns an error, so that the whole batch is delivered
// again, only when a write failed for a transient reason; every delivery it
// acknowledges is written, or settled as failed with its stock given back.
//
// With batching on (Config.BatchSize above 1) the batch goes through in steps, each
// one call per item for all its deliveries: the ledger confirms their tickets, the
// writes meet in one transaction per item and bucket (the batcher), the ledger
// settles their tickets. Each delivery keeps its own outcome and failure path.
func (w *Worker) Handle(ctx context.Context, batch []domain.Delivery) error {
	if w.cfg.BatchSize <= 1 {
		var errs []error
		for _, d := range batch {
			errs = append(errs, w.handle(ctx, []domain.Delivery{d})...)
		}
		return errors.Join(errs...)
	}
	return errors.Join(w.handle(ctx, batch)...)
}

// job is one delivery on its way through a batch. Once done, result and err are its
// outcome; a job with a ticket to settle is done when the settle took.
type job struct {
	d      domain.Delivery
	ctx    context.Context
	span   trace.Span
	start  time.Time
	a      *domain.Activity
	result string
	err    error
	done   bool
	settle *domain.Ticket
	// deadLetter: the delivery is the last and could not be written; a settle that
	// fails leaves its ticket in flight for the reconciler rather than asking for a
	// delivery that will not come.
	deadLetter bool
	werr       error // the write's failure, for the dead letter's log
}

func (j *job) finish(result string, err error) {
	j.result, j.err, j.done = result, err, true
}

// toSettle ends the job with result once t is settled.
func (j *job) toSettle(t domain.Ticket, result string) {
	j.settle, j.result = &t, result
}

// handle takes deliveries through the steps and returns their errors.
func (w *Worker) handle(ctx context.Context, batch []domain.Delivery) []error {
	jobs := make([]*job, len(batch))
	for i, d := range batch {
		j := &job{d: d, start: time.Now()}
		j.ctx, j.span = telemetry.Tracer().Start(telemetry.Extract(ctx, d.Request.Trace), "worker.write_order", trace.WithAttributes(
			attribute.String("seckill.ticket", d.Request.Ticket), attribute.Int("seckill.attempt", d.Attempt)))
		jobs[i] = j
		w.prepare(j)
	}
	w.confirm(ctx, jobs)
	var writes []*job
	for _, j := range jobs {
		if !j.done && j.settle == nil {
			writes = append(writes, j)
		}
	}
	if len(writes) == 1 {
		w.write(writes[0])
	} else {
		// Each goes its own way until its write, where writes of the same item and
		// bucket meet in one transaction.
		var wg sync.WaitGroup
		for _, j := range writes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.write(j)
			}()
		}
		wg.Wait()
	}
	w.settleAll(ctx, jobs)
	var errs []error
	for _, j := range jobs {
		j.span.SetAttributes(attribute.String("seckill.result", j.result))
		if j.err != nil {
			j.span.SetStatus(codes.Error, j.result)
			errs = append(errs, j.err)
		}
		j.span.End()
		w.m.Processed.WithLabelValues(j.result).Inc()
		w.m.Latency.Observe(time.Since(j.start).Seconds())
		if j.d.Request.AdmittedAt > 0 {
			w.m.Lag.Observe(time.Since(time.UnixMilli(j.d.Request.AdmittedAt)).Seconds())
		}
	}
	return errs
}

// prepare ends a job whose message cannot be written here, and finds the activity of
// the others.
func (w *Worker) prepare(j *job) {
	d, r := j.d, j.d.Request
	if d.Malformed != nil {
		// Nothing can be written or given back for a message that does not say what it
		// is; it is counted and logged with its id for an operator.
		w.log.Error("dead letter: malformed message", "id", d.ID, "err", d.Malformed)
		w.m.DeadLetters.WithLabelValues("malformed").Inc()
		j.finish("malformed", nil)
		return
	}
	a, err := w.activities.Activity(j.ctx, r.ActivityID)
	if domain.IsCode(err, domain.ENotFound) {
		// No activity is ever deleted: a message of an activity this worker's database
		// does not know is another deployment's (a worker on the wrong topic or group).
		// Its ticket is not this worker's to end: the stock it would give back lives in
		// the ledger of the deployment that admitted it. Until its last delivery it goes
		// back to the group, where a worker of its own deployment may take it.
		if !d.Last {
			j.finish("foreign", fmt.Errorf("activity %d is unknown here: %w", r.ActivityID, err))
			return
		}
		w.log.Error("dead letter: the order's activity is unknown here; its ticket is left alone", "id", d.ID, "activity", r.ActivityID, "ticket", r.Ticket)
		w.m.DeadLetters.WithLabelValues("unknown_activity").Inc()
		j.finish("unknown_activity", nil)
		return
	}
	if err != nil {
		j.finish("retry", err)
		return
	}
	j.a = a
}

// itemKey groups tickets of one item: the ledger reads and settles them in one call.
type itemKey struct{ activity, item int64 }

// byItem groups the jobs pick selects by their ticket's item; a ticket that names no
// item goes on its own (the ledger's one-ticket calls answer it as they do).
func byItem(jobs []*job, pick func(*job) bool) [][]*job {
	var groups [][]*job
	at := map[itemKey]int{}
	for _, j := range jobs {
		if !pick(j) {
			continue
		}
		a, i, err := domain.ParseTicket(j.d.Request.Ticket)
		if err != nil {
			groups = append(groups, []*job{j})
			continue
		}
		k := itemKey{a, i}
		n, ok := at[k]
		if !ok {
			n = len(groups)
			at[k] = n
			groups = append(groups, nil)
		}
		groups[n] = append(groups[n], j)
	}
	return groups
}

// confirm reads the tickets of the jobs still open, one call per item, and ends those
// already decided: created (a redelivery) or failed (the backend gave up on it and gave
// its stock back).
func (w *Worker) confirm(ctx context.Context, jobs []*job) {
	for _, g := range byItem(jobs, func(j *job) bool { return !j.done }) {
		tickets := make([]domain.Ticket, len(g))
		var err error
		if len(g) == 1 {
			tickets[0], err = w.ledger.Ticket(g[0].ctx, g[0].d.Request.UserID, g[0].d.Request.Ticket)
			if domain.IsCode(err, domain.ENotFound) {
				err = nil // unknown: tickets[0].Status is empty
			}
		} else {
			q := make([]domain.Ticket, len(g))
			for i, j := range g {
				q[i] = domain.Ticket{ID: j.d.Request.Ticket, UserID: j.d.Request.UserID}
			}
			tickets, err = w.ledger.Tickets(ctx, q)
		}
		for i, j := range g {
			switch {
			case err != nil:
				j.finish("retry", err)
			case tickets[i].Status == domain.TicketCreated:
				j.finish("duplicate", nil)
			case tickets[i].Status == domain.TicketFailed:
				j.finish("skipped", nil)
			}
			// In flight, or unknown to Redis (it lost its state): write it; MySQL
			// guards stock and the per-user limit by itself.
		}
	}
}

// write writes a job's order, retrying transient failures for up to RetryFor, and
// leaves it with its ticket to settle, or done.
func (w *Worker) write(j *job) {
	ctx, r := j.ctx, j.d.Request
	var werr error
	first := time.Now()
	wait := w.cfg.RetryBackoff
	for attempt := 1; w.cfg.WriteAttempts <= 0 || attempt <= w.cfg.WriteAttempts; attempt++ {
		written, err := w.writeOrder(ctx, r, j.a.PerUserLimit)
		if err == nil {
			res, reason := "created", ""
			switch {
			case written.Duplicate:
				res = "duplicate"
			case written.Replay:
				res, reason = "replayed", domain.ReasonReplayed
			}
			t := ticketOf(r, domain.TicketCreated, written.Order.ID, reason)
			if res != "replayed" {
				// Written now, or by a delivery whose settle did not land: a ledger that
				// lost the ticket takes its units unless its load counted them (see
				// domain.Ticket.Wrote).
				t.Wrote, t.WrittenAt = &r, written.Order.CreatedAt
			}
			j.toSettle(t, res)
			return
		}
		var de *domain.Error
		if errors.As(err, &de) {
			if de.Code == domain.ELimitExceeded && w.raised(j) {
				attempt-- // not a failure: the write goes again under the raised limit
				continue
			}
			w.refuse(j, de.Code)
			return
		}
		werr = err
		if time.Since(first)+wait > w.cfg.RetryFor {
			break
		}
		w.m.WriteRetries.Inc()
		select {
		case <-ctx.Done():
			j.finish("retry", ctx.Err())
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
	if !j.d.Last {
		w.log.Warn("write failed; the message will be delivered again", "ticket", r.Ticket, "attempt", j.d.Attempt, "err", werr)
		j.finish("retry", werr)
		return
	}
	// The last delivery: end the ticket one way or the other so nothing stays pending.
	w.m.DeadLetters.WithLabelValues("write_failed").Inc()
	j.deadLetter, j.werr = true, werr
	w.refuse(j, "write_failed")
}

// raised reports whether the activity's per-user limit is now higher than the one j's
// write was refused under (j.a, a copy), and takes the newer activity.
func (w *Worker) raised(j *job) bool {
	rc, ok := w.activities.(rechecker)
	if !ok {
		return false
	}
	a, err := rc.Recheck(j.ctx, j.a.ID)
	if err != nil || a.PerUserLimit <= j.a.PerUserLimit {
		return false
	}
	w.log.Info("the per-user limit was raised since the worker's copy; writing again", "activity", a.ID, "limit", a.PerUserLimit, "ticket", j.d.Request.Ticket)
	j.a = a
	return true
}

// refuse ends a ticket whose order was not written: a void mark first, so a later
// delivery of the same message (a redelivery, a replay after its result expired) writes
// nothing, then the ticket failed with its stock back. When the void finds the order
// written (another delivery won), the ticket is settled created instead. An error asks
// for the message to come again.
func (w *Worker) refuse(j *job, reason string) {
	r := j.d.Request
	o, _, err := w.orders.VoidTicket(j.ctx, r)
	switch {
	case err != nil && j.deadLetter:
		w.log.Error("dead letter: outcome unknown, left in flight for the reconciler", "ticket", r.Ticket, "err", errors.Join(j.werr, err))
		j.finish("dead_letter", nil)
	case err != nil:
		j.finish("retry", err)
	case o.Replayed(r.Ticket): // an earlier delivery met the key's order and replayed it
		j.toSettle(ticketOf(r, domain.TicketCreated, o.ID, domain.ReasonReplayed), "replayed")
	case o.Status != domain.OrderVoid:
		t := ticketOf(r, domain.TicketCreated, o.ID, "")
		t.Wrote, t.WrittenAt = &r, o.CreatedAt // another delivery wrote it: see domain.Ticket.Wrote
		j.toSettle(t, "created")
	default:
		j.toSettle(ticketOf(r, domain.TicketFailed, 0, reason), "failed_"+reason)
	}
}

func ticketOf(r domain.OrderRequest, st domain.TicketStatus, orderID int64, reason string) domain.Ticket {
	return domain.Ticket{ID: r.Ticket, UserID: r.UserID, Status: st, OrderID: orderID, Reason: reason}
}

// settleAll settles the tickets the jobs decided, one call per item, and ends the jobs.
// A settle that fails asks for the message again (the write is idempotent, so the next
// delivery settles it), except for a dead letter's, which the reconciler ends.
func (w *Worker) settleAll(ctx context.Context, jobs []*job) {
	for _, g := range byItem(jobs, func(j *job) bool { return !j.done && j.settle != nil }) {
		var err error
		if len(g) == 1 {
			_, err = w.ledger.Settle(g[0].ctx, *g[0].settle, g[0].a.BucketCount)
		} else {
			ts := make([]domain.Ticket, len(g))
			for i, j := range g {
				ts[i] = *j.settle
			}
			_, err = w.ledger.SettleBatch(ctx, ts, g[0].a.BucketCount)
		}
		for _, j := range g {
			switch {
			case err == nil:
				if j.deadLetter {
					w.log.Error("dead letter: write kept failing; ticket decided", "ticket", j.d.Request.Ticket, "result", j.result, "err", j.werr)
				}
				j.finish(j.result, nil)
			case j.deadLetter:
				w.log.Error("dead letter: outcome unknown, left in flight for the reconciler", "ticket", j.d.Request.Ticket, "err", errors.Join(j.werr, err))
				j.finish("dead_letter", nil)
			default:
				j.finish("retry", err)
			}
		}
	}
}

// Metrics are the worker's Prometheus series.
type Metrics struct {
	Processed    *prometheus.CounterVec
	DeadLetters  *prometheus.CounterVec
	Batch        prometheus.Histogram
	Latency      prometheus.Histogram
	Lag          prometheus.Histogram
	WriteRetries prometheus.Counter
}

// NewMetrics creates the series and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Processed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_worker_messages_total",
			Help: "Messages handled by the worker, by result."}, []string{"result"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_worker_dead_letters_total",
			Help: "Messages that could not be written after every delivery, by reason."}, []string{"reason"}),
		Batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seckill_worker_batch_size",
			Help: "Orders written per transaction.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128}}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seckill_worker_write_seconds",
			Help: "Time to write one order.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seckill_worker_lag_seconds",
			Help: "Time from admission to the worker finishing the order (queue lag included).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		WriteRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "seckill_worker_write_retries_total",
			Help: "Transient write failures retried in process."}),
	}
	if reg != nil {
		reg.MustRegister(m.Processed, m.DeadLetters, m.Batch, m.Latency, m.Lag, m.WriteRetries)
	}
	return m
}

// writeOrder writes one order: on its own, or in a batch with others of its item and
// bucket (an order of several buckets goes on its own).
func (w *Worker) writeOrder(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	if w.cfg.BatchSize <= 1 || len(r.Parts) > 1 {
		return w.orders.WriteOrder(ctx, r, limit)
	}
	return w.batches.write(ctx, r, limit)
}

func (w *Worker) writeBatch(ctx context.Context, reqs []domain.OrderRequest, limit int) ([]domain.Written, []error) {
	w.m.Batch.Observe(float64(len(reqs)))
	return w.orders.WriteBatch(ctx, reqs, limit)
}
