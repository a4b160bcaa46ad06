// Command blocklist is an admission plugin that rejects requests from the
// users and client IPs (or IP prefixes) listed in its configuration:
//
//	{"users": ["42", "1001"], "ips": ["203.0.113.7", "198.51.100.0/24"], "status": 403}
package main

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"

	"github.com/seckill/flashsale/plugins/sdk"
)

type config struct {
	Users  []string `json:"users"`
	IPs    []string `json:"ips"`
	Status int      `json:"status"`
}

var (
	users    = map[int64]bool{}
	prefixes []netip.Prefix
	status   = 403
)

func init() {
	var cfg config
	if raw := sdk.Config(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			panic("blocklist: bad config: " + err.Error())
		}
	}
	for _, u := range cfg.Users {
		id, err := strconv.ParseInt(u, 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != u { // one spelling, as the gateway writes ids
			panic("blocklist: bad user " + strconv.Quote(u) + " (a user id is a positive decimal number)")
		}
		users[id] = true
	}
	for _, s := range cfg.IPs {
		if !strings.Contains(s, "/") {
			addr, err := netip.ParseAddr(s)
			if err != nil {
				panic("blocklist: bad ip " + s)
			}
			prefixes = append(prefixes, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			panic("blocklist: bad prefix " + s)
		}
		prefixes = append(prefixes, p.Masked())
	}
	if cfg.Status != 0 {
		if cfg.Status < 400 || cfg.Status > 599 {
			panic("blocklist: status must be a 4xx or 5xx code")
		}
		status = cfg.Status
	}
	sdk.HandleRequest(handle)
}

func main() {}

// handle reads the user and the address without allocating (User, ClientAddr):
// every admitted request passes here, and a string a read costs a Go guest about
// as much as the call itself.
func handle(req sdk.Request, resp sdk.Response) bool {
	if u, ok := req.User(); ok && users[u] {
		return resp.Reject(status, "user "+strconv.FormatInt(u, 10)+" is blocked")
	}
	if len(prefixes) > 0 {
		if ip := req.ClientAddr(); ip.IsValid() {
			ip = ip.Unmap()
			for _, p := range prefixes {
				if p.Contains(ip) {
					return resp.Reject(status, "ip "+ip.String()+" is blocked")
				}
			}
		}
	}
	return true
}
