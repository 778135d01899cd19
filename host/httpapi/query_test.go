package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
)

func TestQueryKeysAreCaseInsensitiveAndDecoded(t *testing.T) {
	q := parseQuery("ShowInput=FALSE&reason=bye+now%21&REASON=%20again%20&bad=%zz+x&=v&flag&taskHub=%20")
	if q.boolean("showinput", true) {
		t.Error("ShowInput=FALSE should read as false")
	}
	if got := q.str("Reason"); got != "bye now!,again" {
		t.Errorf("reason %q", got)
	}
	if got := q.str("bad"); got != "%zz x" {
		t.Errorf("invalid escape %q, want it kept", got)
	}
	if v, ok := q.get("flag"); !ok || v != "" {
		t.Errorf("flag %q %v", v, ok)
	}
	if got := q.str("taskhub"); got != "" {
		t.Errorf("taskHub %q, want trimmed to empty", got)
	}
}

func TestQueryValues(t *testing.T) {
	bools := []struct {
		in   string
		def  bool
		want bool
	}{
		{"true", false, true}, {"TRUE", false, true}, {" True ", false, true}, {"false", true, false},
		{"yes", true, true}, {"1", false, false}, {"", true, true}, {"tru", false, false},
	}
	for _, c := range bools {
		if got := parseQuery("b="+c.in).boolean("b", c.def); got != c.want {
			t.Errorf("bool %q (default %v) = %v", c.in, c.def, got)
		}
	}
	ints := []struct {
		in   string
		n    int
		want bool
	}{
		{"5", 5, true}, {"+7", 7, true}, {"-3", -3, true}, {"%205%20", 5, true}, {"abc", 0, false},
		{"1.5", 0, false}, {"99999999999", 0, false}, {"", 0, false},
	}
	for _, c := range ints {
		n, ok := parseQuery("top=" + c.in).integer("top")
		if n != c.n || ok != c.want {
			t.Errorf("int %q = %d %v", c.in, n, ok)
		}
	}
	secs := []struct {
		in   string
		d    time.Duration
		want bool
	}{
		{"2", 2 * time.Second, true}, {"0.5", 500 * time.Millisecond, true}, {"1e1", 10 * time.Second, true},
		{"0", 0, true}, {"-1", 0, false}, {"NaN", 0, false}, {"Infinity", 0, false}, {"0x10", 0, false},
		{"1_0", 0, false}, {"abc", 0, false}, {"1e300", 0, false},
	}
	for _, c := range secs {
		d, ok := parseQuery("timeout=" + c.in).seconds("timeout")
		if d != c.d || ok != c.want {
			t.Errorf("seconds %q = %v %v", c.in, d, ok)
		}
	}
}

func TestParseTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	good := map[string]time.Time{
		"2020-01-01T00:00:00.000Z":      utc(2020, 1, 1, 0, 0, 0, 0),
		"2020-01-01T10:20:30Z":          utc(2020, 1, 1, 10, 20, 30, 0),
		"2020-01-01T10:20:30.1234567Z":  utc(2020, 1, 1, 10, 20, 30, 123456700),
		"2020-01-01T10:20:30+02:00":     utc(2020, 1, 1, 8, 20, 30, 0),
		"2020-01-01T10:20:30":           utc(2020, 1, 1, 10, 20, 30, 0),
		"2020-01-01T10:20":              utc(2020, 1, 1, 10, 20, 0, 0),
		"2020-01-01 10:20:30":           utc(2020, 1, 1, 10, 20, 30, 0),
		"2020-01-01":                    utc(2020, 1, 1, 0, 0, 0, 0),
		"01/02/2020":                    utc(2020, 1, 2, 0, 0, 0, 0),
		" 2020-01-01T00:00:00Z ":        utc(2020, 1, 1, 0, 0, 0, 0),
		"2-01-01T00:00:00.000Z":         utc(2, 1, 1, 0, 0, 0, 0),
		"999-12-31T00:00:00Z":           utc(999, 12, 31, 0, 0, 0, 0),
		"2020-06-04T15:18:28.123+00:00": utc(2020, 6, 4, 15, 18, 28, 123000000),
	}
	for in, want := range good {
		got, ok := parseTime(in)
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseTime(%q) = %v %v, want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "yesterday", "2020-13-01", "2020-01-01T25:00:00Z", "12345-01-01", "-01-01"} {
		if got, ok := parseTime(in); ok {
			t.Errorf("parseTime(%q) = %v, want absent", in, got)
		}
	}
}

