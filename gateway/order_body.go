// The order body, read by hand: encoding/json's reflection was the largest cost
// of an order after the token's check, and every order of a flash sale is one.

package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/seckill/flashsale/gateway/api"
)

// decodeOrderBody reads an order body, accepting exactly what decodeStrict
// (encoding/json, no unknown fields, one value) accepts into an
// api.PlaceOrderRequest, with the same result (FuzzOrderBody compares them):
//
//   - one object, or null (which sets nothing), with JSON whitespace around it;
//   - keys name the fields as encoding/json matches them: escapes decoded,
//     then case-insensitively (bytes.EqualFold); any other key is refused;
//   - each value is null (the field keeps what it had) or an integer literal
//     in the field's range: a string, a fraction or an exponent is refused,
//     as encoding/json refuses it for an integer field;
//   - a key given twice keeps its last value.
//
// Everything else is malformed; so it is for encoding/json.
func decodeOrderBody(body []byte) (api.PlaceOrderRequest, error) {
	var o api.PlaceOrderRequest
	s := orderScanner{b: body}
	s.space()
	switch {
	case s.literal("null"):
	case s.next('{'):
		if err := s.fields(&o); err != nil {
			return api.PlaceOrderRequest{}, err
		}
	default:
		return api.PlaceOrderRequest{}, s.malformed("an object")
	}
	s.space()
	if s.i != len(s.b) {
		return api.PlaceOrderRequest{}, errors.New("malformed JSON: data after the object")
	}
	return o, nil
}

// orderScanner reads a body from b[i:].
type orderScanner struct {
	b []byte
	i int
}

func (s *orderScanner) malformed(want string) error {
	if s.i >= len(s.b) {
		return fmt.Errorf("malformed JSON: the body ends where %s should be", want)
	}
	return fmt.Errorf("malformed JSON: %q at offset %d where %s should be", s.b[s.i], s.i, want)
}

func (s *orderScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c if it comes next.
func (s *orderScanner) next(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// literal consumes lit if it comes next.
func (s *orderScanner) literal(lit string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

// The fields' names, as encoding/json reads them from the struct tags.
var (
	nameActivity = []byte("activity_id")
	nameItem     = []byte("item_id")
	nameQuantity = []byte("quantity")
)

// fields reads the members of an object whose '{' was read, through its '}'.
func (s *orderScanner) fields(o *api.PlaceOrderRequest) error {
	s.space()
	if s.next('}') {
		return nil
	}
	var buf [64]byte
	for {
		s.space()
		key, err := s.key(buf[:0])
		if err != nil {
			return err
		}
		s.space()
		if !s.next(':') {
			return s.malformed("':'")
		}
		s.space()
		var set func(int64) bool
		switch {
		case bytes.EqualFold(key, nameActivity):
			set = func(v int64) bool { o.ActivityID = v; return true }
		case bytes.EqualFold(key, nameItem):
			set = func(v int64) bool { o.ItemID = v; return true }
		case bytes.EqualFold(key, nameQuantity):
			set = func(v int64) bool { o.Quantity = int(v); return int64(o.Quantity) == v }
		default:
			return fmt.Errorf("malformed JSON: json: unknown field %q", string(key))
		}
		if !s.literal("null") {
			v, err := s.integer()
			if err != nil {
				return err
			}
			if !set(v) {
				return fmt.Errorf("malformed JSON: %d is out of range for %s", v, string(key))
			}
		}
		s.space()
		if s.next('}') {
			return nil
		}
		if !s.next(',') {
			return s.malformed("',' or '}'")
		}
	}
}

// key reads a string and appends it, unescaped, to buf; a key longer than buf
// names no field and is returned cut short (still unlike every name).
func (s *orderScanner) key(buf []byte) ([]byte, error) {
	if !s.next('"') {
		return nil, s.malformed("a key")
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return buf, nil
		case c < 0x20:
			s.i--
			return nil, s.malformed("a character of a string")
		case c != '\\':
			if len(buf) < cap(buf) {
				buf = append(buf, c)
			}
			continue
		}
		if s.i >= len(s.b) {
			break
		}
		e := s.b[s.i]
		s.i++
		var r rune
		switch e {
		case '"', '\\', '/':
			r = rune(e)
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			if s.i+4 > len(s.b) {
				s.i = len(s.b)
				return nil, s.malformed("four hex digits")
			}
			n, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 16)
			if err != nil {
				return nil, s.malformed("four hex digits")
			}
			s.i += 4
			// A surrogate (half of a pair, or alone) decodes to a rune beyond
			// ASCII whatever follows: no field's name folds to one.
			r = rune(n)
		default:
			s.i--
			return nil, s.malformed("an escape")
		}
		if len(buf)+utf8.UTFMax <= cap(buf) {
			buf = utf8.AppendRune(buf, r)
		} else {
			buf = buf[:cap(buf)]
		}
	}
	return nil, s.malformed("the end of a string")
}

// integer reads an integer literal in int64's range; a number with a
// fraction or an exponent, or any other value, is refused.
func (s *orderScanner) integer() (int64, error) {
	start := s.i
	neg := s.next('-')
	if s.i >= len(s.b) || s.b[s.i] < '0' || s.b[s.i] > '9' {
		return 0, s.malformed("an integer")
	}
	var u uint64
	if s.next('0') {
		// a leading zero is the whole integer part
	} else {
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			d := uint64(s.b[s.i] - '0')
			if u > (math.MaxUint64-d)/10 {
				return 0, fmt.Errorf("malformed JSON: %s... does not fit an integer", s.b[start:s.i])
			}
			u = u*10 + d
			s.i++
		}
	}
	switch {
	case neg && u <= 1<<63:
		return -int64(u), nil
	case !neg && u <= math.MaxInt64:
		return int64(u), nil
	}
	return 0, fmt.Errorf("malformed JSON: %s does not fit an integer", s.b[start:s.i])
}
