package gateway

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudwego/kitex/pkg/discovery"
)

// TestDNSResolver: every address of the name is an instance with the service's port,
// a changed answer is a change kitex applies, and a failed lookup is an error (kitex
// keeps the instances it had).
func TestDNSResolver(t *testing.T) {
	r, err := newDNSResolver("backends.seckill.svc:8082")
	if err != nil {
		t.Fatal(err)
	}
	answer := []string{"10.0.0.2", "10.0.0.1"}
	var fail error
	r.lookup = func(_ context.Context, host string) ([]string, error) {
		if host != "backends.seckill.svc" {
			t.Errorf("looked up %q", host)
		}
		return answer, fail
	}
	ctx := context.Background()
	target := r.Target(ctx, nil)
	addrs := func(res discovery.Result) []string {
		var out []string
		for _, in := range res.Instances {
			out = append(out, in.Address().String())
		}
		return out
	}
	first, err := r.Resolve(ctx, target)
	if got := addrs(first); err != nil || len(got) != 2 || got[0] != "10.0.0.1:8082" || got[1] != "10.0.0.2:8082" {
		t.Fatalf("got %v, %v; want both addresses on port 8082", got, err)
	}
	answer = []string{"10.0.0.2", "10.0.0.3"}
	next, err := r.Resolve(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	change, changed := r.Diff(target, first, next)
	if !changed || len(change.Added) != 1 || change.Added[0].Address().String() != "10.0.0.3:8082" ||
		len(change.Removed) != 1 || change.Removed[0].Address().String() != "10.0.0.1:8082" {
		t.Fatalf("diff: got %+v, %v; want 10.0.0.3 added and 10.0.0.1 removed", change, changed)
	}
	fail = errors.New("no such host")
	if _, err := r.Resolve(ctx, target); err == nil {
		t.Fatal("a failed lookup: got no error")
	}
	answer, fail = nil, nil
	if _, err := r.Resolve(ctx, target); err == nil {
		t.Fatal("no address: got no error")
	}
	for _, bad := range []string{"backends", ":8082", "backends:"} {
		if _, err := newDNSResolver(bad); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}
