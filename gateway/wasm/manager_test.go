package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// testCache keeps compiled modules on disk between test runs: a Go guest
// takes seconds to compile.
var testCache wazero.CompilationCache

func TestMain(m *testing.M) {
	dir := filepath.Join(os.TempDir(), "seckill-wasm-test-cache")
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compilation cache:", err)
		os.Exit(1)
	}
	testCache = c
	code := m.Run()
	_ = c.Close(context.Background()) // process exits next
	os.Exit(code)
}

// Fixtures, relative to this package.
const (
	probeWasm        = "testdata/probe.wasm"
	admitWasm        = "testdata/admit.wasm"
	unreachableWasm  = "testdata/unreachable.wasm"
	noExportsWasm    = "testdata/noexports.wasm"
	garbageWasm      = "testdata/garbage.wasm"
	blocklistWasm    = "../../plugins/examples/blocklist/blocklist.wasm"
	attemptlimitWasm = "../../plugins/examples/attemptlimit/attemptlimit.wasm"
	powcheckWasm     = "../../plugins/examples/powcheck/powcheck.wasm"
	timewindowWasm   = "../../plugins/examples/timewindow/timewindow.wasm"
)

var (
	fixtureMu sync.Mutex
	fixtures  = map[string][]byte{}
)

func mustReadWasm(tb testing.TB, path string) []byte {
	tb.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if b, ok := fixtures[path]; ok {
		return b
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read %s: %v (run plugins/build.sh)", path, err)
	}
	fixtures[path] = b
	return b
}

func newTestManager(tb testing.TB, opts Options) *Manager {
	tb.Helper()
	opts.CompilationCache = testCache
	if opts.DefaultPoolSize == 0 {
		opts.DefaultPoolSize = 2
	}
	if opts.DefaultTimeout == 0 {
		opts.DefaultTimeout = 2 * time.Second // generous: -race and busy CI machines
	}
	m, err := NewManager(context.Background(), opts)
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return m
}

func mustPut(tb testing.TB, m *Manager, name string, spec Spec) Info {
	tb.Helper()
	info, err := m.Put(context.Background(), name, spec)
	if err != nil {
		tb.Fatalf("Put(%s): %v", name, err)
	}
	return info
}

// handle runs the chain on h and reports whether next ran.
func handle(m *Manager, h *testHost) (Verdict, bool) {
	var ran bool
	v := m.Handle(context.Background(), h, func(context.Context) error { ran = true; return nil })
	return v, ran
}

func TestPutAndHandle_Admit(t *testing.T) {
	m := newTestManager(t, Options{})
	info := mustPut(t, m, "probe", Spec{Wasm: mustReadWasm(t, probeWasm), Config: json.RawMessage(`{"hello":"world"}`)})
	if !info.RequestOnly {
		t.Errorf("got RequestOnly false, want true for an SDK guest")
	}
	h := newTestHost()
	v, ran := handle(m, h)
	if !v.Admitted || !ran {
		t.Fatalf("got admitted=%v next ran=%v, want both true (verdict %+v)", v.Admitted, ran, v)
	}
	if got, want := h.reqHeader.Get("X-Probe-Config"), `{"hello":"world"}`; got != want {
		t.Errorf("got config %q, want %q", got, want)
	}
	if got, want := h.reqHeader.Get("X-Probe-Calls"), "1"; got != want {
		t.Errorf("got calls %q, want %q", got, want)
	}
}

