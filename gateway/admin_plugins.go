// Operators' plugin routes (/admin/v1/plugins): list the admission chain,
// load or replace a plugin, unload one.

package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/wasm"
)

// MaxPluginBody bounds the body of PUT /admin/v1/plugins/:name: a 16 MiB
// module in base64 plus the other fields.
const MaxPluginBody = 24 << 20

// pluginOut is a loaded plugin as the admin API shows it.
func pluginOut(i wasm.Info) api.Plugin {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	cfg := i.Config
	if len(cfg) == 0 {
		cfg = json.RawMessage("null")
	}
	s := i.Stats
	return api.Plugin{
		Name:             i.Name,
		Order:            i.Order,
		Config:           cfg,
		FailPolicy:       string(i.FailPolicy),
		SHA256:           i.SHA256,
		SizeBytes:        i.Size,
		TimeoutMS:        i.Timeout.Milliseconds(),
		MemoryLimitPages: i.MemoryLimitPages,
		PoolSize:         i.PoolSize,
		RequestOnly:      i.RequestOnly,
		LoadedAt:         i.LoadedAt.UTC(),
		Counters: api.PluginCounters{
			Calls: s.Calls, Admitted: s.Admitted, Rejections: s.Rejections,
			Errors: s.Errors, Timeouts: s.Timeouts,
			InstancesCreated: s.InstancesCreated, InstancesDiscarded: s.InstancesDiscarded,
			InstancesLive: s.InstancesLive,
			LatencySumMS:  ms(s.LatencySum), LatencyP50MS: ms(s.LatencyP50), LatencyP99MS: ms(s.LatencyP99),
		},
	}
}

// listPlugins answers 200 {"plugins": [plugin...]} in chain order.
func (g *Gateway) listPlugins(_ context.Context, c *app.RequestContext) {
	writeJSON(c, http.StatusOK, api.PluginList{Plugins: each(g.plugins.List(), pluginOut)})
}

// putPlugin loads or replaces a plugin: 200 with the plugin; 400 bad_request on
// a bad body or module, leaving the running chain untouched.
func (g *Gateway) putPlugin(ctx context.Context, c *app.RequestContext) {
	name := c.Param("name")
	body := c.Request.Body()
	if len(body) > MaxPluginBody {
		fail(c, eTooLarge, fmt.Sprintf("body of %d bytes over the limit of %d", len(body), MaxPluginBody))
		return
	}
	// Megabytes of JSON and base64: decoded at a lower priority than the
	// requests the gateway serves meanwhile.
	var req api.PutPluginRequest
	var wasmBytes []byte
	var err error
	wasm.InBackground(func() {
		if req, err = decodePut(body); err != nil {
			return
		}
		if wasmBytes, err = decodeBase64Politely(req.WasmBase64); err != nil {
			err = fmt.Errorf("wasm_base64: %w", err)
		}
	})
	if err != nil {
		fail(c, domain.EBadRequest, err.Error())
		return
	}
	if len(req.Config) > 0 && bytes.Equal(bytes.TrimSpace(req.Config), []byte("null")) {
		req.Config = nil
	}
	info, err := g.plugins.Put(ctx, name, wasm.Spec{
		Wasm:             wasmBytes,
		Order:            req.Order,
		Config:           req.Config,
		FailPolicy:       wasm.FailPolicy(req.FailPolicy),
		Timeout:          time.Duration(req.TimeoutMS) * time.Millisecond,
		MemoryLimitPages: req.MemoryLimitPages,
		PoolSize:         req.PoolSize,
	})
	if err != nil {
		failManagerErr(c, err)
		return
	}
	writeJSON(c, http.StatusOK, pluginOut(info))
}

// decodeBase64Politely decodes s in pieces of 256 KiB, yielding the
// processor between them: a module is megabytes of base64, and on a small
// gateway decoding it in one go held a core from the requests for 5-20ms.
func decodeBase64Politely(s string) ([]byte, error) {
	const piece = 256 << 10 // a multiple of 4: padding only at the very end
	enc := base64.StdEncoding
	out := make([]byte, enc.DecodedLen(len(s)))
	n := 0
	for i := 0; i < len(s); i += piece {
		in := s[i:min(i+piece, len(s))]
		m, err := enc.Decode(out[n:], unsafe.Slice(unsafe.StringData(in), len(in))) // read only: no copy
		if err != nil {
			if ce, ok := err.(base64.CorruptInputError); ok {
				return nil, base64.CorruptInputError(int64(i) + int64(ce))
			}
			return nil, err
		}
		n += m
		runtime.Gosched()
	}
	return out[:n], nil
}

// putJSON decodes well-formed PUT bodies fast: encoding/json scans a 4.5 MB
// module in base64 byte by byte through its state machine, ~50ms of CPU per
// upload on a gateway under load; sonic (hertz's own JSON) takes ~4ms. A body
// it refuses is decoded again by encoding/json, whose errors say what is
// wrong in plain words. Its strings point into the body rather than copy
// it (CopyString false): decodePut copies the ones that outlive it.
var putJSON = sonic.Config{EscapeHTML: true, ValidateString: true, DisallowUnknownFields: true}.Froze()

// decodePut decodes strictly: unknown fields, trailing data and a missing
// module are errors. Its WasmBase64 may point into body: the server reuses
// the body's buffer after the request, so it is only to be decoded; every
// other field is the request's own.
func decodePut(body []byte) (api.PutPluginRequest, error) {
	var req api.PutPluginRequest
	// The body as a string without copying its megabytes: sonic's
	// Unmarshal copies a []byte into a string first.
	err := putJSON.UnmarshalFromString(unsafe.String(unsafe.SliceData(body), len(body)), &req)
	if err == nil {
		req.FailPolicy = strings.Clone(req.FailPolicy)
		req.Config = bytes.Clone(req.Config)
	} else {
		req = api.PutPluginRequest{}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return req, fmt.Errorf("body: %w", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return req, errors.New("body: trailing data after the JSON object")
		}
	}
	if req.WasmBase64 == "" {
		return req, errors.New("wasm_base64 is required")
	}
	if req.TimeoutMS < 0 {
		return req, errors.New("timeout_ms must not be negative")
	}
	return req, nil
}

// deletePlugin unloads a plugin: 204; 404 not_found for unknown names.
func (g *Gateway) deletePlugin(ctx context.Context, c *app.RequestContext) {
	if err := g.plugins.Delete(ctx, c.Param("name")); err != nil {
		failManagerErr(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// failManagerErr answers an error of the plugin manager with the API code
// of its wasm code.
func failManagerErr(c *app.RequestContext, err error) {
	switch wasm.Code(err) {
	case wasm.CodeInvalid:
		fail(c, domain.EBadRequest, err.Error())
	case wasm.CodeNotFound:
		fail(c, domain.ENotFound, err.Error())
	case wasm.CodeClosed:
		fail(c, domain.EUnavailable, err.Error())
	default:
		fail(c, domain.EInternal, err.Error())
	}
}

// writeJSON answers v encoded with encoding/json.
func writeJSON(c *app.RequestContext, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		fail(c, domain.EInternal, "encode response: "+err.Error())
		return
	}
	c.Data(status, "application/json; charset=utf-8", body)
}
