package rpcauth

import (
	"fmt"
	"strings"
	"testing"

	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// TestSecretsNeverPrinted: a configuration printed whole shows no credential.
func TestSecretsNeverPrinted(t *testing.T) {
	s := Secrets{Service: "svc-5f93f983524def3dca464469d2cf9f3e", Operator: "op-e4da3b7fbbce2345d7772b0674a318d5"}
	cfg := struct {
		Listen  string
		Secrets Secrets
		Ptr     *Secrets
	}{"x", s, &s}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		out := fmt.Sprintf(verb, cfg)
		if strings.Contains(out, "5f93f9") || strings.Contains(out, "e4da3b") || strings.Contains(out, fmt.Sprintf("%x", s.Service)[:12]) {
			t.Errorf("%s: got %s, which shows a credential", verb, out)
		}
	}
}

// TestNeeds: what each call needs.
func TestNeeds(t *testing.T) {
	for _, tt := range []struct {
		method string
		req    any
		want   Role
	}{
		{"PlaceOrder", nil, Service},
		{"GetPlugins", nil, Service},
		{"GetLimits", nil, Service},
		{"Ping", nil, Service},
		{"ListActivities", &rpc.SeckillListActivitiesArgs{Req: &rpc.ListActivitiesReq{}}, Service},
		{"ListActivities", &rpc.SeckillListActivitiesArgs{Req: &rpc.ListActivitiesReq{IncludeAll: true}}, Operator},
		{"ListActivities", &rpc.SeckillListActivitiesArgs{}, Service},
		{"CreateActivity", nil, Operator},
		{"PutLimits", nil, Operator},
		{"GetActivityStats", nil, Operator},
		{"AddItem", nil, Operator},
		{"SetItemState", nil, Operator},
		{"ListActivityOrders", nil, Operator},
		{"DeleteOrder", nil, Service},
		{"SomeCallAddedLater", nil, Operator},
	} {
		if got := Needs(tt.method, tt.req); got != tt.want {
			t.Errorf("%s %+v: got %v, want %v", tt.method, tt.req, got, tt.want)
		}
	}
}

// TestEveryMethodClassified: every call of the service is a shopper's (or the
// gateway's own) or an operator's on purpose: the service credential's list names
// only calls that exist.
func TestEveryMethodClassified(t *testing.T) {
	methods := seckill.NewServiceInfo().Methods
	for m := range serviceMethods {
		if _, ok := methods[m]; !ok {
			t.Errorf("serviceMethods names %s, which the service does not have", m)
		}
	}
	operators := 0
	for m := range methods {
		if Needs(m, nil) == Operator {
			operators++
		}
	}
	if operators < 10 {
		t.Errorf("got %d operators' calls, want the activity, item, plugin and limit changes among them", operators)
	}
}
