package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cloudwego/hertz/pkg/common/ut"

	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/gateway/wasm/wasmtest"
)

const admitWasm = "wasm/testdata/admit.wasm" // 88 bytes: instantiates in microseconds

// putSeeds are PUT bodies for the fuzzers: valid ones (around admit.wasm) and
// the usual ways to get one wrong.
func putSeeds(tb testing.TB) []string {
	tb.Helper()
	admit := base64.StdEncoding.EncodeToString(wasmtest.ReadModule(tb, admitWasm))
	return []string{
		`{"wasm_base64":"` + admit + `"}`,
		`{"wasm_base64":"` + admit + `","order":-3,"config":{"users":["1"],"x":[1,2,{"y":null}]},"fail_policy":"closed","timeout_ms":25,"memory_limit_pages":16,"pool_size":1}`,
		`{"wasm_base64":"` + admit + `","config":null,"fail_policy":"open"}`,
		`{"wasm_base64":"` + admit + `","timeout_ms":-1}`,
		`{"wasm_base64":"` + admit + `","timeout_ms":99999999999999999999}`,
		`{"wasm_base64":"` + admit + `","memory_limit_pages":4294967296}`,
		`{"wasm_base64":"` + admit + `","pool_size":100000}`,
		`{"wasm_base64":"` + admit + `"} {"wasm_base64":"` + admit + `"}`,
		`{"wasm_base64":"` + admit + `","WASM_BASE64":""}`,
		`{"wasm_base64":"` + admit + `","wasm_base64":""}`,
		`{"wasm_base64":"AGFzbQEAAAA="}`, // a valid, empty module: no ABI exports
		`{"wasm_base64":"not base64!"}`,
		`{"wasm_base64":"` + strings.TrimRight(admit, "=") + `"}`,
		`{"wasm_base64":""}`,
		`{"config":{}}`,
		`{"wasm_base64":"\u0041GFzbQEAAAA="}`,
		`{"wasm_base64":"` + admit + `","config":"\ud800"}`,
		`[]`, `null`, `"x"`, `{`, ``, `{}` + "\x00",
	}
}

// FuzzDecodePut: no body makes the PUT decoder panic, and whatever it accepts
// has a timeout within the host's bounds and survives a round trip through JSON
// unchanged (one object, no unknown fields, nothing lost). A body without a module
// is a change of a loaded plugin's other fields.
func FuzzDecodePut(f *testing.F) {
	for _, s := range putSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodePut(body)
		if err != nil {
			return
		}
		if req.TimeoutMS < 0 || req.TimeoutMS > wasm.MaxTimeout.Milliseconds() {
			t.Fatalf("accepted %+v from %q", req, body)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", req, err)
		}
		req2, err := decodePut(again)
		if err != nil {
			t.Fatalf("round trip of %q: %v", again, err)
		}
		req.Config, req2.Config = compact(t, req.Config), compact(t, req2.Config)
		if !reflect.DeepEqual(req, req2) {
			t.Fatalf("round trip: got %+v, want %+v", req2, req)
		}
	})
}

func compact(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if raw == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("config %q is not JSON: %v", raw, err)
	}
	return b.Bytes()
}

// FuzzAdminPut drives PUT /admin/v1/plugins/:name with any name and body: the
// answer is 200 with the plugin, or an error in the gateway's shape (400,
// 404, 413) that leaves the chain exactly as it was.
func FuzzAdminPut(f *testing.F) {
	for _, s := range putSeeds(f) {
		f.Add("probe", []byte(s))
	}
	f.Add("a-b_c9", []byte(putSeeds(f)[0]))
	f.Add("Upper", []byte(putSeeds(f)[0]))
	f.Add("x/../y", []byte(putSeeds(f)[0]))
	f.Add(strings.Repeat("n", 64), []byte(putSeeds(f)[0]))

	m := wasmtest.NewManager(f, wasm.Options{})
	e := newPluginEngine(f, m)
	type entry struct{ name, sha string }
	chain := func() []entry {
		var out []entry
		for _, info := range m.List() {
			out = append(out, entry{info.Name, info.SHA256})
		}
		return out
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			t.Skip("the router answers paths without a name segment, not the handler")
		}
		before := chain()
		w := ut.PerformRequest(e, http.MethodPut, "/admin/v1/plugins/"+url.PathEscape(name),
			&ut.Body{Body: bytes.NewReader(body), Len: len(body)}, ut.Header{Key: "Content-Type", Value: "application/json"})
		switch w.Code {
		case http.StatusOK:
			var p api.Plugin
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Name == "" || len(p.SHA256) != 64 {
				t.Fatalf("200 with body %q (%v), want the plugin", w.Body.Bytes(), err)
			}
			if !slices.ContainsFunc(m.List(), func(i wasm.Info) bool { return i.Name == p.Name && i.SHA256 == p.SHA256 }) {
				t.Fatalf("200 for %s, but it is not in the chain", p.Name)
			}
			// Keep the chain small for the next inputs.
			if d := ut.PerformRequest(e, http.MethodDelete, "/admin/v1/plugins/"+p.Name, nil); d.Code != http.StatusNoContent {
				t.Fatalf("DELETE %s: got %d %s", p.Name, d.Code, d.Body.Bytes())
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
			var e api.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%d with body %q (%v), want the error shape", w.Code, w.Body.Bytes(), err)
			}
			if after := chain(); !slices.Equal(before, after) {
				t.Fatalf("%d, but the chain changed from %v to %v", w.Code, before, after)
			}
		default:
			t.Fatalf("got %d %q for name %q body %q", w.Code, w.Body.Bytes(), name, body)
		}
	})
}
