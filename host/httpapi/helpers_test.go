package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/durablewasm/durablewasm/host/client"
)

const (
	testKey    = "test-system-key-0123456789"
	testOrigin = "http://localhost:7071"
)

// newTestServer returns a server with the key testKey over a fresh fake
// store; mod adjusts the options.
func newTestServer(t testing.TB, mod func(*Options)) (*Server, *fakeStore) {
	t.Helper()
	f := newFakeStore()
	o := Options{Keys: []string{testKey}}
	if mod != nil {
		mod(&o)
	}
	s, err := New(client.New(f, nil), o)
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

// request describes one test request.
type request struct {
	method, target, body string
	header               map[string]string
	// localAddr is the address the request arrived on (default 127.0.0.1:7071).
	localAddr string
	// remoteAddr is the peer (default 127.0.0.1:50000).
	remoteAddr string
}

// serve runs req through s and returns the recorded response.
func serve(s http.Handler, req request) *httptest.ResponseRecorder {
	target := req.target
	if !strings.HasPrefix(target, "http") {
		target = testOrigin + target
	}
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r := httptest.NewRequest(req.method, target, body)
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	local := req.localAddr
	if local == "" {
		local = "127.0.0.1:7071"
	}
	la, _ := net.ResolveTCPAddr("tcp", local)
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
	r.RemoteAddr = req.remoteAddr
	if r.RemoteAddr == "" {
		r.RemoteAddr = "127.0.0.1:50000"
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// objectKeys returns the keys of the JSON object b in order, or nil if b is
// not an object.
func objectKeys(t testing.TB, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", b)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("bad JSON %s: %v", b, err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("bad JSON %s: %v", b, err)
		}
	}
	return keys
}

var (
	statusKeys      = []string{"name", "instanceId", "runtimeStatus", "input", "customStatus", "output", "createdTime", "lastUpdatedTime"}
	checkStatusKeys = []string{"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"}
	managementKeys  = []string{"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "rewindPostUri", "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"}
	bindingKeys     = []string{"taskHubName", "connectionName", "creationUrls", "managementUrls", "baseUrl", "requiredQueryStringParameters", "rpcBaseUrl"}
	exceptionKeys   = []string{"Message", "ExceptionMessage", "ExceptionType", "StackTrace"}
)

// shape is the expected form of a response.
type shape int

const (
	shEmpty shape = iota
	shStatus
	shCheckStatus
	shList
	shMessage
	shException
	shString
	shPurge
	shManagement
	shBinding
	shOutput
)

var shapeNames = map[shape]string{shEmpty: "empty", shStatus: "status", shCheckStatus: "check-status", shList: "list",
	shMessage: "message", shException: "exception", shString: "string", shPurge: "purge", shManagement: "management",
	shBinding: "binding", shOutput: "output"}

func (s shape) String() string { return shapeNames[s] }

// checkShape asserts the headers and body form of w for shape sh; target is
// the full request URL.
func checkShape(t testing.TB, w *httptest.ResponseRecorder, sh shape, target string) {
	t.Helper()
	h, body := w.Header(), w.Body.Bytes()
	if sh == shEmpty {
		if len(body) != 0 || h.Get("Content-Type") != "" || h.Get("Content-Length") != "0" {
			t.Fatalf("want an empty body without Content-Type, got %q %q %q", h.Get("Content-Type"), h.Get("Content-Length"), body)
		}
		return
	}
	if ct := h.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if !json.Valid(body) {
		t.Fatalf("body is not JSON: %s", body)
	}
	wantKeys := func(keys []string) {
		t.Helper()
		if got := objectKeys(t, body); !reflect.DeepEqual(got, keys) {
			t.Fatalf("keys %v, want %v in %s", got, keys, body)
		}
	}
	switch sh {
	case shStatus:
		wantKeys(statusKeys)
		if w.Code == http.StatusAccepted {
			if h.Get("Location") != target || h.Get("Retry-After") != "5" {
				t.Fatalf("202 status: Location %q (want %q), Retry-After %q", h.Get("Location"), target, h.Get("Retry-After"))
			}
		} else if h.Get("Location") != "" {
			t.Fatalf("%d status has Location %q", w.Code, h.Get("Location"))
		}
	case shCheckStatus:
		wantKeys(checkStatusKeys)
		var p CheckStatusPayload
		_ = json.Unmarshal(body, &p)
		if h.Get("Location") != p.StatusQueryGetURI || h.Get("Retry-After") != "10" {
			t.Fatalf("check-status: Location %q, Retry-After %q, body %s", h.Get("Location"), h.Get("Retry-After"), body)
		}
		if !strings.HasPrefix(p.StatusQueryGetURI, testOrigin+WebhookPath+"/instances/"+p.ID+"?taskHub=") || p.ID == "" {
			t.Fatalf("check-status URLs: %s", body)
		}
	case shList:
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil || body[0] != '[' {
			t.Fatalf("list is not an array: %s", body)
		}
		for _, it := range items {
			if got := objectKeys(t, it); !reflect.DeepEqual(got, statusKeys) {
				t.Fatalf("list item keys %v", got)
			}
		}
		if _, ok := h["X-Ms-Continuation-Token"]; !ok {
			t.Fatalf("list without x-ms-continuation-token")
		}
	case shMessage:
		wantKeys([]string{"Message"})
	case shException:
		wantKeys(exceptionKeys)
	case shString:
		var s string
		if err := json.Unmarshal(body, &s); err != nil || s == "" {
			t.Fatalf("want a JSON string, got %s", body)
		}
	case shPurge:
		wantKeys([]string{"instancesDeleted"})
	case shManagement:
		wantKeys(managementKeys)
	case shBinding:
		wantKeys(bindingKeys)
	case shOutput:
	}
}
