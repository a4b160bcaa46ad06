package gateway

import (
	"strings"
	"testing"

	"github.com/seckill/flashsale/gateway/api"
)

// TestDecodeStrictSpeaksTheAPI: a bad body is explained by its JSON field and the type
// it takes, never by the Go types behind them.
func TestDecodeStrictSpeaksTheAPI(t *testing.T) {
	for body, want := range map[string]string{
		`{"waiting_room":{"enabled":"yes"}}`: "waiting_room.enabled must be true or false, not string",
		`{"per_user_limit":"7"}`:             "per_user_limit must be an integer in range, not string",
		`{"per_user_limit":1e40}`:            "per_user_limit must be an integer in range, not number",
		`{"items":{}}`:                       "items must be an array, not object",
		`[1]`:                                "the body must be an object",
		`{"name":`:                           "the body ends too soon",
		``:                                   "the body is empty",
		`{"name" "x"}`:                       "at byte",
		`{"colour":"red"}`:                   `unknown field "colour"`,
	} {
		var v api.UpdateActivityRequest
		err := decodeStrict([]byte(body), &v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want it to say %q", body, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "api.")) {
			t.Errorf("%s: %v names Go types", body, err)
		}
	}
}
