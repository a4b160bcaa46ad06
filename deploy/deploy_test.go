// Package deploy holds what an operator needs to run the platform: the services
// script for this machine, the local fleet script, Dockerfile, compose file, HAProxy,
// Prometheus and Grafana configuration, Kubernetes manifests and the script that makes
// their Secret. Docker and a cluster are not available where the tests run, so the
// tests check what can be checked here: every manifest parses and is consistent with
// the others and with what the binary reads, carries no secret value, and has health
// checks, probes and the hardening; HAProxy validates its config for real, and the
// local fleet runs for real on the services of services.sh.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/config"
)

// ---------------------------------------------------------------- helpers ---

func docs(tb testing.TB, path string) []map[string]any {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
}

// at walks maps by keys; nil when a step is missing.
func at(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func list(v any) []any { l, _ := v.([]any); return l }

// port is the port of "host:port" or of a URL.
func port(tb testing.TB, addr string) int {
	tb.Helper()
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+3:]
		if j := strings.IndexByte(addr, '/'); j >= 0 {
			addr = addr[:j]
		}
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		tb.Fatalf("address %q: %v", addr, err)
	}
	return n
}

// commands are the seckill commands a manifest may run.
var commands = map[string]bool{"all": true, "gateway": true, "backend": true, "worker": true, "migrate": true}

// opsEnv is the variable of each serving role's ops listener.
var opsEnv = map[string]string{
	"gateway": "SECKILL_GATEWAY_OPS_LISTEN",
	"backend": "SECKILL_BACKEND_OPS_LISTEN",
	"worker":  "SECKILL_WORKER_OPS_LISTEN",
}

