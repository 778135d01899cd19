package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
)

const wh = "/runtime/webhooks/durabletask"

func key(h map[string]string) map[string]string {
	m := map[string]string{"x-functions-key": testKey}
	for k, v := range h {
		m[k] = v
	}
	return m
}

func TestStatusPayloadBytes(t *testing.T) {
	s, _ := newTestServer(t, nil)
	w := serve(s, request{method: "GET", target: wh + "/instances/run?taskHub=DurableFunctionsHub&connection=Storage", header: key(nil)})
	const want = `{"name":"Hello","instanceId":"run","runtimeStatus":"Running","input":{"city":"Tokyo"},"customStatus":{"step":1},"output":null,"createdTime":"2024-06-04T15:18:28Z","lastUpdatedTime":"2024-06-04T15:18:38Z"}`
	if w.Code != 202 || w.Body.String() != want {
		t.Fatalf("%d %s\nwant %s", w.Code, w.Body, want)
	}
	if loc := w.Header().Get("Location"); loc != testOrigin+wh+"/instances/run?taskHub=DurableFunctionsHub&connection=Storage" {
		t.Fatalf("Location %s", loc)
	}
	// Failed: output is the failure text; 500 only on request.
	w = serve(s, request{method: "GET", target: wh + "/instances/failed?showInput=false", header: key(nil)})
	var p map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if w.Code != 200 || p["output"] != "activity SayHello failed: Error: boom" || p["input"] != nil {
		t.Fatalf("failed: %d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "GET", target: wh + "/instances/failed?returnInternalServerErrorOnFailure=TRUE", header: key(nil)})
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"runtimeStatus":"Failed"`) {
		t.Fatalf("failed with ISE: %d %s", w.Code, w.Body)
	}
	// Terminated: the raw reason as a JSON string.
	w = serve(s, request{method: "GET", target: wh + "/instances/term", header: key(nil)})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"output":"bye now"`) {
		t.Fatalf("terminated: %d %s", w.Code, w.Body)
	}
	// Pending and Suspended are 202.
	for _, id := range []string{"pend", "susp"} {
		if w = serve(s, request{method: "GET", target: wh + "/instances/" + id, header: key(nil)}); w.Code != 202 {
			t.Fatalf("%s: %d", id, w.Code)
		}
	}
}

func TestStatusHistory(t *testing.T) {
	s, _ := newTestServer(t, nil)
	w := serve(s, request{method: "GET", target: wh + "/instances/done?SHOWHISTORY=true", header: key(nil)})
	var p struct {
		HistoryEvents []map[string]any `json:"historyEvents"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || len(p.HistoryEvents) != 2 {
		t.Fatalf("history: %s", w.Body)
	}
	if p.HistoryEvents[1]["EventType"] != "TaskCompleted" || p.HistoryEvents[1]["FunctionName"] != "SayHello" || p.HistoryEvents[1]["Result"] != nil {
		t.Fatalf("TaskCompleted without showHistoryOutput: %v", p.HistoryEvents[1])
	}
	w = serve(s, request{method: "GET", target: wh + "/instances/done?showHistory=true&showHistoryOutput=true&showInput=false", header: key(nil)})
	p.HistoryEvents = nil
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if p.HistoryEvents[1]["Result"] != "Hello Tokyo!" || p.HistoryEvents[0]["Input"] != nil {
		t.Fatalf("with output, without input: %v", p.HistoryEvents)
	}
	// Bad bool: absent (false); the key is omitted.
	w = serve(s, request{method: "GET", target: wh + "/instances/done?showHistory=yes", header: key(nil)})
	if strings.Contains(w.Body.String(), "historyEvents") {
		t.Fatalf("showHistory=yes: %s", w.Body)
	}
}

func TestUnknownRoutesAre404Empty(t *testing.T) {
	s, _ := newTestServer(t, nil)
	for _, c := range []struct{ method, path string }{
		{"GET", wh + "/orchestrators/Hello"}, {"GET", wh + "/instances/run/terminate"}, {"POST", wh + "/instances/run"},
		{"POST", wh + "/instances/run/explode"}, {"PUT", wh + "/instances"}, {"PATCH", wh + "/instances/run"},
		{"GET", wh + "/entities"}, {"POST", wh + "/entities/e/k"}, {"POST", wh + "/makeprimary"}, {"GET", wh},
		{"GET", "/"}, {"GET", "/favicon.ico"}, {"GET", "/orchestrators/Hello/wait"}, {"POST", "/orchestrators/Hello/now"},
		{"POST", wh + "/instances//terminate"}, {"GET", "/admin/extensions/DurableTaskExtension/instances"},
	} {
		w := serve(s, request{method: c.method, target: c.path, header: key(nil)})
		if w.Code != 404 {
			t.Errorf("%s %s: %d", c.method, c.path, w.Code)
			continue
		}
		checkShape(t, w, shEmpty, "")
	}
}

func TestCaseInsensitiveRoutesAndTrailingSlashes(t *testing.T) {
	s, f := newTestServer(t, nil)
	for _, p := range []string{"/Runtime/Webhooks/DurableTask/Instances/run/", "/runtime/webhooks/durableTask/INSTANCES/run"} {
		if w := serve(s, request{method: "GET", target: p, header: key(nil)}); w.Code != 202 {
			t.Errorf("GET %s: %d", p, w.Code)
		}
	}
	w := serve(s, request{method: "POST", target: wh + "/instances/run/RAISEEVENT/Approval/", body: "1", header: key(map[string]string{"Content-Type": "Application/JSON; charset=utf-8"})})
	if w.Code != 202 {
		t.Fatalf("raise event: %d %s", w.Code, w.Body)
	}
	if m := f.sent[len(f.sent)-1]; m.Event.Type != abi.EventEventRaised || m.Event.Name != "Approval" || m.Event.Input != "1" {
		t.Fatalf("sent %+v", m)
	}
	// Instance ids are case-sensitive.
	if w := serve(s, request{method: "GET", target: wh + "/instances/RUN", header: key(nil)}); w.Code != 404 {
		t.Fatalf("RUN: %d", w.Code)
	}
}

func TestPercentDecodedIDs(t *testing.T) {
	s, _ := newTestServer(t, nil)
	w := serve(s, request{method: "POST", target: wh + "/orchestrators/Hello/a%20b%2Bc", header: key(nil)})
	var p CheckStatusPayload
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if w.Code != 202 || p.ID != "a b+c" || !strings.Contains(p.StatusQueryGetURI, "/instances/a%20b%2Bc?") {
		t.Fatalf("start: %d %s", w.Code, w.Body)
	}
	if w := serve(s, request{method: "GET", target: p.StatusQueryGetURI, header: key(nil)}); w.Code != 202 || !strings.Contains(w.Body.String(), `"instanceId":"a b+c"`) {
		t.Fatalf("status via statusQueryGetUri: %d %s", w.Code, w.Body)
	}
	// A decoded '/' in an id is refused like Durable Functions refuses it.
	w = serve(s, request{method: "POST", target: wh + "/orchestrators/Hello/a%2Fb", header: key(nil)})
	if w.Code != 400 {
		t.Fatalf("id with '/': %d %s", w.Code, w.Body)
	}
	checkShape(t, w, shException, "")
}

func TestRPCPrefixIsLoopbackOnly(t *testing.T) {
	s, _ := newTestServer(t, nil)
	w := serve(s, request{method: "GET", target: "/durabletask/instances/run", header: key(nil), remoteAddr: "192.0.2.7:4000"})
	if w.Code != 404 {
		t.Fatalf("remote peer on the RPC prefix: %d", w.Code)
	}
	w = serve(s, request{method: "GET", target: wh + "/instances/run", header: key(nil), remoteAddr: "192.0.2.7:4000"})
	if w.Code != 202 {
		t.Fatalf("remote peer on the webhook prefix: %d", w.Code)
	}
}

// TestTaskHubParameter: the parameter's name is case-insensitive like every
// query key, its value is compared exactly (task hub names are
// case-sensitive, as in the CLI and the store).
func TestTaskHubParameter(t *testing.T) {
	s, _ := newTestServer(t, nil)
	for q, code := range map[string]int{"taskHub=DurableFunctionsHub": 202, "TASKHUB=DurableFunctionsHub": 202, "taskHub=%20": 202,
		"taskHub=Other": 400, "taskHub=durablefunctionshub": 400, "TASKHUB=DURABLEFUNCTIONSHUB": 400} {
		w := serve(s, request{method: "GET", target: wh + "/instances/run?" + q, header: key(nil)})
		if w.Code != code {
			t.Errorf("%s: %d, want %d", q, w.Code, code)
		}
		if code == 400 && !strings.Contains(w.Body.String(), `serves only the task hub \"DurableFunctionsHub\"`) {
			t.Errorf("%s: %s", q, w.Body)
		}
	}
	w := serve(s, request{method: "GET", target: wh + "/instances/run?taskHub=durablefunctionshub", header: key(nil)})
	if !strings.Contains(w.Body.String(), "case-sensitive") {
		t.Errorf("a hub differing in case only: %s", w.Body)
	}
}

