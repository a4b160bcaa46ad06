package redis_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/testenv"
)

// lossyConn passes a command on to Redis and, when armed and the command is a script
// call, loses the answer: the script ran, and the client sees the connection end.
type lossyConn struct {
	net.Conn
	armed *atomic.Bool
	lost  bool
}

func (c *lossyConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil && bytes.Contains(bytes.ToLower(p), []byte("evalsha")) && c.armed.CompareAndSwap(true, false) {
		c.lost = true
	}
	return n, err
}

func (c *lossyConn) Read(p []byte) (int, error) {
	if c.lost {
		c.Conn.Read(p) // the answer comes, so the script ran; it is dropped
		c.Conn.Close()
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

// TestScriptsNotResentByTheCluster: a cluster client resends a command whose
// connection ended after it was written (to the same node, then another), whatever
// MaxRetries says; a script that adds or takes units would run twice. Fails before
// the fix: Adjust's +3 was applied twice (and answered as once), Take took twice.
func TestScriptsNotResentByTheCluster(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	d := net.Dialer{Timeout: time.Second}
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(), MaxRetries: -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &lossyConn{Conn: c, armed: &armed}, nil
		}})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis cluster: %v", err)
	}
	st, a, i := openItem(t, rdb, 5, 10)
	epoch, err := st.Epoch(ctx, a, i)
	if err != nil {
		t.Fatal(err)
	}
	// Each script is loaded on the node first, so the call armed is its EVALSHA.
	if _, err := st.Adjust(ctx, a, i, 0, 0, epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Take(ctx, a, i, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	if _, err := st.Adjust(ctx, a, i, 0, 3, epoch); err == nil {
		t.Fatalf("adjust with its answer lost: got no error, want one (the outcome is unknown)")
	}
	if n, _, err := st.Available(ctx, a, i, 1); err != nil || n != 13 {
		t.Fatalf("after the adjust: got %d units, %v; want 13 (+3 once)", n, err)
	}
	armed.Store(true)
	if _, err := st.Take(ctx, a, i, 0, 4, 0); err == nil {
		t.Fatalf("take with its answer lost: got no error, want one")
	}
	if n, _, err := st.Available(ctx, a, i, 1); err != nil || n != 9 {
		t.Fatalf("after the take: got %d units, %v; want 9 (-4 once)", n, err)
	}
}
