package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoCommand: the demo runs on the stand-ins (no server configured) and shows the
// whole stock sold.
func TestDemoCommand(t *testing.T) {
	for _, k := range []string{"SECKILL_MYSQL_DSN", "SECKILL_REDIS_ADDR", "SECKILL_ROCKETMQ_NAMESRV", "SECKILL_CONFIG"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"demo", "-stock", "30", "-attempts", "600", "-users", "150", "-concurrency", "16", "-out", dir, "-quiet"}, &out, &errb)
	if code != 0 {
		t.Fatalf("got exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"Sold 30 of 30 units as 30 orders", "| hot | async |", "Invariants hold", "stand-ins: mysql", "demo.svg"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out.String())
		}
	}
	// The throughput table's row: 600 attempts, then 30 orders.
	row := ""
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "| hot | async | 600 |") {
			row = line
			break
		}
	}
	if cells := strings.Split(row, "|"); len(cells) < 8 || strings.TrimSpace(cells[7]) != "30" {
		t.Errorf("got the throughput row %q, want 30 orders in it", row)
	}
	if st, err := os.Stat(filepath.Join(dir, "demo.svg")); err != nil || st.Size() == 0 {
		t.Fatalf("demo.svg: got %v", err)
	}
}
