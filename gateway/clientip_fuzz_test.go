package gateway

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientIP: whatever forwarding header a client sends, the address found is a
// valid one; from an untrusted peer it is the peer; from a trusted peer it is the
// peer or an address the header names, and never one the header names left of an
// untrusted hop.
func FuzzClientIP(f *testing.F) {
	for _, s := range []struct{ header, value string }{
		{headerXFF, "198.51.100.7"},
		{headerXFF, "198.51.100.7, 10.0.0.1"},
		{headerXFF, "203.0.113.5,198.51.100.7 , 10.1.2.3"},
		{headerXFF, " , ,"},
		{headerXFF, "[2001:db8::1]:443, 10.0.0.9"},
		{headerXFF, "::ffff:10.0.0.1"},
		{headerXFF, "fe80::1%eth0"},
		{headerXFF, "unknown, 10.0.0.2"},
		{headerForwarded, `for=192.0.2.60;proto=http;by=203.0.113.43`},
		{headerForwarded, `for="[2001:db8:cafe::17]:4711", for=10.0.0.3`},
		{headerForwarded, `For="_gazonk", for=unknown`},
		{headerForwarded, `for="a\"b,c";x=";", for=10.0.0.4`},
		{headerForwarded, `for="`},
		{headerForwarded, `proto=https`},
		{HeaderRealIP, "198.51.100.7"},
		{HeaderRealIP, "10.0.0.1:80"},
	} {
		f.Add(s.header, s.value, "10.0.0.1")
		f.Add(s.header, s.value, "192.0.2.1")
	}
	f.Fuzz(func(t *testing.T, header, value, peerS string) {
		peer, err := netip.ParseAddr(peerS)
		if err != nil || peer.Zone() != "" {
			t.Skip()
		}
		peer = peer.Unmap()
		p, err := newClientIPs([]string{"10.0.0.0/8", "::ffff:172.16.0.0/108", "fd00::/8"}, header)
		if err != nil {
			t.Skip() // a header the gateway refuses to start with
		}
		values := strings.Split(value, "\n")
		got := p.resolve(peer, values)
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("%s %q from %s: got %v, want a plain address", header, value, peer, got)
		}
		if !p.isTrusted(peer) {
			return // of() never reads a header from an untrusted peer
		}
		if got == peer {
			return
		}
		// The answer must be a hop the header names, with nothing but trusted
		// proxies right of it.
		var hops []string
		for _, v := range values {
			switch p.header {
			case headerForwarded:
				hops = append(hops, forwardedFor(v)...)
			case headerXFF:
				hops = append(hops, strings.Split(v, ",")...)
			default:
				hops = []string{v}
			}
		}
		if p.header == HeaderRealIP {
			if a, ok := parseHop(strings.TrimSpace(values[len(values)-1])); !ok || a != got {
				t.Fatalf("X-Real-IP %q: got %v, want the last line's address", value, got)
			}
			return
		}
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseHop(strings.TrimSpace(hops[i]))
			if !ok {
				t.Fatalf("%s %q: got %v, found past a hop that is not an address", header, value, got)
			}
			if a == got {
				return
			}
			if !p.isTrusted(a) {
				t.Fatalf("%s %q: got %v, left of the untrusted hop %v", header, value, got, a)
			}
		}
		t.Fatalf("%s %q from %s: got %v, which the header does not name", header, value, peer, got)
	})
}

// TestTrustedProxiesConfig: bad entries are refused with the setting's name.
func TestTrustedProxiesConfig(t *testing.T) {
	for _, tt := range []struct {
		proxies []string
		header  string
		wantErr string
	}{
		{[]string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32", " "}, "", ""},
		{nil, "forwarded", ""},
		{nil, "x-real-ip", ""},
		{[]string{"10.0.0.0/33"}, "", "gateway.trusted_proxies"},
		{[]string{"proxy.local"}, "", "gateway.trusted_proxies"},
		{nil, "X-Client-IP", "gateway.forwarded_header"},
	} {
		_, err := newClientIPs(tt.proxies, tt.header)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q %q: got %v, want error naming %q", tt.proxies, tt.header, err, tt.wantErr)
		}
	}
	p, _ := newClientIPs([]string{"::ffff:10.0.0.0/104"}, "")
	if !p.isTrusted(netip.MustParseAddr("10.1.2.3")) {
		t.Errorf("an IPv4-mapped prefix does not hold its IPv4 addresses")
	}
}

// TestAddrOfTCPPeers: a TCP peer's address read as it is equals what the parse
// of its String gives.
func TestAddrOfTCPPeers(t *testing.T) {
	for _, a := range []*net.TCPAddr{
		{IP: net.IPv4(192, 0, 2, 1), Port: 80}, {IP: net.IP{192, 0, 2, 1}, Port: 1}, {IP: net.ParseIP("2001:db8::1"), Port: 443},
		{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 8080}, {IP: net.IPv4zero}, {IP: net.IPv6zero, Port: 65535}, {},
		{IP: net.IP{1, 2, 3, 4, 5}, Port: 9}, {IP: net.ParseIP("fe80::1"), Port: 22, Zone: "eth0"},
		{IP: net.IPv4(10, 0, 0, 1), Zone: "eth0"}, {IP: net.IPv4(10, 0, 0, 1), Port: -1}, {IP: net.IPv4(10, 0, 0, 1), Port: 70000},
	} {
		want := netip.IPv4Unspecified()
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			want = ap.Addr().Unmap()
		}
		if got := addrOf(a); got != want {
			t.Errorf("addrOf(%v) = %v, want %v", a, got, want)
		}
	}
}

func FuzzAddrOf(f *testing.F) {
	f.Add([]byte{192, 0, 2, 1}, 80, "")
	f.Add([]byte(net.ParseIP("fe80::1")), 22, "eth0")
	f.Fuzz(func(t *testing.T, ip []byte, port int, zone string) {
		a := &net.TCPAddr{IP: ip, Port: port, Zone: zone}
		want := netip.IPv4Unspecified()
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			want = ap.Addr().Unmap()
		}
		if got := addrOf(a); got != want {
			t.Errorf("addrOf(%v) = %v, want %v", a, got, want)
		}
	})
}