// manifests are the files an operator applies or mounts; none may hold a secret.
func manifests(tb testing.TB) []string {
	tb.Helper()
	files := []string{"compose.yaml", "Dockerfile", "haproxy/haproxy.cfg", "prometheus/prometheus.yml"}
	for _, pattern := range []string{"k8s/*.yaml", "grafana/provisioning/*/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// ------------------------------------------------------------ every file ---

func TestManifestsParse(t *testing.T) {
	for _, f := range manifests(t) {
		if !strings.HasSuffix(f, ".yaml") && !strings.HasSuffix(f, ".yml") {
			continue
		}
		t.Run(f, func(t *testing.T) {
			if got := docs(t, f); len(got) == 0 {
				t.Fatalf("%s: no document", f)
			}
		})
	}
	k8s, _ := filepath.Glob("k8s/*.yaml")
	if len(k8s) != 3 {
		t.Fatalf("got %d files in k8s/, want 3 (base, migrate, seckill): %v", len(k8s), k8s)
	}
}

// TestSettingsAreKnown: every SECKILL_ variable the manifests and the fleet script
// give the binary is one it reads (package config's settings).
func TestSettingsAreKnown(t *testing.T) {
	known := map[string]bool{config.ConfigEnv: true}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	files := append(manifests(t), "fleet.sh")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range regexp.MustCompile(`SECKILL_[A-Z0-9_]+`).FindAllString(string(b), -1) {
			if strings.HasPrefix(v, "SECKILL_FLEET_") && f == "fleet.sh" {
				continue // the script's own settings
			}
			if !known[v] {
				t.Errorf("%s names %s, which the binary does not read", f, v)
			}
		}
	}
}

// secretNames are the variables whose values are secrets, in the binary, compose and
// the images compose runs.
const secretNames = `SECKILL_JWT_SECRET|SECKILL_ADMIN_TOKEN|SECKILL_BACKEND_RPC_SECRET|SECKILL_BACKEND_RPC_OPERATOR_SECRET|SECKILL_BACKEND_TICKET_SECRET|` +
	`SECKILL_REDIS_PASSWORD|MYSQL_PASSWORD|MARIADB_PASSWORD|` +
	`MARIADB_ROOT_PASSWORD|MYSQL_ROOT_PASSWORD|GRAFANA_ADMIN_PASSWORD|GF_SECURITY_ADMIN_PASSWORD|REDISCLI_AUTH`

var secretLiterals = []*regexp.Regexp{
	// NAME: value or NAME=value, where the value is not an interpolation.
	// (A name inside ${...} is the interpolation, not the setting.)
	regexp.MustCompile(`(?m)^(?:[^#\n]*[^#\n{$A-Za-z0-9_])?(?:` + secretNames + `)["']?[ \t]*[:=][ \t]*["']?[^\s"'$]`),
	// A DSN with a password that is not an interpolation.
	regexp.MustCompile(`(?m)^[^#\n]*SECKILL_MYSQL_DSN["']?[ \t]*[:=][ \t]*["']?[^:\s"']+:[^$@\s"'][^@\s"']*@`),
	// Redis's password on a command line.
	regexp.MustCompile(`(?m)^[^#\n]*--requirepass["']?,?[ \t]*["']?[^\s"'$,]`),
	// A Kubernetes Secret: make-secrets.sh creates it, no manifest holds one.
	regexp.MustCompile(`(?m)^kind:[ \t]*Secret\b`),
}

func secretLiteral(text string) string {
	for _, re := range secretLiterals {
		if m := re.FindString(text); m != "" {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

// TestSecretLiteralCheck pins what TestNoSecretValues finds.
func TestSecretLiteralCheck(t *testing.T) {
	for _, tc := range []struct {
		text string
		bad  bool
	}{
		{`SECKILL_JWT_SECRET: "${SECKILL_JWT_SECRET:?set it}"`, false},
		{`SECKILL_JWT_SECRET: "change-me-to-32-random-bytes"`, true},
		{`  SECKILL_ADMIN_TOKEN: change-me`, true},
		{`SECKILL_ADMIN_TOKEN=abc`, true},
		{`      MARIADB_PASSWORD: seckill`, true},
		{`      MARIADB_PASSWORD: "${MYSQL_PASSWORD:?x}"`, false},
		{`  SECKILL_MYSQL_DSN: "seckill:change-me@tcp(mysql:3306)/seckill"`, true},
		{`  SECKILL_MYSQL_DSN: "seckill:${MYSQL_PASSWORD:?x}@tcp(mysql:3306)/seckill"`, false},
		{`command: ["redis-server", "--requirepass", "hunter2"]`, true},
		{`command: ["redis-server", "--requirepass", "${SECKILL_REDIS_PASSWORD:?x}"]`, false},
		{`# SECKILL_JWT_SECRET: a comment names it`, false},
		{"- name: SECKILL_JWT_SECRET\n  valueFrom: {secretKeyRef: {name: seckill, key: SECKILL_JWT_SECRET}}", false},
		{"kind: Secret\nstringData:\n  A: b", true},
		{"kind: ConfigMap\ndata:\n  SECKILL_LOG_FORMAT: json", false},
	} {
		if got := secretLiteral(tc.text) != ""; got != tc.bad {
			t.Errorf("%q: got flagged %v, want %v", tc.text, got, tc.bad)
		}
	}
}

// TestNoSecretValues: no manifest carries a secret; compose takes them from the
// environment, Kubernetes from the Secret make-secrets.sh creates.
func TestNoSecretValues(t *testing.T) {
	for _, f := range manifests(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := secretLiteral(string(b)); m != "" {
			t.Errorf("%s carries a secret value: %s", f, m)
		}
	}
	// ${VAR}, ${VAR:?message}, or ${VAR:-} (empty when unset; never a default value).
	interp := regexp.MustCompile(`^\$\{[A-Z_]+(:?\?[^}]*|:-)?\}$`)
	secret := regexp.MustCompile(`^(?:` + secretNames + `)$`)
	for name, svc := range composeServices(t) {
		for k, v := range env(t, name, svc) {
			if secret.MatchString(k) && !interp.MatchString(v) {
				t.Errorf("compose %s: %s is %q, not ${VAR} from the environment", name, k, v)
			}
			if k == "SECKILL_MYSQL_DSN" {
				user, rest, _ := strings.Cut(v, "@")
				if _, pass, _ := strings.Cut(user, ":"); !interp.MatchString(pass) || rest == "" {
					t.Errorf("compose %s: the DSN's password is %q, not ${VAR} from the environment", name, pass)
				}
			}
		}
	}
}

// ---------------------------------------------------------------- compose ---

func composeServices(tb testing.TB) map[string]map[string]any {
	tb.Helper()
	out := map[string]map[string]any{}
	for name, s := range at(docs(tb, "compose.yaml")[0], "services").(map[string]any) {
		out[name] = s.(map[string]any)
	}
	return out
}

func env(tb testing.TB, name string, svc map[string]any) map[string]string {
	tb.Helper()
	out := map[string]string{}
	switch e := svc["environment"].(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			out[k] = str(v)
		}
	default:
		tb.Fatalf("compose %s: environment is a %T; write it as a map", name, e)
	}
	return out
}

func TestCompose(t *testing.T) {
	services := composeServices(t)
	for _, name := range []string{"mysql", "redis", "namesrv", "broker", "topics", "migrate", "gateway", "backend", "worker", "haproxy", "prometheus", "grafana"} {
		if services[name] == nil {
			t.Fatalf("compose has no %s", name)
		}
	}
	job := func(name string) bool { return str(services[name]["restart"]) == "no" }

	for name, svc := range services {
		t.Run(name, func(t *testing.T) {
			hc, _ := svc["healthcheck"].(map[string]any)
			switch {
			case hc == nil:
				t.Errorf("no healthcheck")
			case hc["disable"] == true && !job(name):
				t.Errorf("healthcheck disabled, but it is not a one-shot job (restart: \"no\")")
			case hc["disable"] != true && len(list(hc["test"])) < 2:
				t.Errorf("healthcheck without a test")
			}
			deps, ok := svc["depends_on"].(map[string]any)
			if svc["depends_on"] != nil && !ok {
				t.Fatalf("depends_on is a list: give each dependency a condition")
			}
			for dep, d := range deps {
				cond := str(at(d, "condition"))
				switch cond {
				case "service_healthy":
					if h := at(services[dep], "healthcheck"); h == nil || at(h, "disable") == true {
						t.Errorf("waits for %s to be healthy, which has no healthcheck", dep)
					}
				case "service_completed_successfully":
					if !job(dep) {
						t.Errorf("waits for %s to complete, which is not a one-shot job", dep)
					}
				default:
					t.Errorf("depends on %s with condition %q, want service_healthy or service_completed_successfully", dep, cond)
				}
			}
		})
	}

	// The seckill services: a seckill command, the hardening, their ops listener
	// probed, 2 replicas of each serving part, GOMEMLIMIT under the memory limit.
	for _, name := range []string{"migrate", "gateway", "backend", "worker"} {
		svc := services[name]
		cmd := list(svc["command"])
		if len(cmd) == 0 || !commands[str(cmd[0])] {
			t.Fatalf("%s runs %v, not a seckill command", name, cmd)
		}
		if svc["read_only"] != true || !slices.Contains(list(svc["cap_drop"]), any("ALL")) ||
			!slices.Contains(list(svc["security_opt"]), any("no-new-privileges:true")) {
			t.Errorf("%s: want read_only, cap_drop ALL and no-new-privileges", name)
		}
		role := str(cmd[0])
		if role == "migrate" {
			continue
		}
		e := env(t, name, svc)
		ops := e[opsEnv[role]]
		if !strings.HasPrefix(ops, "0.0.0.0:") {
			t.Errorf("%s: %s is %q; a container's ops listener must bind 0.0.0.0", name, opsEnv[role], ops)
		}
		test := list(at(svc, "healthcheck", "test"))
		url := str(test[len(test)-1])
		if port(t, url) != port(t, ops) {
			t.Errorf("%s: healthcheck %s is not on the ops listener %s", name, url, ops)
		}
		wantPath := "/healthz"
		if role == "gateway" {
			wantPath = "/readyz"
		}
		if !strings.HasSuffix(url, wantPath) || str(test[1]) != "wget" {
			t.Errorf("%s: healthcheck %v, want wget of %s", name, test, wantPath)
		}
		if n := at(svc, "deploy", "replicas"); n != 2 {
			t.Errorf("%s: %v replicas, want 2", name, n)
		}
		limit := memBytes(t, str(at(svc, "deploy", "resources", "limits", "memory")))
		checkMemLimit(t, "compose "+name, e["GOMEMLIMIT"], limit)
	}

	// Gateways find the backends by DNS: the compose service's name, the backends' port.
	gw, be := env(t, "gateway", services["gateway"]), env(t, "backend", services["backend"])
	host, _, _ := net.SplitHostPort(gw["SECKILL_GATEWAY_BACKEND_SERVICE"])
	if services[host] == nil || port(t, gw["SECKILL_GATEWAY_BACKEND_SERVICE"]) != port(t, be["SECKILL_BACKEND_LISTEN"]) {
		t.Errorf("gateway: SECKILL_GATEWAY_BACKEND_SERVICE %q is not the backend service and its port %s",
			gw["SECKILL_GATEWAY_BACKEND_SERVICE"], be["SECKILL_BACKEND_LISTEN"])
	}
	if gw["SECKILL_JWT_SECRET"] == "" || gw["SECKILL_ADMIN_TOKEN"] == "" {
		t.Errorf("gateway: no SECKILL_JWT_SECRET or SECKILL_ADMIN_TOKEN")
	}
	for _, name := range []string{"backend", "worker", "migrate"} {
		e := env(t, name, services[name])
		if e["SECKILL_JWT_SECRET"] != "" || e["SECKILL_ADMIN_TOKEN"] != "" {
			t.Errorf("%s is given the gateway's secrets", name)
		}
	}
	// The RPC credentials: gateways send them, backends check them, nobody else has them.
	for _, name := range []string{"gateway", "backend", "worker", "migrate"} {
		e := env(t, name, services[name])
		has := e["SECKILL_BACKEND_RPC_SECRET"] != "" && e["SECKILL_BACKEND_RPC_OPERATOR_SECRET"] != ""
		if want := name == "gateway" || name == "backend"; has != want {
			t.Errorf("%s: has the RPC credentials %v, want %v", name, has, want)
		}
		if _, has := e["SECKILL_BACKEND_TICKET_SECRET"]; has != (name == "backend") {
			t.Errorf("%s: has the ticket secret %v, want %v (backends only)", name, has, name == "backend")
		}
	}
	if gw["SECKILL_GATEWAY_TRUSTED_PROXIES"] == "" {
		t.Errorf("gateway: no SECKILL_GATEWAY_TRUSTED_PROXIES: behind HAProxy every client would share its address")
	}

	// HAProxy: the config in the repository, its servers the gateway service's ports.
	if !slices.Contains(list(services["haproxy"]["volumes"]), any("./haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro")) {
		t.Errorf("haproxy does not mount deploy/haproxy/haproxy.cfg")
	}
	cfg, err := os.ReadFile("haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`server-template \S+ \d+ (\S+):(\d+) check port (\d+)`).FindStringSubmatch(string(cfg))
	if m == nil || m[1] != "gateway" || m[2] != strconv.Itoa(port(t, gw["SECKILL_GATEWAY_LISTEN"])) ||
		m[3] != strconv.Itoa(port(t, gw["SECKILL_GATEWAY_OPS_LISTEN"])) {
		t.Errorf("haproxy.cfg's server-template %v is not the gateway service's listeners", m)
	}

	// Prometheus scrapes every serving part's ops listener.
	scraped := map[string]int{}
	for _, sc := range list(at(docs(t, "prometheus/prometheus.yml")[0], "scrape_configs")) {
		for _, sd := range list(at(sc, "dns_sd_configs")) {
			for _, n := range list(at(sd, "names")) {
				scraped[str(n)] = at(sd, "port").(int)
			}
		}
	}
	for role, v := range opsEnv {
		if want := port(t, env(t, role, services[role])[v]); scraped[role] != want {
			t.Errorf("prometheus scrapes %s on port %d, want its ops port %d", role, scraped[role], want)
		}
	}

	// Grafana: the provisioning and the dashboard, where the provider looks.
	vols := list(services["grafana"]["volumes"])
	dash := ""
	for _, v := range vols {
		if src, dst, ok := strings.Cut(str(v), ":"); ok && src == "./grafana/seckill-dashboard.json" {
			dash = strings.TrimSuffix(dst, ":ro")
		}
	}
	if !slices.Contains(vols, any("./grafana/provisioning:/etc/grafana/provisioning:ro")) || dash == "" {
		t.Fatalf("grafana does not mount the provisioning and the dashboard: %v", vols)
	}
	provider := at(list(at(docs(t, "grafana/provisioning/dashboards/seckill.yaml")[0], "providers"))[0], "options", "path")
	if filepath.Dir(dash) != str(provider) {
		t.Errorf("the dashboard is mounted at %s, the provider reads %s", dash, provider)
	}
	ds := list(at(docs(t, "grafana/provisioning/datasources/prometheus.yaml")[0], "datasources"))
	if len(ds) != 1 || at(ds[0], "type") != "prometheus" || at(ds[0], "isDefault") != true {
		t.Errorf("want one default Prometheus datasource, got %v", ds)
	}
}

// memBytes parses a Kubernetes or compose memory quantity: 1Gi, 512Mi, 1g, 512m.
func memBytes(tb testing.TB, q string) int64 {
	tb.Helper()
	units := []struct {
		suffix string
		mult   int64
	}{{"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(q, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				tb.Fatalf("memory %q: %v", q, err)
			}
			return v * u.mult
		}
	}
	v, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		tb.Fatalf("memory %q: want a number with Gi, Mi, Ki, g, m or k", q)
	}
	return v
}

// goMemBytes parses GOMEMLIMIT's syntax: a number with B, KiB, MiB, GiB or TiB.
func goMemBytes(tb testing.TB, s string) int64 {
	tb.Helper()
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				tb.Fatalf("GOMEMLIMIT %q: %v", s, err)
			}
			return v * u.mult
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		tb.Fatalf("GOMEMLIMIT %q: not Go's syntax", s)
	}
	return v
}

