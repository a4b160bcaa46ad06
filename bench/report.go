package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/seckill/flashsale/bench/load"
)

// Files are the outputs of WriteFiles.
type Files struct {
	JSON, Markdown            string
	Throughput, Latency, Shed string // charts
}

// WriteFiles writes name.json, name.md and the charts name-throughput.svg,
// name-latency.svg and name-shed.svg into dir.
func WriteFiles(r *Report, dir, name string) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, err
	}
	f := Files{
		JSON: filepath.Join(dir, name+".json"), Markdown: filepath.Join(dir, name+".md"),
		Throughput: filepath.Join(dir, name+"-throughput.svg"), Latency: filepath.Join(dir, name+"-latency.svg"),
		Shed: filepath.Join(dir, name+"-shed.svg"),
	}
	js, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return f, err
	}
	out := map[string][]byte{
		f.JSON:       append(js, '\n'),
		f.Markdown:   []byte(Markdown(r, name)),
		f.Throughput: []byte(ThroughputSVG(r)),
		f.Latency:    []byte(LatencySVG(r)),
		f.Shed:       []byte(ShedSVG(r)),
	}
	for path, b := range out {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return f, err
		}
	}
	return f, nil
}

func runName(rr *RunReport) string { return rr.Scenario + "/" + rr.Strategy }

// ThroughputSVG: attempts/s at the edge and orders/s committed, per scenario and
// strategy, with the baselines as dashed lines.
func ThroughputSVG(r *Report) string {
	scen, strat := axes(r)
	mk := func(get func(*RunReport) float64) []series {
		var ss []series
		for _, st := range strat {
			s := series{name: st, values: make([]float64, len(scen))}
			for i := range s.values {
				s.values[i] = math.NaN()
			}
			for i := range r.Runs {
				rr := &r.Runs[i]
				if rr.Strategy == st {
					s.values[slices.Index(scen, rr.Scenario)] = get(rr)
				}
			}
			ss = append(ss, s)
		}
		return ss
	}
	var edgeRefs, dbRefs []refLine
	for _, b := range r.Baselines {
		if !b.ok() {
			continue
		}
		switch b.Name {
		case BaseHertz, BaseHertzKitex:
			edgeRefs = append(edgeRefs, refLine{b.Name, b.OpsPerSec})
		case BaseMySQL:
			dbRefs = append(dbRefs, refLine{"UPDATE hot row", b.OpsPerSec})
		}
	}
	return svgDoc(
		barChart("Attempts/s at the edge (answered order attempts per second)", "attempts/s", scen, mk(func(rr *RunReport) float64 { return rr.AttemptsPerSec }), true, edgeRefs),
		barChart("Orders/s committed in MySQL (orders / first attempt to settled)", "orders/s", scen, mk(func(rr *RunReport) float64 { return rr.OrdersPerSec }), true, dbRefs),
	)
}

// LatencySVG: percentiles of the answer and of ticket completion per run.
func LatencySVG(r *Report) string {
	var names, tnames []string
	pct := []string{"p50", "p90", "p99", "p99.9"}
	ans := make([]series, len(pct))
	tck := make([]series, len(pct))
	for i, p := range pct {
		ans[i].name, tck[i].name = p, p
	}
	pick := func(s load.Summary) []float64 { return []float64{s.P50, s.P90, s.P99, s.P999} }
	for i := range r.Runs {
		rr := &r.Runs[i]
		names = append(names, runName(rr))
		for k, v := range pick(rr.Answer) {
			ans[k].values = append(ans[k].values, v)
		}
		if rr.Ticket != nil && rr.Ticket.Count > 0 {
			tnames = append(tnames, runName(rr))
			for k, v := range pick(*rr.Ticket) {
				tck[k].values = append(tck[k].values, v)
			}
		}
	}
	panels := []panel{barChart("Answer latency, ms (attempt due -> final answer, retries included)", "ms", names, ans, true, nil)}
	if len(tnames) > 0 {
		panels = append(panels, barChart("Ticket completion, ms (attempt due -> a poll sees created or failed)", "ms", tnames, tck, true, nil))
	}
	return svgDoc(panels...)
}

