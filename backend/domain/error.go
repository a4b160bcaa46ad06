package domain

import (
	"errors"
	"fmt"
)

// Error codes. They are short stable words: the HTTP edge sends them as the "error"
// field and maps them to a status; the RPC edge carries them as business status codes.
const (
	EBadRequest = "bad_request"
	ENotFound   = "not_found"
	ESoldOut    = "sold_out"
	// EInsufficientStock: units are left, but fewer than the order asks for. Unlike
	// sold_out it says nothing of smaller orders.
	EInsufficientStock = "insufficient_stock"
	ELimitExceeded     = "limit_exceeded"
	ENotStarted        = "not_started"
	EEnded             = "ended"
	EUnavailable       = "unavailable"
	EConflict          = "conflict"
	EForbidden         = "forbidden"
	// EVoided refuses a write whose ticket was decided as not written before (its
	// units went back): a late write must not take them again.
	EVoided   = "voided"
	EInternal = "internal"
	// EOutcomeUnknown: a change may or may not have been made: a backend that did not
	// answer (a timeout, a connection lost mid-call), or a store that did not say
	// whether a write took. The answer carries the idempotency key that learns the
	// outcome.
	EOutcomeUnknown = "outcome_unknown"
)

// ErrOutcomeUnknown marks a dependency's failure after which a change may or may not
// have been made (a failed commit, a connection lost mid-call): the caller must not
// answer "nothing was taken".
var ErrOutcomeUnknown = errors.New("outcome unknown")

// ErrNotSent marks a dependency's failure before the request left this process (no
// connection could be made, none came free in time): nothing was changed, so the
// caller may answer "nothing was taken" without cleaning up.
var ErrNotSent = errors.New("not sent")

// ErrFenced refuses a background duty's write made under a lease that another holder
// has taken since (its fencing token is lower than one the data has seen): the duty
// stops and leaves the work to the new holder.
var ErrFenced = errors.New("fenced: a newer holder of the lease has written here")

// Error is the domain's coded error. Message is meant for the person on the other end.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for any
// other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the human message of the first *Error in err's chain, or a
// generic text for other errors (their details stay in the logs).
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }
