package host

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
)

func nowNanos() int64 { return time.Now().UnixNano() }

func encodeJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return b
}

// randomGUID returns a random version-4 UUID string.
func randomGUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// NewInstanceID returns a random instance id in Durable Functions' default
// form: 32 lowercase hex characters.
func NewInstanceID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	return hex.EncodeToString(u[:])
}

// MaxInstanceIDLength is the longest instance id accepted.
const MaxInstanceIDLength = 256

// ValidateInstanceID checks an instance id against Durable Functions' rules:
// not empty, at most 256 characters, not starting with '@', and free of
// '/', '\', '#', '?' and control characters. The error says which rule failed.
func ValidateInstanceID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("invalid instance id: it is empty (use 1–%d characters, or omit it for a random one)", MaxInstanceIDLength)
	case len([]rune(id)) > MaxInstanceIDLength:
		return fmt.Errorf("invalid instance id: it is %d characters long; at most %d are accepted", len([]rune(id)), MaxInstanceIDLength)
	case strings.HasPrefix(id, "@"):
		return fmt.Errorf("invalid instance id %q: ids starting with '@' are reserved for entities", id)
	}
	for _, r := range id {
		if r == '/' || r == '\\' || r == '#' || r == '?' || unicode.IsControl(r) {
			return fmt.Errorf("invalid instance id %q: it contains %q; the characters / \\ # ? and control characters are not accepted", id, r)
		}
	}
	return nil
}
