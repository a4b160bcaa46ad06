// Command blocklist is an admission plugin that rejects requests from the
// users and client IPs (or IP prefixes) listed in its configuration:
//
//	{"users": ["42", "1001"], "ips": ["203.0.113.7", "198.51.100.0/24"], "status": 403}
package main

import (
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/seckill/flashsale/plugins/sdk"
)

type config struct {
	Users  []string `json:"users"`
	IPs    []string `json:"ips"`
	Status int      `json:"status"`
}

var (
	users    = map[string]bool{}
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
		users[u] = true
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
		status = cfg.Status
	}
	sdk.HandleRequest(handle)
}

func main() {}

func handle(req sdk.Request, resp sdk.Response) bool {
	if u := req.UserID(); u != "" && users[u] {
		return resp.Reject(status, "user "+u+" is blocked")
	}
	if len(prefixes) > 0 {
		ipText := req.ClientIP()
		if ip, err := netip.ParseAddr(ipText); err == nil {
			ip = ip.Unmap()
			for _, p := range prefixes {
				if p.Contains(ip) {
					return resp.Reject(status, "ip "+ipText+" is blocked")
				}
			}
		}
	}
	return true
}
