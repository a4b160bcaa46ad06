package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seckill/flashsale/bench"
)

// TestBenchCommand runs every scenario under every strategy, tiny, on the real
// services, and checks that the invariants were checked and held and that the results
// were written.
func TestBenchCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"bench", "-scenario", "all", "-strategy", "all",
		"-attempts", "600", "-users", "200", "-stock", "40", "-concurrency", "16",
		"-mixed-attempts", "600", "-mixed-users", "200", "-mixed-stock", "20", "-cold-stock", "5", "-items", "8", "-hot-items", "2",
		"-rate", "60", "-duration", "2s", "-capacity-attempts", "300", "-baseline-duration", "300ms", "-settle-timeout", "90s",
		"-out", dir, "-name", "t", "-quiet"}, &out, &errb)
	if code != 0 {
		t.Fatalf("got exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, f := range []string{"t.json", "t.md", "t-throughput.svg", "t-latency.svg", "t-shed.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: got %v, want a written file", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "t.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Runs) != 12 {
		t.Fatalf("got ok=%v with %d runs, want ok with 12; failures: %v", rep.OK, len(rep.Runs), rep.Failures)
	}
	for _, rr := range rep.Runs {
		sqlChecked := false
		for _, c := range rr.Invariants {
			if !c.OK {
				t.Errorf("%s/%s: %s: %s", rr.Scenario, rr.Strategy, c.Name, c.Detail)
			}
			sqlChecked = sqlChecked || (c.Name == "no oversell (SQL)" && !c.Skipped)
		}
		if !sqlChecked {
			t.Errorf("%s/%s: the invariants were not checked in MySQL directly", rr.Scenario, rr.Strategy)
		}
		if rr.Scenario == bench.Hot && (rr.UnitsSold != 40 || rr.Orders != 40) {
			t.Errorf("hot/%s: got %d units in %d orders, want all 40 sold", rr.Strategy, rr.UnitsSold, rr.Orders)
		}
		if rr.Scenario == bench.Capacity && (rr.UnitsSold != 300 || rr.Orders != 300 || rr.Admitted != 300) {
			t.Errorf("capacity/%s: got %d admitted, %d units in %d orders, want every one of 300 attempts to buy", rr.Strategy, rr.Admitted, rr.UnitsSold, rr.Orders)
		}
		if rr.Scenario == bench.Capacity && (len(rr.Around) != 2 || rr.Ratios["attempts_vs_hertz_kitex"] == 0 || rr.Ratios["orders_vs_mysql_hot_row"] == 0) {
			t.Errorf("capacity/%s: got baselines around %v and ratios %v, want the echo and the hot row before and after, and the ratios to them", rr.Strategy, rr.Around, rr.Ratios)
		}
		if rr.Sent == 0 || rr.Answer.Count == 0 {
			t.Errorf("%s/%s: nothing measured: %+v", rr.Scenario, rr.Strategy, rr)
		}
	}
	if len(rep.Baselines) != 4 {
		t.Fatalf("got %d baselines, want 4", len(rep.Baselines))
	}
	for _, b := range rep.Baselines {
		if b.Skipped != "" || b.Ops == 0 {
			t.Errorf("baseline %s: got %d ops, skipped %q", b.Name, b.Ops, b.Skipped)
		}
	}
	if rep.Machine.GitCommit == "" || rep.Machine.Cores == 0 {
		t.Errorf("machine info missing: %+v", rep.Machine)
	}
	if !strings.Contains(out.String(), "| hot | bucket |") {
		t.Errorf("the printed table lacks the runs:\n%s", out.String())
	}
}

func TestBenchCommandRefusesRemoteTargets(t *testing.T) {
	var out, errb bytes.Buffer
	// -url may name another host, but only over http.
	if code := run([]string{"bench", "-url", "https://10.0.0.1:8080", "-admin-token", "a-token-0123456789", "-jwt-secret", "a-secret-0123456789", "-quiet"}, &out, &errb); code == 0 {
		t.Fatal("an https target: got exit 0")
	}
	if !strings.Contains(errb.String(), "http://") {
		t.Fatalf("got %q, want it to say only http targets are supported", errb.String())
	}
	if code := run([]string{"bench", "-url", "http://127.0.0.1:1", "-quiet"}, &out, &errb); code == 0 {
		t.Fatal("-url without the secrets: got exit 0")
	}
}

// TestBenchCommandFlood runs the flood scenario, tiny, on the real services: the
// waiting room off and on side by side, every unit sold once, the invariants checked
// (the room's own included), and the flood's figures and table written.
func TestBenchCommandFlood(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"bench", "-scenario", "flood", "-strategy", "sync,async",
		"-flood-stock", "8", "-flood-demand", "25", "-flood-rate", "1000", "-flood-patience", "30s",
		"-baselines=false", "-settle-timeout", "60s", "-out", dir, "-name", "f", "-quiet"}, &out, &errb)
	if code != 0 {
		t.Fatalf("got exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "f.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Runs) != 4 {
		t.Fatalf("got ok=%v with %d runs, want ok with 4 (sync and async, each with the room off and on); failures: %v", rep.OK, len(rep.Runs), rep.Failures)
	}
	for k, rr := range rep.Runs {
		f := rr.Flood
		if rr.Scenario != bench.Flood || f == nil {
			t.Fatalf("run %d: got scenario %s with flood figures %v", k, rr.Scenario, f)
		}
		if on := k%2 == 1; f.WaitingRoom != on || strings.HasSuffix(rr.Strategy, "+room") != on {
			t.Errorf("run %d (%s): got the room on=%v, want %v (off, then on)", k, rr.Strategy, f.WaitingRoom, on)
		}
		if f.Shoppers != 200 || f.Stock != 8 || f.UnitsSold != 8 || f.Buyers != 8 || rr.Orders != 8 {
			t.Errorf("%s: got %d shoppers, %d buyers, %d units sold in %d orders; want 200 shoppers and all 8 units sold to 8 buyers", rr.Strategy, f.Shoppers, f.Buyers, f.UnitsSold, rr.Orders)
		}
		if f.Requests < int64(f.Shoppers) || f.Wasted != f.Requests-int64(f.Shoppers)+f.GaveUp || f.BackendCalls < f.UnitsSold ||
			f.KendallTau < -1 || f.KendallTau > 1 || int64(f.Request.Count) != f.Requests {
			t.Errorf("%s: figures do not add up: %+v", rr.Strategy, f)
		}
		names := map[string]bool{}
		for _, c := range rr.Invariants {
			names[c.Name] = true
			if !c.OK {
				t.Errorf("%s: %s: %s", rr.Strategy, c.Name, c.Detail)
			}
		}
		for _, n := range []string{"no oversell (SQL)", "redis stock = mysql stock (SQL)", "per-user limit (SQL)", "flood: buyers = units sold"} {
			if !names[n] {
				t.Errorf("%s: the check %q was not made", rr.Strategy, n)
			}
		}
		if f.WaitingRoom && !names["room: no admission left in flight"] {
			t.Errorf("%s: the room's check was not made", rr.Strategy)
		}
	}
	if !strings.Contains(out.String(), "## Flood: the waiting room off and on") || !strings.Contains(out.String(), "| sync+room | on, k 1.5 |") {
		t.Errorf("the printed tables lack the flood's:\n%s", out.String())
	}
}
