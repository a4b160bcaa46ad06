package sale

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the backend's Prometheus series.
type Metrics struct {
	Place       *prometheus.HistogramVec // outcome
	Refused     *prometheus.CounterVec   // reason
	Lua         *prometheus.CounterVec   // result of the pre-deduction script
	Publish     *prometheus.HistogramVec // result
	Ended       *prometheus.CounterVec   // cancelled, expired
	Repairs     *prometheus.CounterVec   // what the reconciler repaired
	StockDrift  *prometheus.GaugeVec     // item: redis+in-flight minus mysql, last seen
	StaleSettle *prometheus.CounterVec   // in-flight tickets the reconciler settled
	Uncompared  prometheus.Counter       // items the reconciler could not compare (their state kept moving)
	LeaseHeld   prometheus.Gauge         // 1 while this backend holds the duties' lease
	Batch       *prometheus.HistogramVec // requests per call, by stage: deduct, settle, publish, write
}

// NewMetrics creates the series and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	m := &Metrics{
		Place: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "seckill_backend_place_order_seconds",
			Help: "Time to admit or refuse an order attempt, by outcome.", Buckets: buckets}, []string{"outcome"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_backend_refused_total",
			Help: "Order attempts the backend refused, by reason."}, []string{"reason"}),
		Lua: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_backend_lua_results_total",
			Help: "Results of the stock pre-deduction script."}, []string{"result"}),
		Publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "seckill_backend_publish_seconds",
			Help: "Time to hand an admitted order to the queue, by result.", Buckets: buckets}, []string{"result"}),
		Ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_backend_orders_ended_total",
			Help: "Orders cancelled or expired, with their stock given back."}, []string{"to"}),
		Repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_reconciler_repairs_total",
			Help: "Redis stock counters the reconciler set from MySQL."}, []string{"kind"}),
		StockDrift: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seckill_reconciler_drift_units",
			Help: "Redis stock plus in-flight units minus MySQL stock, as last seen."}, []string{"item"}),
		StaleSettle: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_reconciler_stale_tickets_total",
			Help: "In-flight tickets left behind that the reconciler settled."}, []string{"status"}),
		Uncompared: prometheus.NewCounter(prometheus.CounterOpts{Name: "seckill_reconciler_uncompared_total",
			Help: "Items a reconciler pass could not compare with MySQL: their Redis state moved between every two looks."}),
		LeaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seckill_backend_lease_held",
			Help: "1 while this backend holds the lease of the background duties (reconciler, rebalancer, expiry)."}),
		Batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "seckill_backend_batch_size",
			Help:    "Requests of one item sharing one call, by stage (deduct, settle, publish, write, ticket).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128}}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.Place, m.Refused, m.Lua, m.Publish, m.Ended, m.Repairs, m.StockDrift, m.StaleSettle, m.Uncompared, m.LeaseHeld, m.Batch)
	}
	return m
}
