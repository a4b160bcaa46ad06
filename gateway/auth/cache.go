package auth

import (
	"time"

	"github.com/seckill/flashsale/internal/shardlru"
)

// A shopper sends the same token with every request of a sale, and checking it
// (base64, JSON, HMAC or a signature) is the largest cost of an order refused
// at the edge. A Verifier remembers the tokens it accepted, keyed by the whole
// token string: only the very bytes that were verified hit, so a forged or
// altered token (another signature, another claim) is a miss and is verified.
//
// An entry is the answer verification would give, for as long as it would
// give it: until exp (with the leeway), until MaxAge after iat, whichever
// comes first; once either passes, the token is verified again and refused as
// before. The other checks (signature, algorithm, iss, aud, sub, nbf and iat
// not in the future) do not change with time for one Verifier, whose options
// are fixed. A key of a JWKS can be withdrawn by the storefront, so tokens it
// verified are remembered at most jwksLife.
//
// Refusals are not remembered: a flood of bad tokens costs what it costs
// today, and cannot push the shoppers' good tokens out.

// cachedTokens bounds the tokens remembered (about a kilobyte each at most).
const cachedTokens = 100_000

// jwksLife is the longest a token verified by a JWKS key is remembered: a key
// withdrawn stops verifying within it (the key set itself is refreshed less
// often).
const jwksLife = time.Minute

// verified is a token accepted: its user, and until when (exclusive) the
// answer holds.
type verified struct {
	id    int64
	until time.Time
}

type tokenCache struct {
	lru *shardlru.Cache[string, verified]
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{lru: shardlru.New[string, verified](size)}
}

// get returns the user of a token accepted and still valid at now.
func (c *tokenCache) get(token string, now time.Time) (int64, bool) {
	v, ok := c.lru.Get(token)
	if !ok {
		return 0, false
	}
	if !now.Before(v.until) {
		c.lru.Remove(token)
		return 0, false
	}
	return v.id, true
}

func (c *tokenCache) put(token string, id int64, until time.Time) {
	c.lru.Add(token, verified{id: id, until: until})
}
