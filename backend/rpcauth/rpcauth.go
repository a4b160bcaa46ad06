// Package rpcauth authenticates the kitex calls between gateways and backends: every
// call carries a credential in its TTHeader metadata (kitex metainfo), which a server
// middleware checks before any handler runs.
//
// There are two credentials. The service credential (backend.rpc_secret) is for
// what gateways do for shoppers and for themselves: orders, tickets, catalog reads,
// reading the fleet's control state. The operator credential
// (backend.rpc_operator_secret) is also needed for what operators do: creating,
// changing, publishing and taking activities offline, their stats, the full list,
// storing plugins and limits. A gateway sends the operator credential only on calls
// made for a request whose admin token it checked (AsOperator), so a process that
// holds only the service credential cannot act as an operator.
package rpcauth

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/bytedance/gopkg/cloud/metainfo"
	"github.com/cloudwego/kitex/pkg/endpoint"
	"github.com/cloudwego/kitex/pkg/kerrors"
	"github.com/cloudwego/kitex/pkg/rpcinfo"

	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/internal/reqid"
	"github.com/seckill/flashsale/internal/secret"
)

// Settings of the credentials, as errors name them.
const (
	SettingService  = "backend.rpc_secret (SECKILL_BACKEND_RPC_SECRET)"
	SettingOperator = "backend.rpc_operator_secret (SECKILL_BACKEND_RPC_OPERATOR_SECRET)"
)

// Metadata keys (kitex metainfo transient values: they go to the next hop only).
const (
	keyCredential = "SECKILL_RPC_CREDENTIAL"
	keyRequestID  = "SECKILL_REQUEST_ID"
)

// Secrets are the two credentials.
type Secrets struct {
	Service  string
	Operator string
}

// Format hides the values whatever the verb, so a configuration printed whole (the
// log at start) shows none: "{Service:<redacted> Operator:<redacted>}", or "<unset>"
// for an empty one.
func (s Secrets) Format(f fmt.State, _ rune) {
	show := func(v string) string {
		if v == "" {
			return "<unset>"
		}
		return "<redacted>"
	}
	fmt.Fprintf(f, "{Service:%s Operator:%s}", show(s.Service), show(s.Operator))
}

// Check refuses guessable secrets (internal/secret) and two equal ones.
func (s Secrets) Check() error {
	if err := secret.Check(SettingService, s.Service); err != nil {
		return err
	}
	if err := secret.Check(SettingOperator, s.Operator); err != nil {
		return err
	}
	if s.Service == s.Operator {
		return fmt.Errorf("%s and %s must differ", SettingService, SettingOperator)
	}
	return nil
}

// Role is what a call's credential allows.
type Role int

const (
	None     Role = iota // no credential, or a wrong one
	Service              // shoppers' and gateways' calls
	Operator             // every call
)

type operatorKey struct{}

// AsOperator marks ctx as an operator's: calls made with it carry the operator
// credential. The gateway marks only requests whose admin token it checked.
func AsOperator(ctx context.Context) context.Context {
	return context.WithValue(ctx, operatorKey{}, true)
}

func isOperator(ctx context.Context) bool { v, _ := ctx.Value(operatorKey{}).(bool); return v }

// ClientMiddleware puts the credential in every call's metadata (the operator's on
// calls of an AsOperator context), and the request id when ctx has one.
func ClientMiddleware(s Secrets) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req, resp any) error {
			cred := s.Service
			if isOperator(ctx) {
				cred = s.Operator
			}
			if cred != "" { // metainfo takes no empty values; the server refuses the call
				ctx = metainfo.WithValue(ctx, keyCredential, cred)
			}
			if id := reqid.From(ctx); id != "" {
				ctx = metainfo.WithValue(ctx, keyRequestID, id)
			}
			return next(ctx, req, resp)
		}
	}
}

// serviceMethods are the calls the service credential may make: shoppers' calls the
// gateway makes for them, and the gateway's own reads of the fleet's control state.
// Every other call, present or added later, is an operator's.
var serviceMethods = map[string]bool{
	"PlaceOrder": true, "GetTicket": true, "ListActivities": true, "GetActivity": true, "GetItem": true,
	"ListOrders": true, "GetOrder": true, "CancelOrder": true, "PayOrder": true, "DeleteOrder": true,
	"GetPlugins": true, "GetPluginModule": true, "GetLimits": true, "Ping": true,
}

// Needs is the role a call of method with args req needs: Service for the calls of
// serviceMethods (listing every activity, not only those on sale, is an operator's),
// Operator for any other.
func Needs(method string, req any) Role {
	if !serviceMethods[method] {
		return Operator
	}
	if a, ok := req.(*rpc.SeckillListActivitiesArgs); ok && a.Req != nil && a.Req.IncludeAll {
		return Operator
	}
	return Service
}

// roleOf is the role of a credential, compared in constant time.
func (s Secrets) roleOf(cred string) Role {
	switch {
	case cred == "":
		return None
	case subtle.ConstantTimeCompare([]byte(cred), []byte(s.Operator)) == 1:
		return Operator
	case subtle.ConstantTimeCompare([]byte(cred), []byte(s.Service)) == 1:
		return Service
	}
	return None
}

// ServerRequestID puts the caller's request id (ClientMiddleware sends it), when
// well-formed, in ctx for the logs.
func ServerRequestID(next endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, req, resp any) error {
		if id, ok := metainfo.GetValue(ctx, keyRequestID); ok && reqid.Valid(id) {
			ctx = reqid.With(ctx, id)
		}
		return next(ctx, req, resp)
	}
}

// ServerMiddleware refuses, before any handler runs, a call without a credential or
// with a wrong one, and an operator's call with the service credential: a business
// error UNAUTHENTICATED that says which.
// Refusals are logged at most once a second (with the caller's address), so a
// misconfigured gateway or a probe shows in the logs without flooding them.
func ServerMiddleware(s Secrets, log *slog.Logger) endpoint.Middleware {
	var lastLog atomic.Int64
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req, resp any) error {
			method, from := "", ""
			if ri := rpcinfo.GetRPCInfo(ctx); ri != nil {
				method = ri.Invocation().MethodName()
				if a := ri.From().Address(); a != nil {
					from = a.String()
				}
			}
			cred, _ := metainfo.GetValue(ctx, keyCredential)
			have, need := s.roleOf(cred), Needs(method, req)
			if have >= need {
				return next(ctx, req, resp)
			}
			msg := "the call carries no valid service credential (" + SettingService + ")"
			if have == Service {
				msg = "an operator's call needs the operator credential (" + SettingOperator + ")"
			}
			if now := time.Now().UnixNano(); now-lastLog.Load() > int64(time.Second) {
				lastLog.Store(now)
				log.WarnContext(ctx, "refused an RPC call", "method", method, "from", from, "why", msg)
			}
			return Refuse(ctx, kerrors.NewBizStatusError(int32(rpc.ErrorCode_UNAUTHENTICATED), msg))
		}
	}
}

// Refuse answers a call from a server middleware with a business error: kitex sends
// a handler's business errors as such, but a middleware's only once they are set on
// the call's invocation (as kitex does for handlers).
func Refuse(ctx context.Context, err kerrors.BizStatusErrorIface) error {
	if ri := rpcinfo.GetRPCInfo(ctx); ri != nil {
		if setter, ok := ri.Invocation().(rpcinfo.InvocationSetter); ok {
			setter.SetBizStatusErr(err)
			return nil
		}
	}
	return err
}
