package bench

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/seckill/flashsale/backend/mysql"
	"github.com/seckill/flashsale/bench/load"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/api"
)

// Flood is the waiting room's scenario: demand many times the stock arriving in a
// burst, run with the waiting room off and then on. It is not part of "all": ask for
// it with -scenario flood.
const Flood = "flood"

func floodScenario(z Sizes) (*scenario, error) {
	if z.FloodStock <= 0 || z.FloodDemand <= 0 || z.FloodRate <= 0 || z.FloodPatience <= 0 {
		return nil, fmt.Errorf("flood: stock, demand, rate and patience must be positive")
	}
	if z.FloodK < 0.1 || z.FloodK > 100 {
		return nil, fmt.Errorf("flood: k must be 0.1 to 100")
	}
	if z.FloodWait < 0 || z.FloodWait > gateway.MaxTicketWait {
		return nil, fmt.Errorf("flood: wait must be 0 to %s", gateway.MaxTicketWait)
	}
	how := "asks again with its token after retry_after_ms"
	if z.FloodWait > 0 {
		how = fmt.Sprintf("orders with ?wait=%s, so a queued shopper waits at the gateway until admitted, sold out or the wait ends, then asks again with its token", z.FloodWait)
	}
	n := int(z.FloodStock) * z.FloodDemand
	if n > load.MaxCount {
		return nil, fmt.Errorf("flood: %d shoppers is over the bound of %d", n, load.MaxCount)
	}
	return &scenario{
		name: Flood,
		description: fmt.Sprintf("one item of %d units, %d shoppers (%dx the stock) arriving at %.0f/s, each until a final answer or %s: "+
			"with the waiting room on (k %g) a queued shopper %s; with it off a shopper retries a 429 or 5xx blindly",
			z.FloodStock, n, z.FloodDemand, z.FloodRate, z.FloodPatience, z.FloodK, how),
		items: []api.ItemSpec{{Name: "flood item", PriceCents: 29900, Stock: z.FloodStock}},
		users: n, perUser: 1,
		// Every shopper may wait at once: the open loop's bound on attempts in flight
		// is the number of shoppers.
		pace: load.Config{Mode: load.Open, Rate: z.FloodRate, Concurrency: n, Count: n, Duration: time.Duration(float64(n)/z.FloodRate*float64(time.Second)) + time.Second},
		pick: func(i int) (int, int) { return i, 0 },
	}, nil
}

// FloodReport is what the flood scenario measures beyond the common figures.
type FloodReport struct {
	WaitingRoom bool    `json:"waiting_room"`
	K           float64 `json:"k,omitempty"`
	Shoppers    int     `json:"shoppers"`
	Stock       int64   `json:"stock"`
	UnitsSold   int64   `json:"units_sold"`
	// BackendCalls are the order calls the backend answered: its refusals (the
	// fleet's backend_shed) and the admissions the shoppers were answered.
	BackendCalls int64   `json:"backend_calls"`
	CallsPerUnit float64 `json:"backend_calls_per_unit"`
	// Requests are every order request the shoppers sent; Wasted those that did not
	// give a shopper their final answer (queued again, 429, 5xx, no answer).
	Requests           int64   `json:"requests"`
	RequestsPerShopper float64 `json:"requests_per_shopper"`
	Wasted             int64   `json:"wasted_requests"`
	// Queued shoppers were given a place at least once; WaitedForNothing of them
	// ended sold out; GaveUp shoppers had no final answer within the patience.
	Queued           int64 `json:"queued"`
	WaitedForNothing int64 `json:"waited_for_nothing"`
	GaveUp           int64 `json:"gave_up"`
	// Request is the latency of each request; Final the time from a shopper's
	// arrival to their final answer.
	Request load.Summary `json:"request_latency"`
	Final   load.Summary `json:"final_latency"`
	// KendallTau is between the buyers' arrival order and the order in which they
	// were admitted (1: purchases in arrival order, 0: no relation).
	KendallTau float64 `json:"kendall_tau"`
	// FirstServed is how many of the first Stock shoppers to arrive bought.
	FirstServed int64 `json:"first_stock_arrivals_bought"`
	// Buyers are the shoppers told they bought whose order was not failed.
	Buyers int64 `json:"buyers"`
}

// runFlood runs the flood under strategy twice: the waiting room off, then on.
func (b *bencher) runFlood(ctx context.Context, sc *scenario, strategy string) ([]RunReport, error) {
	var out []RunReport
	for _, on := range []bool{false, true} {
		rr, err := b.floodRun(ctx, sc, strategy, on)
		if err != nil {
			return out, err
		}
		out = append(out, rr)
	}
	return out, nil
}