// checkMemLimit: GOMEMLIMIT is set, and 80-95% of the memory limit, so the GC works
// harder before the kernel kills the process.
func checkMemLimit(tb testing.TB, what, gomemlimit string, limit int64) {
	tb.Helper()
	if gomemlimit == "" || limit == 0 {
		tb.Errorf("%s: GOMEMLIMIT %q, memory limit %d: want both", what, gomemlimit, limit)
		return
	}
	if r := float64(goMemBytes(tb, gomemlimit)) / float64(limit); r < 0.8 || r > 0.95 {
		tb.Errorf("%s: GOMEMLIMIT %s is %.0f%% of the memory limit, want 80-95%%", what, gomemlimit, 100*r)
	}
}

// ------------------------------------------------------------- kubernetes ---

type object struct {
	file string
	doc  map[string]any
}

func (o object) kind() string { return str(o.doc["kind"]) }
func (o object) name() string { return str(at(o.doc, "metadata", "name")) }

func k8sObjects(tb testing.TB) []object {
	tb.Helper()
	files, _ := filepath.Glob("k8s/*.yaml")
	var out []object
	for _, f := range files {
		for _, d := range docs(tb, f) {
			out = append(out, object{f, d})
		}
	}
	return out
}

func find(objs []object, kind, name string) map[string]any {
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o.doc
		}
	}
	return nil
}

