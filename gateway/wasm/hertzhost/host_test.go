package hertzhost

import (
	"context"
	"net"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/test/mock"
	"github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/http-wasm/http-wasm-host-go/testing/handlertest"
)

// peerConn is a connection whose peer is 1.2.3.4:12345, as handlertest wants.
type peerConn struct{ *mock.Conn }

func (peerConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(1, 2, 3, 4), Port: 12345} }

// TestHost runs the upstream handler.Host conformance checks on Host.
func TestHost(t *testing.T) {
	newCtx := func(features handler.Features) (context.Context, handler.Features) {
		c := app.NewContext(0)
		c.Request.Header.SetMethod("GET")
		c.Request.Header.SetProtocol("HTTP/1.1")
		c.SetConn(peerConn{mock.NewConn("")})
		// Otherwise hertz reports its default Content-Type
		// (text/plain) on a fresh response, where the upstream test
		// wants no headers (server.WithDisableDefaultContentType).
		c.Response.Header.SetNoDefaultContentType(true)
		return NewContext(context.Background(), c), features & Features
	}
	if err := handlertest.HostTest(t, Host{}, newCtx); err != nil {
		t.Fatal(err)
	}
}
