// Operators' rate-limit routes (/admin/v1/limits): the fleet's limits, read and
// changed at run time through any gateway.

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// getLimits answers the fleet's limits (the configured ones until an operator
// stored some), their version and the version each live gateway applies.
func (g *Gateway) getLimits(ctx context.Context, c *app.RequestContext) {
	st, err := g.backend.GetLimits(ctx, &rpc.EmptyReq{})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	g.answerLimits(ctx, c, st)
}

func (g *Gateway) answerLimits(ctx context.Context, c *app.RequestContext, st *rpc.LimitsState) {
	l, err := g.fleet.Limits(st)
	if err != nil {
		fail(c, domain.EInternal, err.Error())
		return
	}
	out := limitsOut(l)
	out.Version, out.UpdatedBy = st.Version, st.UpdatedBy
	if st.UpdatedMs > 0 {
		at := time.UnixMilli(st.UpdatedMs).UTC()
		out.UpdatedAt = &at
	}
	fleet, err := g.fleet.Fleet(ctx)
	if err != nil {
		g.log.WarnContext(ctx, "read the fleet's reports", "err", err)
	}
	for _, r := range fleet {
		out.Gateways = append(out.Gateways, api.GatewayLimits{Gateway: r.ID, Version: r.LimitsVersion, Share: len(fleet)})
	}
	writeJSON(c, http.StatusOK, out)
}

// putLimits changes the fleet's limits: only the rules, and within a rule only the
// fields (rps, burst), that the body names; the rest stay. 200 with the limits as
// stored; every gateway applies them (announced, and polled).
func (g *Gateway) putLimits(ctx context.Context, c *app.RequestContext) {
	var patch map[string]map[string]json.Number
	dec := json.NewDecoder(bytes.NewReader(c.Request.Body()))
	dec.UseNumber()
	if err := dec.Decode(&patch); err != nil || dec.More() || quotedNumber(c.Request.Body()) {
		fail(c, domain.EBadRequest, "the body must be one JSON object of rules, like {\"user\": {\"rps\": 5, \"burst\": 10}}, with numbers as numbers")
		return
	}
	// Read, patch, and store from the version read; a change stored meanwhile (through
	// this or another gateway) makes the store refuse, and the patch is applied again
	// over it, so changes made at once never lose one another.
	var stored *rpc.LimitsState
	var next ratelimit.Limits
	for try := 1; ; try++ {
		st, err := g.backend.GetLimits(ctx, &rpc.EmptyReq{})
		if err = rpcerr.FromRPC(err); err != nil {
			failErr(c, err)
			return
		}
		cur, err := g.fleet.Limits(st)
		if err != nil {
			fail(c, domain.EInternal, err.Error())
			return
		}
		if next, err = applyPatch(cur, patch); err != nil {
			fail(c, domain.EBadRequest, err.Error())
			return
		}
		if next == cur {
			// Nothing changes ({}, null, or the values in force): no new version, no
			// announcement to every gateway.
			g.answerLimits(ctx, c, st)
			return
		}
		body, err := json.Marshal(next)
		if err != nil {
			fail(c, domain.EInternal, err.Error())
			return
		}
		version := st.Version
		stored, err = g.backend.PutLimits(ctx, &rpc.PutLimitsReq{Body: string(body), Who: g.operatorOf(c), IfVersion: &version})
		err = rpcerr.FromRPCChange(err)
		if err == nil {
			break
		}
		if !domain.IsCode(err, domain.EConflict) {
			failErr(c, err)
			return
		}
		if try == maxLimitTries {
			fail(c, domain.EUnavailable, "the limits kept changing under this change; nothing was stored, try again")
			return
		}
		// Others are changing them too: a pause, longer each time, and apart from theirs.
		pause := time.Duration(try) * 5 * time.Millisecond
		select {
		case <-ctx.Done():
			failErr(c, ctx.Err())
			return
		case <-time.After(pause + time.Duration(rand.Int64N(int64(pause)))):
		}
	}
	g.log.InfoContext(ctx, "rate limits changed", "limits", fmt.Sprintf("%+v", next), "version", stored.Version)
	if err := g.fleet.SyncLimits(ctx); err != nil {
		g.log.WarnContext(ctx, "apply the fleet's limits after a change", "err", err)
	}
	g.answerLimits(ctx, c, stored)
}

// maxLimitTries bounds a change's rounds of read, patch and store when other changes
// keep landing between its read and its store.
const maxLimitTries = 8

// The bounds of a rule: rates the buckets can run (one a day up to a billion a second;
// past them the shared bucket's arithmetic fails, and each gateway then applies the
// limit alone, N times over, with a retry-after that means nothing) and bursts up to
// 2^30.
const (
	minRPS   = 1.0 / 86400
	maxRPS   = 1e9
	maxBurst = 1 << 30
)

// checkLimits refuses configured rules outside the bounds a PUT is held to.
func checkLimits(l ratelimit.Limits) error {
	for _, k := range ratelimit.Kinds {
		r := l.Rule(k)
		if r == nil {
			continue
		}
		if r.RPS != 0 && (r.RPS < minRPS || r.RPS > maxRPS) {
			return fmt.Errorf("%s.rps must be 0 (no limit) or from %g (one a day) to %g, not %g", k, minRPS, maxRPS, r.RPS)
		}
		if r.Burst < 0 || r.Burst > maxBurst {
			return fmt.Errorf("%s.burst must be a whole number from 0 to %d, not %d", k, maxBurst, r.Burst)
		}
	}
	return nil
}

// applyPatch sets the fields patch names over cur, refusing unknown rules or fields,
// negative values and a fractional burst.
func applyPatch(cur ratelimit.Limits, patch map[string]map[string]json.Number) (ratelimit.Limits, error) {
	for kind, fields := range patch {
		r := cur.Rule(ratelimit.Kind(kind))
		if r == nil {
			return cur, fmt.Errorf("unknown rule %q: want one of %v", kind, ratelimit.Kinds)
		}
		for field, v := range fields {
			switch field {
			case "rps":
				f, err := v.Float64()
				if err != nil || f != 0 && (f < minRPS || f > maxRPS) {
					return cur, fmt.Errorf("%s.rps must be 0 (no limit) or from %g (one a day) to %g, not %s", kind, minRPS, maxRPS, v)
				}
				r.RPS = f
			case "burst":
				n, err := v.Int64()
				if err != nil || n < 0 || n > maxBurst {
					return cur, fmt.Errorf("%s.burst must be a whole number from 0 to %d, not %s", kind, maxBurst, v)
				}
				r.Burst = int(n)
			default:
				return cur, fmt.Errorf("unknown field %s.%s: want rps or burst", kind, field)
			}
		}
	}
	return cur, nil
}

// limitsOut converts the limiter's rules to the API's (the same fields: the
// limiter's also come from the configuration file).
func limitsOut(l ratelimit.Limits) api.Limits {
	return api.Limits{Global: api.Rule(l.Global), Read: api.Rule(l.Read), User: api.Rule(l.User), UserRead: api.Rule(l.UserRead),
		Item: api.Rule(l.Item), IP: api.Rule(l.IP)}
}

// quotedNumber reports whether a rule's value in body is a string ("7"), which
// json.Number would take as the number.
func quotedNumber(body []byte) bool {
	var raw map[string]map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return false // the strict decode above answers it
	}
	for _, rule := range raw {
		for _, v := range rule {
			if len(v) > 0 && v[0] == '"' {
				return true
			}
		}
	}
	return false
}