func TestTrustedHeaders(t *testing.T) {
	m := newTestManager(t, Options{})
	mustPut(t, m, "probe", Spec{Wasm: mustReadWasm(t, probeWasm)})
	tests := []struct {
		name   string
		header []string
		want   string
	}{
		{"all set", []string{"X-Probe", "trusted", "X-Seckill-User", "42", "X-Seckill-Activity", "7", "X-Seckill-Item", "9", "X-Real-IP", "203.0.113.5"}, "42|7|9|203.0.113.5"},
		{"ip from peer", []string{"X-Probe", "trusted", "X-Seckill-User", "42"}, "42|||192.0.2.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHost(tt.header...)
			if v, _ := handle(m, h); !v.Admitted {
				t.Fatalf("got %+v, want admitted", v)
			}
			if got := h.reqHeader.Get("X-Probe-Trusted"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTrustedHeadersReadOnly: a plugin cannot change the trusted headers
// for the plugins after it or for the backend. A spoofing plugin (fail
// open, so the request goes on) sets, adds to or removes each one; its
// call fails, and the next plugin and the backend see the gateway's values.
func TestTrustedHeadersReadOnly(t *testing.T) {
	m := newTestManager(t, Options{})
	probe := mustReadWasm(t, probeWasm)
	mustPut(t, m, "spoofer", Spec{Wasm: probe, Order: 1, Config: json.RawMessage(`{"header":"X-Spoof"}`)})
	mustPut(t, m, "reader", Spec{Wasm: probe, Order: 2})
	trusted := []string{"X-Seckill-User", "42", "X-Seckill-Activity", "7", "X-Seckill-Item", "9", "X-Real-IP", "203.0.113.5"}
	const want = "42|7|9|203.0.113.5"
	var wantErrors uint64
	for _, name := range []string{"X-Seckill-User", "x-seckill-activity", "X-SECKILL-ITEM", "X-Real-Ip"} {
		for _, op := range []string{"set", "add", "remove"} {
			t.Run(op+" "+name, func(t *testing.T) {
				h := newTestHost(append([]string{"X-Spoof", "spoof", "X-Probe-Spoof-Op", op, "X-Probe-Spoof-Name", name,
					"X-Probe", "trusted"}, trusted...)...)
				v, ran := handle(m, h)
				if !v.Admitted || !ran {
					t.Fatalf("got %+v, want admitted (the spoofer fails open)", v)
				}
				if got := h.reqHeader.Get("X-Probe-Trusted"); got != want {
					t.Errorf("the next plugin saw %q, want %q", got, want)
				}
				for i := 0; i < len(trusted); i += 2 {
					if got := h.reqHeader.Values(trusted[i]); len(got) != 1 || got[0] != trusted[i+1] {
						t.Errorf("the backend sees %s %q, want [%s]", trusted[i], got, trusted[i+1])
					}
				}
				wantErrors++
				if st := m.List()[0].Stats; st.Errors != wantErrors {
					t.Errorf("spoofer: got %d errors, want %d (the refused call fails)", st.Errors, wantErrors)
				}
			})
		}
	}
	// Other headers stay the guests' to change.
	h := newTestHost(append([]string{"X-Spoof", "spoof", "X-Probe-Spoof-Op", "set", "X-Probe-Spoof-Name", "X-Other"}, trusted...)...)
	if v, _ := handle(m, h); !v.Admitted || h.reqHeader.Get("X-Other") != "spoofed" {
		t.Errorf("set X-Other: got %+v and %q, want admitted and \"spoofed\"", v, h.reqHeader.Get("X-Other"))
	}
}

func TestRejection(t *testing.T) {
	m := newTestManager(t, Options{})
	mustPut(t, m, "probe", Spec{Wasm: mustReadWasm(t, probeWasm)})
	tests := []struct {
		mode        string
		wantStatus  int
		wantMessage string
		wantGuest   int
	}{
		{"reject", 429, "probe: go away", 429},
		{"reject-silent", 403, "probe: request rejected", 0},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			v, ran := handle(m, newTestHost("X-Probe", tt.mode))
			if v.Admitted || ran {
				t.Fatalf("got admitted=%v next ran=%v, want a rejection", v.Admitted, ran)
			}
			if v.Status != tt.wantStatus || v.Error != VerdictRejected || v.Message != tt.wantMessage || v.Plugin != "probe" {
				t.Errorf("got %d %q %q from %q, want %d %q %q from probe", v.Status, v.Error, v.Message, v.Plugin,
					tt.wantStatus, VerdictRejected, tt.wantMessage)
			}
			if v.GuestStatus != tt.wantGuest {
				t.Errorf("got guest status %d, want %d", v.GuestStatus, tt.wantGuest)
			}
		})
	}
	st := m.List()[0].Stats
	if st.Calls != 2 || st.Rejections != 2 || st.Admitted != 0 || st.Errors != 0 {
		t.Errorf("got stats %+v, want 2 calls, 2 rejections", st)
	}
}

func TestExamplePlugins(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	nonce := solvePow(t, "42", 8)
	tests := []struct {
		name, wasm, config string
		header             []string
		wantAdmit          bool
		wantStatus         int
		wantMessage        string
	}{
		{"blocklist user", blocklistWasm, `{"users":["42"],"ips":["203.0.113.7","198.51.100.0/24"]}`,
			[]string{"X-Seckill-User", "42"}, false, 403, "blocklist: user 42 is blocked"},
		{"blocklist ip", blocklistWasm, `{"users":["42"],"ips":["203.0.113.7","198.51.100.0/24"]}`,
			[]string{"X-Seckill-User", "7", "X-Real-IP", "198.51.100.9"}, false, 403, "blocklist: ip 198.51.100.9 is blocked"},
		{"blocklist other", blocklistWasm, `{"users":["42"],"ips":["203.0.113.7","198.51.100.0/24"]}`,
			[]string{"X-Seckill-User", "7", "X-Real-IP", "192.0.2.1"}, true, 0, ""},
		{"blocklist snowflake user", blocklistWasm, `{"users":["9223372036854775807"]}`,
			[]string{"X-Seckill-User", "9223372036854775807"}, false, 403, "blocklist: user 9223372036854775807 is blocked"},
		{"blocklist mapped ip", blocklistWasm, `{"users":["42"],"ips":["198.51.100.0/24"]}`,
			[]string{"X-Seckill-User", "7", "X-Real-IP", "::ffff:198.51.100.9"}, false, 403, "blocklist: ip 198.51.100.9 is blocked"},
		{"blocklist anonymous", blocklistWasm, `{"users":["42"],"ips":["198.51.100.0/24"]}`,
			[]string{"X-Real-IP", "192.0.2.1"}, true, 0, ""},
		{"blocklist user not a number", blocklistWasm, `{"users":["42"]}`,
			[]string{"X-Seckill-User", "42x"}, true, 0, ""},
		{"blocklist status", blocklistWasm, `{"users":["42"],"status":451}`,
			[]string{"X-Seckill-User", "42"}, false, 451, "blocklist: user 42 is blocked"},
		{"powcheck missing", powcheckWasm, `{"difficulty":8}`,
			[]string{"X-Seckill-User", "42"}, false, 403, "powcheck: proof of work required (X-Pow header)"},
		{"powcheck weak", powcheckWasm, `{"difficulty":8}`,
			[]string{"X-Seckill-User", "43", "X-Pow", nonce}, false, 403, "powcheck: proof of work too weak"},
		{"powcheck ok", powcheckWasm, `{"difficulty":8}`,
			[]string{"X-Seckill-User", "42", "X-Pow", nonce}, true, 0, ""},
		{"timewindow before", timewindowWasm, fmt.Sprintf(`{"start_ms":%d,"end_ms":%d}`, now.UnixMilli()+1, now.UnixMilli()+1000),
			nil, false, 403, "timewindow: not started"},
		{"timewindow inside", timewindowWasm, fmt.Sprintf(`{"start_ms":%d,"end_ms":%d}`, now.UnixMilli(), now.UnixMilli()+1000),
			nil, true, 0, ""},
		{"timewindow after", timewindowWasm, fmt.Sprintf(`{"start_ms":%d,"end_ms":%d}`, now.UnixMilli()-1000, now.UnixMilli()),
			nil, false, 403, "timewindow: ended"},
	}
	m := newTestManager(t, Options{Now: func() time.Time { return now }})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.Fields(tt.name)[0]
			mustPut(t, m, name, Spec{Wasm: mustReadWasm(t, tt.wasm), Config: json.RawMessage(tt.config), FailPolicy: FailClosed})
			t.Cleanup(func() {
				if err := m.Delete(context.Background(), name); err != nil {
					t.Errorf("Delete: %v", err)
				}
			})
			v, ran := handle(m, newTestHost(tt.header...))
			if v.Admitted != tt.wantAdmit || ran != tt.wantAdmit {
				t.Fatalf("got admitted=%v next ran=%v, want %v (verdict %+v)", v.Admitted, ran, tt.wantAdmit, v)
			}
			if tt.wantAdmit {
				return
			}
			if v.Status != tt.wantStatus || v.Message != tt.wantMessage {
				t.Errorf("got %d %q, want %d %q", v.Status, v.Message, tt.wantStatus, tt.wantMessage)
			}
		})
	}
}