// shedSegments splits each run's attempts into admitted and what each layer shed.
func shedSegments(r *Report) (segs []string, values [][]float64) {
	layers := map[string]bool{}
	for _, rr := range r.Runs {
		for l := range rr.ShedByLayer {
			layers[l] = true
		}
	}
	order := []string{"cache", "backend", "rate_limit", "plugin", "input", "auth"}
	segs = []string{"admitted"}
	for _, l := range order {
		if layers[l] {
			segs = append(segs, l)
			delete(layers, l)
		}
	}
	var rest []string
	for l := range layers {
		rest = append(rest, l)
	}
	sort.Strings(rest)
	segs = append(segs, rest...)
	segs = append(segs, "no answer")
	for _, rr := range r.Runs {
		row := make([]float64, len(segs))
		row[0] = float64(rr.Admitted)
		for k, s := range segs[1 : len(segs)-1] {
			row[k+1] = float64(rr.ShedByLayer[s])
		}
		row[len(segs)-1] = float64(noAnswer(&rr))
		values = append(values, row)
	}
	return segs, values
}

func noAnswer(rr *RunReport) int64 {
	var n int64
	for code, c := range rr.Answers {
		if strings.HasPrefix(code, "error ") || strings.HasPrefix(code, "5") {
			n += c
		}
	}
	return n
}

// ShedSVG: where each run's attempts ended, as shares.
func ShedSVG(r *Report) string {
	segs, values := shedSegments(r)
	var bars []string
	for i := range r.Runs {
		bars = append(bars, runName(&r.Runs[i]))
	}
	return svgDoc(stackedChart("Where the attempts ended: admitted, or shed by which layer", bars, segs, values))
}

// DemoSVG is one chart of a single run: where the attempts ended and the latencies.
func DemoSVG(r *Report) string {
	segs, values := shedSegments(r)
	var bars []string
	pct := []string{"p50", "p90", "p99", "p99.9"}
	lat := make([]series, len(pct))
	for i, p := range pct {
		lat[i].name = p
	}
	var groups []string
	for i := range r.Runs {
		rr := &r.Runs[i]
		bars = append(bars, runName(rr))
		groups = append(groups, "answer/"+runName(rr))
		for k, v := range []float64{rr.Answer.P50, rr.Answer.P90, rr.Answer.P99, rr.Answer.P999} {
			lat[k].values = append(lat[k].values, v)
		}
		if rr.Ticket != nil && rr.Ticket.Count > 0 {
			groups = append(groups, "ticket completion/"+runName(rr))
			for k, v := range []float64{rr.Ticket.P50, rr.Ticket.P90, rr.Ticket.P99, rr.Ticket.P999} {
				lat[k].values = append(lat[k].values, v)
			}
		}
	}
	return svgDoc(
		stackedChart("Where the attempts ended", bars, segs, values),
		barChart("Latency, ms: the answer, and ticket completion", "ms", groups, lat, true, nil),
	)
}

func axes(r *Report) (scen, strat []string) {
	for _, rr := range r.Runs {
		if !slices.Contains(scen, rr.Scenario) {
			scen = append(scen, rr.Scenario)
		}
		if !slices.Contains(strat, rr.Strategy) {
			strat = append(strat, rr.Strategy)
		}
	}
	return
}

func f1(x float64) string { return fmt.Sprintf("%.1f", x) }
func f2(x float64) string { return fmt.Sprintf("%.2f", x) }

func ms(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

func ratio(m map[string]float64, k string) string {
	v, ok := m[k]
	if !ok {
		return "–"
	}
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0f×", v)
	case v < 0.01:
		return fmt.Sprintf("%.3f×", v)
	}
	return fmt.Sprintf("%.2f×", v)
}

