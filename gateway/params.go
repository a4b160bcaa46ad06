// What handlers read from a request: path ids and strict JSON bodies.

package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

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
		return fmt.Errorf("malformed JSON: %s", jsonProblem(err))
	}
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return errors.New("malformed JSON: data after the object")
	}
	return nil
}

// jsonProblem says what is wrong with a body in the API's words: the field and the
// type it takes, never the Go types behind them.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		want := te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = "an integer in range"
		case reflect.Float32, reflect.Float64:
			want = "a number"
		case reflect.Bool:
			want = "true or false"
		case reflect.String:
			want = "a string"
		case reflect.Slice, reflect.Array:
			want = "an array"
		case reflect.Struct, reflect.Map:
			want = "an object"
		}
		if te.Field == "" {
			return "the body must be " + want
		}
		return fmt.Sprintf("%s must be %s, not %s", te.Field, want, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends too soon"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
