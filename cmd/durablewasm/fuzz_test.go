package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The CLI's input parsers take operator input verbatim: they must never
// panic and must keep their documented contracts on any input. Run longer
// with e.g. `go test ./cmd/durablewasm -fuzz FuzzNormalizeArgs -fuzztime 1m`.

func FuzzNormalizeArgs(f *testing.F) {
	for _, s := range []string{
		"durablewasm get-runtime-status --id x --show-output true",
		"durablewasm deploy app.wasm --name x",
		"durablewasm start-new --function-name F --input @in.json --wait",
		"durablewasm -- --id",
		"durablewasm purge-history --runtime-status failed terminated --force FALSE",
		"durablewasm --help",
		"durablewasm x --=y - -- a --b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		out := normalizeArgs(args)
		if len(out) > len(args) {
			t.Fatalf("normalizeArgs(%q) = %q: more arguments than given", args, out)
		}
		if len(args) > 0 && (len(out) == 0 || out[0] != args[0]) {
			t.Fatalf("normalizeArgs(%q) = %q: program name changed", args, out)
		}
		// Nothing is invented: every output argument is an input argument,
		// or a boolean flag joined with its true/false value.
		in := map[string]int{}
		for _, a := range args {
			in[a]++
		}
		for _, o := range out {
			if in[o] > 0 {
				in[o]--
				continue
			}
			name, val, ok := strings.Cut(o, "=")
			if !ok || !boolFlags[name] || val != "true" && val != "false" {
				t.Fatalf("normalizeArgs(%q) = %q: %q is not from the input", args, out, o)
			}
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2018-03-10", "2018-03-10T23:59Z", "2018-11-14T19:35:00.0000000Z",
		"2018-03-10T23:59:59", " 2018-03-10T23:59 ", "2018-03-10T23:59+02:00", "yesterday", "", "9999-12-31T23:59:59.999999999-23:59"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseTime("created-after", s)
		if err != nil {
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Fatalf("parseTime(%q) error %v is not a usage error (exit 2)", s, err)
			}
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("parseTime(%q) = %v, not UTC", s, tm)
		}
		// The canonical form parses back to the same instant (when it fits
		// RFC 3339's four-digit years).
		if y := tm.Year(); y >= 0 && y <= 9999 {
			back, err := parseTime("created-after", tm.Format(time.RFC3339Nano))
			if err != nil || !back.Equal(tm) {
				t.Fatalf("parseTime(%q) = %v; its RFC 3339 form parses to %v, %v", s, tm, back, err)
			}
		}
	})
}

func FuzzReadValue(f *testing.F) {
	for _, s := range []string{"Amy", `"Amy"`, "42", `{"a":[1,2]}`, "null", " true ", "{", `"\u00e9"`, "\xff", "@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.HasPrefix(v, "@") {
			return // reads a file: covered by the CLI tests
		}
		got, err := readValue("input", v, defaultPayloadLimit)
		if err != nil {
			t.Fatalf("readValue(%q): %v", v, err)
		}
		if v == "" {
			if got != "" {
				t.Fatalf("readValue(\"\") = %q, want \"\"", got)
			}
			return
		}
		if !json.Valid([]byte(got)) {
			t.Fatalf("readValue(%q) = %q: not JSON", v, got)
		}
		if json.Valid([]byte(v)) {
			if got != v {
				t.Fatalf("readValue(%q) = %q: valid JSON must pass unchanged", v, got)
			}
			return
		}
		var s string
		if err := json.Unmarshal([]byte(got), &s); err != nil {
			t.Fatalf("readValue(%q) = %q: text that is not JSON must become a JSON string: %v", v, got, err)
		}
		if utf8.ValidString(v) && s != v {
			t.Fatalf("readValue(%q) = %q, which decodes to %q", v, got, s)
		}
	})
}
