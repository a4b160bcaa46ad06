package redis

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
)

var (
	//go:embed lua/line.lua
	lineLua string
	//go:embed lua/line_leave.lua
	lineLeaveLua string
	//go:embed lua/line_stats.lua
	lineStatsLua string

	lineScript      = goredis.NewScript(lineLua)
	lineLeaveScript = goredis.NewScript(lineLeaveLua)
	lineStatsScript = goredis.NewScript(lineStatsLua)
)

// The waiting room's keys share the item's hash tag with the ledger's, so one script
// reads the stock left and keeps the line in the same slot.
func (k itemKeys) line() string      { return k.tag + ":wr:line" }
func (k itemKeys) lineSeen() string  { return k.tag + ":wr:seen" }
func (k itemKeys) lineJoin() string  { return k.tag + ":wr:joined" }
func (k itemKeys) lineUsed() string  { return k.tag + ":wr:used" }
func (k itemKeys) lineLease() string { return k.tag + ":wr:lease" }
func (k itemKeys) lineInfo() string  { return k.tag + ":wr:info" }

// Line is the waiting room's line in Redis (docs/WAITING_ROOM.md): per item, a sorted
// set of places by arrival number and a sorted set of admissions in flight, beside
// the ledger's stock counters. It is safe for concurrent use, and every gateway of a
// fleet shares it.
type Line struct {
	rdb goredis.UniversalClient
}

var _ domain.Line = (*Line)(nil)

// NewLine returns the waiting room's line on rdb (the ledger's Redis).
func NewLine(rdb goredis.UniversalClient) *Line { return &Line{rdb: rdb} }

// Load puts the line's scripts into the script cache of every node.
func (l *Line) Load(ctx context.Context) error {
	return loadScripts(ctx, l.rdb, lineScript, lineLeaveScript, lineStatsScript)
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Enter runs the waiting room's step for one shopper (line.lua).
func (l *Line) Enter(ctx context.Context, e domain.LineEntry) (domain.LineDecision, error) {
	if e.PlaceTTL <= 0 || e.Lease <= 0 || e.UserID <= 0 {
		return domain.LineDecision{}, fmt.Errorf("line of item %d: a place ttl, a lease and a user are required", e.ItemID)
	}
	k := keysFor(e.ActivityID, e.ItemID)
	var issued int64
	if e.Seq > 0 {
		issued = e.Issued.UnixMilli()
	}
	args := []any{e.UserID, e.Seq, issued, strconv.FormatFloat(e.Factor, 'g', -1, 64), ms(e.PlaceTTL), ms(e.Lease), max(e.Quantity, 0)}
	width := max(e.Buckets, 1)
	for {
		keys := append([]string{k.meta(), k.line(), k.lineSeen(), k.lineJoin(), k.lineUsed(), k.lineLease(), k.lineInfo(), k.buyers()}, k.buckets(width)...)
		res, err := lineScript.Run(ctx, l.rdb, keys, args...).Int64Slice()
		if err != nil {
			return domain.LineDecision{}, fmt.Errorf("line of item %d: %w", e.ItemID, err)
		}
		if len(res) == 2 && res[0] == -1 {
			if int(res[1]) <= width || res[1] > domain.MaxBuckets {
				return domain.LineDecision{}, fmt.Errorf("line of item %d: the item has %d buckets", e.ItemID, res[1])
			}
			width = int(res[1]) // the bucket count grew: pass every counter
			continue
		}
		if len(res) != 10 {
			return domain.LineDecision{}, fmt.Errorf("line of item %d: unexpected script result %v", e.ItemID, res)
		}
		d := domain.LineDecision{Seq: res[1], Position: res[2], Length: res[3], InFlight: res[4], Capacity: res[5],
			Remaining: res[6], Waited: time.Duration(res[7]) * time.Millisecond, Now: time.UnixMilli(res[8]), Rate: float64(res[9]) / 1000}
		switch res[0] {
		case 0:
			d.Outcome = domain.LineAdmitted
		case 1:
			d.Outcome = domain.LineQueued
		case 2:
			d.Outcome = domain.LineSoldOut
		case 3:
			d.Outcome = domain.LineBusy
		case 4:
			d.Outcome = domain.LineOpen
		case 5:
			d.Outcome = domain.LineLimit
		default:
			return domain.LineDecision{}, fmt.Errorf("line of item %d: unexpected script code %d", e.ItemID, res[0])
		}
		return d, nil
	}
}

// Leave ends an admission (line_leave.lua).
func (l *Line) Leave(ctx context.Context, activityID, itemID, userID, seq int64, back bool) error {
	k := keysFor(activityID, itemID)
	b := "0"
	if back {
		b = "1"
	}
	keys := []string{k.line(), k.lineSeen(), k.lineJoin(), k.lineUsed(), k.lineLease()}
	if err := lineLeaveScript.Run(ctx, l.rdb, keys, userID, seq, b).Err(); err != nil {
		return fmt.Errorf("leave the line of item %d: %w", itemID, err)
	}
	return nil
}

// Stats reads an item's line (line_stats.lua).
func (l *Line) Stats(ctx context.Context, activityID, itemID int64, buckets int, factor float64) (domain.LineStats, error) {
	k := keysFor(activityID, itemID)
	keys := append([]string{k.meta(), k.line(), k.lineJoin(), k.lineLease(), k.lineInfo()}, k.buckets(max(buckets, 1))...)
	res, err := lineStatsScript.Run(ctx, l.rdb, keys, strconv.FormatFloat(factor, 'g', -1, 64)).Int64Slice()
	if err != nil {
		return domain.LineStats{}, fmt.Errorf("read the line of item %d: %w", itemID, err)
	}
	if len(res) != 14 {
		return domain.LineStats{}, fmt.Errorf("read the line of item %d: unexpected script result %v", itemID, res)
	}
	st := domain.LineStats{Loaded: res[0] == 1, Length: res[1], InFlight: res[2], Capacity: res[3], Remaining: res[4],
		HeadWait: time.Duration(res[5]) * time.Millisecond, Places: res[7], Admitted: res[8], AdmittedFromLine: res[9],
		SoldOutTold: res[10], Lapsed: res[11], Rate: float64(res[13]) / 1000}
	if st.AdmittedFromLine > 0 {
		st.AvgWait = time.Duration(res[12]/st.AdmittedFromLine) * time.Millisecond
	}
	return st, nil
}
