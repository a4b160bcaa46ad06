// The client's address: the TCP peer, or what a trusted proxy says it is.

package gateway

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"
)

// Forwarding headers a proxy may name the client in (gateway.forwarded_header).
const (
	headerXFF       = "X-Forwarded-For"
	headerForwarded = "Forwarded"
)

// clientIPs finds a request's client address. The TCP peer is the client unless it
// is a trusted proxy (gateway.trusted_proxies); then the forwarding header the
// proxies write names it: the hops are read from the right (the one the nearest
// proxy added) and the first address that is not a trusted proxy is the client. A
// client can write whatever it likes to the left of what the proxies add, so
// nothing left of the first untrusted hop is read. With no trusted proxy (the
// default) no header is read at all.
//
// Only one header is read, the one the proxies set: a proxy that appends to
// X-Forwarded-For passes a client's own Forwarded header on untouched, so reading
// both would let the client choose.
type clientIPs struct {
	trusted []netip.Prefix
	header  string // headerXFF, headerForwarded or HeaderRealIP
}

// newClientIPs parses the trusted proxies (CIDRs, or single addresses) and the
// header they set ("" is X-Forwarded-For).
func newClientIPs(proxies []string, header string) (*clientIPs, error) {
	p := &clientIPs{}
	switch strings.ToLower(strings.TrimSpace(header)) {
	case "", strings.ToLower(headerXFF):
		p.header = headerXFF
	case strings.ToLower(headerForwarded):
		p.header = headerForwarded
	case strings.ToLower(HeaderRealIP):
		p.header = HeaderRealIP
	default:
		return nil, fmt.Errorf("gateway.forwarded_header: %q is not one of %s, %s or %s", header, headerXFF, headerForwarded, HeaderRealIP)
	}
	for _, s := range proxies {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if pre, err := netip.ParsePrefix(s); err == nil {
			p.trusted = append(p.trusted, unmapPrefix(pre).Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("gateway.trusted_proxies: %q is neither a CIDR (10.0.0.0/8) nor an address", s)
		}
		a = a.Unmap()
		p.trusted = append(p.trusted, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into its
// IPv4 form, as addresses are compared unmapped.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

func (p *clientIPs) isTrusted(a netip.Addr) bool {
	for _, pre := range p.trusted {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// of is the client address of c's request.
func (p *clientIPs) of(c *app.RequestContext) netip.Addr {
	peer := peerAddr(c)
	if len(p.trusted) == 0 || !p.isTrusted(peer) {
		return peer
	}
	var values []string
	for _, v := range c.Request.Header.PeekAll(p.header) {
		values = append(values, string(v))
	}
	return p.resolve(peer, values)
}

// resolve is the client address of a request from a trusted peer whose header p.header
// has the given values (each line of a repeated header, in order).
func (p *clientIPs) resolve(peer netip.Addr, values []string) netip.Addr {
	if p.header == HeaderRealIP {
		// One address the proxy wrote (nginx's $remote_addr); of several lines the
		// last is the proxy's.
		if len(values) == 0 {
			return peer
		}
		if a, ok := parseHop(strings.TrimSpace(values[len(values)-1])); ok {
			return a
		}
		return peer
	}
	var hops []string
	for _, v := range values {
		if p.header == headerForwarded {
			hops = append(hops, forwardedFor(v)...)
		} else {
			hops = append(hops, strings.Split(v, ",")...)
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			// Not an address ("unknown", an obfuscated name, garbage): nothing
			// beyond it can be placed, so the last trusted hop stands for the client.
			return client
		}
		client = a
		if !p.isTrusted(a) {
			return a
		}
	}
	return client // every hop is a trusted proxy: the farthest one
}

// parseHop reads one hop: an address, with or without a port, IPv6 with or without
// brackets.
func parseHop(s string) (netip.Addr, bool) {
	if s == "" || len(s) > 64 {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// forwardedFor returns the for= value of each element of a Forwarded header value
// (RFC 7239), in order; an element without one gives "" (no address). Quoted strings
// are unquoted; a comma or semicolon inside quotes does not split.
func forwardedFor(v string) []string {
	var out []string
	for _, elem := range splitQuoted(v, ',') {
		var f string
		for _, pair := range splitQuoted(elem, ';') {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
				f = unquote(strings.TrimSpace(val))
			}
		}
		out = append(out, f)
	}
	return out
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote reads a token or a quoted-string (with \-escapes).
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	s = s[1 : len(s)-1]
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// peerAddr is the TCP peer's address; the unspecified address if it cannot be read.
func peerAddr(c *app.RequestContext) netip.Addr { return addrOf(c.RemoteAddr()) }

// addrOf is the address of a peer, unmapped; the unspecified address if it has
// none: what ParseAddrPort reads in its String.
func addrOf(ra net.Addr) netip.Addr {
	// A TCP peer's address is read as it is, not formatted to be parsed back; a
	// zone, or what the string's parse would refuse, goes the long way.
	if ta, ok := ra.(*net.TCPAddr); ok && ta.Zone == "" && ta.Port >= 0 && ta.Port <= 0xffff {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
		return netip.IPv4Unspecified() // no address: the string (":port") does not parse
	}
	ap, err := netip.ParseAddrPort(ra.String())
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return ap.Addr().Unmap()
}

// limiterKey is the per-IP limit's key of a client address: the address itself for
// IPv4, its /64 for IPv6, since one subscriber is handed a whole /64 and could
// otherwise take a fresh bucket with every request.
func limiterKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
