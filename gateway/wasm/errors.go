package wasm

import (
	"errors"
	"fmt"
)

// ErrorCode classifies the errors of the Manager for the layers above it
// (the admin API maps them to HTTP statuses).
type ErrorCode string

const (
	// CodeInvalid: the spec or the module was refused (bad name, bad
	// limits, not WebAssembly, does not compile, lacks the ABI's exports,
	// fails to instantiate). The running chain is untouched. HTTP 400.
	CodeInvalid ErrorCode = "invalid"
	// CodeNotFound: no plugin of that name. HTTP 404.
	CodeNotFound ErrorCode = "not_found"
	// CodeClosed: the Manager is closed. HTTP 503.
	CodeClosed ErrorCode = "closed"
	// CodeInternal: anything else. HTTP 500.
	CodeInternal ErrorCode = "internal"
)

// Error is the error type returned by the Manager.
type Error struct {
	Code    ErrorCode
	Message string // lowercase, human readable, no code prefix
	Err     error  // the cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Code returns the ErrorCode of err: the Code of the first *Error in its
// chain, CodeInternal for other errors and "" for nil.
func Code(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

func invalidf(cause error, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, args...), Err: cause}
}
