package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/flashsale/backend/domain"
)

// TestQueueToken: a token reads back as it was signed; a change to any character,
// another gateway fleet's key, or something that is not a token is refused.
func TestQueueToken(t *testing.T) {
	key := queueKey("waiting-room-test-secret-0123456789")
	want := queueToken{ActivityID: 12, ItemID: 345, UserID: 6789, Seq: 1001, Issued: time.UnixMilli(1_800_000_000_123)}
	s := want.sign(key)
	got, err := parseQueueToken(key, s)
	if err != nil || got != want {
		t.Fatalf("round trip: got %+v, %v; want %+v", got, err, want)
	}
	for i := range len(s) {
		for _, c := range []byte{'A', 'z', '0', '.', '-'} {
			if s[i] == c {
				continue
			}
			changed := s[:i] + string(c) + s[i+1:]
			if _, err := parseQueueToken(key, changed); err == nil {
				t.Fatalf("a token with character %d changed to %q was accepted: %s", i, c, changed)
			}
		}
	}
	for name, bad := range map[string]string{
		"another key":   want.sign(queueKey("another-fleet-secret-0123456789")),
		"empty":         "",
		"no mac":        s[:len(s)-44],
		"a JWT":         "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
		"too long":      s + string(make([]byte, maxQueueToken)),
		"zero place":    queueToken{ActivityID: 1, ItemID: 1, UserID: 1, Issued: time.UnixMilli(1)}.sign(key),
		"other version": "q2" + s[2:],
	} {
		if _, err := parseQueueToken(key, bad); err == nil {
			t.Errorf("%s: accepted %q", name, bad)
		}
	}
}

// TestRetryAfter: a queued shopper is told to come back after about half the time the
// line needs to reach them, within the bounds.
func TestRetryAfter(t *testing.T) {
	r := &room{cfg: RoomConfig{PollMin: 250 * time.Millisecond, PollMax: 5 * time.Second}}
	for _, tt := range []struct {
		position int64
		rate     float64
		want     time.Duration
	}{
		{1, 100, 250 * time.Millisecond}, // next: as soon as allowed
		{200, 100, time.Second},          // 2 s away: ask in 1 s
		{100_000, 100, 5 * time.Second},  // far back: the longest
		{50, 0, 500 * time.Millisecond},  // no admission lately: by position
		{10_000, 0, 5 * time.Second},     // far back, nothing moving
		{3, 0.5, 3 * time.Second},        // a slow line
		{1, 1_000_000, 250 * time.Millisecond},
	} {
		if got := r.retryAfter(domain.LineDecision{Position: tt.position, Rate: tt.rate}); got != tt.want {
			t.Errorf("position %d at %g/s: got %s, want %s", tt.position, tt.rate, got, tt.want)
		}
	}
}

// TestRoomSecretChecked: a waiting room's own key is held to the rule of every other
// secret (a guessed one mints places at the head of each line), and a room with no
// key at all (shoppers' tokens from a JWKS only) refuses to start.
func TestRoomSecretChecked(t *testing.T) {
	strong := "9f4c2a7e1b8d3f6a0c5e2b7d4a1f8c3e"
	for _, tt := range []struct {
		name, room, jwt string
		ok              bool
	}{
		{"its own strong key", strong, "", true},
		{"derived from the JWT secret", "", strong, true},
		{"a weak key of its own", strings.Repeat("ab", 16), strong, false},
		{"a placeholder", "change-me-change-me-change-me-change-me", strong, false},
		{"no key at all", "", "", false},
	} {
		_, err := newRoom(nil, RoomConfig{Secret: tt.room}, tt.jwt, time.Second, prometheus.NewRegistry())
		if (err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "gateway.waiting_room.secret") {
			t.Errorf("%s: %v does not name the setting", tt.name, err)
		}
	}
}

// leaves records a line's Leave calls.
type leaves struct {
	domain.Line
	calls []bool // back, per call
}

func (l *leaves) Leave(_ context.Context, _, _, _, _ int64, back bool) error {
	l.calls = append(l.calls, back)
	return nil
}

// TestAdmittedFreesItsSlot: an admitted order's slot frees when the backend answers,
// back at the place only when nothing was taken (503); a 504, which may have taken a
// unit while the backend still works on it, keeps the slot until its lease ends; a
// panic in the handler still frees it.
func TestAdmittedFreesItsSlot(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		panics bool
		want   []bool
	}{
		{"placed", http.StatusAccepted, false, []bool{false}},
		{"sold out", http.StatusConflict, false, []bool{false}},
		{"nothing taken", http.StatusServiceUnavailable, false, []bool{true}},
		{"outcome unknown", http.StatusGatewayTimeout, false, nil},
		{"a panic", 0, true, []bool{false}},
	} {
		l := &leaves{}
		r := &room{line: l}
		c := app.NewContext(0)
		next := func(context.Context, *app.RequestContext) {
			if tt.panics {
				panic("handler bug")
			}
			c.Response.SetStatusCode(tt.status)
		}
		func() {
			defer func() {
				if p := recover(); (p != nil) != tt.panics {
					t.Errorf("%s: recovered %v", tt.name, p)
				}
			}()
			r.admitted(context.Background(), c, domain.LineEntry{ActivityID: 1, ItemID: 2, UserID: 3}, 9, next, slog.New(slog.DiscardHandler))
		}()
		if !slices.Equal(l.calls, tt.want) {
			t.Errorf("%s: Leave calls (back) %v, want %v", tt.name, l.calls, tt.want)
		}
	}
}