func matches(selector, labels any) bool {
	sel, _ := selector.(map[string]any)
	lab, _ := labels.(map[string]any)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lab[k] != v {
			return false
		}
	}
	return true
}

// secretKeys are the keys of the Secret make-secrets.sh makes.
func secretKeys(tb testing.TB) map[string]string {
	tb.Helper()
	cmd := exec.Command("k8s/make-secrets.sh", "--dry-run")
	cmd.Env = append(os.Environ(), "SECKILL_MYSQL_DSN=seckill:pw@tcp(mysql:3306)/seckill", "SECKILL_REDIS_PASSWORD=redis-pw")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("make-secrets.sh --dry-run: %v\n%s", err, stderr.String())
	}
	var s map[string]any
	if err := yaml.Unmarshal(out, &s); err != nil {
		tb.Fatalf("make-secrets.sh --dry-run printed no YAML: %v\n%s", err, out)
	}
	if s["kind"] != "Secret" || at(s, "metadata", "name") != "seckill" || at(s, "metadata", "namespace") != "seckill" {
		tb.Fatalf("make-secrets.sh --dry-run: want Secret seckill/seckill, got %v %v", s["kind"], s["metadata"])
	}
	keys := map[string]string{}
	for k, v := range at(s, "data").(map[string]any) {
		b, err := base64.StdEncoding.DecodeString(str(v))
		if err != nil {
			tb.Fatalf("%s: %v", k, err)
		}
		keys[k] = string(b)
	}
	return keys
}

