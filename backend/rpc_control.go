package backend

import (
	"context"
	"encoding/json"
	"time"

	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// ControlRPC serves the fleet's control state over kitex: gateways read it and
// operators change it through any gateway. The backend's handler embeds it (so do
// the gateway's tests, over an in-memory store).
type ControlRPC struct {
	ctl *control.Service
}

// NewControlRPC returns the control calls of the kitex service over ctl.
func NewControlRPC(ctl *control.Service) *ControlRPC { return &ControlRPC{ctl: ctl} }

func pluginOut(p control.Plugin) *rpc.PluginSpec {
	return &rpc.PluginSpec{Name: p.Name, Version: p.Version, Sha256: p.SHA256, Order: int32(p.Order), Config: string(p.Config),
		FailPolicy: p.FailPolicy, TimeoutMs: p.TimeoutMS, MemoryLimitPages: int32(p.MemoryPages), PoolSize: int32(p.PoolSize),
		SizeBytes: int32(p.SizeBytes), UpdatedBy: p.UpdatedBy, UpdatedMs: p.UpdatedAt.UnixMilli()}
}

func pluginIn(s *rpc.PluginSpec) control.Plugin {
	p := control.Plugin{Name: s.Name, Order: int(s.Order), FailPolicy: s.FailPolicy, TimeoutMS: s.TimeoutMs,
		MemoryPages: uint32(max(s.MemoryLimitPages, 0)), PoolSize: int(s.PoolSize), UpdatedBy: s.UpdatedBy, SHA256: s.Sha256}
	if s.Config != "" {
		p.Config = json.RawMessage(s.Config)
	}
	return p
}

func (h *ControlRPC) chain(ctx context.Context) (*rpc.PluginChain, error) {
	v, ps, err := h.ctl.Chain(ctx)
	if err != nil {
		return nil, rpcerr.ToBiz(unavailable(err))
	}
	out := &rpc.PluginChain{Version: v, Plugins: []*rpc.PluginSpec{}}
	for _, p := range ps {
		out.Plugins = append(out.Plugins, pluginOut(p))
	}
	return out, nil
}

// unavailable passes domain errors through and makes any other one unavailable.
func unavailable(err error) error {
	if _, ok := err.(*domain.Error); ok || err == nil {
		return err
	}
	return domain.Errorf(domain.EUnavailable, "the control state is unavailable")
}

func (h *ControlRPC) GetPlugins(ctx context.Context, _ *rpc.EmptyReq) (*rpc.PluginChain, error) {
	return h.chain(ctx)
}

func (h *ControlRPC) PutPlugin(ctx context.Context, req *rpc.PutPluginReq) (*rpc.PluginSpec, error) {
	if req.Spec == nil {
		return nil, rpcerr.ToBiz(domain.Errorf(domain.EBadRequest, "no plugin"))
	}
	var module []byte
	if len(req.Module) > 0 {
		module = req.Module
	}
	p, err := h.ctl.PutPlugin(ctx, pluginIn(req.Spec), module)
	if err != nil {
		return nil, rpcerr.ToBiz(unavailable(err))
	}
	return pluginOut(p), nil
}

func (h *ControlRPC) DeletePlugin(ctx context.Context, req *rpc.PluginNameReq) (*rpc.PluginChain, error) {
	if err := h.ctl.DeletePlugin(ctx, req.Name, req.Who); err != nil {
		return nil, rpcerr.ToBiz(unavailable(err))
	}
	return h.chain(ctx)
}

func (h *ControlRPC) RollbackPlugin(ctx context.Context, req *rpc.PluginNameReq) (*rpc.PluginSpec, error) {
	p, err := h.ctl.RollbackPlugin(ctx, req.Name, req.Who)
	if err != nil {
		return nil, rpcerr.ToBiz(unavailable(err))
	}
	return pluginOut(p), nil
}

func (h *ControlRPC) GetPluginHistory(ctx context.Context, req *rpc.PluginNameReq) (*rpc.PluginHistoryResp, error) {
	cs, err := h.ctl.History(ctx, req.Name)
	if err != nil {
		return nil, rpcerr.ToBiz(unavailable(err))
	}
	out := &rpc.PluginHistoryResp{Changes: []*rpc.PluginChange{}}
	for _, c := range cs {
		out.Changes = append(out.Changes, &rpc.PluginChange{Id: c.ID, Action: c.Action, Spec: pluginOut(c.Plugin)})
	}
	return out, nil
}

func (h *ControlRPC) GetPluginModule(ctx context.Context, req *rpc.PluginModuleReq) (*rpc.PluginModuleResp, error) {
	m, err := h.ctl.Module(ctx, req.Sha256)
	if err != nil {
		return nil, rpcerr.ToBiz(unavailable(err))
	}
	return &rpc.PluginModuleResp{Module: m}, nil
}

func limitsOut(l control.Limits) *rpc.LimitsState {
	return &rpc.LimitsState{Version: l.Version, Body: string(l.Body), UpdatedBy: l.UpdatedBy, UpdatedMs: msOrZero(l.UpdatedAt)}
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (h *ControlRPC) GetLimits(ctx context.Context, _ *rpc.EmptyReq) (*rpc.LimitsState, error) {
	l, err := h.ctl.Limits(ctx)
	if err != nil {
		return nil, rpcerr.ToBiz(unavailable(err))
	}
	return limitsOut(l), nil
}

func (h *ControlRPC) PutLimits(ctx context.Context, req *rpc.PutLimitsReq) (*rpc.LimitsState, error) {
	ifVersion := int64(control.AnyVersion)
	if req.IfVersion != nil {
		ifVersion = max(*req.IfVersion, 0)
	}
	l, err := h.ctl.PutLimits(ctx, json.RawMessage(req.Body), req.Who, ifVersion)
	if err != nil {
		return nil, rpcerr.ToBiz(unavailable(err))
	}
	return limitsOut(l), nil
}
