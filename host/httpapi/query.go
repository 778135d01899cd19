package httpapi

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/abi"
)

// query holds a request's query parameters the way Durable Functions reads
// them: keys case-insensitive, names and values URL-decoded ('+' is a
// space; an invalid escape is kept as is), values trimmed, repeated keys
// kept in order.
type query map[string][]string

// parseQuery parses a raw query string. It never fails.
func parseQuery(raw string) query {
	q := query{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k = strings.ToLower(strings.TrimSpace(decodeQueryPart(k)))
		if k == "" {
			continue
		}
		q[k] = append(q[k], strings.TrimSpace(decodeQueryPart(v)))
	}
	return q
}

// decodeQueryPart URL-decodes s; on an invalid escape it returns s with only
// '+' turned into spaces, as .NET's lenient UrlDecode does.
func decodeQueryPart(s string) string {
	d, err := url.QueryUnescape(s)
	if err != nil {
		return strings.ReplaceAll(s, "+", " ")
	}
	return d
}

// get returns the values of key joined with commas (.NET's
// NameValueCollection[key]) and whether the key is present.
func (q query) get(key string) (string, bool) {
	v, ok := q[strings.ToLower(key)]
	if !ok {
		return "", false
	}
	return strings.Join(v, ","), true
}

// str returns the value of key, "" when absent.
func (q query) str(key string) string {
	v, _ := q.get(key)
	return v
}

// boolean parses key like .NET bool.TryParse ("true"/"false" in any case);
// anything else, or absence, gives def.
func (q query) boolean(key string, def bool) bool {
	v, ok := q.get(key)
	if !ok {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true
	case "false":
		return false
	}
	return def
}

// integer parses key like .NET int.TryParse (optional sign, 32-bit range);
// ok is false when it is absent or bad.
func (q query) integer(key string) (n int, ok bool) {
	v, present := q.get(key)
	if !present {
		return 0, false
	}
	i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, false
	}
	return int(i), true
}

// seconds parses key as a number of seconds (.NET double.TryParse); ok is
// false when it is absent, bad, not finite or negative.
func (q query) seconds(key string) (d time.Duration, ok bool) {
	v, present := q.get(key)
	if !present {
		return 0, false
	}
	v = strings.TrimSpace(v)
	if strings.ContainsAny(v, "xX_") { // hex floats and digit separators are Go-only syntax
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > float64(math.MaxInt64/int64(time.Second)) {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// dateLayouts are the forms parseTime accepts, tried in order.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02",
	"01/02/2006 15:04:05",
	"01/02/2006",
}

// parseTime parses a date like .NET DateTime.TryParse in the invariant
// culture, leniently: ISO 8601 with or without fraction and offset, a
// space instead of 'T', a date alone, MM/dd/yyyy, and years of fewer than
// four digits (Python's un-padded years). A time without an offset is UTC.
// The result is UTC.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	s = padYear(s)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// padYear left-pads a leading year of 1-3 digits followed by '-' to four
// digits ("2-01-01" becomes "0002-01-01").
func padYear(s string) string {
	i := 0
	for i < len(s) && i < 4 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 && i < 4 && i < len(s) && s[i] == '-' {
		return strings.Repeat("0", 4-i) + s
	}
	return s
}

// time parses key with parseTime; ok is false when absent or bad.
func (q query) time(key string) (time.Time, bool) {
	v, present := q.get(key)
	if !present {
		return time.Time{}, false
	}
	return parseTime(v)
}

// statusFilter is a parsed runtimeStatus parameter.
type statusFilter struct {
	// set is true when at least one piece parsed: the filter applies.
	set bool
	// statuses are the known statuses named; with set and none of them, no
	// instance matches (e.g. "Unknown" or "42").
	statuses []abi.RuntimeStatus
}

// runtimeStatus parses the runtimeStatus parameter like .NET
// Enum.TryParse on each comma-separated piece of every repeated key:
// names are case-sensitive, numbers are accepted ("1" is Completed),
// pieces that do not parse are dropped, and when nothing parses there is no
// filter. The extension's Unknown (-1) and other numbers parse but match
// no instance.
func (q query) runtimeStatus() statusFilter {
	var f statusFilter
	seen := map[abi.RuntimeStatus]bool{}
	for _, v := range q["runtimestatus"] {
		for _, piece := range strings.Split(v, ",") {
			piece = strings.TrimSpace(piece)
			s, ok := parseStatusPiece(piece)
			if !ok {
				continue
			}
			f.set = true
			if s != "" && !seen[s] {
				seen[s] = true
				f.statuses = append(f.statuses, s)
			}
		}
	}
	return f
}

// parseStatusPiece parses one status: ok reports whether it parsed, s is
// "" for a value that parses but names no status of ours.
func parseStatusPiece(p string) (s abi.RuntimeStatus, ok bool) {
	if p == "" {
		return "", false
	}
	if p == "Unknown" {
		return "", true
	}
	for _, v := range abi.AllStatuses {
		if p == string(v) {
			return v, true
		}
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return "", false
	}
	if n >= 0 && int(n) < len(abi.AllStatuses) {
		return abi.AllStatuses[n], true
	}
	return "", true
}
