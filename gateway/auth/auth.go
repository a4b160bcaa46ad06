// Package auth checks who is calling the gateway: shoppers by a JWT whose sub is
// their decimal user id (HS256 with the gateway's secret, or RS256/ES256 with a key of
// a storefront's JWKS), operators by a separate bearer token.
package auth

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors a token check returns; all of them mean 401.
var (
	ErrMissing = errors.New("missing bearer token")
	ErrInvalid = errors.New("invalid token")
	ErrExpired = errors.New("token expired")
)

// MaxTokenLen bounds what is parsed at all.
const MaxTokenLen = 4096

// Bearer returns the token of an Authorization header value.
func Bearer(header string) (string, error) {
	const prefix = "Bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", ErrMissing
	}
	tok := strings.TrimSpace(header[len(prefix):])
	if tok == "" {
		return "", ErrMissing
	}
	if len(tok) > MaxTokenLen {
		return "", ErrInvalid
	}
	return tok, nil
}

// Verifier checks shoppers' tokens.
type Verifier struct {
	opts   Options
	parser *jwt.Parser
	cache  *tokenCache      // tokens accepted (cache.go); nil: none
	now    func() time.Time // the clock of every time check; tests move it
}

// Options say which shoppers' tokens a Verifier accepts.
type Options struct {
	// Secret verifies HS256 tokens (the gateway's own, `seckill token`); nil: none.
	Secret []byte
	// JWKS verifies RS256 and ES256 tokens by their kid (a storefront's identity
	// provider, through github.com/MicahParks/keyfunc); nil: none.
	JWKS jwt.Keyfunc
	// Issuer and Audience, when set, must be the token's iss and among its aud.
	Issuer, Audience string
	// MaxAge, when positive, refuses a token issued (iat, then required) longer ago,
	// whatever its exp says: a stolen long-lived token stops working.
	MaxAge time.Duration
}

// leeway is the clock skew allowed on exp, nbf, iat and MaxAge.
const leeway = 5 * time.Second

// NewVerifier returns a Verifier for HS256 tokens signed with secret.
func NewVerifier(secret []byte) (*Verifier, error) { return NewVerifierWith(Options{Secret: secret}) }

// NewVerifierWith returns a Verifier of opts; it needs a secret or a JWKS.
func NewVerifierWith(opts Options) (*Verifier, error) {
	var algs []string
	if len(opts.Secret) > 0 {
		if len(opts.Secret) < 16 {
			return nil, errors.New("jwt secret must be at least 16 bytes")
		}
		algs = append(algs, "HS256")
	}
	if opts.JWKS != nil {
		algs = append(algs, "RS256", "ES256")
	}
	if len(algs) == 0 {
		return nil, errors.New("no way to check shoppers' tokens: set a jwt secret or a JWKS URL")
	}
	v := &Verifier{opts: opts, cache: newTokenCache(cachedTokens), now: time.Now}
	// Strict base64: a signature's last character has unused bits, and lenient
	// decoding took four spellings of every token (four cache entries, and a
	// list of tokens could be walked around).
	po := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithExpirationRequired(), jwt.WithLeeway(leeway), jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(), jwt.WithTimeFunc(func() time.Time { return v.now() })}
	if opts.Issuer != "" {
		po = append(po, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		po = append(po, jwt.WithAudience(opts.Audience))
	}
	v.parser = jwt.NewParser(po...)
	return v, nil
}

// key picks the key of a token by its algorithm: the secret for HS256, the JWKS for
// RS256 and ES256 (the parser accepts only the algorithms configured), so a token
// cannot have its signature checked with the wrong kind of key.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case "HS256":
		if len(v.opts.Secret) > 0 {
			return v.opts.Secret, nil
		}
	case "RS256", "ES256":
		if v.opts.JWKS != nil {
			return v.opts.JWKS(t)
		}
	}
	return nil, fmt.Errorf("algorithm %s is not accepted", t.Method.Alg())
}

