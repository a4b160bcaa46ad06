package redis

import "time"

// SetPendingTTL shortens how long a release waits for its item's next load.
func SetPendingTTL(s *Stock, d time.Duration) { s.pendingTTL = d }