// Markdown is the report as Markdown; charts are linked as name-*.svg.
func Markdown(r *Report, name string) string {
	var b strings.Builder
	m := r.Machine
	dirty := ""
	if m.GitDirty {
		dirty = " (with uncommitted changes)"
	}
	fmt.Fprintf(&b, "# Bench results\n\n")
	fmt.Fprintf(&b, "Run %s on %s, %d cores, %.1f GB, %s, %s, Go %s; commit `%s`%s. Wall time %.0f s; 1-minute load average %.2f at the start, %.2f at the end.\n\n",
		r.Started.Format("2006-01-02 15:04 MST"), m.CPU, m.Cores, m.MemoryGB, m.OS, m.Kernel, strings.TrimPrefix(m.Go, "go"), m.GitCommit, dirty, r.WallSeconds, m.LoadAvg, r.LoadAvgEnd)
	fmt.Fprintf(&b, "Target: %s", r.Target.URL)
	if r.Target.InProcess {
		b.WriteString(", started in the bench's own process")
	}
	if len(r.Target.StandIns) > 0 {
		fmt.Fprintf(&b, "; embedded stand-ins: %s", strings.Join(r.Target.StandIns, ", "))
	} else if r.Target.InProcess {
		b.WriteString(" on the real MySQL (MariaDB), Redis and RocketMQ")
	}
	b.WriteString(".\n\n")
	if len(r.Notes) > 0 {
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	verdict := "**All invariants held in every run.**"
	if !r.OK {
		verdict = "**INVARIANTS BROKEN** — see the last section."
	}
	b.WriteString(verdict + "\n\n")

	b.WriteString(TablesMarkdown(r))

	if name != "" {
		fmt.Fprintf(&b, "## Charts\n\n![throughput](%s-throughput.svg)\n\n![latency](%s-latency.svg)\n\n![shed](%s-shed.svg)\n", name, name, name)
	}
	return b.String()
}

// TablesMarkdown is the report's tables (what the command prints).
func TablesMarkdown(r *Report) string {
	var b strings.Builder
	if len(r.Baselines) > 0 {
		b.WriteString("## Baselines\n\n| baseline | clients | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms | what |\n|---|--:|--:|--:|--:|--:|--:|---|\n")
		for _, x := range r.Baselines {
			if x.Skipped != "" {
				fmt.Fprintf(&b, "| %s | | skipped | | | | | %s: %s |\n", x.Name, x.What, x.Skipped)
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %s | %s |\n", x.Name, x.Concurrency, x.OpsPerSec,
				ms(x.Latency.P50), ms(x.Latency.P90), ms(x.Latency.P99), ms(x.Latency.P999), x.What)
		}
		b.WriteString("\n")
	}
	if len(r.Runs) == 0 {
		return b.String()
	}
	b.WriteString("## Scenarios\n\n")
	seen := map[string]bool{}
	for _, rr := range r.Runs {
		if !seen[rr.Scenario] {
			seen[rr.Scenario] = true
			fmt.Fprintf(&b, "- **%s**: %s.\n", rr.Scenario, rr.Description)
		}
	}
	b.WriteString("\n## Throughput\n\n")
	b.WriteString("attempts/s: attempts answered over the load time. orders/s: orders in MySQL over the time from the first attempt until settled; " +
		"commit/s: orders over the span of their created_at in MySQL (while there was work).\n\n")
	b.WriteString("| scenario | strategy | attempts | attempts/s | × bare hertz | × hertz→kitex | orders | orders/s | × MySQL hot row | commit/s | load s | settle s | retries | missed | late |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, rr := range r.Runs {
		missed, late := "–", "–"
		if rr.Mode == string(load.Open) {
			missed, late = fmt.Sprint(rr.Missed), fmt.Sprint(rr.Late)
		}
		commit := "–"
		if rr.CommitPerSec > 0 {
			commit = fmt.Sprintf("%.0f", rr.CommitPerSec)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %s | %s | %d | %.0f | %s | %s | %s | %s | %d | %s | %s |\n",
			rr.Scenario, rr.Strategy, rr.Sent, rr.AttemptsPerSec, ratio(rr.Ratios, "attempts_vs_bare_hertz"), ratio(rr.Ratios, "attempts_vs_hertz_kitex"),
			rr.Orders, rr.OrdersPerSec, ratio(rr.Ratios, "orders_vs_mysql_hot_row"), commit, f2(rr.LoadSeconds), f2(rr.SettleSeconds), rr.Retries, missed, late)
	}
	var around []RunReport
	for _, rr := range r.Runs {
		if len(rr.Around) > 0 {
			around = append(around, rr)
		}
	}
	if len(around) > 0 {
		b.WriteString("\nThe machine's load moves between the baselines above and a run, so the hot and capacity runs are also bracketed: " +
			"the baselines of their ratios measured just before and just after each (hot: bare hertz; capacity: the hertz→kitex echo and the MySQL hot-row loop); " +
			"their × columns are to the mean.\n\n")
		b.WriteString("| scenario | strategy | bare hertz before | after | hertz→kitex before | after | hot row before | after |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
		for _, rr := range around {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", rr.Scenario, rr.Strategy,
				aroundCells(rr.Around, BaseHertz), aroundCells(rr.Around, BaseHertzKitex), aroundCells(rr.Around, BaseMySQL))
		}
	}
	b.WriteString("\n## Latency (ms)\n\n| scenario | strategy | answer p50 | p90 | p99 | p99.9 | max | × bare hertz p50 | ticket p50 | p90 | p99 | p99.9 | max |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, rr := range r.Runs {
		t := "| – | – | – | – | – |"
		if rr.Ticket != nil && rr.Ticket.Count > 0 {
			t = fmt.Sprintf("| %s | %s | %s | %s | %s |", ms(rr.Ticket.P50), ms(rr.Ticket.P90), ms(rr.Ticket.P99), ms(rr.Ticket.P999), ms(rr.Ticket.MaxMs))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s %s\n", rr.Scenario, rr.Strategy, ms(rr.Answer.P50), ms(rr.Answer.P90),
			ms(rr.Answer.P99), ms(rr.Answer.P999), ms(rr.Answer.MaxMs), ratio(rr.Ratios, "answer_p50_vs_bare_hertz"), t)
	}

	segs, values := shedSegments(r)
	b.WriteString("\n## Where the attempts ended\n\nAdmitted (201/202) and what each gateway layer shed (`gateway_shed` by layer; the `backend` layer is the backend's refusals as the gateway counted them), then the backend's own count by reason (`backend_shed`).\n\n")
	b.WriteString("| scenario | strategy | " + strings.Join(segs, " | ") + " | backend_shed |\n|---|---|" + strings.Repeat("--:|", len(segs)) + "---|\n")
	for i, rr := range r.Runs {
		cells := make([]string, len(values[i]))
		for k, v := range values[i] {
			cells[k] = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", rr.Scenario, rr.Strategy, strings.Join(cells, " | "), kv(rr.BackendShed))
	}
	b.WriteString("\n## Answers\n\n| scenario | strategy | answers by status and code | tickets created / failed | ticket polls |\n|---|---|---|--:|--:|\n")
	for _, rr := range r.Runs {
		tk := "–"
		polls := "–"
		if rr.Ticket != nil {
			tk = fmt.Sprintf("%d / %d", rr.TicketsCreated, rr.TicketsFailed)
			polls = fmt.Sprint(rr.TicketPolls)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", rr.Scenario, rr.Strategy, kv(rr.Answers), tk, polls)
	}

	b.WriteString(floodMarkdown(r))

	b.WriteString("\n## Resources\n\nCPU seconds during the run (load + settle) and, in parentheses, cores busy on average; peaks of memory.\n\n")
	svc := map[string]bool{}
	for _, rr := range r.Runs {
		for s := range rr.Usage.Services {
			svc[s] = true
		}
	}
	var svcs []string
	for s := range svc {
		svcs = append(svcs, s)
	}
	sort.Strings(svcs)
	b.WriteString("| scenario | strategy | bench process CPU s | peak heap MB | peak RSS MB | GCs |")
	for _, s := range svcs {
		fmt.Fprintf(&b, " %s CPU s | %s RSS MB |", s, s)
	}
	b.WriteString("\n|---|---|--:|--:|--:|--:|" + strings.Repeat("--:|--:|", len(svcs)) + "\n")
	for _, rr := range r.Runs {
		u := rr.Usage
		fmt.Fprintf(&b, "| %s | %s | %s (%s) | %s | %s | %d |", rr.Scenario, rr.Strategy, f1(u.CPUSeconds), f2(u.CPUCores), f1(u.PeakHeapMB), f1(u.PeakRSSMB), u.GCs)
		for _, s := range svcs {
			if p, ok := u.Services[s]; ok {
				fmt.Fprintf(&b, " %s (%s) | %s |", f1(p.CPUSeconds), f2(p.CPUCores), f1(p.RSSMB))
			} else {
				b.WriteString(" – | – |")
			}
		}
		b.WriteString("\n")
	}

	b.WriteString("\n## Invariants\n\n| scenario | strategy | checks | result |\n|---|---|--:|---|\n")
	for _, rr := range r.Runs {
		n, skipped := 0, 0
		var bad []string
		for _, c := range rr.Invariants {
			switch {
			case c.Skipped:
				skipped++
			case c.OK:
				n++
			default:
				bad = append(bad, c.Name)
			}
		}
		res := "all hold"
		if len(bad) > 0 {
			res = "**BROKEN: " + strings.Join(bad, ", ") + "**"
		}
		if skipped > 0 {
			res += fmt.Sprintf(" (%d skipped)", skipped)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", rr.Scenario, rr.Strategy, n+len(bad), res)
	}
	if len(r.Runs) > 0 {
		b.WriteString("\nChecked after each run: ")
		var names []string
		for _, c := range r.Runs[0].Invariants {
			if !c.Skipped {
				names = append(names, c.Name)
			}
		}
		b.WriteString(strings.Join(names, "; ") + ".\n")
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "\n- FAILED %s", f)
	}
	if len(r.Failures) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("\n")
	return b.String()
}

func kv(m map[string]int64) string {
	if len(m) == 0 {
		return "–"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// aroundCells is a bracketed baseline's before and after cells, or dashes.
func aroundCells(around map[string][2]float64, name string) string {
	a, ok := around[name]
	if !ok {
		return "– | –"
	}
	return fmt.Sprintf("%.0f | %.0f", a[0], a[1])
}
