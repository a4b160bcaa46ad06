// Package auth checks who is calling the gateway: shoppers by an HS256 JWT whose sub
// is their decimal user id, operators by a separate bearer token.
package auth

import (
	"crypto/subtle"
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
	secret []byte
	parser *jwt.Parser
}

// NewVerifier returns a Verifier for tokens signed with secret.
func NewVerifier(secret []byte) (*Verifier, error) {
	if len(secret) < 16 {
		return nil, errors.New("jwt secret must be at least 16 bytes")
	}
	return &Verifier{
		secret: secret,
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second)),
	}, nil
}

// UserID checks a token and returns the user id in its sub.
func (v *Verifier) UserID(token string) (int64, error) {
	if len(token) > MaxTokenLen {
		return 0, ErrInvalid
	}
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.secret, nil })
	if errors.Is(err, jwt.ErrTokenExpired) {
		return 0, ErrExpired
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != claims.Subject {
		return 0, fmt.Errorf("%w: sub must be a positive decimal user id", ErrInvalid)
	}
	return id, nil
}

// Mint signs a shopper token for userID that expires after ttl.
func Mint(secret []byte, userID int64, ttl time.Duration) (string, error) {
	if userID <= 0 {
		return "", errors.New("user id must be positive")
	}
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
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
