package host

import (
	"crypto/rand"
	"encoding/hex"
)

// NewInstanceID returns a random instance id in Durable Functions' default
// form: 32 lowercase hex characters.
func NewInstanceID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	return hex.EncodeToString(u[:])
}
