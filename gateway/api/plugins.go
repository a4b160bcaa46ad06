package api

import (
	"encoding/json"
	"time"
)

// PutPluginRequest is the body of PUT /admin/v1/plugins/{name}. Every field is
// optional but WasmBase64 for a new plugin: without it the stored module stays and
// the other fields replace the plugin's (a change of order, config or limits);
// unknown fields are refused.
type PutPluginRequest struct {
	WasmBase64       string          `json:"wasm_base64"`
	Order            int             `json:"order"`
	Config           json.RawMessage `json:"config,omitempty"` // any JSON, handed to the guest
	FailPolicy       string          `json:"fail_policy,omitempty"`
	TimeoutMS        int64           `json:"timeout_ms,omitempty"`
	MemoryLimitPages uint32          `json:"memory_limit_pages,omitempty"`
	PoolSize         int             `json:"pool_size,omitempty"`
}

// Plugin is a loaded admission plugin.
type Plugin struct {
	Name             string          `json:"name"`
	Order            int             `json:"order"`
	Config           json.RawMessage `json:"config"`
	FailPolicy       string          `json:"fail_policy"`
	SHA256           string          `json:"sha256"`
	SizeBytes        int             `json:"size_bytes"`
	TimeoutMS        int64           `json:"timeout_ms"`
	MemoryLimitPages uint32          `json:"memory_limit_pages"`
	PoolSize         int             `json:"pool_size"`
	PoolMax          int             `json:"pool_max"` // how far the pool grows on demand
	RequestOnly      bool            `json:"request_only"`
	LoadedAt         time.Time       `json:"loaded_at"`
	Counters         PluginCounters  `json:"counters"`

	// Version counts the plugin's changes in the fleet; UpdatedBy and UpdatedAt say
	// who made the last one and when.
	Version   int64      `json:"version"`
	UpdatedBy string     `json:"updated_by,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	// Gateways is what each live gateway runs of it: the version, or the error that
	// keeps the desired version from loading there.
	Gateways []PluginOnGateway `json:"gateways"`
}

// PluginOnGateway is a plugin as one gateway runs it.
type PluginOnGateway struct {
	Gateway string `json:"gateway"`
	Version int64  `json:"version"` // 0: not running there
	SHA256  string `json:"sha256,omitempty"`
	Error   string `json:"error,omitempty"`
}

// GatewayStatus is one live gateway of the fleet.
type GatewayStatus struct {
	Gateway      string `json:"gateway"`
	Addr         string `json:"addr"`
	Ready        bool   `json:"ready"`
	ChainVersion int64  `json:"chain_version"`
	SeenMS       int64  `json:"seen_ms"`
}

// PluginChange is one entry of a plugin's history (GET
// /admin/v1/plugins/{name}/history), newest first.
type PluginChange struct {
	ID     int64  `json:"id"`
	Action string `json:"action"` // put, delete, rollback
	Plugin Plugin `json:"plugin"`
}

// PluginHistory is a plugin's last changes.
type PluginHistory struct {
	Changes []PluginChange `json:"changes"`
}

// PluginCounters are a plugin's counters (kept across replacements of the
// same name).
type PluginCounters struct {
	Calls              uint64  `json:"calls"`
	Admitted           uint64  `json:"admitted"`
	Rejections         uint64  `json:"rejections"`
	Errors             uint64  `json:"errors"`
	Timeouts           uint64  `json:"timeouts"`
	InstancesCreated   uint64  `json:"instances_created"`
	InstancesDiscarded uint64  `json:"instances_discarded"`
	InstancesLive      int     `json:"instances_live"`
	PoolExhausted      uint64  `json:"pool_exhausted"` // requests failed with every instance, up to pool_max, busy
	LatencySumMS       float64 `json:"latency_sum_ms"`
	LatencyP50MS       float64 `json:"latency_p50_ms"`
	LatencyP99MS       float64 `json:"latency_p99_ms"`
}

// PluginList is the answer of GET /admin/v1/plugins: the chain the fleet wants,
// in chain order, with what each gateway runs of it.
type PluginList struct {
	Plugins  []Plugin        `json:"plugins"`
	Version  int64           `json:"version"` // counts the chain's changes
	Gateways []GatewayStatus `json:"gateways"`
}
