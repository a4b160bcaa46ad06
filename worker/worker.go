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
// bucket count).
type Activities interface {
	Activity(ctx context.Context, id int64) (*domain.Activity, error)
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
func (w *Worker) Handle(ctx context.Context, batch []domain.Delivery) error {
	if len(batch) == 1 || w.cfg.BatchSize <= 1 {
		var errs []error
		for _, d := range batch {
			if err := w.one(ctx, d); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	// Each delivery goes its own way until its write, where deliveries of the same
	// item and bucket meet in one transaction.
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	for i, d := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.one(ctx, d)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (w *Worker) one(ctx context.Context, d domain.Delivery) error {
	start := time.Now()
	ctx, span := telemetry.Tracer().Start(telemetry.Extract(ctx, d.Request.Trace), "worker.write_order", trace.WithAttributes(
		attribute.String("seckill.ticket", d.Request.Ticket), attribute.Int("seckill.attempt", d.Attempt)))
	defer span.End()
	result, err := w.process(ctx, d)
	span.SetAttributes(attribute.String("seckill.result", result))
	if err != nil {
		span.SetStatus(codes.Error, result)
	}
	w.m.Processed.WithLabelValues(result).Inc()
	w.m.Latency.Observe(time.Since(start).Seconds())
	if d.Request.AdmittedAt > 0 {
		w.m.Lag.Observe(time.Since(time.UnixMilli(d.Request.AdmittedAt)).Seconds())
	}
	return err
}

func (w *Worker) process(ctx context.Context, d domain.Delivery) (string, error) {
	r := d.Request
	if d.Malformed != nil {
		// Nothing can be written or given back for a message that does not say what it
		// is; it is counted and logged with its id for an operator.
		w.log.Error("dead letter: malformed message", "id", d.ID, "err", d.Malformed)
		w.m.DeadLetters.WithLabelValues("malformed").Inc()
		return "malformed", nil
	}
	a, err := w.activities.Activity(ctx, r.ActivityID)
	if domain.IsCode(err, domain.ENotFound) {
		// No activity is ever deleted: a message of an activity this worker's database
		// does not know is another deployment's (a worker on the wrong topic or group).
		// Its ticket is not this worker's to end: the stock it would give back lives in
		// the ledger of the deployment that admitted it. Until its last delivery it goes
		// back to the group, where a worker of its own deployment may take it.
		if !d.Last {
			return "foreign", fmt.Errorf("activity %d is unknown here: %w", r.ActivityID, err)
		}
		w.log.Error("dead letter: the order's activity is unknown here; its ticket is left alone", "id", d.ID, "activity", r.ActivityID, "ticket", r.Ticket)
		w.m.DeadLetters.WithLabelValues("unknown_activity").Inc()
		return "unknown_activity", nil
	}
	if err != nil {
		return "retry", err
	}
	t, err := w.ledger.Ticket(ctx, r.UserID, r.Ticket)
	switch {
	case err == nil && t.Status == domain.TicketCreated:
		return "duplicate", nil
	case err == nil && t.Status == domain.TicketFailed:
		// The backend gave up on it (the send looked failed) and gave its stock back.
		return "skipped", nil
	case err != nil && !domain.IsCode(err, domain.ENotFound):
		return "retry", err
	}
	// In flight, or unknown to Redis (it lost its state): write it; MySQL guards stock
	// and the per-user limit by itself.
	var werr error
	first := time.Now()
	wait := w.cfg.RetryBackoff
	for attempt := 1; w.cfg.WriteAttempts <= 0 || attempt <= w.cfg.WriteAttempts; attempt++ {
		written, err := w.write(ctx, r, a.PerUserLimit)
		if err == nil {
			res, reason := "created", ""
			switch {
			case written.Duplicate:
				res = "duplicate"
			case written.Replay:
				res, reason = "replayed", domain.ReasonReplayed
			}
			_, err := w.settle(ctx, r, a.BucketCount, domain.TicketCreated, written.Order.ID, reason)
			return res, err
		}
		var de *domain.Error
		if errors.As(err, &de) {
			return w.refuse(ctx, r, a, de.Code)
		}
		werr = err
		if time.Since(first)+wait > w.cfg.RetryFor {
			break
		}
		w.m.WriteRetries.Inc()
		select {
		case <-ctx.Done():
			return "retry", ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
	if !d.Last {
		w.log.Warn("write failed; the message will be delivered again", "ticket", r.Ticket, "attempt", d.Attempt, "err", werr)
		return "retry", werr
	}
	// The last delivery: end the ticket one way or the other so nothing stays pending.
	w.m.DeadLetters.WithLabelValues("write_failed").Inc()
	res, err := w.refuse(ctx, r, a, "write_failed")
	if err != nil {
		w.log.Error("dead letter: outcome unknown, left in flight for the reconciler", "ticket", r.Ticket, "err", errors.Join(werr, err))
		return "dead_letter", nil
	}
	w.log.Error("dead letter: write kept failing; ticket decided", "ticket", r.Ticket, "result", res, "err", werr)
	return res, nil
}

// refuse ends a ticket whose order was not written: a void mark first, so a later
// delivery of the same message (a redelivery, a replay after its result expired) writes
// nothing, then the ticket failed with its stock back. When the void finds the order
// written (another delivery won), the ticket is settled created instead. An error asks
// for the message to come again.
func (w *Worker) refuse(ctx context.Context, r domain.OrderRequest, a *domain.Activity, reason string) (string, error) {
	o, _, err := w.orders.VoidTicket(ctx, r)
	if err != nil {
		return "retry", err
	}
	if o.Status != domain.OrderVoid {
		return w.settle(ctx, r, a.BucketCount, domain.TicketCreated, o.ID, "")
	}
	return w.settle(ctx, r, a.BucketCount, domain.TicketFailed, 0, reason)
}

func (w *Worker) settle(ctx context.Context, r domain.OrderRequest, buckets int, st domain.TicketStatus, orderID int64, reason string) (string, error) {
	_, err := w.ledger.Settle(ctx, domain.Ticket{ID: r.Ticket, UserID: r.UserID, Status: st, OrderID: orderID, Reason: reason}, buckets)
	if err != nil {
		return "retry", err
	}
	if st == domain.TicketFailed {
		return "failed_" + reason, nil
	}
	return "created", nil
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

// write writes one order: on its own, or in a batch with others of its item and bucket
// (an order of several buckets goes on its own).
func (w *Worker) write(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	if w.cfg.BatchSize <= 1 || len(r.Parts) > 1 {
		return w.orders.WriteOrder(ctx, r, limit)
	}
	return w.batches.write(ctx, r, limit)
}

func (w *Worker) writeBatch(ctx context.Context, reqs []domain.OrderRequest, limit int) ([]domain.Written, []error) {
	w.m.Batch.Observe(float64(len(reqs)))
	return w.orders.WriteBatch(ctx, reqs, limit)
}
