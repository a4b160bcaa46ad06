package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// queueToken is what a waiting room's queue token says: whose place it is, for which
// item, the place (its arrival number) and when it was issued (the line's clock). It
// travels as "q1.<payload>.<mac>", base64url without padding, the MAC an HMAC-SHA256
// of "q1." and the payload under the gateways' shared key, so any gateway of the fleet
// reads it and nobody can change it.
type queueToken struct {
	ActivityID, ItemID, UserID int64
	Seq                        int64
	Issued                     time.Time
}

const queueTokenPrefix = "q1."

// maxQueueToken bounds the header before it is decoded.
const maxQueueToken = 256

var errQueueToken = errors.New("invalid queue token")

// queueKey derives the tokens' HMAC key. The secret is the configured one, or else
// the shoppers' JWT secret: either way one every gateway has. The derivation keeps
// the two uses apart: a queue token's MAC is never a valid JWT signature.
func queueKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("seckill waiting room queue tokens v1"))
	return m.Sum(nil)
}

func (t queueToken) payload() string {
	return strconv.FormatInt(t.ActivityID, 10) + "." + strconv.FormatInt(t.ItemID, 10) + "." + strconv.FormatInt(t.UserID, 10) + "." +
		strconv.FormatInt(t.Seq, 10) + "." + strconv.FormatInt(t.Issued.UnixMilli(), 10)
}

func queueMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(queueTokenPrefix))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// sign returns the token's text.
func (t queueToken) sign(key []byte) string {
	p := base64.RawURLEncoding.EncodeToString([]byte(t.payload()))
	return queueTokenPrefix + p + "." + base64.RawURLEncoding.EncodeToString(queueMAC(key, p))
}

// parseQueueToken checks a token's MAC and reads it; any change to it, or anything
// that is not a token, is errQueueToken.
func parseQueueToken(key []byte, s string) (queueToken, error) {
	if len(s) > maxQueueToken || !strings.HasPrefix(s, queueTokenPrefix) {
		return queueToken{}, errQueueToken
	}
	p, mac, ok := strings.Cut(s[len(queueTokenPrefix):], ".")
	if !ok {
		return queueToken{}, errQueueToken
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(mac)
	if err != nil || !hmac.Equal(got, queueMAC(key, p)) {
		return queueToken{}, errQueueToken
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(p)
	if err != nil {
		return queueToken{}, errQueueToken
	}
	f := strings.Split(string(raw), ".")
	if len(f) != 5 {
		return queueToken{}, errQueueToken
	}
	var n [5]int64
	for i, s := range f {
		if n[i], err = strconv.ParseInt(s, 10, 64); err != nil || n[i] <= 0 {
			return queueToken{}, errQueueToken
		}
	}
	return queueToken{ActivityID: n[0], ItemID: n[1], UserID: n[2], Seq: n[3], Issued: time.UnixMilli(n[4])}, nil
}
