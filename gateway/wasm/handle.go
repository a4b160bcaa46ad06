package wasm

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/http-wasm/http-wasm-host-go/api"
)

// Next runs what follows the admission chain: the rest of the gateway and
// the backend. Its error reaches guests' handle_response as is_error=1.
type Next func(ctx context.Context) error

// Verdict is the outcome of the admission chain for one request.
type Verdict struct {
	// Admitted: every plugin called next (or failed open) and Next ran.
	Admitted bool
	// Plugin is the plugin that rejected the request or failed closed.
	Plugin string
	// Failed: the request is refused because Plugin failed (trap, timeout,
	// no instance, sdk Fail) and its fail policy is closed.
	Failed bool

	// The gateway's answer when not Admitted: Status with the body
	// {"error": Error, "message": Message}. A rejection is 403 "rejected"
	// unless the plugin set a status >= 400; a failure is 503 "unavailable".
	Status  int
	Error   string
	Message string

	// What the plugin itself wrote before rejecting: its status (0 if it
	// set none) and the start of its body (at most 4 KiB). Headers it set
	// are already on the host's response. Hosts that pass guest responses
	// through (the http-wasm TCK) use these instead of the fields above.
	GuestStatus int
	GuestBody   []byte
}

// Error codes of a Verdict.
const (
	VerdictRejected    = "rejected"
	VerdictUnavailable = "unavailable"
)

// Handle runs the admission chain for one request. host is the request as
// the guests see it; next is called once, if every plugin admits. Guests
// that called next and did not declare seckill_request_only then get
// handle_response, in reverse order, after next returns (or after a later
// plugin rejected). Handle never fails: plugin failures become a Verdict per
// their fail policy.
func (m *Manager) Handle(ctx context.Context, host Host, next Next) Verdict {
	ch := m.enterChain()
	if len(ch.plugins) == 0 {
		_ = next(ctx) // no guest to tell about its error
		return Verdict{Admitted: true}
	}
	defer ch.leave()

	var heldBuf [4]heldCall
	held := heldBuf[:0]
	// Instances held for the response phase go back to their pool whatever
	// happens, a panic in next included.
	defer func() {
		for i := range held {
			if held[i].inst != nil {
				held[i].p.release(held[i].inst)
			}
		}
	}()

	var verdict Verdict
	admitted := true
	for _, p := range ch.plugins {
		r := p.handleRequest(ctx, host)
		switch r.outcome {
		case outcomeAdmit:
			if r.inst != nil {
				held = append(held, heldCall{p: p, inst: r.inst, reqCtx: r.reqCtx})
			}
			continue
		case outcomeReject:
			verdict = r.rejection
		case outcomeFail:
			if p.spec.FailPolicy == FailOpen {
				continue
			}
			verdict = Verdict{
				Plugin:  p.name,
				Failed:  true,
				Status:  http.StatusServiceUnavailable,
				Error:   VerdictUnavailable,
				Message: "admission plugin " + p.name + " failed",
			}
		}
		admitted = false
		break
	}

	var nextErr error
	if admitted {
		verdict.Admitted = true
		nextErr = next(ctx)
	} else if verdict.Failed {
		nextErr = errors.New(verdict.Message)
	}
	for i := len(held) - 1; i >= 0; i-- {
		h := &held[i]
		h.p.handleResponse(ctx, h.inst, h.reqCtx, nextErr)
		h.inst = nil // returned or discarded by handleResponse
	}
	return verdict
}

// rejection builds the Verdict of a plugin that did not call next. It
// copies what it keeps of cs, which the instance reuses.
func rejection(name string, cs *callState) Verdict {
	status := http.StatusForbidden
	if cs.status >= 400 && cs.status <= 599 {
		status = int(cs.status)
	}
	reason := sanitize(cs.body)
	if reason == "" {
		reason = "request rejected"
	}
	return Verdict{
		Plugin:      name,
		Status:      status,
		Error:       VerdictRejected,
		Message:     name + ": " + reason,
		GuestStatus: int(cs.status),
		GuestBody:   bytes.Clone(cs.body),
	}
}

// enterChain loads the current chain and enters all its plugins. A plugin
// retired between the load and the enter has already been swapped out, so
// the next load sees its replacement.
func (m *Manager) enterChain() *chain {
	for {
		ch := m.chain.Load()
		i := 0
		for i < len(ch.plugins) && ch.plugins[i].enter() {
			i++
		}
		if i == len(ch.plugins) {
			return ch
		}
		for j := range i {
			ch.plugins[j].leave()
		}
	}
}