func TestKubernetes(t *testing.T) {
	objs := k8sObjects(t)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.kind()]++
		if o.doc["apiVersion"] == nil || o.name() == "" {
			t.Fatalf("%s: %s without apiVersion or name", o.file, o.kind())
		}
		if o.kind() != "Namespace" && at(o.doc, "metadata", "namespace") != "seckill" {
			t.Errorf("%s: %s %s is not in namespace seckill", o.file, o.kind(), o.name())
		}
	}
	for kind, want := range map[string]int{"Namespace": 1, "ConfigMap": 1, "Job": 1, "Deployment": 3, "Service": 2,
		"HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 2, "NetworkPolicy": 1, "Secret": 0} {
		if kinds[kind] != want {
			t.Errorf("got %d %s, want %d", kinds[kind], kind, want)
		}
	}
	cm := map[string]string{}
	for k, v := range at(find(objs, "ConfigMap", "seckill"), "data").(map[string]any) {
		cm[k] = str(v)
	}
	keys := secretKeys(t)

	// The headless Service of the backends, which the gateways resolve.
	be := find(objs, "Service", "seckill-backend")
	beDep := find(objs, "Deployment", "seckill-backend")
	if at(be, "spec", "clusterIP") != "None" || at(be, "spec", "publishNotReadyAddresses") != false {
		t.Errorf("seckill-backend: want a headless Service (clusterIP None, publishNotReadyAddresses false)")
	}
	if !matches(at(be, "spec", "selector"), at(beDep, "spec", "template", "metadata", "labels")) {
		t.Errorf("seckill-backend's selector does not select the backend pods")
	}
	host, _, _ := net.SplitHostPort(cm["SECKILL_GATEWAY_BACKEND_SERVICE"])
	svcPort := at(list(at(be, "spec", "ports"))[0], "port").(int)
	if host != "seckill-backend" || port(t, cm["SECKILL_GATEWAY_BACKEND_SERVICE"]) != svcPort ||
		svcPort != port(t, cm["SECKILL_BACKEND_LISTEN"]) {
		t.Errorf("SECKILL_GATEWAY_BACKEND_SERVICE %q: want seckill-backend:%d, the Service and backend.listen",
			cm["SECKILL_GATEWAY_BACKEND_SERVICE"], port(t, cm["SECKILL_BACKEND_LISTEN"]))
	}
	// Only gateways reach the backends' RPC port.
	np := find(objs, "NetworkPolicy", "seckill-backend")
	if !matches(at(np, "spec", "podSelector", "matchLabels"), at(beDep, "spec", "template", "metadata", "labels")) {
		t.Errorf("the backends' NetworkPolicy does not select the backend pods")
	}
	for _, rule := range list(at(np, "spec", "ingress")) {
		for _, p := range list(at(rule, "ports")) {
			if at(p, "port") != "kitex" {
				continue
			}
			from := list(at(rule, "from"))
			gwLabels := at(find(objs, "Deployment", "seckill-gateway"), "spec", "template", "metadata", "labels")
			if len(from) != 1 || !matches(at(from[0], "podSelector", "matchLabels"), gwLabels) {
				t.Errorf("the kitex port is open to %v, want the gateway pods only", from)
			}
		}
	}
	gw := find(objs, "Service", "seckill-gateway")
	gwDep := find(objs, "Deployment", "seckill-gateway")
	if at(gw, "spec", "clusterIP") != nil || !matches(at(gw, "spec", "selector"), at(gwDep, "spec", "template", "metadata", "labels")) {
		t.Errorf("seckill-gateway: want a normal Service selecting the gateway pods")
	}

	// PDBs and the gateways' HPA and spread.
	for _, name := range []string{"seckill-gateway", "seckill-backend"} {
		pdb := find(objs, "PodDisruptionBudget", name)
		dep := find(objs, "Deployment", name)
		if pdb == nil || !matches(at(pdb, "spec", "selector", "matchLabels"), at(dep, "spec", "template", "metadata", "labels")) {
			t.Errorf("no PodDisruptionBudget selecting %s's pods", name)
		}
		if at(dep, "spec", "replicas") != nil {
			t.Errorf("%s sets replicas, which its HPA owns", name)
		}
	}
	hpa := find(objs, "HorizontalPodAutoscaler", "seckill-gateway")
	if at(hpa, "spec", "minReplicas") != 2 || at(hpa, "spec", "maxReplicas") != 20 || at(hpa, "spec", "scaleTargetRef", "name") != "seckill-gateway" {
		t.Errorf("gateway HPA: want 2-20 replicas of seckill-gateway, got %v", at(hpa, "spec"))
	}
	spread := list(at(gwDep, "spec", "template", "spec", "topologySpreadConstraints"))
	if len(spread) == 0 {
		t.Errorf("gateways have no topologySpreadConstraints")
	}
	for _, c := range spread {
		if !matches(at(c, "labelSelector", "matchLabels"), at(gwDep, "spec", "template", "metadata", "labels")) {
			t.Errorf("a gateway spread constraint does not select the gateway pods")
		}
	}

	// Every pod: the seckill command, hardening, probes, secrets by reference, memory.
	for _, o := range objs {
		if o.kind() != "Deployment" && o.kind() != "Job" {
			continue
		}
		pod := at(o.doc, "spec", "template", "spec")
		t.Run(o.name(), func(t *testing.T) {
			if at(pod, "automountServiceAccountToken") != false || at(pod, "enableServiceLinks") != false {
				t.Errorf("want automountServiceAccountToken and enableServiceLinks false (Services named seckill-* " +
					"would put SECKILL_ variables into the environment)")
			}
			for _, c := range list(at(pod, "containers")) {
				checkContainer(t, o.kind(), pod, c.(map[string]any), cm, keys)
			}
		})
	}
}

