package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/cloudwego/hertz/pkg/protocol/http1/ext"

	"github.com/seckill/flashsale/backend/domain"
)

// maxAdminJSON bounds the bodies of the admin API but plugin uploads
// (MaxPluginBody): an activity with its items, limits.
const maxAdminJSON = 1 << 20

// bodyLimit is the largest body the route of c takes, and whether the route
// is an operator's (its body is read only once the admin token is checked).
func (g *Gateway) bodyLimit(c *app.RequestContext) (limit int, admin bool) {
	path := string(c.Path())
	switch {
	case !strings.HasPrefix(path, "/admin/"):
		return g.cfg.MaxBodyBytes, false
	case string(c.Method()) == "PUT" && strings.HasPrefix(path, "/admin/v1/plugins/"):
		return MaxPluginBody, true
	default:
		return maxAdminJSON, true
	}
}

// boundBody refuses a body over its route's limit on its Content-Length
// alone, before any of it is read beyond the server's read-ahead (the
// shoppers' limit), and before identity is checked: a stranger cannot make
// the gateway buffer the 24 MiB a plugin upload may take. Shoppers' bodies
// sent chunked are read here up to the limit; operators' in readBody, after
// their token.
func (g *Gateway) boundBody(ctx context.Context, c *app.RequestContext) {
	limit, admin := g.bodyLimit(c)
	if n := c.Request.Header.ContentLength(); n > limit {
		g.tooLarge(c, limit)
		return
	}
	if !admin && !g.readStream(c, limit, g.cfg.ReadTimeout) {
		return
	}
	c.Next(ctx)
}

// readBody reads an operator's body up to its route's limit (after
// operator has checked the token).
func (g *Gateway) readBody(ctx context.Context, c *app.RequestContext) {
	limit, _ := g.bodyLimit(c)
	// An operator's upload (24 MiB at most) on a slow link: the read timeout and
	// a second for every 64 KiB the route takes.
	if g.readStream(c, limit, g.cfg.ReadTimeout+time.Duration(limit>>16)*time.Second) {
		c.Next(ctx)
	}
}

// readStream makes a body the server streams (longer than its read-ahead,
// or chunked) an ordinary one, reading at most limit bytes within within;
// over that, the request is refused. It reports whether the handler chain
// may go on.
func (g *Gateway) readStream(c *app.RequestContext, limit int, within time.Duration) bool {
	n := c.Request.Header.ContentLength()
	if !c.Request.IsBodyStream() {
		return true
	}
	if n >= 0 && len(c.Request.BodyBytes()) == n {
		// Read ahead already: the whole body is in the request's buffer (hertz
		// reads ahead up to the server's body size, at most 8 KiB). It is an
		// ordinary body from here on, and hertz's stream goes back to its pool:
		// reading the body through the stream would copy it and drop the stream,
		// which cost every request a new one.
		s := c.Request.BodyStream()
		c.Request.CloseBodyStream()  // forgets it (the stream has no Close)
		_ = ext.ReleaseBodyStream(s) // nothing left to skip: n bytes were read ahead
		return true
	}
	// The whole body within a bound: hertz's read timeout applies to each read
	// of the stream, so a body that trickles in (a chunk every few seconds) held
	// the connection, and enough of them every connection the gateway takes. Past
	// it the connection is closed under the read.
	var cut *time.Timer
	if conn := c.GetConn(); conn != nil && within > 0 {
		cut = time.AfterFunc(within, func() { conn.Close() })
	}
	var body []byte
	var err error
	if n >= 0 { // n <= limit: boundBody checked
		body = make([]byte, n)
		_, err = io.ReadFull(c.Request.BodyStream(), body)
	} else {
		body, err = io.ReadAll(io.LimitReader(c.Request.BodyStream(), int64(limit)+1))
	}
	if cut != nil && !cut.Stop() {
		// Cut as the read ended: the connection is closing under the answer.
		err = fmt.Errorf("the body took longer than %v", within)
	}
	switch {
	case err != nil:
		c.Request.ResetBody()
		c.Response.SetConnectionClose()
		fail(c, domain.EBadRequest, "the body could not be read")
		return false
	case len(body) > limit: // chunked: the rest is not read
		c.Request.ResetBody()
		g.tooLarge(c, limit)
		return false
	}
	c.Request.SetBodyRaw(body) // ours: no need to copy megabytes of upload again
	return true
}

