package host

import (
	"strings"
	"testing"
)

func TestValidateInstanceID(t *testing.T) {
	for _, tc := range []struct {
		name, id, wantErr string
	}{
		{name: "plain", id: "order-42"},
		{name: "braces and colons", id: "{a}:b*c"},
		{name: "unicode", id: "größe-東京"},
		{name: "longest", id: strings.Repeat("é", MaxInstanceIDLength)},
		{name: "empty", id: "", wantErr: "it is empty"},
		{name: "invalid UTF-8", id: "a\xffb", wantErr: `"a\xffb": it is not valid UTF-8`},
		{name: "dot", id: ".", wantErr: "'.' and '..'"},
		{name: "dot dot", id: "..", wantErr: "'.' and '..'"},
		{name: "too long", id: strings.Repeat("x", MaxInstanceIDLength+1), wantErr: "257 characters long"},
		{name: "entity", id: "@counter@x", wantErr: "reserved for entities"},
		{name: "slash", id: "a/b", wantErr: `contains '/'`},
		{name: "control", id: "a\nb", wantErr: `contains '\n'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateInstanceID(tc.id)
			checkErr(t, err, tc.wantErr)
		})
	}
}

func TestValidateNameAndReason(t *testing.T) {
	huge := strings.Repeat("n", 1<<20)
	for _, tc := range []struct {
		name, value, wantErr string
		reason               bool
	}{
		{name: "name", value: "E1_HelloSequence"},
		{name: "empty name", value: "", wantErr: "the event name is required"},
		{name: "invalid UTF-8 name", value: "x\xc3", wantErr: "not valid UTF-8"},
		{name: "control in name", value: "x\x00y", wantErr: "control character"},
		{name: "huge name is not echoed", value: huge, wantErr: "1048576 characters long"},
		{name: "reason with newlines", value: "line 1\nline 2\ttab", reason: true},
		{name: "empty reason", value: "", reason: true},
		{name: "invalid UTF-8 reason", value: "bad \xff", reason: true, wantErr: "not valid UTF-8"},
		{name: "NUL in reason", value: "a\x00", reason: true, wantErr: "control character"},
		{name: "huge reason", value: huge, reason: true, wantErr: "at most 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.reason {
				err = ValidateReason(tc.value)
			} else {
				err = ValidateName("event name", tc.value)
			}
			checkErr(t, err, tc.wantErr)
			if err != nil && len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long; a long value must not be echoed whole", len(err.Error()))
			}
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error; want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}
