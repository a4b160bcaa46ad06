package api

import (
	"encoding/json"
	"time"
)

// PutPluginRequest is the body of PUT /admin/v1/plugins/{name}. All but
// WasmBase64 are optional; unknown fields are refused.
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
	RequestOnly      bool            `json:"request_only"`
	LoadedAt         time.Time       `json:"loaded_at"`
	Counters         PluginCounters  `json:"counters"`
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
	LatencySumMS       float64 `json:"latency_sum_ms"`
	LatencyP50MS       float64 `json:"latency_p50_ms"`
	LatencyP99MS       float64 `json:"latency_p99_ms"`
}

// PluginList is the answer of GET /admin/v1/plugins, in chain order.
type PluginList struct {
	Plugins []Plugin `json:"plugins"`
}
