package redis_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/redis"
)

// TestOpenWaitsForRedis: a process started while its Redis restarts waits for it
// instead of exiting. Fails before the fix: the first refused ping was the answer.
func TestOpenWaitsForRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (make test installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	started := make(chan *exec.Cmd, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Error(err)
			cmd = nil
		}
		started <- cmd
	}()
	rdb, err := redis.Open(context.Background(), []string{addr}, "", false)
	if cmd := <-started; cmd != nil {
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
	}
	if err != nil {
		t.Fatalf("open while Redis starts: %v", err)
	}
	rdb.Close()

	// Nobody ever answers: an error once OpenWait has passed.
	was := redis.OpenWait
	redis.OpenWait = 300 * time.Millisecond
	defer func() { redis.OpenWait = was }()
	if _, err := redis.Open(context.Background(), []string{"127.0.0.1:1"}, "", false); err == nil {
		t.Fatal("open of an address nobody listens on: got no error")
	}
}
