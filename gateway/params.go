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
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		fail(c, domain.ENotFound, fmt.Sprintf("%q is not a known id", c.Param("id")))
		return 0, false
	}
	return id, true
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
