// Package rpcerr maps the domain's coded errors to kitex business status errors and
// back: the only place the two meet.
package rpcerr

import (
	"errors"

	"github.com/cloudwego/kitex/pkg/kerrors"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

var toCode = map[string]rpc.ErrorCode{
	domain.EBadRequest:        rpc.ErrorCode_BAD_REQUEST,
	domain.ENotFound:          rpc.ErrorCode_NOT_FOUND,
	domain.ESoldOut:           rpc.ErrorCode_SOLD_OUT,
	domain.ELimitExceeded:     rpc.ErrorCode_LIMIT_EXCEEDED,
	domain.ENotStarted:        rpc.ErrorCode_NOT_STARTED,
	domain.EEnded:             rpc.ErrorCode_ENDED,
	domain.EUnavailable:       rpc.ErrorCode_UNAVAILABLE,
	domain.EConflict:          rpc.ErrorCode_CONFLICT,
	domain.EForbidden:         rpc.ErrorCode_FORBIDDEN,
	domain.EInternal:          rpc.ErrorCode_INTERNAL,
	domain.EInsufficientStock: rpc.ErrorCode_INSUFFICIENT_STOCK,
	domain.EOutcomeUnknown:    rpc.ErrorCode_OUTCOME_UNKNOWN,
}

var fromCode = func() map[rpc.ErrorCode]string {
	m := map[rpc.ErrorCode]string{}
	for k, v := range toCode {
		m[v] = k
	}
	return m
}()

// ToBiz turns a domain error into a kitex business status error; other errors become
// internal ones whose detail stays on the server.
func ToBiz(err error) error {
	if err == nil {
		return nil
	}
	code := domain.ErrorCode(err)
	return kerrors.NewBizStatusError(int32(toCode[code]), domain.ErrorMessage(err))
}

// FromRPC turns what a kitex call returned into a domain error: business status
// errors keep their code; any other failure (timeout, connection refused, no
// instance) is unavailable.
func FromRPC(err error) error {
	if err == nil {
		return nil
	}
	if be, ok := kerrors.FromBizStatusError(err); ok {
		if rpc.ErrorCode(be.BizStatusCode()) == rpc.ErrorCode_UNAUTHENTICATED {
			// The caller's credential was refused before anything ran: to its
			// client the backend is unavailable (the caller's readiness says why).
			return &domain.Error{Code: domain.EUnavailable, Message: "the backend is unavailable; nothing was taken"}
		}
		if code, ok := fromCode[rpc.ErrorCode(be.BizStatusCode())]; ok {
			return &domain.Error{Code: code, Message: be.BizMessage()}
		}
		return &domain.Error{Code: domain.EInternal, Message: be.BizMessage()}
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	return &domain.Error{Code: domain.EUnavailable, Message: "the backend is unavailable; nothing was taken"}
}

// notSent are the kitex failures that happen before a request leaves the client: no
// instance, no connection, a breaker or limit in the way. The backend cannot have acted
// on such a request.
var notSent = []error{
	kerrors.ErrServiceDiscovery, kerrors.ErrGetConnection, kerrors.ErrLoadbalance,
	kerrors.ErrCircuitBreak, kerrors.ErrACL, kerrors.ErrOverlimit,
	kerrors.ErrNoResolver, kerrors.ErrNoDestService, kerrors.ErrNoDestAddress, kerrors.ErrNoConnection,
}

// FromRPCChange is FromRPC for a call that changes something (placing, cancelling or
// paying an order). A failure that may have come after the request reached the
// backend (a timeout, a connection lost mid-call) is outcome_unknown: the backend may
// have done it, so "unavailable, nothing was taken" would be a lie. Failures before
// the request left stay unavailable.
func FromRPCChange(err error) error {
	out := FromRPC(err)
	if domain.ErrorCode(out) != domain.EUnavailable {
		return out
	}
	if _, ok := kerrors.FromBizStatusError(err); ok {
		return out // the backend itself said unavailable: it took nothing
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return out
	}
	for _, e := range notSent {
		if errors.Is(err, e) {
			return out
		}
	}
	return &domain.Error{Code: domain.EOutcomeUnknown, Message: "the backend did not answer in time; the change may or may not have been made"}
}