func TestAttemptLimit(t *testing.T) {
	m := newTestManager(t, Options{})
	mustPut(t, m, "attemptlimit", Spec{Wasm: mustReadWasm(t, attemptlimitWasm), Config: json.RawMessage(`{"max":3,"window_ms":10000}`)})
	for i := 1; i <= 5; i++ {
		h := newTestHost("X-Seckill-User", "42")
		v, _ := handle(m, h)
		if want := i <= 3; v.Admitted != want {
			t.Fatalf("attempt %d: got admitted=%v, want %v", i, v.Admitted, want)
		}
		if i > 3 {
			if v.Status != 429 || v.Message != "attemptlimit: too many attempts: at most 3 per 10s" {
				t.Errorf("attempt %d: got %d %q, want 429 and the limit message", i, v.Status, v.Message)
			}
			if got := h.respHeader.Get("Retry-After"); got != "10" {
				t.Errorf("got Retry-After %q, want 10", got)
			}
		}
	}
	if v, _ := handle(m, newTestHost("X-Seckill-User", "43")); !v.Admitted {
		t.Errorf("another user: got %+v, want admitted", v)
	}
}

// TestAttemptLimitPerItem: with per_item, a user's attempts at one item do not
// count against another; anonymous requests count by client IP.
func TestAttemptLimitPerItem(t *testing.T) {
	m := newTestManager(t, Options{})
	mustPut(t, m, "attemptlimit", Spec{Wasm: mustReadWasm(t, attemptlimitWasm), Config: json.RawMessage(`{"max":2,"window_ms":10000,"per_item":true}`)})
	admitted := func(header ...string) bool {
		v, _ := handle(m, newTestHost(header...))
		return v.Admitted
	}
	for i, want := range []bool{true, true, false} {
		if got := admitted("X-Seckill-User", "42", "X-Seckill-Item", "9"); got != want {
			t.Fatalf("user 42, item 9, attempt %d: got admitted=%v, want %v", i+1, got, want)
		}
	}
	if !admitted("X-Seckill-User", "42", "X-Seckill-Item", "10") {
		t.Errorf("user 42, item 10: refused, want admitted (items count apart)")
	}
	for i, want := range []bool{true, true, false} {
		if got := admitted("X-Real-IP", "192.0.2.7", "X-Seckill-Item", "9"); got != want {
			t.Fatalf("anonymous 192.0.2.7, attempt %d: got admitted=%v, want %v", i+1, got, want)
		}
	}
	if !admitted("X-Real-IP", "192.0.2.8", "X-Seckill-Item", "9") {
		t.Errorf("anonymous 192.0.2.8: refused, want admitted (addresses count apart)")
	}
	// Users with 19-digit ids behind one address count apart, as users.
	for _, u := range []string{"1234567890123456789", "1234567890123456788"} {
		for i, want := range []bool{true, true, false} {
			if got := admitted("X-Seckill-User", u, "X-Real-IP", "192.0.2.9", "X-Seckill-Item", "9"); got != want {
				t.Fatalf("user %s, attempt %d: got admitted=%v, want %v", u, i+1, got, want)
			}
		}
	}
}

// failingCounters is a counter store that is down.
type failingCounters struct{}

func (failingCounters) Incr(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, errors.New("store down")
}

func TestAttemptLimit_StoreDown(t *testing.T) {
	tests := []struct {
		policy    FailPolicy
		wantAdmit bool
	}{{FailOpen, true}, {FailClosed, false}}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			m := newTestManager(t, Options{Counters: failingCounters{}})
			mustPut(t, m, "attemptlimit", Spec{Wasm: mustReadWasm(t, attemptlimitWasm), FailPolicy: tt.policy})
			v, _ := handle(m, newTestHost("X-Seckill-User", "42"))
			if v.Admitted != tt.wantAdmit {
				t.Fatalf("got %+v, want admitted=%v", v, tt.wantAdmit)
			}
			if !tt.wantAdmit && (v.Status != 503 || v.Error != VerdictUnavailable) {
				t.Errorf("got %d %q, want 503 unavailable", v.Status, v.Error)
			}
			if st := m.List()[0].Stats; st.Errors != 1 || st.InstancesDiscarded != 0 {
				t.Errorf("got errors=%d discarded=%d, want 1 error and the instance kept", st.Errors, st.InstancesDiscarded)
			}
		})
	}
}

