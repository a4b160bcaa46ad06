package bench

import (
	"context"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seckill/flashsale/bench/load"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/internal/syncbuf"
)

func TestScenariosAreDeterministicAndSkewed(t *testing.T) {
	sc, err := buildScenario(Mixed, DefaultSizes())
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, len(sc.items))
	for i := range sc.pace.Count {
		u, k := sc.pick(i)
		if u2, k2 := sc.pick(i); u2 != u || k2 != k {
			t.Fatalf("attempt %d: picks differ between calls", i)
		}
		if u < 0 || u >= sc.users || k < 0 || k >= len(sc.items) {
			t.Fatalf("attempt %d: got user %d item %d out of range", i, u, k)
		}
		counts[k]++
	}
	if counts[0] < 10*counts[len(counts)-1] {
		t.Fatalf("got %d attempts on the first item and %d on the last, want a skew", counts[0], counts[len(counts)-1])
	}
	hot, err := buildScenario(Hot, DefaultSizes())
	if err != nil {
		t.Fatal(err)
	}
	if hot.stock() != 1000 || hot.pace.Count != 100_000 || hot.users != 20_000 {
		t.Fatalf("hot: got stock %d, %d attempts, %d users", hot.stock(), hot.pace.Count, hot.users)
	}
	st, err := buildScenario(Sustained, DefaultSizes())
	if err != nil {
		t.Fatal(err)
	}
	if st.pace.Mode != load.Open || int64(st.pace.Count) != st.stock() {
		t.Fatalf("sustained: got mode %s, %d attempts for %d units", st.pace.Mode, st.pace.Count, st.stock())
	}
	capa, err := buildScenario(Capacity, DefaultSizes())
	if err != nil {
		t.Fatal(err)
	}
	if int64(capa.pace.Count) != capa.stock() || capa.users != capa.pace.Count || capa.pace.Mode != load.Closed {
		t.Fatalf("capacity: got %d attempts, %d units, %d users, mode %s; want stock = attempts = users, closed loop", capa.pace.Count, capa.stock(), capa.users, capa.pace.Mode)
	}
	for i := range capa.pace.Count {
		if u, k := capa.pick(i); u != i || k != 0 {
			t.Fatalf("capacity attempt %d: got user %d item %d, want user %d item 0", i, u, k, i)
		}
	}
	if _, err := buildScenario("nope", DefaultSizes()); err == nil {
		t.Fatal("an unknown scenario: got no error")
	}
}

// fakeRun is a settled hot-item run of 3 units bought by users 0, 1 and 2.
func fakeRun() checkInput {
	sc := &scenario{name: Hot, items: []api.ItemSpec{{Stock: 3}}, users: 5, perUser: 1}
	act := &api.Activity{ID: 7, Items: []api.Item{{ID: 70, TotalStock: 3}}}
	recs := []attemptRec{
		{sent: true, user: 0, status: 201, ticket: "t0", orderID: "o0"},
		{sent: true, user: 1, status: 201, ticket: "t1", orderID: "o1"},
		{sent: true, user: 2, status: 201, ticket: "t2", orderID: "o2"},
		{sent: true, user: 3, status: 409},
		{sent: true, user: 4, status: 409},
	}
	st := &api.Stats{ActivityID: 7, Items: []api.ItemStats{{ItemID: 70, TotalStock: 3, Orders: 3, UnitsSold: 3}}}
	return checkInput{sc: sc, act: act, stats: st, recs: recs, settled: true, userBase: 100}
}

func failed(checks []Check) []string {
	var out []string
	for _, c := range checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

func TestInvariantChecksCatchViolations(t *testing.T) {
	ctx := context.Background()
	if bad := failed(checkInvariants(ctx, fakeRun())); len(bad) != 0 {
		t.Fatalf("a clean run: got failures %v", bad)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*checkInput)
		want   string
	}{
		{"oversell", func(in *checkInput) { in.stats.Items[0].UnitsSold, in.stats.Items[0].Orders = 4, 4 }, "no oversell"},
		{"undersell", func(in *checkInput) {
			in.stats.Items[0].UnitsSold, in.stats.Items[0].Orders, in.stats.Items[0].MySQLStock, in.stats.Items[0].RedisStock = 2, 2, 1, 1
			in.recs[2] = attemptRec{sent: true, user: 2, status: 409}
		}, "no undersell"},
		{"limit", func(in *checkInput) { in.recs[1].user = 0 }, "per-user limit"},
		{"duplicate order", func(in *checkInput) { in.recs[1].orderID = "o0" }, "one ticket per attempt, one order per ticket"},
		{"stuck", func(in *checkInput) { in.stats.PendingTickets = 1; in.settled = false }, "no stuck ticket"},
		{"drift", func(in *checkInput) { in.stats.Items[0].RedisStock = 1 }, "redis stock = mysql stock"},
		{"lost order", func(in *checkInput) { in.stats.Items[0].Orders = 2 }, "orders match answers"},
		{"retry told sold out", func(in *checkInput) { in.recs[2] = attemptRec{sent: true, user: 2, status: 409, tries: 2} }, "orders match answers"},
		{"stuck async ticket", func(in *checkInput) {
			in.async = true
			in.finals = []load.Final{{Ticket: load.Ticket{ID: "tx"}, Status: "pending"}}
		}, "no stuck ticket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fakeRun()
			tc.mutate(&in)
			bad := failed(checkInvariants(ctx, in))
			found := false
			for _, b := range bad {
				found = found || b == tc.want
			}
			if !found {
				t.Fatalf("got failures %v, want %q among them", bad, tc.want)
			}
		})
	}
}

