package config

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ConfigEnv names the configuration file when no -config is given.
const ConfigEnv = "SECKILL_CONFIG"

// Setting is one leaf key of the configuration file and the environment variable
// that overrides it.
type Setting struct {
	Key     string // as the file nests it, dotted: gateway.limits.user.rps
	Env     string // SECKILL_GATEWAY_LIMITS_USER_RPS
	Default string // the value when neither sets it; "" none
	Help    string
	Secret  bool // never logged: Redacted hides it
}

// row documents one key. Its environment variable is SECKILL_ and the key
// upper-cased with underscores for dots, unless env names another: the short names
// older than the rule keep working.
type row struct {
	key, env, help string
	unset          string              // what the component makes of the zero value, shown when that is the default
	hide           func(string) string // a secret, and how Redacted shows it
}

// rows is the settings table, in the order of Config. A test fails when a key of
// Config has no row or a row no key.
var rows = []row{
	{key: "port_base", help: "first port of the listeners' defaults: gateway base, its ops base+1, backend base+2, its ops base+3, worker ops base+4; give each process on one host its own base (ops listeners are loopback)"},

	{key: "fleet", help: "the deployment's name: its processes share control announcements, gateway reports and rate-limit buckets in Redis under it. A fleet needs a Redis of its own: sale state is keyed by activity and item ids, which another fleet numbers alike"},

	{key: "mysql.dsn", help: "MySQL DSN, user:pass@tcp(host:port)/db; empty: the embedded stand-in (all-in-one only)", hide: redactDSN},
	{key: "mysql.max_conns", unset: "32", help: "connections in each process's MySQL pool"},

	{key: "redis.addrs", env: "SECKILL_REDIS_ADDR", help: "Redis address, or a cluster's seed addresses, comma-separated; empty: the embedded stand-in (all-in-one only)"},
	{key: "redis.password", help: "Redis password", hide: blank},
	{key: "redis.cluster", help: "true to use Redis Cluster even with one seed address"},

	{key: "rocketmq.name_servers", env: "SECKILL_ROCKETMQ_NAMESRV", help: "RocketMQ name servers, comma-separated; empty: the in-process queue (all-in-one only)"},
	{key: "rocketmq.topic", help: "topic of admitted orders"},
	{key: "rocketmq.group", help: "consumer group of the workers"},
	{key: "rocketmq.tag", help: "tag on every order message; workers take only it (empty: all)"},

	{key: "backend.listen", help: "kitex address of the backend; port 0 picks one (default 127.0.0.1:port_base+2)"},
	{key: "backend.ops_listen", help: "where the backend serves /metrics and /healthz (default: the port after backend.listen)"},
	{key: "backend.ticket_ttl", unset: "24h", help: "how long a ticket's result is kept in Redis"},
	{key: "backend.reconcile_interval", unset: "10s", help: "how often the reconciler compares Redis with MySQL; negative: never"},
	{key: "backend.unpaid_timeout", help: "orders left unpaid this long expire and their stock returns; 0: never"},
	{key: "backend.stale_ticket", unset: "15m", help: "a ticket in flight this long is ended by the reconciler; one Redis lost before its order was written reads pending this long after its admission, then failed"},
	{key: "backend.republish_after", unset: "30s", help: "a queued sale's ticket in flight this long is sent to the queue again, once (its backend may have died before sending it); the worker writes it once"},
	{key: "backend.stale_sync_ticket", unset: "30s", help: "the same for sync sales, whose orders are written within the request: a ticket in flight longer was left by a backend that died mid-order"},
	{key: "backend.batch_size", unset: "64", help: "most concurrent requests of one item that share one stock script call, one queue send, one settle, and for sync one transaction; 1 turns batching off"},
	{key: "backend.orders_settle", unset: "5s", help: "orders written this recently are not yet in the operators' pages and export of an activity's orders, so a walk during a sale never skips one still committing; negative: none"},
	{key: "backend.batch_wait", unset: "1ms", help: "how long a batch of an item's requests waits behind the item's calls in progress before it goes alongside them; a request that finds its item idle never waits"},
	{key: "backend.lease_ttl", unset: "10s", help: "life of the lease under which one backend of the fleet runs the reconciler, rebalancer and expiry; another takes over within it plus a third"},
	{key: "backend.rpc_secret", help: "the service credential every kitex call to the backend carries (gateways send it; backends require it): at least 32 random bytes; needed by backends and gateways alike; generated per process when gateway and backend run in one (seckill all); the key of the backends' tickets is derived from it while backend.ticket_secret is unset", hide: blank},
	{key: "backend.rpc_operator_secret", help: "the credential operators' kitex calls carry (gateways send it only after checking the admin token): at least 32 random bytes, not backend.rpc_secret", hide: blank},
	{key: "backend.ticket_secret", help: "the secret the key of the backends' tickets is derived from, the same on every backend: a ticket Redis lost with its data reads alike at each (pending while its order may still be written, then failed). At least 32 random bytes, not an RPC secret; backends only. Empty: backend.rpc_secret, which gateways hold too (a holder could mint tickets of real shoppers' ids). Setting it on a running fleet changes the key: set backend.previous_ticket_secret to backend.rpc_secret with it (deploy/fleet.sh does)", hide: blank},
	{key: "backend.previous_ticket_secret", help: "the ticket secret before its last change (or backend.rpc_secret's previous value while backend.ticket_secret is unset): tickets minted with it still read as the fleet's, new ones use the current. Set it on every backend when changing the secret and keep it for backend.stale_ticket; a ticket whose key no backend holds reads not_found once Redis has lost it", hide: blank},

	{key: "worker.goroutines", help: "batches a worker writes at once"},
	{key: "worker.batch_size", env: "SECKILL_WORKER_BATCH", help: "most orders of one item and bucket per worker transaction; 1 turns batching off"},
	{key: "worker.batch_window", help: "how long a batch waits to fill"},
	{key: "worker.max_attempts", help: "deliveries of an order message before it is settled for good"},
	{key: "worker.ops_listen", help: "where the worker serves /metrics and /healthz (default 127.0.0.1:port_base+4)"},

	{key: "gateway.listen", help: "HTTP address of the gateway; port 0 picks one (default 127.0.0.1:port_base)"},
	{key: "gateway.ops_listen", help: "where the gateway serves /metrics, /healthz, /readyz and /debug/pprof/ (default: loopback, the port after gateway.listen)"},
	{key: "gateway.backend_addrs", env: "SECKILL_BACKEND_ADDRS", help: "backends the gateway calls, comma-separated, balanced; empty: backend.listen"},
	{key: "gateway.backend_service", help: "find the backends by DNS instead, host:port (a Kubernetes headless Service: every ready pod's address), asked again every gateway.backend_refresh"},
	{key: "gateway.backend_refresh", unset: "5s", help: "how often the backends' DNS name is resolved again"},
	{key: "gateway.jwt_secret", env: "SECKILL_JWT_SECRET", help: "HS256 key of shoppers' tokens (and of `seckill token`): at least 32 random bytes, e.g. `openssl rand -hex 32`; short, repetitive and placeholder values are refused at start; optional with gateway.jwks_url", hide: blank},
	{key: "gateway.admin_token", env: "SECKILL_ADMIN_TOKEN", help: "operators' bearer token: at least 32 random bytes, not the jwt secret; checked like it", hide: blank},
	{key: "gateway.jwks_url", help: "a storefront identity provider's JWK Set URL: RS256 and ES256 shopper tokens signed by its keys are accepted (fetched at start, every 15m, and for an unknown kid at most every 5m)"},
	{key: "gateway.jwt_issuer", help: "when set, every shopper token's iss must be this (`seckill token` writes it)"},
	{key: "gateway.jwt_audience", help: "when set, every shopper token's aud must hold this (`seckill token` writes it)"},
	{key: "gateway.jwt_max_age", help: "when set, shopper tokens issued (iat, then required) longer ago are refused, whatever their exp; 0: no limit"},
	{key: "gateway.trusted_proxies", help: "proxies (CIDRs or addresses, comma-separated) whose forwarding header names the client; the right-most hop that is not one of them is the client; empty: no header is read, the TCP peer is the client"},
	{key: "gateway.forwarded_header", unset: "X-Forwarded-For", help: "the one header the trusted proxies name the client in: X-Forwarded-For, Forwarded (RFC 7239) or X-Real-IP"},
	{key: "gateway.limits.global.rps", help: "changes a second the fleet admits in all (orders, cancels, payments; a token bucket split over the gateways); 0 turns the limit off; every rate is 0 or from 1/86400 (one a day) to 1e9, every burst 0 to 2^30; PUT /admin/v1/limits changes the limits live"},
	{key: "gateway.limits.global.burst", help: "changes the global bucket admits at once"},
	{key: "gateway.limits.read.rps", help: "reads a second the fleet admits in all (the catalog, shoppers' orders and tickets), apart from the changes' bucket so a read flood cannot starve buyers; 0 turns the limit off"},
	{key: "gateway.limits.read.burst", help: "reads the read bucket admits at once"},
	{key: "gateway.limits.user.rps", help: "changes a second from one shopper (orders, cancels, payments), across the fleet; 0 turns the limit off"},
	{key: "gateway.limits.user.burst", help: "changes one shopper's bucket admits at once"},
	{key: "gateway.limits.user_read.rps", help: "reads of orders and ticket polls a second from one shopper, across the fleet; 0 turns the limit off"},
	{key: "gateway.limits.user_read.burst", help: "reads one shopper's read bucket admits at once"},
	{key: "gateway.limits.item.rps", help: "requests a second for one item; 0 turns the limit off"},
	{key: "gateway.limits.item.burst", help: "requests one item's bucket admits at once"},
	{key: "gateway.limits.ip.rps", help: "requests a second from one IP address on paths without a shopper's identity; 0 turns the limit off"},
	{key: "gateway.limits.ip.burst", help: "requests one address's bucket admits at once"},
	{key: "gateway.limiter_max_keys", unset: "100000", help: "shoppers, items and addresses whose buckets are kept, per kind (the least recently used go)"},
	{key: "gateway.rpc_timeout", unset: "3s", help: "bound on one call to the backend"},
	{key: "gateway.cache_ttl", unset: "2s", help: "how long the gateway keeps an activity's metadata"},
	{key: "gateway.null_ttl", unset: "10s", help: "how long the gateway remembers that an id is unknown"},
	{key: "gateway.sold_out_poll", unset: "500ms", help: "how often an item flagged sold out is rechecked, so the flag clears once stock is back"},
	{key: "gateway.max_body_bytes", unset: "4096", help: "largest body of a shopper's request (operators' may be 1 MiB, plugin uploads 24 MiB)"},
	{key: "gateway.read_timeout", unset: "10s", help: "bound on reading one request, and on a new connection's wait for its first"},
	{key: "gateway.write_timeout", unset: "10s", help: "bound on writing one answer"},
	{key: "gateway.idle_timeout", unset: "2m", help: "how long a keep-alive connection may wait for its next request"},
	{key: "gateway.max_connections", unset: "16384, or the open files limit less 1024 if lower", help: "client connections open at once; one over it gets 503 and is closed; -1: no cap"},
	{key: "gateway.max_connections_per_ip", unset: "a sixteenth of max_connections, at least 64; 1024 when that is -1", help: "client connections open at once from one address (an IPv6 client's /64); one over it gets 429 and is closed; trusted proxies are not capped; -1: no cap"},
	{key: "gateway.max_header_bytes", unset: "16384", help: "largest request line and headers; past it the request gets 431 and the connection is closed"},
	{key: "gateway.plugin_timeout", unset: "10ms", help: "per-call deadline of plugins loaded without one, waiting for an instance included"},
	{key: "gateway.plugin_memory_pages", unset: "512 (32 MiB)", help: "memory limit of plugins loaded without one, in 64 KiB pages"},
	{key: "gateway.control_poll", unset: "5s", help: "how often a gateway reads the fleet's control state (plugins, limits) even without an announcement"},
	{key: "gateway.report_every", unset: "2s", help: "how often a gateway reports what it runs to the fleet; a report older than three intervals is a dead gateway's"},
	{key: "gateway.procs", unset: "4 a core, at least 8", help: "Go processors (GOMAXPROCS) the gateway asks for at least, so plugin guests that cannot be preempted do not hold the cores; -1 leaves GOMAXPROCS alone"},
	{key: "gateway.gc_percent", unset: "400", help: "GOGC the gateway sets, so a plugin upload's allocations do not stall requests; -1 leaves it alone"},
	{key: "gateway.waiting_room.secret", help: "HMAC key of the waiting room's queue tokens, the same on every gateway: at least 32 random bytes; empty: derived from gateway.jwt_secret (set it when shoppers' tokens come only from a JWKS)", hide: blank},
	{key: "gateway.waiting_room.place_ttl", unset: "30s", help: "a place in a waiting room's line that nobody asked about for this long lapses; at least twice poll_max"},
	{key: "gateway.waiting_room.poll_min", unset: "250ms", help: "shortest retry_after_ms a queued shopper is given"},
	{key: "gateway.waiting_room.poll_max", unset: "5s", help: "longest retry_after_ms a queued shopper is given"},

	{key: "log.level", help: "debug, info, warn or error"},
	{key: "log.format", help: "text or json"},

	{key: "tracing.exporter", unset: "none", help: "where OpenTelemetry spans go: none, stdout, or otlp (OTLP over HTTP)"},
	{key: "tracing.endpoint", unset: "localhost:4318", help: "the OTLP/HTTP collector of the otlp exporter"},
	{key: "tracing.sample", unset: "1", help: "share of traces kept, more than 0 and at most 1"},
}