func TestProbeCounter(t *testing.T) {
	m := newTestManager(t, Options{})
	mustPut(t, m, "a", Spec{Wasm: mustReadWasm(t, probeWasm)})
	count := func(key string, ttlMS int) string {
		t.Helper()
		h := newTestHost("X-Probe", "counter", "X-Probe-Key", key, "X-Probe-TTL-Ms", strconv.Itoa(ttlMS))
		v, _ := handle(m, h)
		if !v.Admitted {
			return fmt.Sprintf("rejected %d %s", v.Status, v.Message)
		}
		return h.reqHeader.Get("X-Probe-Counter")
	}
	for i := 1; i <= 3; i++ {
		if got, want := count("k", 60_000), strconv.Itoa(i); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	if got, want := count("short", 30), "1"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	time.Sleep(50 * time.Millisecond)
	if got, want := count("short", 30), "1"; got != want {
		t.Errorf("after expiry: got %s, want %s", got, want)
	}
	if got, want := count("k", 0), "rejected 500 a: sdk: invalid argument"; got != want {
		t.Errorf("ttl 0: got %s, want %s", got, want)
	}
	// Keys are private to a plugin.
	mustPut(t, m, "b", Spec{Wasm: mustReadWasm(t, probeWasm), Order: 1})
	h := newTestHost("X-Probe", "counter", "X-Probe-Key", "k", "X-Probe-TTL-Ms", "60000")
	handle(m, h)
	if got, want := h.reqHeader.Get("X-Probe-Counter"), "1"; got != want { // b ran last
		t.Errorf("plugin b: got %s, want %s", got, want)
	}
}

func TestNow(t *testing.T) {
	now := time.UnixMilli(1_234_567_890_123)
	m := newTestManager(t, Options{Now: func() time.Time { return now }})
	mustPut(t, m, "probe", Spec{Wasm: mustReadWasm(t, probeWasm)})
	h := newTestHost("X-Probe", "now")
	handle(m, h)
	if got, want := h.reqHeader.Get("X-Probe-Now"), "1234567890123"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// wazeroPanics is a module whose second function has type 5 of 1 and
// whose first calls it: wazero v1.12.0's validator indexes the types with
// the function's before checking it, and panics.
func wazeroPanics() []byte {
	return rawModuleOf(
		wasmSection(secType, wasmVec([]byte{0x60, 0x00, 0x00})),
		wasmSection(secFunction, wasmVec([]byte{0x00}, []byte{0x05})),
		wasmSection(secCode, wasmVec(wasmBody([]byte{0x00, 0x10, 0x01, 0x0b}), wasmBody([]byte{0x00, 0x0b}))))
}

func TestPut_Invalid(t *testing.T) {
	m := newTestManager(t, Options{})
	mustPut(t, m, "probe", Spec{Wasm: mustReadWasm(t, probeWasm), Config: json.RawMessage(`"v1"`)})
	before := m.List()
	probe := mustReadWasm(t, probeWasm)
	tests := []struct {
		name    string
		plugin  string
		spec    Spec
		wantMsg string
	}{
		{"garbage", "probe", Spec{Wasm: mustReadWasm(t, garbageWasm)}, "does not compile"},
		{"no exports", "probe", Spec{Wasm: mustReadWasm(t, noExportsWasm)}, "does not export function handle_request"},
		{"empty", "probe", Spec{}, "empty module"},
		{"bad name", "Bad Name", Spec{Wasm: probe}, "plugin name"},
		{"fail policy", "probe", Spec{Wasm: probe, FailPolicy: "maybe"}, "fail policy"},
		{"config", "probe", Spec{Wasm: probe, Config: json.RawMessage(`{nope`)}, "config is not valid JSON"},
		{"config too large", "probe", Spec{Wasm: probe, Config: json.RawMessage(`"` + strings.Repeat("x", MaxConfigBytes) + `"`)}, "over the limit"},
		{"timeout", "probe", Spec{Wasm: probe, Timeout: time.Hour}, "timeout"},
		{"pool", "probe", Spec{Wasm: probe, PoolSize: MaxPoolSize + 1}, "pool size"},
		{"pool max", "probe", Spec{Wasm: probe, PoolSize: 4, PoolMax: 3}, "pool maximum"},
		{"init panics", "probe", Spec{Wasm: probe, Config: json.RawMessage(`{"panic_on_init":true}`)}, "instantiate"},
		{"memory too small", "probe", Spec{Wasm: probe, MemoryLimitPages: 4}, ""},
		{"bad config of example", "blocklist", Spec{Wasm: mustReadWasm(t, blocklistWasm), Config: json.RawMessage(`{"ips":["nope"]}`)}, "instantiate"},
		{"user of example spelled twice", "blocklist", Spec{Wasm: mustReadWasm(t, blocklistWasm), Config: json.RawMessage(`{"users":["042"]}`)}, `bad user "042"`},
		{"status of example not an error", "blocklist", Spec{Wasm: mustReadWasm(t, blocklistWasm), Config: json.RawMessage(`{"users":["42"],"status":200}`)}, "status must be a 4xx or 5xx code"},
		{"status of attemptlimit 0", "attemptlimit", Spec{Wasm: mustReadWasm(t, attemptlimitWasm), Config: json.RawMessage(`{"status":0}`)}, "status must be a 4xx or 5xx code"},
		{"status of timewindow 302", "timewindow", Spec{Wasm: mustReadWasm(t, timewindowWasm), Config: json.RawMessage(`{"status":302}`)}, "status must be a 4xx or 5xx code"},
		{"status of powcheck 99999", "powcheck", Spec{Wasm: mustReadWasm(t, powcheckWasm), Config: json.RawMessage(`{"status":99999}`)}, "status must be a 4xx or 5xx code"},
		{"user of example not an id", "blocklist", Spec{Wasm: mustReadWasm(t, blocklistWasm), Config: json.RawMessage(`{"users":["alice"]}`)}, `the guest said: panic: blocklist: bad user "alice" (a user id is a positive decimal number)`},
		{"wazero panics", "probe", Spec{Wasm: wazeroPanics()}, "does not compile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Put(context.Background(), tt.plugin, tt.spec)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			if got := Code(err); got != CodeInvalid {
				t.Errorf("got code %q (%v), want %q", got, err, CodeInvalid)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %q, want it to contain %q", err, tt.wantMsg)
			}
			after := m.List()
			if len(after) != 1 || after[0].SHA256 != before[0].SHA256 || string(after[0].Config) != `"v1"` {
				t.Errorf("chain changed: got %+v", after)
			}
			h := newTestHost()
			if v, _ := handle(m, h); !v.Admitted || h.reqHeader.Get("X-Probe-Config") != `"v1"` {
				t.Errorf("got %+v config %q, want the old plugin to admit", v, h.reqHeader.Get("X-Probe-Config"))
			}
		})
	}
}