// UserID checks a token and returns the user id in its sub; a token accepted
// before is answered from the cache while the answer holds (cache.go).
func (v *Verifier) UserID(token string) (int64, error) {
	if len(token) > MaxTokenLen {
		return 0, ErrInvalid
	}
	now := v.now()
	if v.cache != nil {
		if id, ok := v.cache.get(token, now); ok {
			return id, nil
		}
	}
	id, until, err := v.verify(token, now)
	if err == nil && v.cache != nil {
		// A copy: token may be a view of the request's buffer (the gateway
		// reads the header without copying it; the cache outlives the request).
		v.cache.put(strings.Clone(token), id, until)
	}
	return id, err
}

// verify checks a token at now and returns its user and until when
// (exclusive) the same check would accept it.
func (v *Verifier) verify(token string, now time.Time) (int64, time.Time, error) {
	var claims jwt.RegisteredClaims
	t, err := v.parser.ParseWithClaims(token, &claims, v.key)
	if errors.Is(err, jwt.ErrTokenExpired) {
		if claims.ExpiresAt != nil && claims.ExpiresAt.Unix() < 0 {
			// An exp past what a time holds (1e300) wraps to the far past: not a
			// token that expired, one no issuer meant.
			return 0, time.Time{}, fmt.Errorf("%w: exp out of range", ErrInvalid)
		}
		return 0, time.Time{}, ErrExpired
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 4.1.11: extensions the token says must be understood; none are.
		return 0, time.Time{}, fmt.Errorf("%w: crit names extensions this gateway does not understand", ErrInvalid)
	}
	if err := numericDates(token); err != nil {
		return 0, time.Time{}, err
	}
	// The parser accepts while now < exp+leeway (exp is required).
	until := claims.ExpiresAt.Add(leeway)
	if v.opts.MaxAge > 0 {
		if claims.IssuedAt == nil {
			return 0, time.Time{}, fmt.Errorf("%w: iat is required", ErrInvalid)
		}
		last := claims.IssuedAt.Add(v.opts.MaxAge + leeway) // accepted up to and at last
		if now.After(last) {
			return 0, time.Time{}, fmt.Errorf("%w: issued more than %s ago", ErrExpired, v.opts.MaxAge)
		}
		until = earliest(until, last.Add(time.Nanosecond))
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != claims.Subject {
		return 0, time.Time{}, fmt.Errorf("%w: sub must be a positive decimal user id", ErrInvalid)
	}
	if t.Method.Alg() != "HS256" { // a JWKS key: see jwksLife
		until = earliest(until, now.Add(jwksLife))
	}
	return id, until, nil
}

// numericDates refuses a token whose exp, nbf or iat is not a JSON number (RFC 7519
// NumericDate): the parser also reads a number in a string.
func numericDates(token string) error {
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(raw, &claims); err != nil {
		return fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	// Any spelling: the claims are decoded into a struct, whose fields match keys
	// whatever their case.
	for name, v := range claims {
		switch strings.ToLower(name) {
		case "exp", "nbf", "iat":
			if len(v) == 0 || v[0] != '-' && (v[0] < '0' || v[0] > '9') {
				return fmt.Errorf("%w: %s must be a number of seconds", ErrInvalid, name)
			}
		}
	}
	return nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Mint signs a shopper token for userID that expires after ttl.
func Mint(secret []byte, userID int64, ttl time.Duration) (string, error) {
	return MintFor(secret, userID, ttl, "", "")
}

// MaxTokenTTL is the longest life `seckill token` gives a token.
const MaxTokenTTL = 30 * 24 * time.Hour

// MintFor is Mint with an issuer and an audience ("" leaves one out), for a gateway
// that checks them.
func MintFor(secret []byte, userID int64, ttl time.Duration, issuer, audience string) (string, error) {
	if userID <= 0 {
		return "", errors.New("user id must be positive")
	}
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		Issuer:    issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	if audience != "" {
		claims.Audience = jwt.ClaimStrings{audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

// AdminCheck compares an operator's token in constant time.
type AdminCheck struct{ token []byte }

// NewAdminCheck returns a check for the operators' token.
func NewAdminCheck(token string) (*AdminCheck, error) {
	if len(token) < 16 {
		return nil, errors.New("admin token must be at least 16 bytes")
	}
	return &AdminCheck{token: []byte(token)}, nil
}

// Is reports whether token is the operators' token.
func (a *AdminCheck) Is(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), a.token) == 1
}
