package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
)

// Codes the gateway adds to the domain's.
const (
	eUnauthorized = "unauthorized"
	eRateLimited  = "rate_limited"
	eTooLarge     = "too_large"
	eRejected     = "rejected"
	// eMethodNotAllowed: the path does not take the method (Allow lists those it
	// takes), or HTTP has no such method.
	eMethodNotAllowed = "method_not_allowed"
)

// statusOf maps an error code to its HTTP status (API.md).
func statusOf(code string) int {
	switch code {
	case domain.EBadRequest:
		return http.StatusBadRequest
	case domain.ENotFound:
		return http.StatusNotFound
	case domain.ESoldOut, domain.EInsufficientStock, domain.ELimitExceeded, domain.ENotStarted, domain.EEnded, domain.EConflict:
		return http.StatusConflict
	case domain.EUnavailable:
		return http.StatusServiceUnavailable
	case domain.EOutcomeUnknown:
		return http.StatusGatewayTimeout
	case domain.EForbidden, eRejected:
		return http.StatusForbidden
	case eUnauthorized:
		return http.StatusUnauthorized
	case eRateLimited:
		return http.StatusTooManyRequests
	case eTooLarge:
		return http.StatusRequestEntityTooLarge
	case eMethodNotAllowed:
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError
}

// fail writes the error body of API.md and stops the handler chain.
func fail(c *app.RequestContext, code, msg string) { failMsg(c, code, msg) }

// failMsg is fail with a message in a string or in bytes (built without the heap).
// The body is what c.AbortWithStatusJSON(status, api.Error{...}) writes, encoded by
// hand (appendError): reflective rendering was the largest cost of a refusal.
func failMsg[M string | []byte](c *app.RequestContext, code string, msg M) {
	c.Abort()
	c.SetStatusCode(statusOf(code))
	c.Response.Header.SetContentType(jsonContentType)
	bp := errBufs.Get().(*[]byte)
	b := appendError((*bp)[:0], code, msg)
	c.Response.AppendBody(b)
	if cap(b) <= maxPooledErr {
		*bp = b
		errBufs.Put(bp)
	}
}

// jsonContentType is the Content-Type hertz's JSON rendering sets.
const jsonContentType = "application/json; charset=utf-8"

// errBufs holds the buffers error bodies are encoded in; one longer than
// maxPooledErr goes back to the heap.
var errBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

const maxPooledErr = 4 << 10

// appendError appends the JSON of api.Error{Code: code, Message: msg}.
func appendError[M string | []byte](b []byte, code string, msg M) []byte {
	b = append(b, `{"error":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, escaped as hertz's JSON rendering
// (sonic.ConfigStd) escapes it: '<', '>' and '&' too, U+2028 and U+2029, each byte
// of invalid UTF-8 as U+FFFD, and '\b' and '\f' as \u0008 and \u000c (where
// encoding/json writes \b and \f).
func appendJSONString[S string | []byte](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		}
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// failErr writes a domain error.
func failErr(c *app.RequestContext, err error) {
	fail(c, domain.ErrorCode(err), domain.ErrorMessage(err))
}

// rateLimited answers 429 with Retry-After in whole seconds, at least 1.
func rateLimited(c *app.RequestContext, what string, wait time.Duration) {
	secs := int((wait + time.Second - 1) / time.Second)
	c.Header("Retry-After", strconv.Itoa(max(secs, 1)))
	fail(c, eRateLimited, what+" rate limit reached; retry later")
}
