package domain

import (
	"errors"
	"fmt"
)

// Error codes. They are short stable words: the HTTP edge sends them as the "error"
// field and maps them to a status; the RPC edge carries them as business status codes.
const (
	EBadRequest    = "bad_request"
	ENotFound      = "not_found"
	ESoldOut       = "sold_out"
	ELimitExceeded = "limit_exceeded"
	ENotStarted    = "not_started"
	EEnded         = "ended"
	EUnavailable   = "unavailable"
	EConflict      = "conflict"
	EForbidden     = "forbidden"
	EInternal      = "internal"
	// EOutcomeUnknown: a change was asked of a backend that did not answer (a timeout,
	// a connection lost mid-call); it may or may not have been made. Only the gateway
	// gives it, never the backend.
	EOutcomeUnknown = "outcome_unknown"
)

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
