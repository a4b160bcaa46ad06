// Package redis keeps the hot state of a sale in Redis: stock counters, buyer records,
// idempotency records, in-flight tickets and ticket results, all under one hash tag per
// item so every script touches a single Redis Cluster slot; and the catalog cache.
package redis

import (
	"fmt"
	"strconv"
)

// itemKeys names the keys of one item of one activity. They share the hash tag
// {a<activity>:i<item>}.
type itemKeys struct {
	tag string
}

func keysFor(activityID, itemID int64) itemKeys {
	return itemKeys{tag: fmt.Sprintf("sk:{a%d:i%d}", activityID, itemID)}
}

func (k itemKeys) meta() string      { return k.tag + ":meta" }
func (k itemKeys) buyers() string    { return k.tag + ":buyers" }
func (k itemKeys) idem() string      { return k.tag + ":idem" }
func (k itemKeys) inflight() string  { return k.tag + ":inflight" }
func (k itemKeys) released() string  { return k.tag + ":released" }
func (k itemKeys) pending() string   { return k.tag + ":pending" }
func (k itemKeys) holds() string     { return k.tag + ":holds" }
func (k itemKeys) holdsSeen() string { return k.tag + ":holds:seen" }
func (k itemKeys) marks() string     { return k.tag + ":marks" }
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
