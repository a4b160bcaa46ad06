package backend

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/kerrors"
	"github.com/cloudwego/kitex/pkg/transmeta"
	"github.com/cloudwego/kitex/transport"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
	"github.com/seckill/flashsale/internal/reqid"
	"github.com/seckill/flashsale/internal/syncbuf"
)

// panicky panics in Ping and answers GetTicket.
type panicky struct{ rpc.Seckill }

func (*panicky) Ping(context.Context, *rpc.PingReq) (*rpc.PingResp, error) {
	var m map[string]int
	m["boom"]++
	return nil, nil
}

func (*panicky) GetTicket(_ context.Context, req *rpc.TicketReq) (*rpc.TicketResp, error) {
	return &rpc.TicketResp{Status: "pending"}, nil
}

// GetPlugins answers a chain larger than any request may be.
func (*panicky) GetPlugins(context.Context, *rpc.EmptyReq) (*rpc.PluginChain, error) {
	return &rpc.PluginChain{Plugins: []*rpc.PluginSpec{{Name: "big", Config: strings.Repeat("x", MaxRequestBytes+1<<20)}}}, nil
}

// TestPanicIsAnInternalError: a handler's panic, on the backend's own server options
// (recovery, then the credential check), is an INTERNAL business error to the
// caller, whose next call goes on; it is counted and logged with the caller's
// request id and the stack.
func TestPanicIsAnInternalError(t *testing.T) {
	var logs syncbuf.Buffer
	s := NewServer(Config{RPCSecret: testCreds.Service, RPCOperatorSecret: testCreds.Operator}, nil, nil,
		slog.New(slog.NewJSONHandler(&logs, nil)), prometheus.NewRegistry())
	addr := servePanicky(t, s)
	c := testClient(t, addr, 3*time.Second)
	ctx := reqid.With(context.Background(), "rpc-req-7")
	var pingErr error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, pingErr = c.Ping(ctx, &rpc.PingReq{}); pingErr == nil || !kerrors.IsKitexError(pingErr) {
			break // the server answers (it may take a moment to listen)
		}
	}
	be, ok := kerrors.FromBizStatusError(pingErr)
	if !ok || be.BizStatusCode() != int32(rpc.ErrorCode_INTERNAL) || !strings.Contains(be.BizMessage(), "rpc-req-7") {
		t.Fatalf("a panicking call: got %v, want INTERNAL naming the request id", pingErr)
	}
	if tk, err := c.GetTicket(ctx, &rpc.TicketReq{UserId: 1, Ticket: "t"}); err != nil || tk.Status != "pending" {
		t.Fatalf("the next call: got %v %v, want an answer", tk, err)
	}
	var m dto.Metric
	if err := s.panics.Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		t.Fatalf("got %v panics counted, want 1", m.GetCounter().GetValue())
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "panic serving an RPC call" {
			found = rec["request_id"] == "rpc-req-7" && rec["method"] == "Ping" && strings.Contains(rec["stack"].(string), "server_internal_test.go")
		}
	}
	if !found {
		t.Fatalf("no panic record with the request id, the method and the stack in %s", logs.String())
	}
}

// TestOrderIDsHaveOneSpelling: an order id in a path is digits with no sign or leading
// zero; `+156` and `0156` are no order, so they cannot read, pay or cancel order 156.
func TestOrderIDsHaveOneSpelling(t *testing.T) {
	for s, want := range map[string]int64{"156": 156, "1": 1, "9223372036854775807": 1<<63 - 1} {
		if id, err := parseOrderID(s); err != nil || id != want {
			t.Errorf("%q: got %d, %v; want %d", s, id, err, want)
		}
	}
	for _, s := range []string{"+156", "0156", "-156", "0", "", "156x", " 156", "9223372036854775808", "o-5"} {
		if id, err := parseOrderID(s); !domain.IsCode(err, domain.ENotFound) {
			t.Errorf("%q: got %d, %v; want not_found", s, id, err)
		}
	}
}

