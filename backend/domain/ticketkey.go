package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TicketKey mints tickets that say when they were admitted and whose they are:
// "<activity>-<item>-<admitted, unix ms in base 36>.<random>.<mac>", where the MAC
// (HMAC-SHA256 of the rest and the owner's id, 8 bytes) is made with a key every
// backend of a fleet shares. A ticket that both Redis and MySQL have lost (Redis lost
// it with its data before its order was written) can then still be told apart from
// one that never was: it is in flight while its order may still be written, and is
// decided after that (Service.ticket). Nobody can mint one that passes, for themselves
// or for another shopper. Tickets are at most 80 bytes (the orders' column).
//
// A key may keep the one it replaced: tickets minted with that still read as this
// fleet's (Admitted), new ones are minted with the key itself, so the key can change
// during a sale.
type TicketKey struct {
	macs     sync.Pool // of hash.Hash, HMAC-SHA256 with the key
	previous *TicketKey
}

// ticketMACLen is the MAC's length in bytes; ticketRandLen the random part's.
const ticketMACLen, ticketRandLen = 8, 6

// NewTicketKey returns the key of secret (at least 16 bytes: callers derive it),
// keeping previous (none when empty) for the tickets it minted.
func NewTicketKey(secret, previous []byte) *TicketKey {
	k := newKey(secret)
	if len(previous) > 0 {
		k.previous = newKey(previous)
	}
	return k
}

func newKey(secret []byte) *TicketKey {
	k := &TicketKey{}
	secret = append([]byte(nil), secret...)
	k.macs.New = func() any { return hmac.New(sha256.New, secret) }
	return k
}

// Mint returns a new ticket of activityID's itemID for userID, admitted at, with
// random (ticketRandLen bytes or more; the first are used) making it unique.
func (k *TicketKey) Mint(activityID, itemID, userID int64, at time.Time, random []byte) string {
	b := make([]byte, 0, 80)
	b = strconv.AppendInt(b, activityID, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, itemID, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, at.UnixMilli(), 36)
	b = append(b, '.')
	b = hex.AppendEncode(b, random[:ticketRandLen])
	body := len(b)
	b = append(b, '.')
	b = k.appendMAC(b, b[:body], userID)
	return string(b)
}

// Admitted returns when ticket was admitted, if k (or the key it replaced) minted it
// for userID; false for any other string (another key's, another shopper's, a
// ticket of the older form without a time, a forgery).
func (k *TicketKey) Admitted(ticket string, userID int64) (time.Time, bool) {
	if _, _, err := ParseTicket(ticket); err != nil {
		return time.Time{}, false
	}
	dot := strings.LastIndexByte(ticket, '.')
	if dot < 0 || len(ticket)-dot-1 != 2*ticketMACLen {
		return time.Time{}, false
	}
	body, mac := ticket[:dot], ticket[dot+1:]
	third := body[strings.LastIndexByte(body, '-')+1:]
	ms36, random, ok := strings.Cut(third, ".")
	if !ok || len(random) != 2*ticketRandLen {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(ms36, 36, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false
	}
	for key := k; key != nil; key = key.previous {
		var buf [2 * ticketMACLen]byte
		if hmac.Equal(key.appendMAC(buf[:0], []byte(body), userID), []byte(mac)) {
			return time.UnixMilli(ms), true
		}
	}
	return time.Time{}, false
}

// appendMAC appends the hex MAC of body for userID to b.
func (k *TicketKey) appendMAC(b, body []byte, userID int64) []byte {
	h := k.macs.Get().(hash.Hash)
	defer k.macs.Put(h)
	h.Reset()
	h.Write(body)
	var uid [20]byte
	h.Write(strconv.AppendInt(append(uid[:0], ':'), userID, 10))
	var sum [sha256.Size]byte
	return hex.AppendEncode(b, h.Sum(sum[:0])[:ticketMACLen])
}