func TestRuntimeFaults(t *testing.T) {
	tests := []struct {
		name        string
		wasm        string
		mode        string
		wantTimeout bool
		wantDiscard bool
	}{
		{"panic", probeWasm, "panic", false, true},
		{"unreachable", unreachableWasm, "", false, true},
		{"endless loop", probeWasm, "loop", true, true},
		{"memory bomb", probeWasm, "grow", false, true},
		{"sdk fail", probeWasm, "fail", false, false},
	}
	for _, tt := range tests {
		for _, policy := range []FailPolicy{FailOpen, FailClosed} {
			t.Run(tt.name+"/"+string(policy), func(t *testing.T) {
				t.Parallel()
				m := newTestManager(t, Options{})
				timeout := 10 * time.Second // the memory limit, not the deadline, must stop a bomb
				if tt.wantTimeout {
					timeout = 300 * time.Millisecond
				}
				mustPut(t, m, "p", Spec{
					Wasm: mustReadWasm(t, tt.wasm), FailPolicy: policy, PoolSize: 1,
					Timeout: timeout, MemoryLimitPages: 160, // 10 MiB
				})
				start := time.Now()
				v, ran := handle(m, newTestHost("X-Probe", tt.mode))
				if elapsed := time.Since(start); elapsed > 5*time.Second {
					t.Errorf("took %v, want the fault stopped fast", elapsed)
				}
				wantAdmit := policy == FailOpen
				if v.Admitted != wantAdmit || ran != wantAdmit {
					t.Fatalf("got admitted=%v next ran=%v, want %v (%+v)", v.Admitted, ran, wantAdmit, v)
				}
				if !wantAdmit && (v.Status != 503 || v.Error != VerdictUnavailable || v.Message != "admission plugin p failed" || !v.Failed) {
					t.Errorf("got %+v, want 503 unavailable", v)
				}
				st := m.List()[0].Stats
				if tt.wantTimeout && st.Timeouts != 1 || !tt.wantTimeout && st.Errors != 1 {
					t.Errorf("got errors=%d timeouts=%d, want one %s", st.Errors, st.Timeouts, map[bool]string{true: "timeout", false: "error"}[tt.wantTimeout])
				}
				if got := st.InstancesDiscarded == 1; got != tt.wantDiscard {
					t.Errorf("got %d discarded, want discarded=%v", st.InstancesDiscarded, tt.wantDiscard)
				}
				// The manager keeps serving: the next request works.
				if tt.wasm == probeWasm {
					if v, ran := handle(m, newTestHost()); !v.Admitted || !ran {
						t.Errorf("next request: got %+v, want admitted", v)
					}
				}
			})
		}
	}
}

func TestTrappedInstanceNotReused(t *testing.T) {
	m := newTestManager(t, Options{})
	mustPut(t, m, "p", Spec{Wasm: mustReadWasm(t, probeWasm), PoolSize: 1})
	calls := func() string {
		t.Helper()
		h := newTestHost()
		if v, _ := handle(m, h); !v.Admitted {
			t.Fatalf("got %+v, want admitted", v)
		}
		return h.reqHeader.Get("X-Probe-Calls")
	}
	if got := calls(); got != "1" {
		t.Fatalf("got %s calls, want 1", got)
	}
	if got := calls(); got != "2" {
		t.Fatalf("got %s calls, want 2: the instance is reused", got)
	}
	handle(m, newTestHost("X-Probe", "panic"))
	// The next request waits for the refilled instance: a fresh one.
	if got := calls(); got != "1" {
		t.Errorf("after a trap: got %s calls, want 1 (a fresh instance)", got)
	}
	st := m.List()[0].Stats
	if st.InstancesCreated != 2 || st.InstancesDiscarded != 1 || st.InstancesLive != 1 {
		t.Errorf("got created=%d discarded=%d live=%d, want 2, 1, 1", st.InstancesCreated, st.InstancesDiscarded, st.InstancesLive)
	}
}

// waitFor waits until cond holds, for what happens in the background; it
// fails the test if that takes longer than a generous bound.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
	}
}

// holdInNext starts a request through m that stays in next (its instances
// of guests without seckill_request_only held) until release is closed; its
// verdict then comes on the returned channel.
func holdInNext(tb testing.TB, m *Manager, release <-chan struct{}) <-chan Verdict {
	tb.Helper()
	inNext := make(chan struct{})
	done := make(chan Verdict, 1)
	go func() {
		done <- m.Handle(context.Background(), newTestHost(), func(context.Context) error {
			close(inNext)
			<-release
			return nil
		})
	}()
	select {
	case <-inNext:
	case v := <-done:
		tb.Fatalf("request to hold: got %+v before next, want it in next", v)
	}
	return done
}

// TestPoolGrowsOnDemand: a guest that keeps its instance until the
// response is written (admit.wasm has no seckill_request_only) keeps
// applying while more requests are in flight than its pool had instances:
// the pool grows up to PoolMax, keeps its size across a swap, and a request
// beyond PoolMax fails per policy and is counted.
func TestPoolGrowsOnDemand(t *testing.T) {
	for _, policy := range []FailPolicy{FailOpen, FailClosed} {
		t.Run(string(policy), func(t *testing.T) {
			m := newTestManager(t, Options{})
			admit := mustReadWasm(t, admitWasm)
			spec := Spec{Wasm: admit, PoolSize: 1, PoolMax: 3, FailPolicy: policy, Timeout: 50 * time.Millisecond}
			mustPut(t, m, "held", spec)
			release := make(chan struct{})
			var held []<-chan Verdict
			for range 3 { // each needs an instance of its own
				held = append(held, holdInNext(t, m, release))
			}
			st := m.List()[0].Stats
			if st.InstancesLive != 3 || st.PoolExhausted != 0 {
				t.Errorf("3 requests in flight: got %d instances, %d exhausted, want 3 and 0", st.InstancesLive, st.PoolExhausted)
			}
			// A fourth finds the pool at its maximum: it waits for its
			// deadline and fails per policy, counted.
			v, ran := handle(m, newTestHost())
			if want := policy == FailOpen; v.Admitted != want || ran != want {
				t.Errorf("beyond the pool maximum: got admitted=%v next ran=%v, want %v", v.Admitted, ran, want)
			}
			if st := m.List()[0].Stats; st.PoolExhausted != 1 || st.Timeouts != 0 || st.Errors != 0 {
				t.Errorf("got exhausted=%d timeouts=%d errors=%d, want 1, 0, 0", st.PoolExhausted, st.Timeouts, st.Errors)
			}
			close(release)
			for _, done := range held {
				if v := <-done; !v.Admitted {
					t.Errorf("held request: got %+v, want admitted", v)
				}
			}
			// The replacement grows, in the background, as large as the
			// pool had grown.
			spec.Config = json.RawMessage(`2`)
			mustPut(t, m, "held", spec)
			waitFor(t, "the new pool to grow to 3", func() bool { return m.List()[0].Stats.InstancesLive == 3 })
		})
	}
}