func sampleReport() *Report {
	tk := load.Summary{Count: 10, P50: 120, P90: 300, P99: 900, P999: 1100}
	r := &Report{Machine: Machine{CPU: "test cpu", Cores: 2, GitCommit: "abc"}, OK: true,
		Baselines: []BaselineReport{
			{Name: BaseHertz, Concurrency: 8, Ops: 1000, OpsPerSec: 20000, Latency: load.Summary{P50: 0.4}},
			{Name: BaseMySQL, Skipped: "no MySQL DSN given"},
		}}
	for _, sc := range Scenarios {
		for _, st := range Strategies {
			rr := RunReport{Scenario: sc, Strategy: st, AttemptsPerSec: 5000, OrdersPerSec: 300, Orders: 100, Sent: 1000, Admitted: 100,
				Answers: map[string]int64{"201 created": 100, "409 sold_out": 890, "error timeout": 10},
				Answer:  load.Summary{P50: 2, P90: 5, P99: 20, P999: 40}, ShedByLayer: map[string]int64{"cache": 800, "backend": 90},
				Invariants: []Check{{Name: "no oversell", OK: true}}, OK: true, Mode: "closed",
				Ratios: map[string]float64{"attempts_vs_bare_hertz": 0.25}}
			if st != "sync" {
				rr.Ticket = &tk
			}
			r.Runs = append(r.Runs, rr)
		}
	}
	return r
}

func TestReportFiles(t *testing.T) {
	r := sampleReport()
	dir := t.TempDir()
	f, err := WriteFiles(r, dir, "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f.JSON, f.Markdown, f.Throughput, f.Latency, f.Shed} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 100<<10 {
			t.Errorf("%s: %d bytes, want a small file", p, len(b))
		}
		if strings.HasSuffix(p, ".svg") {
			wellFormed(t, p, b)
		}
	}
	md, _ := os.ReadFile(f.Markdown)
	for _, want := range []string{"| hot | async |", "## Baselines", "bare hertz", "skipped", "## Invariants", "x-throughput.svg", "0.25×"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	wellFormed(t, "demo", []byte(DemoSVG(r)))
}

func wellFormed(t *testing.T, name string, b []byte) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", name, err)
		}
	}
	if strings.Contains(string(b), "NaN") || strings.Contains(string(b), "Inf") {
		t.Fatalf("%s: has NaN or Inf", name)
	}
}

func TestScales(t *testing.T) {
	s := newScale([]float64{3, 40, 2500, math.NaN()}, true, 100)
	if s.lo != 1 || s.hi < 2500 || s.y(2500) > 100 || s.y(1) != 0 {
		t.Fatalf("log scale: got lo %v hi %v", s.lo, s.hi)
	}
	l := newScale([]float64{0, 7.5}, false, 100)
	if l.hi < 7.5 || l.y(l.hi) != 100 {
		t.Fatalf("linear scale: got hi %v", l.hi)
	}
	for v, want := range map[float64]string{12345: "12k", 1500: "1.5k", 2000: "2k", 250: "250", 12.34: "12.3", 0.25: "0.25", 3: "3", 50: "50", 2.5: "2.50"} {
		if got := fmtNum(v); got != want {
			t.Errorf("fmtNum(%v): got %q, want %q", v, got, want)
		}
	}
}

func TestParseExports(t *testing.T) {
	env := ParseExports([]byte("export SECKILL_MYSQL_DSN='u:p@tcp(127.0.0.1:3306)/db?parseTime=true'\nexport SECKILL_REDIS_ADDR='127.0.0.1:6379'\n# note\n"))
	if env["SECKILL_MYSQL_DSN"] != "u:p@tcp(127.0.0.1:3306)/db?parseTime=true" || env["SECKILL_REDIS_ADDR"] != "127.0.0.1:6379" {
		t.Fatalf("got %v", env)
	}
}

