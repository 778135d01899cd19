package host

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the names users and guests give. A name that breaks a rule is
// refused where it enters (client, HTTP API, CLI, host call) with an error
// that names the rule: a name is stored, hashed to a partition and put in
// JSON, URLs and logs, and each of those must see the same bytes.
const (
	// MaxInstanceIDLength is the longest instance id accepted, in characters.
	MaxInstanceIDLength = 256
	// MaxNameLength is the longest function, event or app-visible name
	// accepted, in characters.
	MaxNameLength = 256
	// MaxReasonLength is the longest reason (terminate, suspend, resume,
	// rewind) accepted, in bytes.
	MaxReasonLength = 64 << 10
)

// ValidateInstanceID checks an instance id against Durable Functions' rules
// and the ones that keep an id the same everywhere it travels: not empty, at
// most MaxInstanceIDLength characters of valid UTF-8, not "." or ".." (which
// URLs resolve away), not starting with '@' (reserved for entities), and free
// of '/', '\', '#', '?' and control characters. The error says which rule
// failed.
func ValidateInstanceID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("invalid instance id: it is empty (use 1–%d characters, or omit it for a random one)", MaxInstanceIDLength)
	case !utf8.ValidString(id):
		return fmt.Errorf("invalid instance id %s: it is not valid UTF-8 text; ids are UTF-8 strings of 1–%d characters", ShortQuote(id), MaxInstanceIDLength)
	case utf8.RuneCountInString(id) > MaxInstanceIDLength:
		return fmt.Errorf("invalid instance id %s: it is %d characters long; at most %d are accepted", ShortQuote(id), utf8.RuneCountInString(id), MaxInstanceIDLength)
	case id == "." || id == "..":
		return fmt.Errorf("invalid instance id %q: '.' and '..' are path segments that URLs resolve away; use another id", id)
	case strings.HasPrefix(id, "@"):
		return fmt.Errorf("invalid instance id %s: ids starting with '@' are reserved for entities", ShortQuote(id))
	}
	for _, r := range id {
		if r == '/' || r == '\\' || r == '#' || r == '?' || unicode.IsControl(r) {
			return fmt.Errorf("invalid instance id %s: it contains %q; the characters / \\ # ? and control characters are not accepted", ShortQuote(id), r)
		}
	}
	return nil
}

// ValidateName checks a function or event name: not empty, at most
// MaxNameLength characters of valid UTF-8, no control characters. what
// names the kind of name in the error ("orchestrator name", "event name").
func ValidateName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the %s is required", what)
	case !utf8.ValidString(name):
		return fmt.Errorf("invalid %s %s: it is not valid UTF-8 text", what, ShortQuote(name))
	case utf8.RuneCountInString(name) > MaxNameLength:
		return fmt.Errorf("invalid %s %s: it is %d characters long; at most %d are accepted", what, ShortQuote(name), utf8.RuneCountInString(name), MaxNameLength)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("invalid %s %s: it contains the control character %q; names are printable text", what, ShortQuote(name), r)
		}
	}
	return nil
}

// ValidateReason checks a free-text reason (terminate, suspend, resume,
// rewind): valid UTF-8, at most MaxReasonLength bytes, no control characters
// but tab and newlines. An empty reason is accepted.
func ValidateReason(reason string) error {
	switch {
	case !utf8.ValidString(reason):
		return fmt.Errorf("invalid reason %s: it is not valid UTF-8 text", ShortQuote(reason))
	case len(reason) > MaxReasonLength:
		return fmt.Errorf("invalid reason: it is %d bytes long; at most %d are accepted", len(reason), MaxReasonLength)
	}
	for _, r := range reason {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return fmt.Errorf("invalid reason %s: it contains the control character %q", ShortQuote(reason), r)
		}
	}
	return nil
}

// ShortQuote quotes s for an error message, eliding the middle of a long
// string so that an oversized name is not echoed whole.
func ShortQuote(s string) string {
	const keep = 40
	if len(s) <= 2*keep+16 {
		return fmt.Sprintf("%q", s)
	}
	head, tail := s[:keep], s[len(s)-keep:]
	return fmt.Sprintf("%q…(%d bytes)…%q", head, len(s), tail)
}