// TestPoolShrinksWhenIdle: the instances a grown pool had to make are
// closed once they have stayed idle for a whole trim interval, down to
// PoolSize.
func TestPoolShrinksWhenIdle(t *testing.T) {
	m := newTestManager(t, Options{})
	mustPut(t, m, "held", Spec{Wasm: mustReadWasm(t, admitWasm), PoolSize: 1, PoolMax: 3})
	release := make(chan struct{})
	var held []<-chan Verdict
	for range 3 {
		held = append(held, holdInNext(t, m, release))
	}
	close(release)
	for _, done := range held {
		<-done
	}
	p := m.chain.Load().plugins[0]
	p.trim() // the interval in which the pool grew: every instance was needed
	if got := m.List()[0].Stats.InstancesLive; got != 3 {
		t.Fatalf("after a busy interval: got %d instances, want 3", got)
	}
	p.trim() // an interval in which two stayed idle
	if got := m.List()[0].Stats.InstancesLive; got != 1 {
		t.Errorf("after an idle interval: got %d instances, want 1 (the pool size)", got)
	}
	if v, _ := handle(m, newTestHost()); !v.Admitted {
		t.Errorf("got %+v, want admitted", v)
	}
	p.trim()
	if got := m.List()[0].Stats.InstancesLive; got != 1 {
		t.Errorf("trimmed again: got %d instances, want 1 (never under the pool size)", got)
	}
}

func TestPoolExhausted(t *testing.T) {
	// admit.wasm has no seckill_request_only: its instance is held until
	// next returns, so with a pool of at most one a second request must
	// wait.
	for _, policy := range []FailPolicy{FailOpen, FailClosed} {
		t.Run(string(policy), func(t *testing.T) {
			m := newTestManager(t, Options{})
			info := mustPut(t, m, "held", Spec{Wasm: mustReadWasm(t, admitWasm), PoolSize: 1, PoolMax: 1, FailPolicy: policy, Timeout: 50 * time.Millisecond})
			if info.RequestOnly {
				t.Fatal("got RequestOnly, want false")
			}
			release := make(chan struct{})
			done := holdInNext(t, m, release)
			v, _ := handle(m, newTestHost())
			if want := policy == FailOpen; v.Admitted != want {
				t.Errorf("while the only instance is held: got admitted=%v, want %v", v.Admitted, want)
			}
			close(release)
			if v := <-done; !v.Admitted {
				t.Errorf("first request: got %+v, want admitted", v)
			}
			if v, _ := handle(m, newTestHost()); !v.Admitted {
				t.Errorf("after release: got %+v, want admitted", v)
			}
			if st := m.List()[0].Stats; st.PoolExhausted != 1 || st.Timeouts != 0 || st.Calls != 3 {
				t.Errorf("got exhausted=%d timeouts=%d calls=%d, want 1, 0 and 3", st.PoolExhausted, st.Timeouts, st.Calls)
			}
		})
	}
}

// hammer calls ok from workers goroutines in a loop until the returned stop
// is called; stop waits for them and tells how many calls were made and how
// many were not ok. yield: the workers yield between calls, as a request
// handler waiting on the network does (workers that never do keep each P
// for a 10ms slice and leave every other goroutine queued behind them).
func hammer(workers int, yield bool, ok func() bool) (stop func() (total, failed int64)) {
	var stopped atomic.Bool
	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped.Load() {
				calls.Add(1)
				if !ok() {
					failures.Add(1)
				}
				if yield {
					runtime.Gosched()
				}
			}
		}()
	}
	return func() (int64, int64) {
		stopped.Store(true)
		wg.Wait()
		return calls.Load(), failures.Load()
	}
}

func TestHotSwapUnderLoad(t *testing.T) {
	m := newTestManager(t, Options{})
	probe := mustReadWasm(t, probeWasm)
	mustPut(t, m, "probe", Spec{Wasm: probe, Config: json.RawMessage(`0`)})

	const workers = 8
	stop := hammer(workers, true, func() bool {
		h := newTestHost()
		v, ran := handle(m, h)
		return v.Admitted && ran && h.reqHeader.Get("X-Probe-Config") != ""
	})
	for i := 1; i <= 20; i++ {
		// Alternate the module too: an example plugin that admits everyone.
		spec := Spec{Wasm: probe, Config: json.RawMessage(strconv.Itoa(i)), FailPolicy: FailClosed}
		mustPut(t, m, "probe", spec)
		if i%5 == 0 {
			mustPut(t, m, "blocklist", Spec{Wasm: mustReadWasm(t, blocklistWasm), Order: -1, FailPolicy: FailClosed})
		}
	}
	total, failed := stop()
	if total < workers {
		t.Fatalf("got %d requests, want some per worker", total)
	}
	if failed != 0 {
		t.Errorf("got %d of %d requests failed during 20 swaps, want 0", failed, total)
	}
	for _, info := range m.List() {
		if info.Stats.Errors != 0 || info.Stats.Timeouts != 0 {
			t.Errorf("%s: got errors=%d timeouts=%d, want 0", info.Name, info.Stats.Errors, info.Stats.Timeouts)
		}
	}
	t.Logf("%d requests during 20 swaps", total)
}

