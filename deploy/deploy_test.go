// Package deploy holds what an operator needs to run the platform: the services
// script for this machine, Dockerfile, compose file, Kubernetes manifests and a
// Grafana dashboard. Docker and a cluster are not available where the tests run, so
// the tests check what can be checked here: every manifest parses, names what the
// binary understands, and the dashboard's queries name series the code exports.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/seckill/flashsale/config"
)

func docs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
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
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, d)
	}
}

var commands = map[string]bool{"all": true, "gateway": true, "backend": true, "worker": true, "migrate": true}

func TestKubernetesManifests(t *testing.T) {
	kinds := map[string]int{}
	for _, d := range docs(t, "k8s/seckill.yaml") {
		kind, _ := d["kind"].(string)
		kinds[kind]++
		if d["apiVersion"] == nil || d["metadata"] == nil {
			t.Fatalf("%s without apiVersion or metadata", kind)
		}
		if kind == "Deployment" || kind == "Job" {
			spec := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
			for _, c := range spec["containers"].([]any) {
				args := c.(map[string]any)["args"].([]any)
				if !commands[args[0].(string)] {
					t.Fatalf("%s runs %q, not a seckill command", kind, args[0])
				}
			}
		}
	}
	for kind, want := range map[string]int{"Deployment": 3, "Service": 2, "HorizontalPodAutoscaler": 2, "ConfigMap": 1, "Secret": 1, "Job": 1} {
		if kinds[kind] != want {
			t.Fatalf("got %d %s, want %d", kinds[kind], kind, want)
		}
	}
}

func TestComposeFile(t *testing.T) {
	d := docs(t, "compose.yaml")[0]
	services := d["services"].(map[string]any)
	for _, name := range []string{"mysql", "redis", "namesrv", "broker", "migrate", "gateway", "backend", "worker"} {
		if services[name] == nil {
			t.Fatalf("compose has no %s", name)
		}
	}
	for _, name := range []string{"migrate", "gateway", "backend", "worker"} {
		cmd := services[name].(map[string]any)["command"].([]any)
		if !commands[cmd[0].(string)] {
			t.Fatalf("%s runs %q", name, cmd[0])
		}
	}
}

// TestSettingsAreKnown: every SECKILL_ variable the manifests set is one the binary
// reads (package config's settings).
func TestSettingsAreKnown(t *testing.T) {
	known := map[string]bool{config.ConfigEnv: true}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	for _, f := range []string{"k8s/seckill.yaml", "compose.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range regexp.MustCompile(`SECKILL_[A-Z0-9_]+`).FindAllString(string(b), -1) {
			if !known[v] {
				t.Errorf("%s sets %s, which the binary does not read", f, v)
			}
		}
	}
}

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