// rowOf is the row of key.
func rowOf(key string) (row, bool) {
	i := slices.IndexFunc(rows, func(r row) bool { return r.key == key })
	if i < 0 {
		return row{}, false
	}
	return rows[i], true
}

// envName is the environment variable a key has unless its row names another.
func envName(key string) string {
	return "SECKILL_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// entry is a setting and the field of Config that holds it.
type entry struct {
	Setting
	index []int
}

// table joins the rows with the keys of Config: one entry a key, in the order of
// Config. A key without a row has no help (a test fails on it).
func table() []entry {
	def := reflect.ValueOf(defaults())
	var out []entry
	for _, f := range fields() {
		r, _ := rowOf(f.key)
		e := entry{Setting: Setting{Key: f.key, Env: r.env, Help: r.help, Secret: r.hide != nil}, index: f.index}
		if e.Env == "" {
			e.Env = envName(f.key)
		}
		switch d := def.FieldByIndex(f.index); {
		case d.IsZero() && r.unset != "":
			e.Default = r.unset
		case r.hide != nil && !d.IsZero():
			e.Default = r.hide(format(d))
		default:
			e.Default = format(d)
		}
		out = append(out, e)
	}
	return out
}

// Settings are the keys of the configuration file, in the order of Config.
func Settings() []Setting {
	var out []Setting
	for _, e := range table() {
		out = append(out, e.Setting)
	}
	return out
}

// WriteUsage writes every setting's environment variable, YAML key, default and
// help, for --help.
func WriteUsage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s\n      path of the YAML configuration file (same as -config)\n", ConfigEnv)
	for _, s := range Settings() {
		fmt.Fprintf(&b, "  %s  [%s]", s.Env, s.Key)
		if s.Default != "" {
			fmt.Fprintf(&b, "  default %s", s.Default)
		}
		fmt.Fprintf(&b, "\n      %s%s\n", s.Help, secretNote(s))
	}
	io.WriteString(w, b.String())
}

