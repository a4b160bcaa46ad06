package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seckill/flashsale/gateway"
)

// TestWeakSecretsRefused: a gateway does not start with a secret an attacker could
// guess, and says which setting is wrong.
func TestWeakSecretsRefused(t *testing.T) {
	good := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for _, tt := range []struct {
		name, jwt, admin, want string
	}{
		{"no jwt secret", "", good, "gateway.jwt_secret"},
		{"one letter", strings.Repeat("a", 32), good, "gateway.jwt_secret"},
		{"short", "0f3a9c2b7e1d4a6f", good, "gateway.jwt_secret"},
		{"k8s placeholder", "change-me-to-32-random-bytes", good, "gateway.jwt_secret"},
		{"admin placeholder", good, "change-me-to-32-random-bytes-0000", "gateway.admin_token"},
		{"admin run", good, "abcdefghijklmnopqrstuvwxyz012345", "gateway.admin_token"},
		{"the same", good, good, "must differ"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gateway.Open(context.Background(), gateway.Config{Listen: "127.0.0.1:0", BackendAddrs: []string{"127.0.0.1:1"},
				JWTSecret: tt.jwt, AdminToken: tt.admin}, gateway.Deps{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
			if tt.jwt != "" && strings.Contains(err.Error(), tt.jwt) || strings.Contains(err.Error(), tt.admin) {
				t.Fatalf("the error %q shows the secret", err)
			}
		})
	}
}

// b64 is base64url without padding, as JWKs write numbers.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwksServer serves a JWK Set of an RSA and an EC key made for the test, counting
// the fetches.
func jwksServer(t *testing.T) (url string, rsaKey *rsa.PrivateKey, ecKey *ecdsa.PrivateKey, fetches *atomic.Int32) {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ecKey.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "EC", "kid": "ec-1", "alg": "ES256", "use": "sig", "crv": "P-256", "x": b64(ecPub[1:33]), "y": b64(ecPub[33:])},
	}})
	if err != nil {
		t.Fatal(err)
	}
	fetches = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(set)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, rsaKey, ecKey, fetches
}

// signed is a token of claims signed by key with method, with kid in its header.
func signed(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokensFromJWKS: RS256 and ES256 tokens from a storefront's identity provider
// are accepted through its JWKS, alongside the gateway's own HS256 tokens; a token
// signed by another key, one that passes the public key off as an HMAC secret, or one
// of another issuer or audience or too old is refused, and made-up kids do not make
// the gateway fetch the key set each time.
func TestTokensFromJWKS(t *testing.T) {
	url, rsaKey, ecKey, fetches := jwksServer(t)
	f := startGateway(t, func(c *gateway.Config) {
		c.JWKSURL, c.JWTIssuer, c.JWTAudience, c.JWTMaxAge = url, "https://id.shop.example", "seckill", time.Hour
	})
	now := time.Now()
	claims := func(sub string, mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": sub, "iss": "https://id.shop.example", "aud": []string{"seckill", "other"},
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))})
	for _, tt := range []struct {
		name  string
		token string
		want  int
	}{
		{"RS256 of the JWKS", signed(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("41", nil)), http.StatusAccepted},
		{"ES256 of the JWKS", signed(t, jwt.SigningMethodES256, ecKey, "ec-1", claims("42", nil)), http.StatusAccepted},
		{"HS256 of the gateway", signed(t, jwt.SigningMethodHS256, []byte(secret), "", claims("43", nil)), http.StatusAccepted},
		{"RS256 without kid", signed(t, jwt.SigningMethodRS256, rsaKey, "", claims("44", nil)), http.StatusAccepted},
		{"RS256 of another key", signed(t, jwt.SigningMethodRS256, otherRSA, "rsa-1", claims("45", nil)), http.StatusUnauthorized},
		{"ES256 under the RSA kid", signed(t, jwt.SigningMethodES256, ecKey, "rsa-1", claims("46", nil)), http.StatusUnauthorized},
		{"public key as HMAC secret", signed(t, jwt.SigningMethodHS256, pubPEM, "rsa-1", claims("47", nil)), http.StatusUnauthorized},
		{"RS512", signed(t, jwt.SigningMethodRS512, rsaKey, "rsa-1", claims("48", nil)), http.StatusUnauthorized},
		{"other issuer", signed(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("49", func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), http.StatusUnauthorized},
		{"no issuer", signed(t, jwt.SigningMethodHS256, []byte(secret), "", claims("50", func(c jwt.MapClaims) { delete(c, "iss") })), http.StatusUnauthorized},
		{"other audience", signed(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("51", func(c jwt.MapClaims) { c["aud"] = "shop" })), http.StatusUnauthorized},
		{"too old", signed(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("52", func(c jwt.MapClaims) {
			c["iat"] = now.Add(-2 * time.Hour).Unix()
			c["exp"] = now.Add(time.Hour).Unix()
		})), http.StatusUnauthorized},
		{"no iat", signed(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("53", func(c jwt.MapClaims) { delete(c, "iat") })), http.StatusUnauthorized},
		{"issued in the future", signed(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("54", func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })), http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r := f.do(t, "POST", "/api/v1/orders", tt.token, order); r.status != tt.want {
				t.Fatalf("got %d %v, want %d", r.status, r.body, tt.want)
			}
		})
	}
	before := fetches.Load()
	for i := range 20 {
		tk := signed(t, jwt.SigningMethodRS256, otherRSA, "made-up-"+string(rune('a'+i)), claims("60", nil))
		if r := f.do(t, "POST", "/api/v1/orders", tk, order); r.status != http.StatusUnauthorized {
			t.Fatalf("made-up kid: got %d, want 401", r.status)
		}
	}
	if got := fetches.Load() - before; got > 1 {
		t.Fatalf("20 tokens of made-up kids fetched the key set %d times, want at most once", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