func TestOrderAndDelete(t *testing.T) {
	m := newTestManager(t, Options{})
	probe := mustReadWasm(t, probeWasm)
	mustPut(t, m, "a", Spec{Wasm: probe, Order: 1, Config: json.RawMessage(`"A"`)})
	mustPut(t, m, "b", Spec{Wasm: probe, Order: 2, Config: json.RawMessage(`"B"`)})
	lastWriter := func() string { // each probe sets X-Probe-Config: the last one wins
		h := newTestHost()
		handle(m, h)
		return h.reqHeader.Get("X-Probe-Config")
	}
	order := func() string {
		var names []string
		for _, i := range m.List() {
			names = append(names, i.Name)
		}
		return strings.Join(names, ",")
	}
	if got, want := order(), "a,b"; got != want {
		t.Fatalf("got order %s, want %s", got, want)
	}
	if got, want := lastWriter(), `"B"`; got != want {
		t.Errorf("got last %s, want %s", got, want)
	}
	mustPut(t, m, "a", Spec{Wasm: probe, Order: 3, Config: json.RawMessage(`"A"`)})
	if got, want := order(), "b,a"; got != want {
		t.Errorf("after reorder: got order %s, want %s", got, want)
	}
	if got, want := lastWriter(), `"A"`; got != want {
		t.Errorf("after reorder: got last %s, want %s", got, want)
	}
	if err := m.Delete(context.Background(), "a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got, want := order(), "b"; got != want {
		t.Errorf("after delete: got %s, want %s", got, want)
	}
	if err := m.Delete(context.Background(), "a"); Code(err) != CodeNotFound {
		t.Errorf("delete twice: got %v, want %s", err, CodeNotFound)
	}
	if err := m.Delete(context.Background(), "b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if v, ran := handle(m, newTestHost()); !v.Admitted || !ran {
		t.Errorf("empty chain: got %+v, want admitted", v)
	}
}

func TestClose(t *testing.T) {
	m, err := NewManager(context.Background(), Options{CompilationCache: testCache, DefaultPoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, m, "probe", Spec{Wasm: mustReadWasm(t, probeWasm)})
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := m.Put(context.Background(), "probe", Spec{Wasm: mustReadWasm(t, probeWasm)}); Code(err) != CodeClosed {
		t.Errorf("Put after Close: got %v, want %s", err, CodeClosed)
	}
	if v, _ := handle(m, newTestHost("X-Probe", "reject")); !v.Admitted {
		t.Errorf("Handle after Close: got %+v, want admitted (no plugins)", v)
	}
}

// solvePow finds a nonce whose sha256(user:nonce) has difficulty zero bits
// and checks that "43" fails with it.
func solvePow(tb testing.TB, user string, difficulty int) string {
	tb.Helper()
	for i := 0; ; i++ {
		n := strconv.Itoa(i)
		if zeroBits(user+":"+n) >= difficulty && zeroBits("43:"+n) < difficulty {
			return n
		}
	}
}

func TestSwapDrainsOldPlugin(t *testing.T) {
	tests := []struct {
		name         string
		drainTimeout time.Duration
		wantPutWaits bool
	}{
		{"drained", 10 * time.Second, true},
		{"drain bounded", 50 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestManager(t, Options{DrainTimeout: tt.drainTimeout})
			admit := mustReadWasm(t, admitWasm) // holds its instance until next returns
			mustPut(t, m, "held", Spec{Wasm: admit, PoolSize: 2, FailPolicy: FailClosed})

			inNext, release := make(chan struct{}), make(chan struct{})
			first := make(chan Verdict)
			go func() {
				first <- m.Handle(context.Background(), newTestHost(), func(context.Context) error {
					close(inNext)
					<-release
					return nil
				})
			}()
			<-inNext
			putDone := make(chan error)
			go func() {
				_, err := m.Put(context.Background(), "held", Spec{Wasm: admit, PoolSize: 2, Config: json.RawMessage(`2`), FailPolicy: FailClosed})
				putDone <- err
			}()
			// Requests during the swap are served, by the new plugin once
			// it is in.
			for range 5 {
				if v, ran := handle(m, newTestHost()); !v.Admitted || !ran {
					t.Fatalf("request during swap: got %+v, want admitted", v)
				}
			}
			select {
			case err := <-putDone:
				if tt.wantPutWaits {
					t.Fatalf("Put returned (%v) while a call was in flight, want it to wait", err)
				}
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(300 * time.Millisecond):
				if !tt.wantPutWaits {
					t.Fatal("Put still waiting after 300ms, want it bounded by the drain timeout")
				}
			}
			close(release)
			if v := <-first; !v.Admitted {
				t.Errorf("request in flight: got %+v, want admitted", v)
			}
			if tt.wantPutWaits {
				if err := <-putDone; err != nil {
					t.Fatal(err)
				}
			}
			if got := string(m.List()[0].Config); got != "2" {
				t.Errorf("got config %s, want the new plugin's 2", got)
			}
		})
	}
}

// TestSwapSameModuleReusesCompiled: a PUT of the same bytes with the same
// memory limit keeps the compiled module (no decode, validation or compile on
// a busy gateway) but gets new instances with the new config; another memory
// limit compiles again; the runtime closes with the last plugin using it.
func TestSwapSameModuleReusesCompiled(t *testing.T) {
	m := newTestManager(t, Options{})
	probe := mustReadWasm(t, probeWasm)
	mustPut(t, m, "probe", Spec{Wasm: probe, Config: json.RawMessage(`"v1"`)})
	current := func(name string) *plugin {
		t.Helper()
		for _, p := range m.chain.Load().plugins {
			if p.name == name {
				return p
			}
		}
		t.Fatalf("plugin %s not in the chain", name)
		return nil
	}
	first := current("probe").mod

	mustPut(t, m, "probe", Spec{Wasm: probe, Config: json.RawMessage(`"v2"`)})
	if got := current("probe").mod; got != first {
		t.Errorf("same bytes and limit: got a new module, want the loaded one reused")
	}
	h := newTestHost()
	if v, _ := handle(m, h); !v.Admitted || h.reqHeader.Get("X-Probe-Config") != `"v2"` {
		t.Errorf("got %+v config %q, want admitted with the new config", v, h.reqHeader.Get("X-Probe-Config"))
	}
	if got := first.refs.Load(); got != 1 {
		t.Errorf("got %d references after the swap, want 1 (the old plugin let go)", got)
	}

	mustPut(t, m, "other", Spec{Wasm: probe, Order: 1, MemoryLimitPages: 200})
	if current("other").mod == first {
		t.Errorf("another memory limit: got the module reused, want one compiled with its own limit")
	}
	mustPut(t, m, "probe", Spec{Wasm: mustReadWasm(t, blocklistWasm)})
	if got := first.refs.Load(); got != 0 {
		t.Errorf("got %d references once no plugin uses the module, want 0 (closed)", got)
	}
	if _, err := first.runtime.InstantiateModule(context.Background(), first.compiled, wazero.NewModuleConfig().WithName("after")); err == nil {
		t.Errorf("instantiate in the module's runtime after its last plugin went: got no error, want the runtime closed")
	}
}