func TestRuntimeStatusFilter(t *testing.T) {
	cases := []struct {
		query string
		set   bool
		want  []abi.RuntimeStatus
	}{
		{"", false, nil},
		{"runtimeStatus=Running", true, []abi.RuntimeStatus{abi.StatusRunning}},
		{"runtimeStatus=Running,Completed&runtimestatus=Failed", true, []abi.RuntimeStatus{abi.StatusRunning, abi.StatusCompleted, abi.StatusFailed}},
		{"runtimeStatus=running,COMPLETED", false, nil}, // names are case-sensitive
		{"runtimeStatus=1,7", true, []abi.RuntimeStatus{abi.StatusCompleted, abi.StatusSuspended}},
		{"runtimeStatus=%20Pending%20,+Failed", true, []abi.RuntimeStatus{abi.StatusPending, abi.StatusFailed}},
		{"runtimeStatus=Running,bogus,,Running,0", true, []abi.RuntimeStatus{abi.StatusRunning}},
		{"runtimeStatus=Unknown", true, nil}, // parses, matches nothing
		{"runtimeStatus=42", true, nil},
		{"runtimeStatus=-1,Terminated", true, []abi.RuntimeStatus{abi.StatusTerminated}},
		{"runtimeStatus=1.0", false, nil},
	}
	for _, c := range cases {
		f := parseQuery(c.query).runtimeStatus()
		if f.set != c.set || !reflect.DeepEqual(f.statuses, c.want) {
			t.Errorf("%q = %+v, want set=%v %v", c.query, f, c.set, c.want)
		}
	}
}

func TestSplitPathAndMatch(t *testing.T) {
	cases := []struct {
		method, path string
		route        string
		params       params
		rpc          bool
	}{
		{"GET", "/runtime/webhooks/durabletask/instances", "list", nil, false},
		{"GET", "/runtime/webhooks/durabletask/instances/", "list", nil, false},
		{"GET", "//Runtime/WebHooks/durableTask/Instances//", "list", nil, false},
		{"GET", "/durabletask/instances/a%20b", "status", params{"instanceId": "a b"}, true},
		{"GET", "/runtime/webhooks/durabletask/instances/a+b", "status", params{"instanceId": "a+b"}, false},
		{"POST", "/runtime/webhooks/durabletask/instances/x/TERMINATE/", "terminate", params{"instanceId": "x"}, false},
		{"POST", "/runtime/webhooks/durabletask/instances/x/raiseevent/Ev%2F1", "raiseEvent", params{"instanceId": "x", "eventName": "Ev/1"}, false},
		{"POST", "/runtime/webhooks/durabletask/orchestrators/F/wait", "startWithID", params{"functionName": "F", "instanceId": "wait"}, false},
		{"POST", "/orchestrators/F/wait", "httpStartAndWait", params{"functionName": "F"}, false},
		{"POST", "/API/orchestrators/F/", "httpStart", params{"functionName": "F"}, false},
		{"GET", "/runtime/webhooks/durabletask/orchestrators/F", "", nil, false},
		{"GET", "/runtime/webhooks/durabletask/instances/x/terminate", "", nil, false},
		{"POST", "/runtime/webhooks/durabletask/instances/x", "", nil, false},
		{"POST", "/runtime/webhooks/durabletask/instances/x/explode", "", nil, false},
		{"POST", "/runtime/webhooks/durabletask/instances//terminate", "", nil, false},
		{"PUT", "/runtime/webhooks/durabletask/instances", "", nil, false},
		{"GET", "/runtime/webhooks/durabletask/entities/e/k", "", nil, false},
		{"POST", "/runtime/webhooks/durabletask/makeprimary", "", nil, false},
		{"GET", "/runtime/webhooks/durabletask", "", nil, false},
		{"POST", "/orchestrators/F/other", "", nil, false},
		{"GET", "/", "", nil, false},
	}
	for _, c := range cases {
		segs, ok := splitPath(c.path)
		if !ok {
			t.Fatalf("splitPath(%q) failed", c.path)
		}
		rt, p, rpc := match(c.method, segs)
		name := ""
		if rt != nil {
			name = rt.name
		}
		if name != c.route || !reflect.DeepEqual(p, c.params) || rpc != c.rpc {
			t.Errorf("%s %s = %q %v rpc=%v, want %q %v rpc=%v", c.method, c.path, name, p, rpc, c.route, c.params, c.rpc)
		}
	}
	if _, ok := splitPath("/instances/%zz"); ok {
		t.Error("an invalid escape should not split")
	}
}