func TestServicesNotRunningAreSkipped(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "redis"), 0o755)
	os.WriteFile(filepath.Join(dir, "redis", "redis.pid"), []byte("999999999\n"), 0o644)
	pids, notes := ResolveServices(ServicesIn(dir))
	if len(pids) != 0 || len(notes) != 4 {
		t.Fatalf("got %v and notes %v, want nothing measured and 4 notes", pids, notes)
	}
	// This process has a /proc entry to read.
	if cpu, rss, err := procStat(os.Getpid()); err != nil || cpu < 0 || rss <= 0 {
		t.Fatalf("procStat(self): got %v %v %v", cpu, rss, err)
	}
}

func TestRunRefusesRemoteTargets(t *testing.T) {
	_, err := Run(context.Background(), Options{}, &Target{URL: "http://192.0.2.1:8080"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("got %v, want a refusal of a non-loopback target", err)
	}
	_, err = Run(context.Background(), Options{Strategies: []string{"fast"}}, &Target{URL: "http://127.0.0.1:1"})
	if err == nil {
		t.Fatal("an unknown strategy: got no error")
	}
}

func TestProgressNeverHangs(t *testing.T) {
	for _, tty := range []bool{false, true} {
		var b syncbuf.Buffer
		p := newProgress(&b, tty)
		live := &load.Live{}
		for i := range 200 {
			p.begin("x", "phase", int64(i), live, func() string { return "extra" })
			if i%2 == 0 {
				p.say("line %d", i)
			}
		}
		p.end()
		p.end()
		if out := b.String(); !strings.Contains(out, "line 198") {
			t.Fatalf("tty=%v: got %q", tty, out[:min(200, len(out))])
		}
	}
}

// TestRatiosUseTheBaselinesAroundARun: a run bracketed by baselines is compared with
// their mean, not with the report's baselines taken minutes earlier.
func TestRatiosUseTheBaselinesAroundARun(t *testing.T) {
	b := &bencher{base: map[string]*BaselineReport{
		BaseHertz:      {Name: BaseHertz, OpsPerSec: 40_000},
		BaseHertzKitex: {Name: BaseHertzKitex, OpsPerSec: 10_000},
		BaseMySQL:      {Name: BaseMySQL, OpsPerSec: 8_000},
	}}
	plain := &RunReport{AttemptsPerSec: 2_000, OrdersPerSec: 1_000}
	if got := b.ratios(plain); got["attempts_vs_hertz_kitex"] != 0.2 || got["orders_vs_mysql_hot_row"] != 0.125 {
		t.Fatalf("without baselines around: got %v, want 0.2 and 0.125", got)
	}
	around := &RunReport{AttemptsPerSec: 2_000, OrdersPerSec: 1_000,
		Around: map[string][2]float64{BaseHertzKitex: {3_000, 5_000}, BaseMySQL: {1_500, 2_500}}}
	if got := b.ratios(around); got["attempts_vs_hertz_kitex"] != 0.5 || got["orders_vs_mysql_hot_row"] != 0.5 {
		t.Fatalf("with baselines around: got %v, want 0.5 and 0.5 (to the mean of before and after)", got)
	}
	md := TablesMarkdown(&Report{Runs: []RunReport{{Scenario: Capacity, Strategy: "sync", Around: around.Around, Ratios: b.ratios(around)}}})
	if !strings.Contains(md, "| capacity | sync | – | – | 3000 | 5000 | 1500 | 2500 |") {
		t.Fatalf("the report lacks the baselines around the run:\n%s", md)
	}

	// A hot run is bracketed by the bare hertz handler alone.
	hot := &RunReport{AttemptsPerSec: 30_000, Around: map[string][2]float64{BaseHertz: {35_000, 25_000}}}
	if got := b.ratios(hot); got["attempts_vs_bare_hertz"] != 1 || got["attempts_vs_hertz_kitex"] != 3 {
		t.Fatalf("hot run with bare hertz around: got %v, want 1 (to the mean around) and 3 (to the report's echo)", got)
	}
	md = TablesMarkdown(&Report{Runs: []RunReport{{Scenario: Hot, Strategy: "async", Around: hot.Around, Ratios: b.ratios(hot)}}})
	if !strings.Contains(md, "| hot | async | 35000 | 25000 | – | – | – | – |") {
		t.Fatalf("the report lacks the bare hertz around the hot run:\n%s", md)
	}
}
