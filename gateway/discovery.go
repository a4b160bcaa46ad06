package gateway

import (
	"context"
	"fmt"
	"net"
	"slices"

	"github.com/cloudwego/kitex/pkg/discovery"
	"github.com/cloudwego/kitex/pkg/rpcinfo"
)

// dnsResolver finds the backends by a DNS name: every address of a Kubernetes headless
// Service (one A record a ready pod), with the port of the service. kitex asks again
// every refresh interval, so pods that come get traffic and pods that go leave.
type dnsResolver struct {
	host, port string
	lookup     func(ctx context.Context, host string) ([]string, error)
}

var _ discovery.Resolver = (*dnsResolver)(nil)

// newDNSResolver resolves target, "host:port".
func newDNSResolver(target string) (*dnsResolver, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("backend service %q: want host:port", target)
	}
	return &dnsResolver{host: host, port: port, lookup: net.DefaultResolver.LookupHost}, nil
}

// Target names what Resolve looks up: the configured name, whatever the service.
func (r *dnsResolver) Target(context.Context, rpcinfo.EndpointInfo) string {
	return net.JoinHostPort(r.host, r.port)
}

// Resolve returns an instance for each address of the name, sorted so an unchanged
// answer is an unchanged result.
func (r *dnsResolver) Resolve(ctx context.Context, target string) (discovery.Result, error) {
	addrs, err := r.lookup(ctx, r.host)
	if err != nil {
		return discovery.Result{}, fmt.Errorf("resolve backends %s: %w", target, err)
	}
	if len(addrs) == 0 {
		return discovery.Result{}, fmt.Errorf("resolve backends %s: no address", target)
	}
	slices.Sort(addrs)
	ins := make([]discovery.Instance, 0, len(addrs))
	for _, a := range addrs {
		ins = append(ins, discovery.NewInstance("tcp", net.JoinHostPort(a, r.port), discovery.DefaultWeight, nil))
	}
	return discovery.Result{Cacheable: true, CacheKey: target, Instances: ins}, nil
}

// Diff is kitex's default: instances added and removed.
func (r *dnsResolver) Diff(key string, prev, next discovery.Result) (discovery.Change, bool) {
	return discovery.DefaultDiff(key, prev, next)
}

// Name names the resolver in kitex's caches.
func (r *dnsResolver) Name() string { return "seckill-dns" }