func TestStartBodies(t *testing.T) {
	cases := []struct {
		name, body string
		code       int
		input      string
		shape      shape
	}{
		{"no body", "", 202, "", shCheckStatus},
		{"blank", " \n", 202, "", shCheckStatus},
		{"empty string", `""`, 202, `""`, shCheckStatus},
		{"object", `{"a":1}`, 202, `{"a":1}`, shCheckStatus},
		{"null", `null`, 202, `null`, shCheckStatus},
		{"invalid", `{"a":`, 400, "", shException},
		{"two values", `1 2`, 400, "", shException},
		{"plain text", `hello`, 400, "", shException},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, f := newTestServer(t, nil)
			w := serve(s, request{method: "POST", target: wh + "/orchestrators/Hello/i1", body: c.body, header: key(nil)})
			if w.Code != c.code {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			checkShape(t, w, c.shape, "")
			if c.code == 202 && f.instances["i1"].Input != c.input {
				t.Fatalf("input %q, want %q", f.instances["i1"].Input, c.input)
			}
			if c.code == 400 && !strings.Contains(w.Body.String(), `"Message":"Invalid JSON content"`) {
				t.Fatalf("body %s", w.Body)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	s, f := newTestServer(t, nil)
	w := serve(s, request{method: "POST", target: wh + "/orchestrators/Nope", header: key(nil)})
	var e exceptionError
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	if w.Code != 400 || e.Message != msgBadArguments || !strings.Contains(e.ExceptionMessage, "deployed orchestrators: Hello") || e.ExceptionType != "System.ArgumentException" {
		t.Fatalf("unknown function: %d %s", w.Code, w.Body)
	}
	if w = serve(s, request{method: "POST", target: wh + "/orchestrators/SayHello", header: key(nil)}); w.Code != 400 {
		t.Fatalf("activity: %d", w.Code)
	}
	for _, id := range []string{"@entity", strings.Repeat("x", 257), "a%23b", "a%3Fb", "a%5Cb", "a%01b"} {
		if w = serve(s, request{method: "POST", target: wh + "/orchestrators/Hello/" + id, header: key(nil)}); w.Code != 400 {
			t.Errorf("id %q: %d", id, w.Code)
		}
	}
	// Generated ids: 32 lowercase hex characters.
	w = serve(s, request{method: "POST", target: wh + "/orchestrators/Hello", header: key(nil)})
	var p CheckStatusPayload
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if len(p.ID) != 32 || strings.Trim(p.ID, "0123456789abcdef") != "" {
		t.Fatalf("generated id %q", p.ID)
	}
	// A running duplicate is 409; a finished one is replaced.
	for _, id := range []string{"run", "pend", "susp"} {
		if w = serve(s, request{method: "POST", target: wh + "/orchestrators/Hello/" + id, header: key(nil)}); w.Code != 409 {
			t.Errorf("duplicate %s: %d", id, w.Code)
		}
		checkShape(t, w, shMessage, "")
	}
	if w = serve(s, request{method: "POST", target: wh + "/orchestrators/Hello/done", header: key(nil)}); w.Code != 202 || f.instances["done"].Status != abi.StatusPending {
		t.Fatalf("replace done: %d", w.Code)
	}
}

func TestRaiseEventCheckOrder(t *testing.T) {
	cases := []struct {
		name, id, ct, body string
		code               int
		msg                string
	}{
		{"not found wins over content type", "missing", "text/plain", "1", 404, ""},
		{"finished wins over content type", "done", "text/plain", "1", 410, ""},
		{"content type", "run", "text/plain", "1", 400, `{"Message":"Only application/json request content is supported"}`},
		{"no content type", "run", "", "1", 400, `{"Message":"Only application/json request content is supported"}`},
		{"empty body", "run", "application/json", "", 400, `"Message":"Invalid JSON content"`},
		{"invalid body", "run", "application/json", "{", 400, `"Message":"Invalid JSON content"`},
		{"pending accepted", "pend", "application/json", `"x"`, 202, ""},
		{"suspended accepted", "susp", "application/json; charset=utf-8", `null`, 202, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newTestServer(t, nil)
			h := map[string]string{}
			if c.ct != "" {
				h["Content-Type"] = c.ct
			}
			w := serve(s, request{method: "POST", target: wh + "/instances/" + c.id + "/raiseEvent/E", body: c.body, header: key(h)})
			if w.Code != c.code || !strings.Contains(w.Body.String(), c.msg) {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		})
	}
}

func TestControlRoutes(t *testing.T) {
	s, f := newTestServer(t, nil)
	w := serve(s, request{method: "POST", target: wh + "/instances/run/terminate?reason=bye+now&recursive=true", body: "ignored", header: key(nil)})
	if w.Code != 202 {
		t.Fatalf("terminate: %d", w.Code)
	}
	m := f.sent[len(f.sent)-1].Event
	if m.Type != abi.EventExecutionTerminated || m.Reason != "bye now" || m.NoCascade {
		t.Fatalf("terminate sent %+v", m)
	}
	serve(s, request{method: "POST", target: wh + "/instances/run/terminate?reason=undefined", header: key(nil)})
	if m := f.sent[len(f.sent)-1].Event; m.Reason != "undefined" || !m.NoCascade {
		t.Fatalf("terminate sent %+v", m)
	}
	// Suspending a suspended instance and resuming a running one are accepted.
	if w = serve(s, request{method: "POST", target: wh + "/instances/susp/suspend", header: key(nil)}); w.Code != 202 {
		t.Fatalf("suspend suspended: %d", w.Code)
	}
	if w = serve(s, request{method: "POST", target: wh + "/instances/run/resume?reason=go", header: key(nil)}); w.Code != 202 || f.sent[len(f.sent)-1].Event.Type != abi.EventExecutionResumed {
		t.Fatalf("resume running: %d", w.Code)
	}
	for _, id := range []string{"failed", "term"} {
		if w = serve(s, request{method: "POST", target: wh + "/instances/" + id + "/suspend", header: key(nil)}); w.Code != 410 {
			t.Fatalf("suspend %s: %d", id, w.Code)
		}
	}
}

func TestRewindBodies(t *testing.T) {
	s, f := newTestServer(t, nil)
	w := serve(s, request{method: "POST", target: wh + "/instances/missing/rewind", header: key(nil)})
	if w.Code != 404 || w.Body.String() != `"No orchestration with instance ID \"missing\" found."` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "POST", target: wh + "/instances/done/rewind", header: key(nil)})
	if w.Code != 412 || w.Body.String() != `"This orchestration has status Completed, but only orchestrations in the \"Failed\" state can be rewound."` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "POST", target: wh + "/instances/failed/rewind?reason=fixed", header: key(nil)})
	if w.Code != 202 || f.sent[len(f.sent)-1].Event.Type != abi.EventExecutionRewound || f.sent[len(f.sent)-1].Event.Reason != "fixed" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestRestart(t *testing.T) {
	s, f := newTestServer(t, nil)
	w := serve(s, request{method: "POST", target: wh + "/instances/missing/restart", header: key(nil)})
	if w.Code != 400 || !strings.Contains(w.Body.String(), `{"Message":"InstanceId does not match a valid orchestration instance."`) {
		t.Fatalf("missing: %d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "POST", target: wh + "/instances/run/restart?restartWithNewInstanceId=false", header: key(nil)})
	if w.Code != 409 {
		t.Fatalf("same id while running: %d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "POST", target: wh + "/instances/done/restart?restartWithNewInstanceId=False", header: key(nil)})
	var p CheckStatusPayload
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if w.Code != 202 || p.ID != "done" || f.instances["done"].Status != abi.StatusPending || f.instances["done"].Input != `{"city":"Tokyo"}` {
		t.Fatalf("same id: %d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "POST", target: wh + "/instances/term/restart?restartWithNewInstanceId=maybe", header: key(nil)})
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if w.Code != 202 || p.ID == "term" || f.instances[p.ID] == nil {
		t.Fatalf("new id by default: %d %s", w.Code, w.Body)
	}
}

func TestPurge(t *testing.T) {
	s, f := newTestServer(t, nil)
	w := serve(s, request{method: "DELETE", target: wh + "/instances/done", header: key(nil)})
	if w.Code != 200 || w.Body.String() != `{"instancesDeleted":1}` || f.instances["done"] != nil {
		t.Fatalf("purge done: %d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "DELETE", target: wh + "/instances/run", header: key(nil)})
	if w.Code != 412 || !strings.HasPrefix(w.Body.String(), `"Only orchestrations in a terminal state can be purged.`) || f.instances["run"] == nil {
		t.Fatalf("purge running: %d %s", w.Code, w.Body)
	}
	const need = `"Please provide value for 'createdTimeFrom' parameter."`
	for _, q := range []string{"", "?createdTimeFrom=", "?createdTimeFrom=soon", "?createdTimeTo=2030-01-01"} {
		w = serve(s, request{method: "DELETE", target: wh + "/instances" + q, header: key(nil)})
		if w.Code != 400 || w.Body.String() != need {
			t.Fatalf("purge %q: %d %s", q, w.Code, w.Body)
		}
	}
	w = serve(s, request{method: "DELETE", target: wh + "/instances?createdTimeFrom=2030-01-01", header: key(nil)})
	if w.Code != 404 || w.Body.Len() != 0 {
		t.Fatalf("nothing to purge: %d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "DELETE", target: wh + "/instances?createdTimeFrom=2000-01-01&runtimeStatus=Unknown", header: key(nil)})
	if w.Code != 404 {
		t.Fatalf("status matching nothing: %d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "DELETE", target: wh + "/instances?createdTimeFrom=2000-01-01&runtimeStatus=Failed,Running", header: key(nil)})
	if w.Code != 200 || w.Body.String() != `{"instancesDeleted":1}` || f.instances["failed"] != nil || f.instances["term"] == nil || f.instances["run"] == nil {
		t.Fatalf("purge Failed: %d %s", w.Code, w.Body)
	}
	w = serve(s, request{method: "DELETE", target: wh + "/instances?createdTimeFrom=2000-01-01", header: key(nil)})
	if w.Code != 200 || w.Body.String() != `{"instancesDeleted":1}` || len(f.instances) != 3 {
		t.Fatalf("purge rest: %d %s %d", w.Code, w.Body, len(f.instances))
	}
}

func TestList(t *testing.T) {
	s, f := newTestServer(t, nil)
	get := func(q string, h map[string]string) ([]map[string]any, string, int) {
		t.Helper()
		w := serve(s, request{method: "GET", target: wh + "/instances" + q, header: key(h)})
		var items []map[string]any
		if w.Code == 200 {
			if err := json.Unmarshal(w.Body.Bytes(), &items); err != nil {
				t.Fatalf("%s: %v", w.Body, err)
			}
		}
		tok, ok := w.Header()["X-Ms-Continuation-Token"]
		if w.Code == 200 && (!ok || len(tok) != 1) {
			t.Fatalf("no continuation header")
		}
		return items, w.Header().Get("x-ms-continuation-token"), w.Code
	}
	items, tok, _ := get("", nil)
	if len(items) != 6 || tok != "" || f.lastQuery.PageSize != 100 || items[0]["instanceId"] != "run" {
		t.Fatalf("all: %d %q %+v", len(items), tok, f.lastQuery)
	}
	if items[0]["input"] == nil || items[0]["historyEvents"] != nil {
		t.Fatalf("item %v", items[0])
	}
	items, _, _ = get("?showInput=false&showHistory=true", nil)
	if items[0]["input"] != nil || items[0]["historyEvents"] != nil {
		t.Fatalf("showInput=false, showHistory ignored: %v", items[0])
	}
	// Paging with the header.
	var ids []any
	tok = ""
	for pages := 0; ; pages++ {
		items, next, code := get("?top=4", map[string]string{"x-ms-continuation-token": tok})
		if code != 200 || pages > 3 {
			t.Fatalf("paging: %d after %d pages", code, pages)
		}
		for _, it := range items {
			ids = append(ids, it["instanceId"])
		}
		if next == "" {
			break
		}
		tok = next
	}
	if len(ids) != 6 {
		t.Fatalf("paged ids %v", ids)
	}
	if _, _, code := get("", map[string]string{"x-ms-continuation-token": "garbage"}); code != 400 {
		t.Fatalf("bad token: %d", code)
	}
	// Filters.
	items, _, _ = get("?runtimeStatus=Running,Completed&runtimeStatus=running,6&top=abc&instanceIdPrefix=%20ru", nil)
	if len(items) != 1 || f.lastQuery.PageSize != 100 || f.lastQuery.InstanceIDPrefix != "ru" ||
		len(f.lastQuery.Statuses) != 3 {
		t.Fatalf("filters: %v %+v", items, f.lastQuery)
	}
	get("?top=0&createdTimeFrom=2024-06-04T15:18:30Z&createdTimeTo=nonsense", nil)
	if f.lastQuery.PageSize != 100 || !f.lastQuery.CreatedFrom.Equal(fakeEpoch.Truncate(time.Second).Add(2*time.Second)) || !f.lastQuery.CreatedTo.IsZero() {
		t.Fatalf("dates: %+v", f.lastQuery)
	}
	get("?top=5000", nil)
	if f.lastQuery.PageSize != maxTop {
		t.Fatalf("top cap: %+v", f.lastQuery)
	}
	f.lastQuery.PageSize = -1
	items, tok, _ = get("?runtimeStatus=Unknown", nil)
	if len(items) != 0 || tok != "" || f.lastQuery.PageSize != -1 {
		t.Fatalf("matching nothing: %v", items)
	}
}

func TestManagementPayloadRoute(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) { o.HubName, o.ConnectionName = "Hub1", "MyRedis" })
	w := serve(s, request{method: "GET", target: wh + "/instances/run/managementPayload?code=" + testKey})
	var p HTTPManagementPayload
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if w.Code != 200 || p != ManagementPayload(testOrigin+wh, "Hub1", "MyRedis", testKey, "run") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestBindingRoute(t *testing.T) {
	s, _ := newTestServer(t, nil)
	w := serve(s, request{method: "GET", target: wh + "/binding?code=" + testKey})
	var b ClientBinding
	_ = json.Unmarshal(w.Body.Bytes(), &b)
	if b.RPCBaseURL != nil || b.ConnectionName != nil || b.RequiredQueryStringParameters != "code="+testKey || b.TaskHubName != DefaultHubName ||
		b.ManagementURLs.StatusQueryGetURI != testOrigin+wh+"/instances/INSTANCEID?taskHub=DurableFunctionsHub&connection=Redis&code="+testKey {
		t.Fatalf("with auth: %s", w.Body)
	}
	s, _ = newTestServer(t, func(o *Options) { o.Keys, o.DisableAuth = nil, true })
	w = serve(s, request{method: "GET", target: wh + "/binding"})
	_ = json.Unmarshal(w.Body.Bytes(), &b)
	if b.RPCBaseURL == nil || *b.RPCBaseURL != testOrigin+"/durabletask/" || b.RequiredQueryStringParameters != "" {
		t.Fatalf("without auth: %s", w.Body)
	}
}

func TestBodyLimit(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) { o.MaxBodyBytes = 16 })
	big := `"` + strings.Repeat("x", 20) + `"`
	for _, target := range []string{wh + "/orchestrators/Hello", wh + "/instances/run/raiseEvent/E", "/orchestrators/Hello/wait?timeout=0&retryInterval=0"} {
		w := serve(s, request{method: "POST", target: target, body: big, header: key(map[string]string{"Content-Type": "application/json"})})
		if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "limit of 16 bytes") {
			t.Fatalf("%s: %d %s", target, w.Code, w.Body)
		}
	}
	if w := serve(s, request{method: "POST", target: wh + "/orchestrators/Hello", body: `"0123456789abc"`, header: key(nil)}); w.Code != 202 {
		t.Fatalf("16 bytes: %d", w.Code)
	}
}

func TestPanicIsContained(t *testing.T) {
	s, f := newTestServer(t, nil)
	f.panicOn = "boom"
	w := serve(s, request{method: "GET", target: wh + "/instances/boom", header: key(nil)})
	if w.Code != 500 || w.Body.String() != `{"Message":"Something went wrong while processing your request"}` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w = serve(s, request{method: "GET", target: wh + "/instances/run", header: key(nil)}); w.Code != 202 {
		t.Fatalf("after a panic: %d", w.Code)
	}
}