// floodShopper is what the bench keeps of one shopper.
type floodShopper struct {
	requests int32
	queued   bool
	final    bool  // a final answer came
	bought   bool  // admitted (201, or 202 with a ticket)
	arrived  int64 // when the first request went out, unix ns: the shopper's arrival
	at       int64 // when the admission was answered, unix ns
}

func (b *bencher) floodRun(ctx context.Context, sc *scenario, strategy string, room bool) (RunReport, error) {
	z := b.opts.Sizes
	label, name := strategy, "off"
	if room {
		label, name = strategy+"+room", "on"
	}
	buckets := 1
	if strategy == "bucket" {
		buckets = b.opts.Buckets
	}
	on, k := room, z.FloodK
	act, err := createSale(ctx, b.admin, fmt.Sprintf("bench flood %s room %s %s", strategy, name, b.opts.Tag), strategy, buckets, sc.perUser, sc.items,
		api.WaitingRoomChange{Enabled: &on, K: &k})
	if err != nil {
		return RunReport{}, err
	}
	b.report.ActivityIDs = append(b.report.ActivityIDs, act.ID)
	item := act.Items[0].ID
	// One try per request: the shopper decides what to do with each answer.
	shop := *b.shop
	shop.Tries = 1
	poller := &load.Poller{Shop: b.shop, Workers: 32}
	poller.Start(ctx)
	var followed atomic.Int64
	recs := make([]attemptRec, sc.pace.Count)
	shoppers := make([]floodShopper, sc.pace.Count)
	reqLat := load.NewHistogram()
	attempt := func(ctx context.Context, i int, due time.Time) load.Outcome {
		s := &shoppers[i]
		tok := b.tokens[i]
		o := load.OrderRequest{Token: tok, ActivityID: act.ID, ItemID: item, Quantity: 1, Key: fmt.Sprintf("%s-%d-%d", b.opts.Tag, act.ID, i)}
		if room {
			o.Wait = z.FloodWait // from the first try: an order let through at once ignores it
		}
		var ans load.OrderAnswer
		for {
			start := time.Now()
			if s.arrived == 0 {
				s.arrived = start.UnixNano()
			}
			ans = shop.PlaceOrder(ctx, o)
			took := time.Since(start)
			reqLat.Record(took)
			s.requests++
			var wait time.Duration
			switch {
			case ans.Status == http.StatusAccepted && ans.Code == "queued":
				s.queued = true
				o.QueueToken = ans.QueueToken
				switch {
				case z.FloodWait <= 0:
					wait = ans.RetryAfter
				case o.Wait > 0:
					// A held request that came back early (the gateway holds no
					// more) is asked again after retry_after, as without a wait.
					wait = max(ans.RetryAfter-took, 0)
				}
				o.Wait = z.FloodWait // the next try waits at the gateway
			case ans.Status == http.StatusTooManyRequests, ans.Status == http.StatusConflict && ans.Code == "conflict":
				// Rate-limited, or an admission of the shopper is still in flight:
				// Retry-After is at least a second.
				wait = time.Second
			case ans.Status == 0 || ans.Status >= 500:
				wait = 50*time.Millisecond + rand.N(100*time.Millisecond) // a blind retry, same key
			default:
				s.final = true
			}
			if s.final || ctx.Err() != nil || time.Since(due)+wait > z.FloodPatience {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if ans.Admitted() && ans.Code != "queued" {
			s.bought, s.at = true, time.Now().UnixNano()
		}
		recs[i] = attemptRec{sent: true, user: int32(i), item: 0, status: int16(ans.Status), tries: int8(min(s.requests, 127)),
			ticket: ans.Ticket, orderID: ans.OrderID}
		if ans.Status == http.StatusAccepted && ans.Ticket != "" {
			followed.Add(1)
			poller.Add(load.Ticket{ID: ans.Ticket, Token: tok, Started: due, ItemID: item, Attempt: i})
		}
		return load.Outcome{Code: ans.Label(), Retries: int(s.requests) - 1}
	}
	runLabel := "flood/" + label
	live := &load.Live{}
	m := startMeter(b.target.Services)
	b.prog.begin(runLabel, "load", int64(sc.pace.Count), live, func() string { return fmt.Sprintf("tickets open %d", poller.Outstanding()) })
	res, err := load.Run(ctx, sc.pace, attempt, live)
	b.prog.end()
	if err != nil {
		m.stop()
		poller.Stop()
		return RunReport{}, err
	}
	st, settled, settledAt := b.settle(ctx, runLabel, act.ID, poller)
	finals := poller.Stop()
	polls := poller.Polls.Load()
	usage := m.stop()
	if st == nil {
		return RunReport{}, fmt.Errorf("read the stats after the run: no answer")
	}

	rr := RunReport{Scenario: Flood, Strategy: label, Description: sc.description, ActivityID: act.ID, Mode: string(sc.pace.Mode),
		Concurrency: sc.pace.Concurrency, Rate: sc.pace.Rate, Items: 1, Stock: sc.stock(), Users: sc.users, Planned: sc.pace.Count,
		Sent: res.Sent, Missed: res.Missed, Late: res.Late, Retries: res.Retries, Answers: res.Codes,
		GatewayShed: st.GatewayShed, BackendShed: st.BackendShed, ShedByLayer: map[string]int64{}, Usage: usage}
	lag := res.SendLag.Summary()
	rr.SendLag = &lag
	rr.measured(res, st, settledAt, followed.Load() > 0, poller, finals, polls)

	fr := &FloodReport{WaitingRoom: room, Shoppers: len(shoppers), Stock: sc.stock(), UnitsSold: rr.UnitsSold,
		Request: reqLat.Summary(), Final: res.Latency.Summary()}
	if room {
		fr.K = z.FloodK
	}
	failedTicket := map[int]bool{}
	for _, f := range finals {
		if f.Status != "created" {
			failedTicket[f.Attempt] = true
		}
	}
	// Arrival order is the order in which the shoppers' first requests went out (the
	// load generator's schedule slips under load, so not the attempt numbers).
	arrivals := make([]int, len(shoppers))
	for i := range arrivals {
		arrivals[i] = i
	}
	slices.SortStableFunc(arrivals, func(x, y int) int { return cmp.Compare(shoppers[x].arrived, shoppers[y].arrived) })
	rank := make([]int, len(shoppers))
	for r, i := range arrivals {
		rank[i] = r
	}
	type buy struct {
		arrival int
		at      int64
	}
	var buys []buy
	for i := range shoppers {
		s := &shoppers[i]
		fr.Requests += int64(s.requests)
		if s.final {
			fr.Wasted += int64(s.requests) - 1
		} else {
			fr.Wasted += int64(s.requests)
			fr.GaveUp++
		}
		if s.queued {
			fr.Queued++
			if recs[i].status == http.StatusConflict {
				fr.WaitedForNothing++
			}
		}
		if s.bought {
			fr.BackendCalls++ // the admission's call
			if !failedTicket[i] {
				buys = append(buys, buy{rank[i], s.at})
				if int64(rank[i]) < fr.Stock {
					fr.FirstServed++
				}
			}
		}
	}
	for _, n := range st.BackendShed {
		fr.BackendCalls += n
	}
	fr.Buyers = int64(len(buys))
	if fr.UnitsSold > 0 {
		fr.CallsPerUnit = round2(float64(fr.BackendCalls) / float64(fr.UnitsSold))
	}
	fr.RequestsPerShopper = round2(float64(fr.Requests) / float64(max(len(shoppers), 1)))
	slices.SortStableFunc(buys, func(a, b buy) int { return cmp.Compare(a.at, b.at) })
	order := make([]int, len(buys))
	for k, x := range buys {
		order[k] = x.arrival
	}
	fr.KendallTau = round3(kendallTau(order))
	rr.Flood = fr

	var db *sql.DB
	if b.target.MySQLDSN != "" {
		if db, err = mysql.Open(ctx, b.target.MySQLDSN, 2); err != nil {
			return RunReport{}, fmt.Errorf("open MySQL for the checks: %w", err)
		}
		defer db.Close()
		rr.CommitSeconds, rr.CommitPerSec = commitWindow(ctx, db, act.ID)
	}
	rr.Invariants = checkInvariants(ctx, checkInput{sc: sc, act: act, stats: st, recs: recs, finals: finals, async: followed.Load() > 0,
		db: db, settled: settled, settleIn: b.opts.SettleTimeout.String(), userBase: b.opts.UserBase})
	rr.Invariants = append(rr.Invariants, roomChecks(st, room, fr)...)
	verdict := rr.judge()
	b.prog.say("%-18s %d shoppers, %d sold, %.2f backend calls a unit, request p99 %.1f ms, %d wasted requests, Kendall's tau %.3f: %s",
		runLabel, fr.Shoppers, fr.UnitsSold, fr.CallsPerUnit, fr.Request.P99, fr.Wasted, fr.KendallTau, verdict)
	return rr, nil
}

// roomChecks are the flood's own checks: after the run the waiting room holds no
// admission in flight (every slot was freed), and one shopper bought at most once.
func roomChecks(st *api.Stats, room bool, fr *FloodReport) []Check {
	var checks []Check
	if room {
		c := Check{Name: "room: no admission left in flight", OK: true}
		for _, it := range st.Items {
			switch wr := it.WaitingRoom; {
			case wr == nil:
				c.OK, c.Detail = false, fmt.Sprintf("item %d: the stats carry no waiting room", it.ItemID)
			case wr.InFlight != 0:
				c.OK, c.Detail = false, fmt.Sprintf("item %d: %d admissions still in flight after the run", it.ItemID, wr.InFlight)
			case !wr.Enabled:
				c.OK, c.Detail = false, fmt.Sprintf("item %d: the waiting room is off", it.ItemID)
			}
		}
		if c.OK {
			c.Detail = "every admission's slot was freed"
		}
		checks = append(checks, c)
	}
	c := Check{Name: "flood: buyers = units sold", OK: fr.Buyers == fr.UnitsSold,
		Detail: fmt.Sprintf("%d shoppers were told they bought, %d units sold (one unit each)", fr.Buyers, fr.UnitsSold)}
	return append(checks, c)
}

// settle waits until nothing is pending or in flight and Redis agrees with MySQL, or
// the settle timeout passes, and reads the stats a last time.
func (b *bencher) settle(ctx context.Context, label string, activityID int64, poller *load.Poller) (*api.Stats, bool, time.Time) {
	var last atomic.Pointer[api.Stats]
	b.prog.begin(label, "settle", 0, nil, func() string {
		s := fmt.Sprintf("tickets open %d", poller.Outstanding())
		if st := last.Load(); st != nil {
			o, _, rs, ms, fl := totals(st)
			s += fmt.Sprintf(" pending %d in flight %d orders %d redis %d mysql %d", st.PendingTickets, fl, o, rs, ms)
		}
		return s
	})
	settled := false
	deadline := time.Now().Add(b.opts.SettleTimeout)
	for {
		st, err := b.admin.Stats(ctx, activityID)
		if err == nil {
			last.Store(st)
			if isSettled(st) && poller.Outstanding() == 0 {
				settled = true
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	at := time.Now()
	b.prog.end()
	st, err := b.finalStats(ctx, activityID, last.Load())
	if err != nil {
		return nil, false, at
	}
	return st, settled, at
}

// kendallTau is Kendall's tau between the positions of a list and its values (all
// distinct): 1 when the values ascend, -1 when they descend. It counts the discordant
// pairs as the inversions a merge sort meets, in n log n.
func kendallTau(values []int) float64 {
	n := len(values)
	if n < 2 {
		return 1
	}
	a := slices.Clone(values)
	tmp := make([]int, n)
	var inversions int64
	for width := 1; width < n; width *= 2 {
		for lo := 0; lo < n-width; lo += 2 * width {
			mid, hi := lo+width, min(lo+2*width, n)
			i, j, k := lo, mid, lo
			for i < mid && j < hi {
				if a[i] <= a[j] {
					tmp[k] = a[i]
					i++
				} else {
					tmp[k] = a[j]
					inversions += int64(mid - i)
					j++
				}
				k++
			}
			k += copy(tmp[k:], a[i:mid])
			copy(tmp[k:], a[j:hi])
			copy(a[lo:hi], tmp[lo:hi])
		}
	}
	pairs := float64(n) * float64(n-1) / 2
	return 1 - 2*float64(inversions)/pairs
}

// floodMarkdown is the flood runs' table, or "" without any.
func floodMarkdown(r *Report) string {
	var b strings.Builder
	for i := range r.Runs {
		f := r.Runs[i].Flood
		if f == nil {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("\n## Flood: the waiting room off and on\n\n")
			b.WriteString("backend calls: the backend's order calls (its refusals plus the admissions answered) per unit sold. " +
				"request p99: each request's answer. final p99: arrival to final answer. wasted: requests that did not give their shopper a final answer. " +
				"waited for nothing: queued shoppers who ended sold out. tau: Kendall's tau between arrival order and purchase order. " +
				"first served: of the first `stock` shoppers to arrive, how many bought.\n\n")
			b.WriteString("| strategy | room | shoppers | sold | backend calls | calls/unit | requests | per shopper | wasted | queued | waited for nothing | gave up | request p50 ms | request p99 ms | final p99 ms | tau | first served |\n")
			b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		}
		room := "off"
		if f.WaitingRoom {
			room = fmt.Sprintf("on, k %g", f.K)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %.2f | %d | %.2f | %d | %d | %d | %d | %s | %s | %s | %.3f | %d of %d |\n",
			r.Runs[i].Strategy, room, f.Shoppers, f.UnitsSold, f.BackendCalls, f.CallsPerUnit, f.Requests, f.RequestsPerShopper, f.Wasted,
			f.Queued, f.WaitedForNothing, f.GaveUp, ms(f.Request.P50), ms(f.Request.P99), ms(f.Final.P99), f.KendallTau, f.FirstServed, f.Stock)
	}
	return b.String()
}
