package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/seckill/flashsale/gateway/api"
)

const adminUsage = `Usage: seckill admin [-url URL] [-token TOKEN] <command>

Talks to a gateway's operator API (the token defaults to $SECKILL_ADMIN_TOKEN).

  activities list [-state draft|published|offline] [-after CURSOR] [-limit N] [-all]
  activities create -file sale.json        (the body of POST /admin/v1/activities)
  activities get|publish|offline|stats ID
  activities update ID -file change.json    (the body of PUT /admin/v1/activities/ID)
  activities orders ID [-status S,S] [-item ID] [-oldest] [-after CURSOR] [-limit N] [-all]
  activities export ID [-status S,S] [-item ID] [-oldest] [-after CURSOR] [-limit N] [-o FILE]
                                            (CSV of every order from the cursor on, streamed)
  items add ACTIVITY -file item.json        (the body of POST /admin/v1/activities/ACTIVITY/items)
  items add ACTIVITY -name NAME [-price CENTS] [-stock N] [-state offline] [-start TIME] [-end TIME]
  items update ACTIVITY ITEM -file change.json
  items update ACTIVITY ITEM [-name NAME] [-price CENTS] [-stock N] [-start TIME|""] [-end TIME|""]
  items offline|online ACTIVITY ITEM
  plugins list
  plugins load NAME -wasm FILE [-config JSON] [-order N] [-fail-policy open|closed] [-timeout-ms N]
  plugins remove NAME
  limits get
  limits set -file limits.json
`

// adminClient calls the operator API and prints each answer as the gateway
// sent it, indented.
type adminClient struct {
	api  *api.Client
	out  io.Writer
	errw io.Writer // hints (how to read the next page)
}

// call sends body (nil: none; []byte: as it is; else encoded) to method path.
func (c *adminClient) call(method, path string, body any) error {
	var answer json.RawMessage
	if err := c.api.Do(context.Background(), method, path, body, &answer); err != nil {
		return err
	}
	b := []byte(answer)
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") == nil {
		b = pretty.Bytes()
	}
	_, err := fmt.Fprintln(c.out, string(b))
	return err
}

// adminCommand is `seckill admin`, the operator CLI.
func adminCommand(_ string, args []string, stdout, stderr io.Writer) int {
	if err := runAdmin(args, stdout, stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "seckill:", err)
		}
		return 1
	}
	return 0
}

func runAdmin(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seckill admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "the gateway's base URL")
	// Not the flag's default: usage would print the token.
	token := fs.String("token", "", "the operators' token (default $SECKILL_ADMIN_TOKEN)")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for an answer (a plugin load compiles the module first)")
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) < 2 {
		fs.Usage()
		return errors.New("admin: say what to do")
	}
	if *token == "" {
		*token = os.Getenv("SECKILL_ADMIN_TOKEN")
	}
	if *token == "" {
		return errors.New("admin: no token; set SECKILL_ADMIN_TOKEN or -token")
	}
	c := &adminClient{api: &api.Client{BaseURL: *base, AdminToken: *token, Timeout: *timeout}, out: stdout, errw: stderr}
	what, verb, rest := rest[0], rest[1], rest[2:]
	sub := flag.NewFlagSet("seckill admin "+what+" "+verb, flag.ContinueOnError)
	sub.SetOutput(stderr)
	file := sub.String("file", "", "JSON body")
	wasmFile := sub.String("wasm", "", "the plugin's .wasm file")
	config := sub.String("config", "", "the plugin's configuration (JSON)")
	order := sub.Int("order", 0, "the plugin's place in the chain")
	policy := sub.String("fail-policy", "", "open or closed")
	callTimeout := sub.Int("timeout-ms", 0, "the plugin's per-call deadline in milliseconds")
	lf := listFlags(sub)
	itf := itemFlags(sub, &lf.state)
	var pos []string
	for len(rest) > 0 { // positional arguments may come before or after the flags
		if err := sub.Parse(rest); err != nil {
			return err
		}
		rest = sub.Args()
		if len(rest) > 0 {
			pos, rest = append(pos, rest[0]), rest[1:]
		}
	}
	if err := onlyFlags(sub, what+" "+verb); err != nil {
		return err
	}
	body := func() ([]byte, error) {
		if *file == "" {
			return nil, errors.New("admin: -file is required")
		}
		if *file == "-" {
			return io.ReadAll(os.Stdin)
		}
		return os.ReadFile(*file)
	}
	arg := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("admin: %s %s takes one argument", what, verb)
		}
		return pos[0], nil
	}
	switch what + " " + verb {
	case "activities list":
		if len(pos) != 0 {
			return errors.New("admin: activities list takes no argument")
		}
		return c.listActivities(lf)
	case "activities orders", "activities export":
		id, err := arg()
		if err != nil {
			return err
		}
		if verb == "export" {
			return c.exportOrders(id, lf)
		}
		return c.listOrders(id, lf)
	case "items add", "items update", "items offline", "items online":
		return c.items(verb, pos, itf, *file, body)
	case "activities create":
		b, err := body()
		if err != nil {
			return err
		}
		return c.call("POST", "/admin/v1/activities", b)
	case "activities get", "activities stats", "activities publish", "activities offline", "activities update":
		id, err := arg()
		if err != nil {
			return err
		}
		id = url.PathEscape(id)
		switch verb {
		case "get":
			return c.call("GET", "/admin/v1/activities/"+id, nil)
		case "stats":
			return c.call("GET", "/admin/v1/activities/"+id+"/stats", nil)
		case "update":
			b, err := body()
			if err != nil {
				return err
			}
			return c.call("PUT", "/admin/v1/activities/"+id, b)
		}
		return c.call("POST", "/admin/v1/activities/"+id+"/"+verb, nil)
	case "plugins list":
		return c.call("GET", "/admin/v1/plugins", nil)
	case "plugins load":
		name, err := arg()
		if err != nil {
			return err
		}
		wasm, err := os.ReadFile(*wasmFile)
		if err != nil {
			return fmt.Errorf("admin: -wasm: %w", err)
		}
		req := api.PutPluginRequest{WasmBase64: base64.StdEncoding.EncodeToString(wasm), Order: *order,
			FailPolicy: *policy, TimeoutMS: int64(*callTimeout)}
		if *config != "" {
			if !json.Valid([]byte(*config)) {
				return errors.New("admin: -config is not valid JSON")
			}
			req.Config = json.RawMessage(*config)
		}
		return c.call("PUT", "/admin/v1/plugins/"+url.PathEscape(name), req)
	case "plugins remove":
		name, err := arg()
		if err != nil {
			return err
		}
		return c.call("DELETE", "/admin/v1/plugins/"+url.PathEscape(name), nil)
	case "limits get":
		return c.call("GET", "/admin/v1/limits", nil)
	case "limits set":
		b, err := body()
		if err != nil {
			return err
		}
		return c.call("PUT", "/admin/v1/limits", b)
	}
	fs.Usage()
	return fmt.Errorf("admin: unknown command %q", what+" "+verb)
}
