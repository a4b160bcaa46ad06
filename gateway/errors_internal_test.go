package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/gateway/api"
)

// trickyStrings are messages whose JSON has every kind of escape.
var trickyStrings = []string{
	"", "item 70 is sold out", `quote " and \ backslash`, "<script>&amp;</script>",
	"\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f", "é ü 中文 😀", "\u2028 and \u2029, \u2027 and \u202a",
	"bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 beyond", "trailing \xe2\x80",
	"/ slash", "\ufffd kept", "tab\there",
}

// hertzError is the answer c.AbortWithStatusJSON gives for the error: what fail
// wrote before its encoder was hand-made.
func hertzError(code, msg string) (int, string, []byte) {
	c := app.NewContext(0)
	c.AbortWithStatusJSON(statusOf(code), api.Error{Code: code, Message: msg})
	return c.Response.StatusCode(), string(c.Response.Header.ContentType()), c.Response.Body()
}

func checkError(t *testing.T, code, msg string) {
	t.Helper()
	wantStatus, wantType, wantBody := hertzError(code, msg)
	c := app.NewContext(0)
	failMsg(c, code, msg)
	if !c.IsAborted() || c.Response.StatusCode() != wantStatus || string(c.Response.Header.ContentType()) != wantType ||
		!bytes.Equal(c.Response.Body(), wantBody) {
		t.Fatalf("fail(%q, %q): got %d %q %s, want %d %q %s", code, msg, c.Response.StatusCode(),
			c.Response.Header.ContentType(), c.Response.Body(), wantStatus, wantType, wantBody)
	}
	c = app.NewContext(0)
	failMsg(c, code, []byte(msg))
	if !bytes.Equal(c.Response.Body(), wantBody) {
		t.Fatalf("fail(%q, []byte(%q)): got %s, want %s", code, msg, c.Response.Body(), wantBody)
	}
	// encoding/json escapes '\b' and '\f' in short; the strings read back the same.
	std, err := json.Marshal(api.Error{Code: code, Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	var got, want api.Error
	if err := json.Unmarshal(appendError(nil, code, msg), &got); err != nil {
		t.Fatalf("appendError(%q, %q): %v", code, msg, err)
	}
	if err := json.Unmarshal(std, &want); err != nil || got != want {
		t.Fatalf("appendError(%q, %q) reads back as %+v, encoding/json's as %+v (%v)", code, msg, got, want, err)
	}
}

// TestFailMatchesJSONRendering: fail writes the bytes, status and Content-Type
// hertz's JSON rendering of api.Error wrote, a body encoding/json reads back.
func TestFailMatchesJSONRendering(t *testing.T) {
	for _, s := range trickyStrings {
		checkError(t, "sold_out", s)
		checkError(t, s, "x")
	}
}

// TestFailAppends: as hertz's rendering, fail appends to a body already written.
func TestFailAppends(t *testing.T) {
	c, want := app.NewContext(0), app.NewContext(0)
	c.Response.SetBodyString("partial")
	want.Response.SetBodyString("partial")
	failMsg(c, "internal", "boom")
	want.AbortWithStatusJSON(500, api.Error{Code: "internal", Message: "boom"})
	if !bytes.Equal(c.Response.Body(), want.Response.Body()) {
		t.Fatalf("got %s, want %s", c.Response.Body(), want.Response.Body())
	}
}

func FuzzFailBody(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add("sold_out", s)
	}
	f.Fuzz(func(t *testing.T, code, msg string) { checkError(t, code, msg) })
}
