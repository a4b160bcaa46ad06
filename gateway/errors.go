package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/gateway/api"
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
func fail(c *app.RequestContext, code, msg string) {
	c.AbortWithStatusJSON(statusOf(code), api.Error{Code: code, Message: msg})
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