func checkContainer(t *testing.T, kind string, pod any, c map[string]any, cm, keys map[string]string) {
	t.Helper()
	args := list(c["args"])
	if len(args) == 0 || !commands[str(args[0])] {
		t.Fatalf("runs %v, not a seckill command", args)
	}
	role := str(args[0])

	// Security: the container's setting, else the pod's.
	sec := func(key string) any {
		if v := at(c, "securityContext", key); v != nil {
			return v
		}
		return at(pod, "securityContext", key)
	}
	if sec("runAsNonRoot") != true || sec("readOnlyRootFilesystem") != true || sec("allowPrivilegeEscalation") != false ||
		at(sec("seccompProfile"), "type") != "RuntimeDefault" {
		t.Errorf("%s: want runAsNonRoot, readOnlyRootFilesystem, allowPrivilegeEscalation false, seccomp RuntimeDefault", role)
	}
	if !slices.Contains(list(at(sec("capabilities"), "drop")), any("ALL")) || at(sec("capabilities"), "add") != nil {
		t.Errorf("%s: want capabilities drop ALL and none added", role)
	}

	// Environment: secrets only by reference to keys make-secrets.sh creates.
	envs := map[string]string{}
	secret := regexp.MustCompile(`^(?:` + secretNames + `|SECKILL_MYSQL_DSN)$`)
	for _, e := range list(c["env"]) {
		name := str(at(e, "name"))
		envs[name] = str(at(e, "value"))
		if ref := at(e, "valueFrom", "secretKeyRef"); ref != nil {
			if _, ok := keys[str(at(ref, "key"))]; !ok || at(ref, "name") != "seckill" {
				t.Errorf("%s: %s refers to %v, not a key of the Secret make-secrets.sh makes", role, name, ref)
			}
		} else if secret.MatchString(name) {
			t.Errorf("%s: %s has a value in the manifest, not a secretKeyRef", role, name)
		}
	}
	_, rpc := envs["SECKILL_BACKEND_RPC_SECRET"]
	_, rpcOp := envs["SECKILL_BACKEND_RPC_OPERATOR_SECRET"]
	if want := role == "gateway" || role == "backend"; rpc != want || rpcOp != want {
		t.Errorf("%s: has the RPC credentials %v %v, want %v (gateways send them, backends check them)", role, rpc, rpcOp, want)
	}
	if _, has := envs["SECKILL_BACKEND_TICKET_SECRET"]; has != (role == "backend") {
		t.Errorf("%s: has the ticket secret %v, want %v (backends only)", role, has, role == "backend")
	}
	checkMemLimit(t, role, envs["GOMEMLIMIT"], memBytes(t, str(at(c, "resources", "limits", "memory"))))
	if kind == "Job" {
		return
	}

	// Probes: readiness and liveness over HTTP on the ops listener's port.
	ports := map[string]int{}
	for _, p := range list(c["ports"]) {
		ports[str(at(p, "name"))] = at(p, "containerPort").(int)
	}
	opsPort := port(t, cm[opsEnv[role]])
	wantReady := "/healthz"
	if role == "gateway" {
		wantReady = "/readyz"
		if ports["http"] != port(t, cm["SECKILL_GATEWAY_LISTEN"]) {
			t.Errorf("gateway: port http %d is not gateway.listen %s", ports["http"], cm["SECKILL_GATEWAY_LISTEN"])
		}
	}
	for probe, path := range map[string]string{"readinessProbe": wantReady, "livenessProbe": "/healthz"} {
		get := at(c, probe, "httpGet")
		p := ports[str(at(get, "port"))]
		if get == nil || at(get, "path") != path || p != opsPort {
			t.Errorf("%s: %s %v, want GET %s on the ops port %d", role, probe, get, path, opsPort)
		}
	}
}

// ---------------------------------------------------------------- haproxy ---

func haproxyBin(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("haproxy")
	if err != nil {
		tb.Fatalf("haproxy is not installed; `deploy/services.sh up` installs it (make test runs it)")
	}
	return p
}

// TestHAProxyConfig: HAProxy itself accepts the config as compose mounts it and as
// fleet.sh renders it, and the rendering has a server per gateway.
func TestHAProxyConfig(t *testing.T) {
	bin := haproxyBin(t)
	check := func(t *testing.T, file string, env ...string) {
		t.Helper()
		cmd := exec.Command(bin, "-c", "-f", file)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("WARNING")) {
			t.Fatalf("haproxy -c -f %s: %v\n%s", file, err, out)
		}
	}
	t.Run("compose", func(t *testing.T) { check(t, "haproxy/haproxy.cfg") })
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("fleet-%d", n), func(t *testing.T) {
			cmd := exec.Command("./fleet.sh", "haproxy-config")
			cmd.Env = append(os.Environ(), fmt.Sprintf("SECKILL_FLEET_GATEWAYS=%d", n), "SECKILL_FLEET_PORT=23080")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("fleet.sh haproxy-config: %v", err)
			}
			servers := regexp.MustCompile(`(?m)^\s*server gateway-\d+ 127\.0\.0\.1:(\d+) check port (\d+)$`).FindAllStringSubmatch(string(out), -1)
			if len(servers) != n || regexp.MustCompile(`(?m)^\s*server-template`).Match(out) {
				t.Fatalf("got %d server lines, want %d and no server-template:\n%s", len(servers), n, out)
			}
			for i, s := range servers {
				if want := 23080 + 100 + 10*i; s[1] != strconv.Itoa(want) || s[2] != strconv.Itoa(want+1) {
					t.Errorf("server %d: %s check port %s, want %d check port %d", i+1, s[1], s[2], want, want+1)
				}
			}
			for _, want := range []string{"balance roundrobin", "http-check send meth GET uri /readyz", "http-check expect status 200",
				"option forwardfor", "http-request del-header X-Forwarded-For", "timeout connect", "timeout client", "timeout server"} {
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("the config has no %q", want)
				}
			}
			f := filepath.Join(t.TempDir(), "haproxy.cfg")
			if err := os.WriteFile(f, out, 0o644); err != nil {
				t.Fatal(err)
			}
			check(t, f, "LB_BIND=127.0.0.1:23080", "LB_STATS_BIND=127.0.0.1:23081")
		})
	}
}

// ----------------------------------------------------------- make-secrets ---

