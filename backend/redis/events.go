package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/control"
)

// Channels of the fleet's announcements (Redis pub/sub; in a cluster a publish reaches
// the subscribers of every node).
const (
	// ControlChannel carries "<kind> <version>" when the control state changes (the
	// fleet's name follows it: "sk:control:<fleet>").
	ControlChannel = "sk:control"
	// StockChannel carries "soldout <activity> <item>" when an item has no unit left,
	// and "stock <activity> <item>" when units come back (the ledger's scripts
	// publish both), and "activity <id> <version>" when an operator changed an
	// activity (the backend that made the change publishes it).
	StockChannel = "sk:stock"
)

// Events publishes and receives the announcements of one fleet, and keeps its
// gateways' reports, under the fleet's name. (A fleet still needs a Redis of its own:
// the sale's keys are named by activity and item ids alone.)
type Events struct {
	rdb   goredis.UniversalClient
	fleet string
}

var _ control.Announcer = (*Events)(nil)

// NewEvents returns the Events of the fleet named fleet on rdb.
func NewEvents(rdb goredis.UniversalClient, fleet string) *Events {
	if fleet == "" {
		fleet = "seckill"
	}
	return &Events{rdb: rdb, fleet: fleet}
}

// Control is the fleet's control channel.
func (e *Events) Control() string { return ControlChannel + ":" + e.fleet }

// Announce tells the fleet that kind changed to version.
func (e *Events) Announce(ctx context.Context, kind string, version int64) error {
	if err := e.rdb.Publish(ctx, e.Control(), kind+" "+strconv.FormatInt(version, 10)).Err(); err != nil {
		return fmt.Errorf("announce %s %d: %w", kind, version, err)
	}
	return nil
}

// Subscribe calls handle with each message of the channels until the returned stop is
// called; a lost connection is made again by the client (messages sent meanwhile are
// lost: subscribers also poll).
func (e *Events) Subscribe(ctx context.Context, handle func(channel string, fields []string), channels ...string) (stop func() error, err error) {
	ps := e.rdb.Subscribe(ctx, channels...)
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		ps.Close()
		return nil, fmt.Errorf("subscribe to %v: %w", channels, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ps.Channel() {
			handle(m.Channel, strings.Fields(m.Payload))
		}
	}()
	return func() error {
		err := ps.Close()
		<-done
		return err
	}, nil
}

// AnnounceActivity tells every backend and gateway that activity id changed to version.
func (e *Events) AnnounceActivity(ctx context.Context, id, version int64) error {
	msg := "activity " + strconv.FormatInt(id, 10) + " " + strconv.FormatInt(version, 10)
	if err := e.rdb.Publish(ctx, StockChannel, msg).Err(); err != nil {
		return fmt.Errorf("announce activity %d: %w", id, err)
	}
	return nil
}

// WatchActivities calls changed for each activity announced as changed, until stop.
func (e *Events) WatchActivities(ctx context.Context, changed func(id, version int64)) (stop func() error, err error) {
	return e.Subscribe(ctx, func(_ string, f []string) {
		if len(f) != 3 || f[0] != "activity" {
			return
		}
		id, err1 := strconv.ParseInt(f[1], 10, 64)
		v, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil {
			changed(id, v)
		}
	}, StockChannel)
}