// markdownHead opens docs/CONFIGURATION.md.
const markdownHead = "# Configuration\n\n" +
	"<!-- Generated from the settings table in config/settings.go by `make docs`; do not edit. -->\n\n" +
	"Every seckill command reads the defaults, then the YAML file (`-config FILE`, or the\n" +
	"file `" + ConfigEnv + "` names), then the environment: each overrides the one before.\n" +
	"Every key of the file has an environment variable. In the environment, lists are\n" +
	"comma-separated and durations are Go's (`1m30s`). Secrets are redacted in logs.\n" +
	"`seckill --help` lists the same settings.\n\n" +
	"| YAML key | Environment variable | Default | Meaning |\n" +
	"|---|---|---|---|\n"

// Markdown is docs/CONFIGURATION.md: every setting in a table.
func Markdown() []byte {
	var b strings.Builder
	b.WriteString(markdownHead)
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, s := range Settings() {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s%s |\n", s.Key, s.Env, cell(s.Default), cell(s.Help), secretNote(s))
	}
	return []byte(b.String())
}

// secretNote closes the help of a secret.
func secretNote(s Setting) string {
	if s.Secret {
		return " (secret: logs show it redacted)"
	}
	return ""
}

// field is one leaf key of Config and where it lives.
type field struct {
	key   string // as the file nests it: gateway.limits.user.rps
	index []int  // for reflect's FieldByIndex
}