func TestMakeSecrets(t *testing.T) {
	t.Run("dry-run", func(t *testing.T) {
		a, b := secretKeys(t), secretKeys(t)
		for _, k := range []string{"SECKILL_JWT_SECRET", "SECKILL_ADMIN_TOKEN", "SECKILL_BACKEND_RPC_SECRET", "SECKILL_BACKEND_RPC_OPERATOR_SECRET", "SECKILL_BACKEND_TICKET_SECRET"} {
			raw, err := hex.DecodeString(a[k])
			if err != nil || len(raw) < 32 {
				t.Errorf("%s: %q is not 32+ bytes in hex", k, a[k])
			}
			if a[k] == b[k] {
				t.Errorf("%s: two runs made the same value", k)
			}
		}
		if a["SECKILL_JWT_SECRET"] == a["SECKILL_ADMIN_TOKEN"] || a["SECKILL_BACKEND_RPC_SECRET"] == a["SECKILL_BACKEND_RPC_OPERATOR_SECRET"] ||
			a["SECKILL_BACKEND_TICKET_SECRET"] == a["SECKILL_BACKEND_RPC_SECRET"] {
			t.Errorf("two secrets are the same")
		}
		if a["SECKILL_MYSQL_DSN"] != "seckill:pw@tcp(mysql:3306)/seckill" || a["SECKILL_REDIS_PASSWORD"] != "redis-pw" {
			t.Errorf("the DSN and Redis password are not the environment's: %q %q", a["SECKILL_MYSQL_DSN"], a["SECKILL_REDIS_PASSWORD"])
		}
	})
	t.Run("no value, no terminal", func(t *testing.T) {
		cmd := exec.Command("k8s/make-secrets.sh", "--dry-run")
		cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool {
			return strings.HasPrefix(e, "SECKILL_MYSQL_DSN=") || strings.HasPrefix(e, "SECKILL_REDIS_PASSWORD=")
		})
		out, err := cmd.CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("set SECKILL_MYSQL_DSN")) || bytes.Contains(out, []byte("kind: Secret")) {
			t.Errorf("got %v and %q, want a failure that names SECKILL_MYSQL_DSN", err, out)
		}
	})
	t.Run("dotenv", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), ".env")
		run := func(args ...string) error {
			return exec.Command("k8s/make-secrets.sh", append([]string{"--dotenv", f}, args...)...).Run()
		}
		if err := run(); err != nil {
			t.Fatal(err)
		}
		first, _ := os.ReadFile(f)
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Errorf("got mode %v, want 0600", st.Mode().Perm())
		}
		if err := run(); err == nil {
			t.Errorf("a second --dotenv overwrote the file without --force")
		}
		if err := run("--force"); err != nil {
			t.Fatal(err)
		}
		second, _ := os.ReadFile(f)
		if bytes.Equal(first, second) {
			t.Errorf("--force kept the old values")
		}
		// Every ${VAR:?} compose requires is in the file.
		compose, _ := os.ReadFile("compose.yaml")
		for _, m := range regexp.MustCompile(`\$\{([A-Z_]+):\?`).FindAllStringSubmatch(string(compose), -1) {
			if !regexp.MustCompile(`(?m)^` + m[1] + `=[0-9a-f]{64}$`).Match(second) {
				t.Errorf("the .env has no random %s, which compose requires", m[1])
			}
		}
	})
}

// ------------------------------------------------------------------ fleet ---