// TestTicketSecretsChecked: a backend refuses to start on a guessable ticket secret,
// or on one that is an RPC credential (which gateways hold); and the key of tickets
// comes from the ticket secret when set, from the RPC secret when not.
func TestTicketSecretsChecked(t *testing.T) {
	rpcSecret, operator := "5c0f1e6b7a2d4c8e9f3b1a7d6e2c4f80", "a93e7d1c5b2f4086e1d7c3b9a5f20e64"
	ticket, previous := "0d4e9b2a7c6f1e3b8a5d9c2f4e7b1a60", "e2b7c4f19a3d6e8b0c5f2a7d1e9b4c38"
	for _, c := range []struct {
		name             string
		ticket, previous string
		want             string // in the error; "" none
	}{
		{"unset", "", "", ""},
		{"both set", ticket, previous, ""},
		{"short", "0123abcd", "", "backend.ticket_secret"},
		{"the rpc secret", rpcSecret, "", "must differ"},
		{"the operator secret", operator, "", "must differ"},
		{"a placeholder previous one", ticket, "change-me-change-me-change-me-change-me", "backend.previous_ticket_secret"},
	} {
		cfg := Config{RPCSecret: rpcSecret, RPCOperatorSecret: operator, TicketSecret: c.ticket, PreviousTicketSecret: c.previous}
		err := cfg.checkTicketSecrets()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error naming %q", c.name, err, c.want)
		case err != nil && (strings.Contains(err.Error(), c.ticket) || c.previous != "" && strings.Contains(err.Error(), c.previous)):
			t.Errorf("%s: the error shows the secret: %v", c.name, err)
		}
		if c.want != "" {
			if err := NewServer(Config{Listen: "127.0.0.1:0", RPCSecret: rpcSecret, RPCOperatorSecret: operator, TicketSecret: c.ticket,
				PreviousTicketSecret: c.previous}, nil, nil, nil, nil).Start(context.Background()); err == nil {
				t.Errorf("%s: the backend started", c.name)
			}
		}
	}
	cur, prev := Config{RPCSecret: rpcSecret}.TicketSecrets()
	if string(cur) != rpcSecret || prev != nil {
		t.Errorf("without a ticket secret: got %q, %q; want the rpc secret and none", cur, prev)
	}
	cur, prev = Config{RPCSecret: rpcSecret, TicketSecret: ticket, PreviousTicketSecret: previous}.TicketSecrets()
	if string(cur) != ticket || string(prev) != previous {
		t.Errorf("with both: got %q, %q; want %q, %q", cur, prev, ticket, previous)
	}
}

// TestHugeRequestsRefusedEarly: a frame whose header claims more than MaxRequestBytes
// is refused when the header arrives (the connection closed), so whoever reaches the
// port cannot make the backend read and hold gigabytes before the credential check
// (a probe: three 300 MB pings without a credential took the backend to 3 GB). A
// module of the largest size still passes.
func TestHugeRequestsRefusedEarly(t *testing.T) {
	s := NewServer(Config{RPCSecret: testCreds.Service, RPCOperatorSecret: testCreds.Operator}, nil, nil, nil, nil)
	addr := servePanicky(t, s)
	for _, framing := range []string{"framed", "ttheader"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		const claimed = 300 << 20
		var head []byte
		if framing == "framed" {
			head = binary.BigEndian.AppendUint32(nil, claimed)
			head = append(head, 0x80, 0x01, 0x00, 0x01) // a thrift binary call
		} else {
			// TTHeader: length, magic 0x1000, flags, seq id, header size (in 4-byte
			// words), the header (protocol binary, no transforms, padding).
			head = binary.BigEndian.AppendUint32(nil, claimed)
			head = append(head, 0x10, 0x00, 0x00, 0x00, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0)
			head = append(head, 0x80, 0x01, 0x00, 0x01)
		}
		// Ping's arguments: a PingReq holding a string field of nearly all the frame,
		// which a decoder must read whole to skip.
		head = binary.BigEndian.AppendUint32(head, 4)
		head = append(head, "Ping"...)
		head = binary.BigEndian.AppendUint32(head, 1)         // seq id
		head = append(head, 0x0c, 0x00, 0x01, 0x0b, 0x00, 99) // struct field 1, string field 99
		head = binary.BigEndian.AppendUint32(head, claimed-64)
		sent := 0
		chunk := make([]byte, 1<<20)
		var werr error
		if _, werr = c.Write(head); werr == nil {
			for sent < 64<<20 {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				var n int
				n, werr = c.Write(chunk)
				sent += n
				if werr != nil {
					break
				}
			}
		}
		c.Close()
		t.Logf("%s: sent %d MiB, %v", framing, sent>>20, werr)
		if werr == nil {
			t.Errorf("%s: the backend took %d MiB of a frame claiming %d MiB; want it refused at the header", framing, sent>>20, claimed>>20)
		}
	}
	// Answers are not limited: a chain larger than a request may be still comes back.
	c := testClient(t, addr, 10*time.Second)
	var chain *rpc.PluginChain
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if chain, err = c.GetPlugins(context.Background(), &rpc.EmptyReq{}); err == nil || !kerrors.IsKitexError(err) {
			break
		}
	}
	if err != nil || len(chain.Plugins) != 1 || len(chain.Plugins[0].Config) <= MaxRequestBytes {
		t.Fatalf("an answer over the request limit: got %v; want the chain", err)
	}
}

// testCreds are the RPC credentials of the servers these tests start.
var testCreds = rpcauth.Secrets{Service: "backend-test-rpc-c20ad4d76fe97759aa", Operator: "backend-test-rpc-op-6512bd43d9caa6e02c"}

// servePanicky serves panicky with s's server options on a free port until the test
// ends, and returns its address.
func servePanicky(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := seckill.NewServer(&panicky{}, s.options(ln)...)
	go srv.Run()
	t.Cleanup(func() { srv.Stop() })
	return ln.Addr().String()
}

// testClient is a kitex client of addr with testCreds, as a gateway makes one.
func testClient(t *testing.T, addr string, timeout time.Duration) seckill.Client {
	t.Helper()
	c, err := seckill.NewClient("seckill.backend", client.WithHostPorts(addr), client.WithTransportProtocol(transport.TTHeader),
		client.WithMetaHandler(transmeta.ClientTTHeaderHandler), client.WithMiddleware(rpcauth.ClientMiddleware(testCreds)),
		client.WithRPCTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
