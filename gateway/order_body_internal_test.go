package gateway

import (
	"strings"
	"testing"

	"github.com/seckill/flashsale/gateway/api"
)

// orderBodies are bodies on each side of every rule of decodeOrderBody.
var orderBodies = []string{
	`{"activity_id": 7, "item_id": 70, "quantity": 1}`, `{}`, `null`, ` null `, ``, ` `, `[]`, `"x"`, `7`, `{`, `}`,
	`{"activity_id": 7}}`, `{"activity_id": 7}]`, `{"activity_id": 7} x`, `{"activity_id": 7}{}`, "\t{}\r\n",
	`{"ACTIVITY_ID": 7, "Item_Id": 70, "QUANTITY": 1}`, `{"activity\u005fid": 7}`, `{"item\u005Fid": 1}`, `{"\u0071uantity": 2}`,
	"{\"activity_id\": 1, \"activity_\u212aid\": 2}", `{"quantit\u00ff": 1}`, `{"quantity\u0000": 1}`, `{"\ud800quantity": 1}`,
	`{"activity_id": 1, "activity_id": 2}`, `{"activity_id": 1, "activity_id": null}`, `{"activity_id": null}`,
	`{"activity_id": "7"}`, `{"activity_id": 7.0}`, `{"activity_id": 7e0}`, `{"activity_id": 1E2}`, `{"activity_id": -0}`,
	`{"activity_id": 01}`, `{"activity_id": -}`, `{"activity_id": +1}`, `{"activity_id": 9223372036854775807}`,
	`{"activity_id": 9223372036854775808}`, `{"activity_id": -9223372036854775808}`, `{"activity_id": -9223372036854775809}`,
	`{"activity_id": 99999999999999999999999}`, `{"activity_id": true}`, `{"activity_id": [1]}`, `{"activity_id": {}}`,
	`{"activity_id": nul}`, `{"activity_id": nullx}`, `{"activity_id" 7}`, `{"activity_id": 7,}`, `{,}`, `{"price": 0}`,
	`{"price": {"nested": [1, 2]}}`, `{"activity_id": 7 "item_id": 1}`, `{'activity_id': 7}`, `{activity_id: 7}`,
	"{\"activity_id\": 7\u00a0}", "{\"a\x01\": 1}", `{"\q": 1}`, `{"\u00zz": 1}`, `{"` + strings.Repeat("a", 100) + `": 1}`,
	`{"` + strings.Repeat(`\u212a`, 30) + `": 1}`, "\xef\xbb\xbf{}", `{"activity_id": 1}` + " \n",
}

// FuzzOrderBody: the order body's own reader accepts what encoding/json (as
// decodeStrict uses it) accepts, refuses what it refuses, and reads the same
// order.
func FuzzOrderBody(f *testing.F) {
	for _, b := range orderBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want api.PlaceOrderRequest
		wantErr := decodeStrict(body, &want)
		got, err := decodeOrderBody(body)
		switch {
		case (err == nil) != (wantErr == nil):
			t.Fatalf("%q: got %+v, %v; encoding/json gives %+v, %v", body, got, err, want, wantErr)
		case err == nil && got != want:
			t.Fatalf("%q: got %+v; encoding/json gives %+v", body, got, want)
		}
	})
}

// TestOrderBodyAllocatesNothing: a well-formed order is read without the heap.
func TestOrderBodyAllocatesNothing(t *testing.T) {
	body := []byte(`{"activity_id": 7, "item_id": 70, "quantity": 1}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeOrderBody(body) }); n != 0 {
		t.Fatalf("%v allocations per order body, want 0", n)
	}
}
