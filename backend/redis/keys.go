// Package redis keeps the hot state of a sale in Redis: stock counters, buyer records,
// idempotency records, in-flight tickets and ticket results, all under one hash tag per
// item so every script touches a single Redis Cluster slot; and the catalog cache.
package redis

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/seckill/flashsale/backend/domain"
)

// itemKeys names the keys of one item of one activity. They share the hash tag
// {a<activity>:i<item>}.
type itemKeys struct {
	tag string
}

func keysFor(activityID, itemID int64) itemKeys {
	return itemKeys{tag: fmt.Sprintf("sk:{a%d:i%d}", activityID, itemID)}
}

func (k itemKeys) meta() string     { return k.tag + ":meta" }
func (k itemKeys) buyers() string   { return k.tag + ":buyers" }
func (k itemKeys) idem() string     { return k.tag + ":idem" }
func (k itemKeys) inflight() string { return k.tag + ":inflight" }
func (k itemKeys) released() string { return k.tag + ":released" }
func (k itemKeys) bucket(b int) string {
	return k.tag + ":stock:" + strconv.Itoa(b)
}
func (k itemKeys) result(ticket string) string { return k.tag + ":t:" + ticket }

func (k itemKeys) buckets(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = k.bucket(i)
	}
	return out
}

// NewTicket returns a ticket id that names its activity and item, so a ticket's keys
// can be found from the ticket alone: "<activity>-<item>-<random hex>".
func NewTicket(activityID, itemID int64, random string) string {
	return fmt.Sprintf("%d-%d-%s", activityID, itemID, random)
}

// ParseTicket returns the activity and item a ticket belongs to.
func ParseTicket(ticket string) (activityID, itemID int64, err error) {
	parts := strings.SplitN(ticket, "-", 3)
	if len(parts) != 3 || parts[2] == "" || len(ticket) > 80 {
		return 0, 0, domain.Errorf(domain.ENotFound, "unknown ticket")
	}
	a, err1 := strconv.ParseInt(parts[0], 10, 64)
	i, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || a <= 0 || i <= 0 {
		return 0, 0, domain.Errorf(domain.ENotFound, "unknown ticket")
	}
	return a, i, nil
}