// TestCloseWithCallsInFlight: a plugin closed while calls still use its
// instances (the drain timed out) neither crashes the gateway nor leaves the
// calls hanging: one call is looping inside the guest, another holds its
// instance for the response phase while next runs.
func TestCloseWithCallsInFlight(t *testing.T) {
	m := newTestManager(t, Options{DrainTimeout: 20 * time.Millisecond})
	mustPut(t, m, "held", Spec{Wasm: mustReadWasm(t, admitWasm), PoolSize: 1, Order: 1})
	mustPut(t, m, "looping", Spec{Wasm: mustReadWasm(t, probeWasm), PoolSize: 1, Order: 2, Timeout: 5 * time.Second})

	inNext, release := make(chan struct{}), make(chan struct{})
	held := make(chan Verdict)
	go func() {
		// The probe admits this one (no X-Probe), then next waits.
		held <- m.Handle(context.Background(), newTestHost(), func(context.Context) error {
			close(inNext)
			<-release
			return nil
		})
	}()
	<-inNext
	looped := make(chan Verdict)
	go func() {
		// Waits for held's instance of "held" until its deadline (2s),
		// so take the probe alone: delete "held" first.
		looped <- m.Handle(context.Background(), newTestHost("X-Probe", "loop"), func(context.Context) error { return nil })
	}()
	if err := m.Delete(context.Background(), "held"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the loop start (it runs up to 5s otherwise)
	if err := m.Delete(context.Background(), "looping"); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-looped:
		if !v.Admitted { // fail open: the loop was cut off by the close
			t.Errorf("looping call: got %+v, want admitted (fail open)", v)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("looping call still running 4s after its plugin was closed, want it cut off")
	}
	close(release)
	if v := <-held; !v.Admitted {
		t.Errorf("held call: got %+v, want admitted (its response phase fails quietly)", v)
	}
}

// TestGuestMemoryFreedAfterLastCall: guest memory that wazero frees while a
// call runs on it stays mapped until the call leaves; no call starts on
// freed memory.
func TestGuestMemoryFreedAfterLastCall(t *testing.T) {
	in := &instance{}
	alloc := memoryAllocator(in, nil)
	if alloc == nil {
		t.Skip("guest memory is wazero's on this platform")
	}
	lm := alloc.Allocate(64<<10, 4*64<<10)
	if got := len(lm.Reallocate(2 * 64 << 10)); got != 2*64<<10 || in.mem == nil {
		t.Fatalf("got %d bytes (memory recorded: %v), want %d", got, in.mem != nil, 2*64<<10)
	}
	if b := lm.Reallocate(5 * 64 << 10); b != nil {
		t.Errorf("grow past the limit: got %d bytes, want nil", len(b))
	}
	if !in.mem.enter() {
		t.Fatal("enter before free: got false, want true")
	}
	lm.Free() // the module closed under a running call
	if in.mem.buf == nil {
		t.Fatal("freed while a call runs on it, want it kept until the call leaves")
	}
	in.mem.buf[0] = 1 // still mapped: no fault
	in.mem.leave()
	if in.mem.buf != nil {
		t.Error("still held after the last call left, want it unmapped")
	}
	if in.mem.enter() {
		t.Error("enter after free: got true, want false")
	}
}

// TestSwapBurstClosedPolicy hammers two closed-policy plugins with a tight
// deadline while both are hot-swapped back to back for a few seconds: one
// gets a new config each time (new instances of a compiled Go guest), the
// other a new module (a compile each time). The workers keep both cores
// busy, so the swaps' compiles and instantiations compete with the calls.
// No healthy request may fail.
func TestSwapBurstClosedPolicy(t *testing.T) {
	m := newTestManager(t, Options{})
	probe := mustReadWasm(t, probeWasm)
	const timeout = 20 * time.Millisecond
	swap := func(i int) {
		t.Helper()
		mustPut(t, m, "p", Spec{Wasm: probe, Config: json.RawMessage(strconv.Itoa(i)), FailPolicy: FailClosed, Timeout: timeout})
		mustPut(t, m, "q", Spec{Wasm: fillerModule(uint32(i), 100), Order: 1, FailPolicy: FailClosed, Timeout: timeout})
	}
	swap(0)

	stop := hammer(4, false, func() bool {
		v, ran := handle(m, newTestHost())
		return v.Admitted && ran
	})
	start := time.Now()
	swaps := 0
	for swaps < 10 || time.Since(start) < 3*time.Second {
		swaps++
		swap(swaps)
	}
	elapsed := time.Since(start)
	total, failed := stop()
	for _, info := range m.List() {
		if st := info.Stats; st.Errors+st.Timeouts+st.PoolExhausted != 0 {
			t.Errorf("%s: got errors=%d timeouts=%d exhausted=%d, want none", info.Name, st.Errors, st.Timeouts, st.PoolExhausted)
		}
	}
	if failed != 0 {
		t.Errorf("got %d of %d requests failed during %d swaps, want 0", failed, total, 2*swaps)
	}
	t.Logf("%d requests during %d swaps in %v", total, 2*swaps, elapsed.Round(time.Millisecond))
}