// tooLarge answers 413 and closes the connection after the answer. The
// rest of a body of known length up to maxDrain is read and thrown away
// after the answer (never buffered, and for the read timeout at most), so a
// client that writes its whole body before reading gets the 413 rather than
// a reset connection; a longer or chunked one is not read at all.
func (g *Gateway) tooLarge(c *app.RequestContext, limit int) {
	g.shed.add(0, layerInput, "too_large")
	if n := c.Request.Header.ContentLength(); n < 0 || n > maxDrain {
		c.Request.ResetBody()
	} else if conn := c.GetConn(); conn != nil && g.cfg.ReadTimeout > 0 {
		// The server drains the rest after the answer, a read at a time: within
		// the read timeout in all, then the connection closes (it closes after the
		// drain anyway, so the cut can meet no later request).
		time.AfterFunc(g.cfg.ReadTimeout, func() { conn.Close() })
	}
	c.Response.SetConnectionClose()
	fail(c, eTooLarge, fmt.Sprintf("the body is over %d bytes", limit))
}

// requestBody is the request's body, as r.Body() reads it. A body the server streams
// (all of an order is read ahead: boundBody) is copied from the stream into the
// request's pooled body buffer here, where hertz's Body copies it through a writer
// of its own: two allocations an order.
func requestBody(r *protocol.Request) []byte {
	if !r.IsBodyStream() {
		return r.Body()
	}
	bb := r.BodyBuffer()
	bb.Reset()
	b, s := bb.B, r.BodyStream()
	var err error
	for err == nil {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		var n int
		n, err = s.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
	}
	bb.B = b
	_ = r.CloseBodyStream() // as Body: what was read counts
	if err != io.EOF {
		return nil // as Body on an error
	}
	return r.BodyBytes()
}

// maxDrain is the longest refused body read to its end (see tooLarge).
const maxDrain = MaxPluginBody

// framing refuses a request whose body is framed two ways (ambiguousFraming), before
// anything else answers it (an unknown method's 405 kept the connection): a proxy in
// front may have framed the body otherwise, and what follows on the connection could
// be another request smuggled in. Answered and closed, nothing after it is read.
func (g *Gateway) framing(ctx context.Context, c *app.RequestContext) {
	if reason := ambiguousFraming(c.Request.Header.RawHeaders()); reason != "" {
		g.shed.add(0, layerInput, "bad_request")
		c.Response.SetConnectionClose()
		fail(c, domain.EBadRequest, reason)
		return
	}
	c.Next(ctx)
}

// ambiguousFraming says why a request's headers (raw, as received) frame its body
// ambiguously, or "": Content-Length given twice with different values, or with
// Transfer-Encoding, or a transfer coding other than chunked (hertz reads such a
// body as chunked and leaves, say, gzip undone). A Content-Length repeated with the
// same value is one.
func ambiguousFraming(raw []byte) string {
	var length []byte
	lengths, codings := 0, 0
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) < 15 || line[0]|0x20 != 'c' && line[0]|0x20 != 't' { // quick: not one of the two
			continue
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if lengths > 0 && !bytes.Equal(value, length) {
				return "Content-Length is given twice, with different values"
			}
			length, lengths = value, lengths+1
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			codings++
			if codings > 1 || !bytes.EqualFold(value, []byte("chunked")) {
				return "the only transfer coding taken is chunked, once"
			}
		}
	}
	if lengths > 0 && codings > 0 {
		return "Content-Length and Transfer-Encoding together"
	}
	return ""
}