// fields are the leaf keys of Config, in the order of Config.
func fields() []field {
	return walk(reflect.TypeFor[Config](), "", nil, nil)
}

func walk(t reflect.Type, prefix string, index []int, out []field) []field {
	for i := range t.NumField() {
		sf := t.Field(i)
		name, inline := yamlName(sf)
		if name == "" && !inline {
			continue
		}
		key, idx := prefix+name, append(slices.Clip(index), i)
		switch {
		case inline:
			out = walk(sf.Type, prefix, idx, out)
		case sf.Type.Kind() == reflect.Struct:
			out = walk(sf.Type, key+".", idx, out)
		default:
			out = append(out, field{key: key, index: idx})
		}
	}
	return out
}

// yamlName is the key yaml.v3 gives a struct field: "" when it skips the field.
func yamlName(sf reflect.StructField) (name string, inline bool) {
	if !sf.IsExported() {
		return "", false
	}
	name, flags, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	switch {
	case name == "-":
		return "", false
	case slices.Contains(strings.Split(flags, ","), "inline"):
		return "", true
	case name == "":
		return strings.ToLower(sf.Name), false
	}
	return name, false
}

var durationType = reflect.TypeFor[time.Duration]()

// parse sets v from an environment variable's value, by v's kind.
func parse(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err == nil {
			v.SetInt(int64(d))
		}
		return err
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("no environment syntax for %s", v.Type())
		}
		v.Set(reflect.ValueOf(SplitList(s)).Convert(v.Type()))
	default:
		return fmt.Errorf("no environment syntax for %s", v.Type())
	}
	return nil
}

// format writes v as parse reads it.
func format(v reflect.Value) string {
	if v.Type() == durationType {
		return shortDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, v.Type().Bits())
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = v.Index(i).String()
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// shortDuration is d without zero units: 15m, not 15m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
