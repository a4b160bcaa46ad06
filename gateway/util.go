package gateway

import (
	"crypto/rand"
	"encoding/hex"

	kcallopt "github.com/cloudwego/kitex/client/callopt"
)

// callopt is a kitex per-call option, as the generated client's methods take them.
type callopt = kcallopt.Option

func newRandomKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}
