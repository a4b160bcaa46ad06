// What handlers read from a request: path ids and strict JSON bodies.

package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
)

// parseID reads the route's positive id; anything else is answered 404, and
// the handler stops when ok is false.
func parseID(c *app.RequestContext) (int64, bool) {
	id, err := canonicalID(c.Param("id"))
	if err != nil || id <= 0 {
		fail(c, domain.ENotFound, fmt.Sprintf("%q is not a known id", c.Param("id")))
		return 0, false
	}
	return id, true
}

// canonicalID reads an id written as ids are written: digits only, no sign and no
// leading zero, so one id has one path (`+6` and `06` are not 6).
func canonicalID(s string) (int64, error) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}

// decodeStrict decodes exactly one JSON value with no unknown fields, and
// nothing but whitespace after it. (The Decoder's More, used before, says no
// more for a stray '}' or ']', so `{...}}` passed.)
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return errors.New("malformed JSON: data after the object")
	}
	return nil
}
