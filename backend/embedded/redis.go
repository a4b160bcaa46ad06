package embedded

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// StartRedis starts miniredis on a free 127.0.0.1 port and returns its address and the
// function that stops it. Keys expire by the wall clock, as in Redis (miniredis
// otherwise lets TTLs run down only when told to).
func StartRedis() (addr string, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, fmt.Errorf("start embedded redis: %w", err)
	}
	return m.Addr(), m.Close, nil
}
