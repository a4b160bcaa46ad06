package auth

import (
	"errors"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// clock is a time tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestCacheAnswersAsVerification: a verifier that remembers tokens answers at
// every moment what one that does not would, across exp and MaxAge (with
// their leeway), with issuer and audience checked: a remembered token stops
// working the moment verification would refuse it.
func TestCacheAnswersAsVerification(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	clk := &clock{t: t0}
	opts := Options{Secret: secret, Issuer: "shop", Audience: "sale", MaxAge: 10 * time.Minute}
	cached, err := NewVerifierWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := NewVerifierWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	cached.now, fresh.now = clk.now, clk.now
	fresh.cache = nil
	claims := func(iat, exp time.Duration, extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "42", "iss": "shop", "aud": "sale", "iat": t0.Add(iat).Unix(), "exp": t0.Add(exp).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	tokens := map[string]string{
		"exp first":     sign(t, jwt.SigningMethodHS256, secret, claims(0, 5*time.Minute, nil)),
		"max age first": sign(t, jwt.SigningMethodHS256, secret, claims(0, time.Hour, nil)),
		"old iat":       sign(t, jwt.SigningMethodHS256, secret, claims(-9*time.Minute, time.Hour, nil)),
		"other issuer":  sign(t, jwt.SigningMethodHS256, secret, claims(0, time.Hour, jwt.MapClaims{"iss": "elsewhere"})),
		"other aud":     sign(t, jwt.SigningMethodHS256, secret, claims(0, time.Hour, jwt.MapClaims{"aud": "x"})),
		"no iat":        sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "iss": "shop", "aud": "sale", "exp": t0.Add(time.Hour).Unix()}),
	}
	// Moments around each boundary: exp+leeway (exclusive), iat+MaxAge+leeway (inclusive).
	var steps []time.Duration
	for _, edge := range []time.Duration{time.Minute + leeway, 5*time.Minute + leeway, 10*time.Minute + leeway} {
		steps = append(steps, edge-time.Second, edge-time.Nanosecond, edge, edge+time.Nanosecond, edge+time.Second)
	}
	for name, tok := range tokens {
		for _, at := range append([]time.Duration{0}, steps...) {
			clk.t = t0.Add(at)
			want, wantErr := fresh.UserID(tok)
			for range 2 { // the first may verify and remember, the second answers from the cache
				got, err := cached.UserID(tok)
				if got != want || (err == nil) != (wantErr == nil) || !errors.Is(err, ErrExpired) && errors.Is(wantErr, ErrExpired) {
					t.Fatalf("%s at t0+%v: got %d, %v; verification gives %d, %v", name, at, got, err, want, wantErr)
				}
			}
		}
	}
}

// TestCacheKeyedByWholeToken: a token differing from an accepted one in any
// byte is verified, not answered from the cache.
func TestCacheKeyedByWholeToken(t *testing.T) {
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := Mint(secret, 42, time.Hour)
	if id, err := v.UserID(good); err != nil || id != 42 {
		t.Fatalf("got %d, %v", id, err)
	}
	for i := range good {
		b := []byte(good)
		b[i] ^= 0x01
		if id, err := v.UserID(string(b)); err == nil && string(b) != good {
			// A flipped bit of the last base64 character may encode the same bytes.
			if i != len(good)-1 {
				t.Fatalf("byte %d changed: accepted as user %d", i, id)
			}
		}
	}
	forged := sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes......"), jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := v.UserID(forged); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forged token: got %v, want invalid", err)
	}
}

// TestCacheBounded: a flood of valid tokens keeps the cache within its size.
func TestCacheBounded(t *testing.T) {
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	small := newTokenCache(64)
	v.cache = small
	for i := range 1000 {
		tok, _ := Mint(secret, int64(i+1), time.Hour)
		if id, err := v.UserID(tok); err != nil || strconv.FormatInt(id, 10) != strconv.Itoa(i+1) {
			t.Fatalf("token %d: got %d, %v", i, id, err)
		}
	}
	if n := small.lru.Len(); n > 64 {
		t.Fatalf("holds %d tokens, want at most 64", n)
	}
}

// TestCacheKeepsItsOwnCopy: a token handed over as a view of a buffer (the
// gateway reads the Authorization header without copying it) is copied into the
// cache: when the buffer is reused for another shopper's token, that shopper is
// verified, and the first token is still found in the cache (a key that changed
// under the cache's map could no longer be found, nor evicted).
func TestCacheKeepsItsOwnCopy(t *testing.T) {
	secret := []byte("cache-copy-test-secret-0123456789")
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Mint(secret, 1001, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Mint(secret, 1002, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("tokens of %d and %d bytes; the test needs two of one length", len(a), len(b))
	}
	buf := []byte(a)
	view := unsafe.String(unsafe.SliceData(buf), len(buf))
	if id, err := v.UserID(view); err != nil || id != 1001 {
		t.Fatalf("first shopper: got %d, %v; want 1001", id, err)
	}
	copy(buf, b) // the next request's header in the same buffer
	if id, err := v.UserID(view); err != nil || id != 1002 {
		t.Fatalf("second shopper in the reused buffer: got %d, %v; want 1002", id, err)
	}
	if id, ok := v.cache.get(a, time.Now()); !ok || id != 1001 {
		t.Fatalf("first shopper's token in the cache after its buffer was reused: got %d, %v; want 1001, found", id, ok)
	}
}
