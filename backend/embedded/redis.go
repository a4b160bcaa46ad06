package embedded

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"

	"github.com/seckill/flashsale/internal/randhex"
)

// StartRedis starts miniredis on a free 127.0.0.1 port and returns its address, the
// password it requires (random: another user of the host reaches loopback too) and
// the function that stops it. Keys expire by the wall clock, as in Redis (miniredis
// otherwise lets TTLs run down only when told to).
func StartRedis() (addr, password string, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	password = randhex.String(16)
	m.RequireAuth(password)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return "", "", nil, fmt.Errorf("start embedded redis: %w", err)
	}
	return m.Addr(), password, m.Close, nil
}