func (ch *chain) leave() {
	for _, p := range ch.plugins {
		p.leave()
	}
}

type outcome int

const (
	outcomeAdmit outcome = iota
	outcomeReject
	outcomeFail
)

type requestResult struct {
	outcome   outcome
	rejection Verdict   // outcomeReject
	inst      *instance // held for handle_response, or nil
	reqCtx    uint32
}

type heldCall struct {
	p      *plugin
	inst   *instance
	reqCtx uint32
}

// handleRequest calls the guest's handle_request with the plugin's
// deadline, which also bounds the wait for an instance.
func (p *plugin) handleRequest(ctx context.Context, host Host) requestResult {
	start := time.Now()
	p.stats.calls.Add(1)
	in, err := p.acquire(ctx, start)
	if err != nil {
		p.countFailure(ctx, err, "no instance")
		p.stats.observe(time.Since(start))
		return requestResult{outcome: outcomeFail}
	}
	// The call's clocks start now: a wait for the pool to grow is not the
	// guest's, and must not leave its host I/O past its deadline already.
	cs := &in.cs
	cs.begin(ctx, p, in, host, time.Now(), p.spec.Timeout, p.m.opts.DemoteAfter)
	in.stack[0] = 0
	err = in.call(in.handleRequest)
	cs.closeBodies()
	p.stats.observe(time.Since(start))
	if err != nil {
		p.countFailure(ctx, err, "handle_request")
		p.discard(in)
		return requestResult{outcome: outcomeFail}
	}
	if cs.failed {
		p.stats.errors.Add(1)
		p.m.log.WarnContext(ctx, "wasm plugin failed", "plugin", p.name, "reason", cs.failReason)
		p.release(in)
		return requestResult{outcome: outcomeFail}
	}
	ctxNext := in.stack[0]
	if uint32(ctxNext) == 0 {
		p.stats.rejections.Add(1)
		r := requestResult{outcome: outcomeReject, rejection: rejection(p.name, cs)}
		p.release(in)
		return r
	}
	p.stats.admitted.Add(1)
	if p.requestOnly {
		p.release(in)
		return requestResult{outcome: outcomeAdmit}
	}
	return requestResult{outcome: outcomeAdmit, inst: in, reqCtx: uint32(ctxNext >> 32)}
}

// handleResponse calls the guest's handle_response on the instance that
// handled the request, then returns it to the pool (or discards it).
func (p *plugin) handleResponse(ctx context.Context, in *instance, reqCtx uint32, nextErr error) {
	cs := &in.cs
	cs.parent, cs.afterNext = ctx, true
	cs.restart(time.Now(), p.spec.Timeout)
	isError := uint64(0)
	if nextErr != nil {
		isError = 1
	}
	in.stack[0], in.stack[1] = uint64(reqCtx), isError
	err := in.call(in.handleResponse)
	cs.closeBodies()
	if err != nil {
		p.countFailure(ctx, err, "handle_response")
		p.discard(in)
		return
	}
	p.release(in)
}

// countFailure counts and logs a failed call: a timeout if the guest ran
// past its deadline, pool exhaustion if no instance was free in time, an
// error otherwise.
func (p *plugin) countFailure(ctx context.Context, err error, what string) {
	timeout := errors.Is(err, errDeadlineExceeded)
	switch {
	case timeout:
		p.stats.timeouts.Add(1)
	case errors.Is(err, errNoInstance):
		p.stats.poolExhausted.Add(1)
	default:
		p.stats.errors.Add(1)
	}
	p.m.log.WarnContext(ctx, "wasm plugin call failed", "plugin", p.name, "call", what, "timeout", timeout, "err", err)
}

// slogLevel maps an http-wasm log level to slog.
func slogLevel(l api.LogLevel) slog.Level {
	switch {
	case l <= api.LogLevelDebug:
		return slog.LevelDebug
	case l == api.LogLevelInfo:
		return slog.LevelInfo
	case l == api.LogLevelWarn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func msDuration(ms int64) time.Duration {
	const maxMS = int64(1<<63-1) / int64(time.Millisecond)
	return time.Duration(min(ms, maxMS)) * time.Millisecond
}
