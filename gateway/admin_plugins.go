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
	kcallopt "github.com/cloudwego/kitex/client/callopt"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/fleet"
	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
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
		PoolMax:          i.PoolMax,
		RequestOnly:      i.RequestOnly,
		LoadedAt:         i.LoadedAt.UTC(),
		Counters: api.PluginCounters{
			Calls: s.Calls, Admitted: s.Admitted, Rejections: s.Rejections,
			Errors: s.Errors, Timeouts: s.Timeouts,
			InstancesCreated: s.InstancesCreated, InstancesDiscarded: s.InstancesDiscarded,
			InstancesLive: s.InstancesLive, PoolExhausted: s.PoolExhausted,
			LatencySumMS: ms(s.LatencySum), LatencyP50MS: ms(s.LatencyP50), LatencyP99MS: ms(s.LatencyP99),
		},
	}
}

// listPlugins answers 200 with the chain the fleet wants, in chain order, what each
// live gateway runs of it, and this gateway's counters of each plugin.
func (g *Gateway) listPlugins(ctx context.Context, c *app.RequestContext) {
	chain, err := g.backend.GetPlugins(ctx, &rpc.EmptyReq{})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	fleet, err := g.fleet.Fleet(ctx)
	if err != nil {
		g.log.WarnContext(ctx, "read the fleet's reports", "err", err)
	}
	local := map[string]wasm.Info{}
	for _, in := range g.plugins.List() {
		local[in.Name] = in
	}
	out := api.PluginList{Plugins: []api.Plugin{}, Version: chain.Version, Gateways: []api.GatewayStatus{}}
	for _, r := range fleet {
		out.Gateways = append(out.Gateways, api.GatewayStatus{Gateway: r.ID, Addr: r.Addr, Ready: r.Ready, ChainVersion: r.ChainVersion, SeenMS: r.SeenMS})
	}
	for _, p := range chain.Plugins {
		out.Plugins = append(out.Plugins, desiredOut(p, local[p.Name], fleet))
	}
	writeJSON(c, http.StatusOK, out)
}

// desiredOut is a plugin the fleet wants, with this gateway's counters of it and what
// each gateway runs.
func desiredOut(p *rpc.PluginSpec, local wasm.Info, fleet []fleet.Report) api.Plugin {
	out := pluginOut(local)
	spec := specOf(p)
	out.Name, out.Order, out.FailPolicy, out.SHA256, out.SizeBytes = p.Name, int(p.Order), p.FailPolicy, p.Sha256, int(p.SizeBytes)
	if out.FailPolicy == "" {
		out.FailPolicy = string(wasm.FailOpen) // stored as the default, shown as what it means
	}
	out.Config = json.RawMessage("null")
	if p.Config != "" {
		out.Config = json.RawMessage(p.Config)
	}
	if local.Name == "" || local.SHA256 != p.Sha256 { // not running here as stored: the stored values (0: the host's default)
		out.TimeoutMS, out.MemoryLimitPages, out.PoolSize = spec.Timeout.Milliseconds(), spec.MemoryLimitPages, spec.PoolSize
	}
	out.Version, out.UpdatedBy = p.Version, p.UpdatedBy
	if p.UpdatedMs > 0 {
		at := time.UnixMilli(p.UpdatedMs).UTC()
		out.UpdatedAt = &at
	}
	out.Gateways = []api.PluginOnGateway{}
	for _, r := range fleet {
		run := r.Plugins[p.Name]
		out.Gateways = append(out.Gateways, api.PluginOnGateway{Gateway: r.ID, Version: run.Version, SHA256: run.SHA256, Error: run.Error})
	}
	return out
}

// specOf is a stored plugin as the plugin host's fields show it (no module).
func specOf(p *rpc.PluginSpec) wasm.Spec {
	return wasm.Spec{Order: int(p.Order), FailPolicy: wasm.FailPolicy(p.FailPolicy), Timeout: time.Duration(p.TimeoutMs) * time.Millisecond,
		MemoryLimitPages: uint32(max(p.MemoryLimitPages, 0)), PoolSize: int(p.PoolSize)}
}

// operatorOf names who asks for a change: the X-Operator header when sent (a name of
// at most 64 printable characters), and the gateway it came through.
func (g *Gateway) operatorOf(c *app.RequestContext) string {
	who := "admin"
	if h := string(c.GetHeader("X-Operator")); h != "" && len(h) <= 64 && validIdemKey(h) {
		who = h
	}
	return who + " via " + g.fleet.Report().ID
}