// FuzzQueryParsers: no input makes the query parsers panic, and every
// parsed status is a known one.
func FuzzQueryParsers(f *testing.F) {
	for _, s := range []string{"", "runtimeStatus=Running,1&runtimeStatus=x", "top=%", "timeout=1e309&pollingInterval=-0",
		"createdTimeFrom=2-01-01T00:00:00Z", "a=%zz&&=&b", "showInput=TRUE&showHistory=%00", "createdTimeTo=01/02/2006%2015:04:05"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q := parseQuery(raw)
		for _, k := range []string{"showInput", "top", "timeout", "createdTimeFrom", "runtimeStatus", "code"} {
			q.boolean(k, true)
			q.integer(k)
			if d, ok := q.seconds(k); ok && d < 0 {
				t.Fatalf("negative duration %v from %q", d, raw)
			}
			q.time(k)
			q.str(k)
		}
		for _, s := range q.runtimeStatus().statuses {
			if s.Value() < 0 {
				t.Fatalf("unknown status %q from %q", s, raw)
			}
		}
		for _, v := range q {
			for _, s := range v {
				parseTime(s)
			}
		}
	})
}

// FuzzPathRouting: no path makes splitPath or match panic, and a matched
// route's parameters are non-empty decoded segments.
func FuzzPathRouting(f *testing.F) {
	for _, s := range []string{"/runtime/webhooks/durabletask/instances/a%20b/raiseEvent/e", "/durabletask/orchestrators/F/x",
		"//", "/orchestrators/%2F/wait", "/%zz", "/api/orchestrators/F"} {
		f.Add("POST", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		segs, ok := splitPath(path)
		if !ok {
			return
		}
		rt, p, _ := match(strings.ToUpper(method), segs)
		if rt == nil {
			return
		}
		for k, v := range p {
			if v == "" {
				t.Fatalf("%s %q: empty %s", method, path, k)
			}
		}
	})
}

// FuzzServe sends arbitrary requests through the whole handler (over the
// fake store): none may panic (a recovered panic or an unexpected error
// shows as the generic 500 body).
func FuzzServe(f *testing.F) {
	f.Add("POST", "/runtime/webhooks/durabletask/orchestrators/Hello/x?timeout=0&pollingInterval=0", `{"a":1}`, "application/json")
	f.Add("GET", "/runtime/webhooks/durabletask/instances?runtimeStatus=1,Running&top=-1&createdTimeFrom=2-1-1", "", "")
	f.Add("POST", "/durabletask/instances/run/raiseEvent/E", `"x"`, "application/json; charset=utf-8")
	f.Add("DELETE", "/runtime/webhooks/durabletask/instances?createdTimeFrom=01/02/2006", "", "")
	f.Add("POST", "/orchestrators/Hello/wait?timeout=0&retryInterval=0&taskHub=%20", "", "text/plain")
	f.Fuzz(func(t *testing.T, method, target, body, ctype string) {
		if !strings.HasPrefix(target, "/") {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || strings.ContainsAny(target, " \t\r\n") {
			return // net/http itself refuses such a request line
		}
		s, _ := newTestServer(t, func(o *Options) { o.MaxWait = time.Millisecond }) // wait mode must not stall the fuzzer
		methods := []string{"POST", "GET", "DELETE", "PUT", "HEAD", "PATCH"}
		r := &http.Request{Method: methods[len(method)%len(methods)], URL: u, Host: "localhost:7071", RequestURI: target,
			Header: http.Header{"Content-Type": {ctype}, "X-Functions-Key": {testKey}},
			Body:   io.NopCloser(strings.NewReader(body)), RemoteAddr: "127.0.0.1:50000"}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if strings.Contains(w.Body.String(), msgInternal) {
			t.Fatalf("%s %s: %d %s", r.Method, target, w.Code, w.Body)
		}
	})
}
