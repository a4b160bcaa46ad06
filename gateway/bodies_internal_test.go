package gateway

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cloudwego/hertz/pkg/protocol"
)

// TestRequestBodyAsHertz: requestBody reads what Request.Body reads, streamed
// or not, short reads, long bodies and failing streams included, and leaves the
// request as Body leaves it.
func TestRequestBodyAsHertz(t *testing.T) {
	long := strings.Repeat("0123456789", 1000)
	for _, tt := range []struct {
		name   string
		stream func() io.Reader // nil: a body read ahead
		body   string
	}{
		{"read ahead", nil, `{"activity_id": 7}`},
		{"empty", func() io.Reader { return strings.NewReader("") }, ""},
		{"streamed", func() io.Reader { return strings.NewReader(`{"item_id": 70}`) }, `{"item_id": 70}`},
		{"one byte a read", func() io.Reader { return iotest.OneByteReader(strings.NewReader(long)) }, long},
		{"data with EOF", func() io.Reader { return iotest.DataErrReader(strings.NewReader(long)) }, long},
		{"failing", func() io.Reader {
			return io.MultiReader(strings.NewReader("half"), iotest.ErrReader(errors.New("reset")))
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mk := func() *protocol.Request {
				r := &protocol.Request{}
				if tt.stream == nil {
					r.SetBodyString(tt.body)
				} else {
					r.SetBodyStream(tt.stream(), -1)
				}
				return r
			}
			got, want := mk(), mk()
			gb, wb := requestBody(got), want.Body()
			if !bytes.Equal(gb, wb) || (gb == nil) != (wb == nil) || got.IsBodyStream() != want.IsBodyStream() ||
				!bytes.Equal(got.BodyBytes(), want.BodyBytes()) {
				t.Fatalf("requestBody: %q (stream %v, then %q); Body: %q (stream %v, then %q)", gb, got.IsBodyStream(),
					got.BodyBytes(), wb, want.IsBodyStream(), want.BodyBytes())
			}
		})
	}
}