// putPlugin loads or replaces a plugin in the fleet: 200 with the plugin as stored;
// 400 bad_request on a bad body or a module that does not load, leaving every chain
// untouched. The module is checked by loading it here first; once stored, every
// gateway applies it (announced, and polled).
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
		if req, err = decodePut(body); err != nil || req.WasmBase64 == "" {
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
	spec := wasm.Spec{Wasm: wasmBytes, Order: req.Order, Config: req.Config, FailPolicy: wasm.FailPolicy(req.FailPolicy),
		Timeout: time.Duration(req.TimeoutMS) * time.Millisecond, MemoryLimitPages: req.MemoryLimitPages, PoolSize: req.PoolSize}
	checked := "" // the stored module a change without one was checked on
	if wasmBytes == nil {
		// A change of order, config or limits: checked as a whole plugin is, on the
		// module the fleet stores, so a bad policy, limit or config is refused here
		// and never stored for every gateway to fail on.
		module, sum, ok, err := g.fleet.StoredModule(ctx, name)
		switch {
		case err != nil:
			failErr(c, err)
			return
		case !ok:
			fail(c, domain.EBadRequest, "wasm_base64 is required: plugin "+name+" is not loaded")
			return
		}
		spec.Wasm, checked = module, sum
	}
	// Loading it here checks the plugin (the module compiles, has the ABI's exports,
	// and initializes with the config, within the limits) before the fleet stores it.
	if _, err := g.plugins.Put(ctx, name, spec); err != nil {
		failManagerErr(c, err)
		return
	}
	stored, err := g.backend.PutPlugin(ctx, &rpc.PutPluginReq{Module: wasmBytes, Spec: &rpc.PluginSpec{Name: name, Order: int32(req.Order),
		Config: string(req.Config), FailPolicy: string(spec.FailPolicy), TimeoutMs: req.TimeoutMS, MemoryLimitPages: int32(req.MemoryLimitPages),
		PoolSize: int32(req.PoolSize), UpdatedBy: g.operatorOf(c), Sha256: checked}}, controlCall)
	if err = rpcerr.FromRPCChange(err); err != nil {
		g.fleet.SyncChain(ctx) // back to what the fleet stores
		if wasmBytes == nil && domain.IsCode(err, domain.ENotFound) {
			fail(c, domain.EBadRequest, "wasm_base64 is required: plugin "+name+" is not loaded")
			return
		}
		failErr(c, err)
		return
	}
	if wasmBytes != nil {
		g.fleet.KeepModule(stored.Sha256, wasmBytes)
	}
	g.answerPlugin(ctx, c, stored)
}

// answerPlugin applies the fleet's chain here and answers with p as stored.
func (g *Gateway) answerPlugin(ctx context.Context, c *app.RequestContext, p *rpc.PluginSpec) {
	if err := g.fleet.SyncChain(ctx); err != nil {
		g.log.WarnContext(ctx, "apply the fleet's chain after a change", "err", err)
	}
	fleet, _ := g.fleet.Fleet(ctx)
	var local wasm.Info
	for _, in := range g.plugins.List() {
		if in.Name == p.Name {
			local = in
		}
	}
	writeJSON(c, http.StatusOK, desiredOut(p, local, fleet))
}

// controlCall bounds a call that carries a module.
var controlCall = kcallopt.WithRPCTimeout(30 * time.Second)

// rollbackPlugin puts back a plugin's previous version in the fleet: 200 with the
// plugin as stored; 404 when it has no earlier version.
func (g *Gateway) rollbackPlugin(ctx context.Context, c *app.RequestContext) {
	p, err := g.backend.RollbackPlugin(ctx, &rpc.PluginNameReq{Name: c.Param("name"), Who: g.operatorOf(c)}, controlCall)
	if err = rpcerr.FromRPCChange(err); err != nil {
		failErr(c, err)
		return
	}
	g.answerPlugin(ctx, c, p)
}

// pluginHistory answers a plugin's last changes, newest first.
func (g *Gateway) pluginHistory(ctx context.Context, c *app.RequestContext) {
	h, err := g.backend.GetPluginHistory(ctx, &rpc.PluginNameReq{Name: c.Param("name")})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	if len(h.Changes) == 0 {
		fail(c, domain.ENotFound, "plugin "+c.Param("name")+" has no history")
		return
	}
	out := api.PluginHistory{Changes: []api.PluginChange{}}
	for _, ch := range h.Changes {
		out.Changes = append(out.Changes, api.PluginChange{ID: ch.Id, Action: ch.Action, Plugin: desiredOut(ch.Spec, wasm.Info{}, nil)})
	}
	writeJSON(c, http.StatusOK, out)
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

// decodePut decodes strictly: unknown fields and trailing data are errors. Its WasmBase64 may point into body: the server reuses
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
	if req.TimeoutMS < 0 || req.TimeoutMS > wasm.MaxTimeout.Milliseconds() {
		return req, fmt.Errorf("timeout_ms must be 0 to %d", wasm.MaxTimeout.Milliseconds())
	}
	return req, nil
}

// deletePlugin unloads a plugin from the fleet: 204; 404 not_found for unknown names.
func (g *Gateway) deletePlugin(ctx context.Context, c *app.RequestContext) {
	_, err := g.backend.DeletePlugin(ctx, &rpc.PluginNameReq{Name: c.Param("name"), Who: g.operatorOf(c)})
	if err = rpcerr.FromRPCChange(err); err != nil {
		failErr(c, err)
		return
	}
	if err := g.fleet.SyncChain(ctx); err != nil {
		g.log.WarnContext(ctx, "apply the fleet's chain after a change", "err", err)
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