// freeBlock finds a SECKILL_FLEET_PORT whose ports are all free on loopback.
func freeBlock(tb testing.TB, gateways, backends, workers int) int {
	tb.Helper()
	free := func(p int) bool {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	// 20000-32399: above the services' ports, below the kernel's ephemeral range,
	// from which other tests' listeners on port 0 and outgoing connections take theirs.
	for try := 0; try < 50; try++ {
		base := 20000 + int(time.Now().UnixNano()/1000%120)*100
		ports := []int{base, base + 1}
		for i := 0; i < gateways; i++ {
			ports = append(ports, base+100+10*i, base+101+10*i)
		}
		for j := 0; j < backends; j++ {
			ports = append(ports, base+202+10*j, base+203+10*j)
		}
		for k := 0; k < workers; k++ {
			ports = append(ports, base+304+10*k)
		}
		if !slices.ContainsFunc(ports, func(p int) bool { return !free(p) }) {
			return base
		}
	}
	tb.Fatal("no free block of ports for the fleet")
	return 0
}

// TestFleet runs deploy/fleet.sh for real: 2 gateways, 2 backends and a worker as
// processes on the real services, HAProxy in front; a request through HAProxy reaches
// a gateway; a second start changes nothing; stop leaves nothing running.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes (-short)")
	}
	db := testenv.MySQL(t) // a database of its own: the fleet's reconciler sees only it
	testenv.Redis(t)       // fails with what to run if Redis is down
	bin := filepath.Join(t.TempDir(), "seckill")
	build := exec.Command("go", append(append([]string{"build"}, raceFlag...), "-o", bin, "../cmd/seckill")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	start := time.Now()

	id := testenv.ID()
	jwt, admin := testenv.ID()+testenv.ID()+testenv.ID()+testenv.ID(), testenv.ID()+testenv.ID()+testenv.ID()+testenv.ID()
	lb := freeBlock(t, 2, 2, 1)
	state := t.TempDir()
	env := append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "SECKILL_") }),
		"SECKILL_FLEET_DIR="+state, "SECKILL_FLEET_BIN="+bin, "SECKILL_FLEET_SERVICES=0",
		"SECKILL_FLEET_GATEWAYS=2", "SECKILL_FLEET_BACKENDS=2", "SECKILL_FLEET_WORKERS=1",
		"SECKILL_FLEET_PORT="+strconv.Itoa(lb), "SECKILL_FLEET_TIMEOUT=30",
		"SECKILL_MYSQL_DSN="+db.DSN, "SECKILL_REDIS_ADDR="+testenv.RedisAddr(),
		"SECKILL_ROCKETMQ_NAMESRV="+strings.Join(testenv.NameServers(), ","),
		// Its own consumer group and tag: the fleet's workers never take other tests' messages.
		"SECKILL_ROCKETMQ_TOPIC="+testenv.TestTopic(), "SECKILL_ROCKETMQ_GROUP=g_fleet_"+id, "SECKILL_ROCKETMQ_TAG=fleet_"+id,
		"SECKILL_FLEET=deploytest-"+id, "SECKILL_JWT_SECRET="+jwt, "SECKILL_ADMIN_TOKEN="+admin)
	fleet := func(arg string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "./fleet.sh", arg)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := fleet("stop"); err != nil {
			t.Errorf("fleet.sh stop: %v\n%s", err, out)
		}
	})
	pids := func() map[string]string {
		out := map[string]string{}
		files, _ := filepath.Glob(filepath.Join(state, "run", "*.pid"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			out[filepath.Base(f)] = strings.TrimSpace(string(b))
		}
		return out
	}
	logs := func() string {
		var b strings.Builder
		files, _ := filepath.Glob(filepath.Join(state, "logs", "*.log"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			fmt.Fprintf(&b, "--- %s (last lines)\n%s\n", f, strings.Join(lines[max(0, len(lines)-10):], "\n"))
		}
		return b.String()
	}

	if out, err := fleet("start"); err != nil {
		t.Fatalf("fleet.sh start: %v\n%s\n%s", err, out, logs())
	}
	out, err := fleet("status")
	if err != nil {
		t.Fatalf("fleet.sh status: %v\n%s", err, out)
	}
	for _, name := range []string{"gateway-1", "gateway-2", "backend-1", "backend-2", "worker-1", "haproxy"} {
		if !regexp.MustCompile(`(?m)^\s*` + name + `\s.*\sup(?:\s|$)`).MatchString(out) {
			t.Errorf("status has no %s up:\n%s", name, out)
		}
	}
	if strings.Contains(out, "worker-2") {
		t.Errorf("status lists worker-2 of a 1-worker fleet:\n%s", out)
	}
	running := pids()
	if len(running) != 6 {
		t.Errorf("got pid files %v, want 6", running)
	}
	// The ticket secret is the backends' alone.
	for file, pid := range running {
		env, err := os.ReadFile("/proc/" + pid + "/environ")
		if err != nil {
			continue // not Linux, or gone
		}
		has := bytes.Contains(env, []byte("SECKILL_BACKEND_TICKET_SECRET="))
		if want := strings.HasPrefix(file, "backend-"); has != want && !strings.HasPrefix(file, "haproxy") {
			t.Errorf("%s: holds the ticket secret %v, want %v", file, has, want)
		}
	}

	// Through HAProxy to a gateway, and both gateways are in HAProxy's rotation.
	url := fmt.Sprintf("http://127.0.0.1:%d", lb)
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Server") != "hertz" || !bytes.Contains(body, []byte(`"ok"`)) {
		t.Errorf("GET %s/healthz: %d %q (server %q), want 200 from a gateway", url, resp.StatusCode, body, resp.Header.Get("Server"))
	}
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats;csv", lb+1))
	if err != nil {
		t.Fatal(err)
	}
	up := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) > 17 && f[0] == "gateways" && strings.HasPrefix(f[1], "gateway-") && f[17] == "UP" {
			up++
		}
	}
	resp.Body.Close()
	if up != 2 {
		t.Errorf("HAProxy has %d gateways UP, want 2", up)
	}

	// The bench through HAProxy: each strategy sells out over both gateways and both
	// backends, and every invariant holds.
	benchCmd := exec.Command(bin, "bench", "-url", url, "-admin-token", admin, "-jwt-secret", jwt, "-mysql-dsn", db.DSN,
		"-scenario", "hot", "-strategy", "sync,async,bucket", "-attempts", "1500", "-stock", "150", "-users", "1000",
		"-baselines=false", "-quiet", "-out", t.TempDir())
	benchCmd.Env = env
	if out, err := benchCmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("all hold")) {
		t.Errorf("bench through the fleet: %v\n%s", err, out)
	}

	// A second start only checks.
	out, err = fleet("start")
	if err != nil {
		t.Fatalf("second fleet.sh start: %v\n%s", err, out)
	}
	if again := pids(); !equalMaps(again, running) || !strings.Contains(out, "gateway: 2 already running") ||
		!strings.Contains(out, "haproxy: already running") {
		t.Errorf("a second start restarted something: pids %v -> %v\n%s", running, again, out)
	}

	if out, err := fleet("stop"); err != nil {
		t.Fatalf("fleet.sh stop: %v\n%s", err, out)
	}
	if out, err := fleet("status"); err == nil {
		t.Errorf("status after stop exited 0:\n%s", out)
	}
	for name, pid := range running {
		if alive(pid) {
			t.Errorf("%s (pid %s) still runs after stop", name, pid)
		}
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", lb), time.Second); err == nil {
		c.Close()
		t.Errorf("HAProxy's port still answers after stop")
	}
	t.Logf("fleet start, checks, second start and stop took %s", time.Since(start).Round(100*time.Millisecond))
}

// alive: the process runs (a zombie waiting for init to reap it does not).
func alive(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := bytes.Cut(b, []byte(") "))
	return len(rest) > 0 && rest[0] != 'Z'
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// -------------------------------------------------------------- dashboard ---

// TestDashboardSeries: the dashboard parses and every series it queries is exported
// somewhere in the code.
func TestDashboardSeries(t *testing.T) {
	b, err := os.ReadFile("grafana/seckill-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var code bytes.Buffer
	filepath.Walk("..", func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") && !strings.Contains(p, "kitex_gen") {
			b, _ := os.ReadFile(p)
			code.Write(b)
		}
		return nil
	})
	re := regexp.MustCompile(`seckill_[a-z_]+`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, s := range re.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s, "_bucket"), "_count"), "_sum")
				name := strings.TrimPrefix(base, "seckill_wasm_")
				if !strings.Contains(code.String(), `"`+base+`"`) && !strings.Contains(code.String(), `"`+name+`"`) {
					t.Fatalf("dashboard queries %s, which no code exports", s)
				}
			}
		}
	}
	if len(d.Panels) < 10 {
		t.Fatalf("got %d panels", len(d.Panels))
	}
}
